package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The limits against hostile and slow peers of contract section 8, end to end.
// The bad-request corpus (e2e_badinput_test.go) covers the limits that answer a
// single request with a 4xx: JSON depth, body size, engine paths, policy times
// and webhooks at submit.

const metricLimits = "vllm_worker_limit_rejections_total"

// TestLimitsJobStoreMemory: failing jobs with 8 MiB inputs leave nothing behind:
// their inputs are dropped as soon as they fail, so the worker's memory comes
// back near where it started (it stayed 480 MB higher for 30 minutes before).
func TestLimitsJobStoreMemory(t *testing.T) {
	proc, url := startPlainProcess(t, baseEnv())
	pid := proc.cmd.Process.Pid
	base := rssMB(t, pid)
	pad := strings.Repeat("p", 8<<20)
	body := `{"input":{"prompt":42,"pad":"` + pad + `"}}`
	c := &http.Client{Timeout: 30 * time.Second}
	var ids []string
	for range 40 {
		resp, err := c.Post(url+"/run", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var res jobResult
		_ = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || res.ID == "" {
			t.Fatalf("/run: %d %+v", resp.StatusCode, res)
		}
		ids = append(ids, res.ID)
	}
	for _, id := range ids {
		resp, err := c.Get(url + "/status-sync/" + id + "?wait=10000")
		if err != nil {
			t.Fatal(err)
		}
		var res jobResult
		_ = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if res.Status != "FAILED" || !strings.Contains(res.Error, "prompt") {
			t.Fatalf("job %s: %s %q; want FAILED naming prompt", id, res.Status, res.Error)
		}
	}
	// The Go runtime returns freed memory to the OS in the background: poll.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mb := rssMB(t, pid)
		if mb-base <= 64 {
			t.Logf("RSS %.1f MB before, %.1f MB after 40 failed 8 MiB jobs", base, mb)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RSS %.1f MB after 40 failed 8 MiB jobs, %.1f MB before; want within 64 MB", mb, base)
		}
		time.Sleep(250 * time.Millisecond) // polling the kernel's figure, not synchronising
	}
}

// TestLimitsJobStoreBytes: past JOB_STORE_MAX_BYTES, /run and /runsync get 429
// with Retry-After, and the refusal is counted.
func TestLimitsJobStoreBytes(t *testing.T) {
	// The engine never becomes ready: queued jobs hold their inputs.
	w := startWorkerAsync(t, "JOB_STORE_MAX_BYTES=300000", "SIM_STARTUP_MS=60000")
	body := `{"input":{"prompt":"` + strings.Repeat("w ", 60000) + `"}}` // 120 KB
	c := &http.Client{Timeout: 10 * time.Second}
	for i, want := range []int{200, 200, 429, 429} {
		path := "/run"
		if i == 3 {
			path = "/runsync"
		}
		resp, err := c.Post(w.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("submit %d: %d %s; want %d", i+1, resp.StatusCode, raw, want)
		}
		if want == 429 {
			if e := checkEnvelope(t, raw, 429); !strings.Contains(e.Message, "JOB_STORE_MAX_BYTES") || resp.Header.Get("Retry-After") == "" {
				t.Errorf("429 %+v with Retry-After %q; want JOB_STORE_MAX_BYTES named and a Retry-After", e, resp.Header.Get("Retry-After"))
			}
		}
	}
	if v := mustMetric(t, w.URL, metricLimits, `limit="job_store_bytes"`); v != 2 {
		t.Errorf("%s{limit=job_store_bytes} = %v; want 2", metricLimits, v)
	}
}

// nonReadingClient opens a connection with a small receive window, sends one
// request and never reads the answer.
func nonReadingClient(t *testing.T, base, path, body string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	return conn
}

// TestLimitsClientsThatStopReading: two clients that post long streams and read
// nothing hold both MAX_CONCURRENCY slots only until CLIENT_WRITE_TIMEOUT_SECONDS:
// then they are dropped, the engine stops generating for them, and a third
// request is served.
func TestLimitsClientsThatStopReading(t *testing.T) {
	w := startWorker(t, "MAX_CONCURRENCY=2", "MAX_QUEUE=0", "CLIENT_WRITE_TIMEOUT_SECONDS=2",
		"SIM_MAX_MODEL_LEN=10000000", "SIM_ITL_MS=0")
	long := `{"model":"test-model","prompt":"x","max_tokens":5000000,"stream":true}`
	start := time.Now()
	nonReadingClient(t, w.URL, "/v1/completions", long)
	nonReadingClient(t, w.URL, "/openai/v1/completions", long)
	waitMetric(t, w.URL, start, 20*time.Millisecond, 10*time.Second, func(v float64) bool { return v == 2 }, metricRunning)

	// A third request: 429 while both slots are held, served within 5 s.
	var served time.Duration
	for {
		resp, err := http.Post(w.URL+"/v1/completions", "application/json",
			strings.NewReader(`{"model":"test-model","prompt":"x","max_tokens":3}`))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			served = time.Since(start)
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("third request: %d %s", resp.StatusCode, raw)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the third request was still refused after %v: the non-reading clients hold the slots", time.Since(start))
		}
		time.Sleep(100 * time.Millisecond) // retrying after a 429, as a client would
	}
	t.Logf("third request served %v after the non-reading clients started", served)
	waitMetric(t, w.URL, start, 20*time.Millisecond, 5*time.Second, func(v float64) bool { return v == 0 }, metricRunning)
	if v := mustMetric(t, w.URL, metricLimits, `limit="write_timeout"`); v != 2 {
		t.Errorf("%s{limit=write_timeout} = %v; want 2", metricLimits, v)
	}
	if v := mustMetric(t, w.URL, metricAborted, `reason="write_timeout"`); v != 2 {
		t.Errorf("%s{reason=write_timeout} = %v; want 2", metricAborted, v)
	}
	w.Log.waitLine(t, time.Second, func(l map[string]any) bool {
		return strings.Contains(fmt.Sprint(l["message"]), "CLIENT_WRITE_TIMEOUT_SECONDS") && l["request_id"] != ""
	})
}

// TestLimitsSlowBody: a body sent a byte a second is cut at
// REQUEST_READ_TIMEOUT_SECONDS with 408 and the connection closed; without the
// API key the answer is 401 at once, before any of the body is read.
func TestLimitsSlowBody(t *testing.T) {
	w := startWorker(t, "REQUEST_READ_TIMEOUT_SECONDS=2", "API_KEY=k1")
	trickle := func(t *testing.T, auth string) (status int, after time.Duration, closed error) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(w.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		fmt.Fprintf(conn, "POST /v1/completions HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", auth)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		defer func() { close(stop); wg.Wait() }()
		wg.Go(func() {
			for {
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
				}
			}
		})
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		after = time.Since(start)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkEnvelope(t, raw, resp.StatusCode)
		_, err = br.ReadByte()
		// Closed: an end of file, or a reset when the trickle wrote after the close.
		if err == io.EOF || errors.Is(err, syscall.ECONNRESET) {
			err = nil
		} else if err == nil {
			err = errors.New("the connection is still open")
		}
		return resp.StatusCode, after, err
	}
	t.Run("no key: 401 at once", func(t *testing.T) {
		status, after, closed := trickle(t, "")
		if status != http.StatusUnauthorized || after > time.Second || closed != nil {
			t.Errorf("got %d after %v (close: %v); want 401 at once and the connection closed", status, after, closed)
		}
	})
	t.Run("a byte a second: 408", func(t *testing.T) {
		status, after, closed := trickle(t, "Authorization: Bearer k1\r\n")
		if status != http.StatusRequestTimeout || after < 2*time.Second || after > 4*time.Second || closed != nil {
			t.Errorf("got %d after %v (close: %v); want 408 after about 2 s and the connection closed", status, after, closed)
		}
	})
	req, _ := http.NewRequest(http.MethodGet, w.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer k1")
	if v := mustMetricReq(t, req, metricLimits, `limit="read_timeout"`); v != 1 {
		t.Errorf("%s{limit=read_timeout} = %v; want 1", metricLimits, v)
	}
}

// mustMetricReq is mustMetric with a request of the caller's (an API key).
func mustMetricReq(t *testing.T, req *http.Request, name string, labels ...string) float64 {
	t.Helper()
	resp, err := metricsClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			var v float64
			f := strings.Fields(line)
			_, _ = fmt.Sscan(f[len(f)-1], &v)
			return v
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}

// TestLimitsWebhook: a webhook to a loopback listener is refused by default
// (400 at submit), delivered with WEBHOOK_ALLOW_PRIVATE=true, a redirect is not
// followed, and no log line shows the URL's user info or query.
func TestLimitsWebhook(t *testing.T) {
	var hits, stolen atomic.Int32
	got := make(chan string, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer receiver.Close()
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stolen.Add(1) }))
	defer thief.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, thief.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	submit := func(t *testing.T, w *testWorker, hook string) (int, string) {
		t.Helper()
		resp, err := http.Post(w.URL+"/run", "application/json",
			strings.NewReader(`{"input":{"prompt":"hi","sampling_params":{"max_tokens":2}},"webhook":"`+hook+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(raw)
	}

	t.Run("refused by default", func(t *testing.T) {
		w := startWorker(t)
		status, raw := submit(t, w, receiver.URL+"/hook?token=s3cr3t")
		if status != http.StatusBadRequest || !strings.Contains(raw, "loopback") {
			t.Errorf("got %d %s; want 400 naming the loopback address", status, raw)
		}
		if strings.Contains(w.Log.String(), "s3cr3t") {
			t.Errorf("the log shows the webhook's query")
		}
	})
	t.Run("delivered with WEBHOOK_ALLOW_PRIVATE", func(t *testing.T) {
		w := startWorker(t, "WEBHOOK_ALLOW_PRIVATE=true")
		if status, raw := submit(t, w, receiver.URL+"/hook?token=s3cr3t"); status != http.StatusOK {
			t.Fatalf("got %d %s; want the job queued", status, raw)
		}
		select {
		case body := <-got:
			var snap jobResult
			if err := json.Unmarshal([]byte(body), &snap); err != nil || snap.Status != "COMPLETED" {
				t.Errorf("delivered %s; want the COMPLETED job", body)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the webhook was not delivered")
		}
		// A redirect is answered as it is: not followed, not retried.
		if status, raw := submit(t, w, redirector.URL+"/hook?token=s3cr3t"); status != http.StatusOK {
			t.Fatalf("got %d %s; want the job queued", status, raw)
		}
		w.Log.waitLine(t, 10*time.Second, func(l map[string]any) bool {
			return l["message"] == "webhook delivery failed" && strings.Contains(fmt.Sprint(l["error"]), "redirect")
		})
		if n := stolen.Load(); n != 0 {
			t.Errorf("the redirect target got %d requests; want none", n)
		}
		if log := w.Log.String(); strings.Contains(log, "s3cr3t") || strings.Contains(log, "token=") {
			t.Errorf("the log shows the webhook's query")
		}
	})
}

// TestLimitsSameRequestID: two clients that send the same X-Request-Id stream at
// the same time, and both get their whole answer (the engine sees two ids).
func TestLimitsSameRequestID(t *testing.T) {
	w := startWorker(t, "SIM_ITL_MS=10")
	var wg sync.WaitGroup
	results := make([]string, 2)
	for i := range results {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, w.URL+"/v1/chat/completions", strings.NewReader(
				`{"model":"test-model","messages":[{"role":"user","content":"hi"}],"max_tokens":30,"stream":true}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Request-Id", "same-id")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results[i] = err.Error()
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.Header.Get("X-Request-Id") != "same-id" {
				results[i] = "echoed id " + resp.Header.Get("X-Request-Id")
				return
			}
			results[i] = string(raw)
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	for i, raw := range results {
		events := strings.Split(strings.TrimSpace(raw), "\n\n")
		if len(events) != 32 || events[len(events)-1] != "data: [DONE]" || strings.Contains(raw, `"error"`) {
			t.Fatalf("client %d: %d events, ...%q; want the role chunk, 30 tokens and [DONE]", i, len(events), raw[max(0, len(raw)-200):])
		}
		var chunk struct{ ID string }
		_ = json.Unmarshal([]byte(strings.TrimPrefix(events[0], "data: ")), &chunk)
		ids[chunk.ID] = true
	}
	if len(ids) != 2 {
		t.Errorf("the engine answered both streams as %v; want two engine request ids", ids)
	}
}

// TestDrain: on SIGTERM the listeners stay open through the drain: /health and
// /ping answer 503 "draining", new work gets 503 with Retry-After, /status of a
// finished job still answers, and the stream in flight finishes.
func TestDrain(t *testing.T) {
	proc, url := startProcess(t, baseEnv("SIM_ITL_MS=20", "SHUTDOWN_GRACE_SECONDS=20"))
	waitReady(t, url, 30*time.Second, proc.Log)
	res := jobResult{}
	postJSON(t, url+"/runsync", `{"input":{"prompt":"done before","sampling_params":{"max_tokens":3}}}`, &res)
	if res.Status != "COMPLETED" {
		t.Fatalf("job: %+v", res)
	}
	// A stream of 100 tokens at 20 ms: about 2 s, in flight during the drain.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/completions",
		strings.NewReader(`{"prompt":"x","max_tokens":100,"stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if first, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(first, "data: ") {
		t.Fatalf("first event: %q %v", first, err)
	}
	if err := proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	proc.Log.waitLine(t, 5*time.Second, func(l map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(l["message"]), "shutting down")
	})
	c := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := c.Get(url + path)
		if err != nil {
			t.Fatalf("GET %s during the drain: %v", path, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(raw), resp.Header
	}
	if code, raw, _ := get("/health"); code != http.StatusServiceUnavailable || !strings.Contains(raw, `"status":"draining"`) {
		t.Errorf("/health during the drain: %d %s; want 503 draining", code, raw)
	}
	if code, raw, _ := get("/ping"); code != http.StatusServiceUnavailable || !strings.Contains(raw, "draining") {
		t.Errorf("/ping during the drain: %d %s; want 503 draining", code, raw)
	}
	if code, raw, _ := get("/status/" + res.ID); code != http.StatusOK || !strings.Contains(raw, "COMPLETED") {
		t.Errorf("/status of a finished job during the drain: %d %s; want it", code, raw)
	}
	newWork, err := c.Post(url+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x","max_tokens":2}`))
	if err != nil {
		t.Fatal(err)
	}
	newWork.Body.Close()
	if newWork.StatusCode != http.StatusServiceUnavailable || newWork.Header.Get("Retry-After") == "" {
		t.Errorf("new work during the drain: %d (Retry-After %q); want 503 with Retry-After", newWork.StatusCode, newWork.Header.Get("Retry-After"))
	}
	rest, err := io.ReadAll(br)
	if err != nil || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("the stream in flight was cut by the drain (%v): ...%q", err, rest[max(0, len(rest)-60):])
	}
	if err := proc.cmd.Wait(); err != nil {
		t.Errorf("worker exited with %v; want 0; log:\n%s", err, proc.Log)
	}
}
