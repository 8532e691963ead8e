package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestClientDisconnectAborts(t *testing.T) {
	s, ts := newTest(t, Options{ITL: 5 * time.Millisecond})
	for i, body := range []string{
		`{"prompt":"x","stream":true,"max_tokens":2000}`,
		`{"prompt":"x","max_tokens":2000}`,
	} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		eventually(t, "the request to run", func() bool { return s.Stats().Running == 1 })
		cancel()
		<-done
		eventually(t, "the abort", func() bool { st := s.Stats(); return st.Aborts == int64(i+1) && st.Running == 0 })
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := `finished_reason="abort"} 2`; !strings.Contains(string(b), want) {
		t.Errorf("metrics lack %q", want)
	}
}

func TestMaxNumSeqs(t *testing.T) {
	s, ts := newTest(t, Options{MaxNumSeqs: 1})
	// The first request holds the only slot until its client leaves.
	hangCtx, leave := context.WithCancel(context.Background())
	defer leave()
	hang := post(t, hangCtx, ts.URL+"/v1/completions", `{"prompt":"x","stream":true,"sim_fault":"hang"}`)
	eventually(t, "the first request to run", func() bool { return s.Stats().Running == 1 })

	// The second streams headers at once (as vLLM does) but generates nothing yet.
	second := post(t, context.Background(), ts.URL+"/v1/completions", `{"prompt":"x","stream":true,"max_tokens":3}`)
	eventually(t, "the second request to wait", func() bool { return s.Stats().Waiting == 1 })
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `vllm:num_requests_waiting{model_name="` + testModel + `",engine="0"} 1`; !strings.Contains(string(b), want) {
		t.Errorf("metrics lack %q", want)
	}
	if st := s.Stats(); st.Running != 1 {
		t.Errorf("running = %d; want 1", st.Running)
	}

	leave()
	hang.Body.Close()
	raw, err := io.ReadAll(second.Body)
	if err != nil {
		t.Fatal(err)
	}
	if evs := events(t, raw); len(evs) != 4 || evs[3] != "[DONE]" {
		t.Errorf("second stream = %q", evs)
	}
	eventually(t, "both to end", func() bool { st := s.Stats(); return st.Running == 0 && st.Waiting == 0 })
}

func TestPacing(t *testing.T) {
	_, ts := newTest(t, Options{TTFT: 100 * time.Millisecond, ITL: 20 * time.Millisecond})
	start := time.Now()
	resp := post(t, context.Background(), ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"stream":true,"max_tokens":6}`)
	r := bufio.NewReader(resp.Body)
	var first, last time.Duration
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		if strings.Contains(line, `"content":" `) {
			if first == 0 {
				first = time.Since(start)
			}
			last = time.Since(start)
		}
	}
	if first < 100*time.Millisecond || last-first < 90*time.Millisecond { // client-side clocks: allow some jitter
		t.Errorf("first token at %v, last at %v; want TTFT ≥100ms and 5 gaps of 20ms", first, last)
	}
	// Non-stream takes as long as the stream would.
	start = time.Now()
	postRead(t, ts.URL+"/v1/completions", `{"prompt":"x","max_tokens":6}`)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("non-stream took %v; want ≥ TTFT + 5 ITL = 200ms", d)
	}
}

// freeAddr returns a loopback address nothing listens on (for a moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestServeStartupDelay(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		errc <- Serve(ctx, addr, Options{Model: testModel, StartupDelay: 300 * time.Millisecond},
			func(a net.Addr) { readyc <- a })
	}()
	// While "loading", connections are refused, like vLLM before uvicorn starts.
	if _, err := http.Get("http://" + addr + "/health"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GET /health during startup: err = %v; want connection refused", err)
	}
	a := <-readyc
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("listening after %v; want ≥ 300ms", d)
	}
	if a.String() != addr {
		t.Errorf("ready(%v); want %v", a, addr)
	}
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /health = %v, %v", resp, err)
	}
	resp.Body.Close()

	// A stream in flight when ctx ends is cut (ShutdownTimeout 0, like vLLM).
	resp, err = http.Post("http://"+addr+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x","stream":true,"sim_fault":"hang"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Serve = %v; want nil", err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("in-flight stream ended cleanly; want it cut")
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestServeCancelDuringStartup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	if err := Serve(ctx, "127.0.0.1:0", Options{StartupDelay: time.Hour}, func(net.Addr) { called = true }); err != nil || called {
		t.Errorf("Serve = %v, ready called %t; want nil, false", err, called)
	}
	if err := Serve(context.Background(), "256.0.0.1:1", Options{}, nil); err == nil {
		t.Error("Serve on a bad address = nil; want an error")
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, "127.0.0.1:0", Options{ShutdownTimeout: 5 * time.Second, ITL: 10 * time.Millisecond},
			func(a net.Addr) { readyc <- a })
	}()
	addr := (<-readyc).String()
	resp, err := http.Post("http://"+addr+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x","stream":true,"max_tokens":20}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cancel()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || !strings.HasSuffix(string(raw), "data: [DONE]\n\n") {
		t.Errorf("in-flight stream: err %v, tail %q; want it to finish", err, tail(raw))
	}
	if err := <-errc; err != nil {
		t.Errorf("Serve = %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestManyStreams runs 1,000 concurrent paced streams: the pacing must keep up.
func TestManyStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const streams, tokens, itl = 1000, 10, 20 * time.Millisecond
	s, ts := newTest(t, Options{ITL: itl})
	tr := &http.Transport{MaxIdleConnsPerHost: streams}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Go(func() {
			body := fmt.Sprintf(`{"prompt":"p%d","stream":true,"max_tokens":%d}`, i, tokens)
			resp, err := c.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err == nil && strings.Count(string(raw), `"text":`) != tokens {
				err = fmt.Errorf("stream %d: %d chunks", i, strings.Count(string(raw), `"text":`))
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("%d streams × %d tokens at ITL %v: %v (ideal %v)", streams, tokens, itl, d, (tokens-1)*itl)
	if d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	if st := s.Stats(); st.Requests != streams || st.Aborts != 0 {
		t.Errorf("stats = %+v", st)
	}
}
