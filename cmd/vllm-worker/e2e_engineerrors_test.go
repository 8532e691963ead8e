package main

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vllm-worker/vllm-worker/sim"
)

// TestEngineErrors drives the simulated engine's faults through one worker with
// a 1 s first-byte time-out and a 1 s stream idle time-out. Before the first byte
// the client gets the engine's status and message in the OpenAI envelope (or 504
// when the engine is too slow to answer); after it, a stream ends with exactly
// one in-band error event and [DONE]: never a silent cut, never a hang. The idle
// time-out is a gap, not a total: a long stream that keeps producing is not cut.
func TestEngineErrors(t *testing.T) {
	w := startWorker(t, "SIM_ITL_MS=50", "FIRST_BYTE_TIMEOUT_SECONDS=1", "STREAM_IDLE_TIMEOUT_SECONDS=1")
	eng := engineBase(t, w)
	// A client that would notice a hang instead of waiting for ever.
	c := &http.Client{Timeout: 15 * time.Second}

	before := []struct {
		name, path, body string
		status           int
		typ, param, msg  string
	}{
		{"error_before, non-stream", "/v1/chat/completions", chatBody(`"sim_fault":"error_before"`),
			500, "InternalServerError", "", "sim_fault=error_before"},
		{"error_before, stream", "/openai/v1/chat/completions", chatBody(`"sim_fault":"error_before","stream":true`),
			500, "InternalServerError", "", "sim_fault=error_before"},
		{"cuda_error, stream", "/v1/completions", `{"model":"test-model","prompt":"x","stream":true,"sim_fault":"cuda_error"}`,
			500, "InternalServerError", "", "CUDA error"},
		{"engine 400 passes through, non-stream", "/v1/chat/completions", chatBody(`"max_tokens":4096`),
			400, "BadRequestError", "", "maximum context length is 4096"},
		{"engine 400 passes through, stream", "/v2/ep/openai/v1/chat/completions", chatBody(`"max_tokens":4096,"stream":true`),
			400, "BadRequestError", "", "maximum context length is 4096"},
		{"engine 400 keeps its param", "/v1/completions", `{"model":"test-model","stream":true}`,
			400, "BadRequestError", "prompt", "prompt"},
		{"engine error mid-generation of a non-stream request", "/v1/completions", `{"model":"test-model","prompt":"x","max_tokens":4,"sim_fault":"error_mid_stream"}`,
			500, "InternalServerError", "", "sim_fault=error_mid_stream"},
		{"first-byte time-out, stream", "/v1/chat/completions", chatBody(`"stream":true,"sim_fault":"slow_first_byte"`),
			504, "GatewayTimeoutError", "", "in time"},
		{"first-byte time-out, non-stream", "/v1/completions", `{"model":"test-model","prompt":"x","sim_fault":"slow_first_byte"}`,
			504, "GatewayTimeoutError", "", "in time"},
		{"first-byte time-out, engine hangs a non-stream request", "/v1/completions", `{"model":"test-model","prompt":"x","sim_fault":"hang"}`,
			504, "GatewayTimeoutError", "", "in time"},
	}
	for _, tt := range before {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			resp, raw := post(t, c, w.URL+tt.path, tt.body)
			took := time.Since(start)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d; want %d: %s", resp.StatusCode, tt.status, raw)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q; want application/json (an error before the first byte is not a stream)", ct)
			}
			e := checkEnvelope(t, raw, tt.status)
			if e.Type != tt.typ || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("error %+v; want type %s and a message containing %q", e, tt.typ, tt.msg)
			}
			if tt.param != "" && (e.Param == nil || *e.Param != tt.param) {
				t.Errorf("param %v; want %q", e.Param, tt.param)
			}
			if tt.status == 504 && (took < 900*time.Millisecond || took > 2500*time.Millisecond) {
				t.Errorf("504 after %v; want it after the 1 s first-byte time-out", took)
			}
		})
	}

	// The engine dropping a non-streamed request's connection is a 502, and the
	// worker must not send the generation again behind the client's back.
	t.Run("engine drops a non-stream request: 502, sent once", func(t *testing.T) {
		// A finished request first leaves an idle keep-alive connection to the engine,
		// which the faulty request then reuses.
		if resp, raw := post(t, c, w.URL+"/v1/completions", `{"model":"test-model","prompt":"warm up","max_tokens":1}`); resp.StatusCode != 200 {
			t.Fatalf("warm-up: %d %s", resp.StatusCode, raw)
		}
		p0 := mustMetric(t, eng, metricPrompt)
		resp, raw := post(t, c, w.URL+"/v1/completions", `{"model":"test-model","prompt":"one two three four five","max_tokens":3,"sim_fault":"cut_mid_stream"}`)
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d; want 502: %s", resp.StatusCode, raw)
		}
		checkEnvelope(t, raw, 502)
		if sent := (mustMetric(t, eng, metricPrompt) - p0) / 5; sent != 1 {
			t.Errorf("the engine received the generation %v times; want once (the worker replayed a request the engine had already run)", sent)
		}
	})

	after := []struct {
		name, path, body string
		status           int
		msg              string
		minEvents        int // content events before the error
	}{
		{"error_mid_stream, chat", "/v1/chat/completions", chatBody(`"max_tokens":10,"stream":true,"sim_fault":"error_mid_stream"`), 500, "sim_fault=error_mid_stream", 3},
		{"error_mid_stream, completions", "/openai/v1/completions", `{"model":"test-model","prompt":"x","max_tokens":10,"stream":true,"sim_fault":"error_mid_stream","sim_fault_after":4}`, 500, "sim_fault=error_mid_stream", 4},
		// An engine that ends its stream after an error event, with no [DONE]: the
		// client gets that one error event (never a second, of the worker's own)
		// and then [DONE].
		{"error_no_done, chat", "/v1/chat/completions", chatBody(`"max_tokens":10,"stream":true,"sim_fault":"error_no_done"`), 500, "sim_fault=error_no_done", 3},
		{"error_no_done, completions under /v2", "/v2/ep/openai/v1/completions", `{"model":"test-model","prompt":"x","max_tokens":10,"stream":true,"sim_fault":"error_no_done","sim_fault_after":4}`, 500, "sim_fault=error_no_done", 4},
		{"cut_mid_stream, chat", "/v1/chat/completions", chatBody(`"max_tokens":10,"stream":true,"sim_fault":"cut_mid_stream"`), 502, "ended unexpectedly", 3},
		{"cut_mid_stream, completions under /v2", "/v2/ep/openai/v1/completions", `{"model":"test-model","prompt":"x","max_tokens":10,"stream":true,"sim_fault":"cut_mid_stream","sim_fault_after":5}`, 502, "ended unexpectedly", 5},
		{"hang after the role chunk: idle time-out", "/v1/chat/completions", chatBody(`"max_tokens":10,"stream":true,"sim_fault":"hang"`), 504, "STREAM_IDLE_TIMEOUT_SECONDS", 1},
	}
	for _, tt := range after {
		t.Run(tt.name, func(t *testing.T) {
			aborts := mustMetric(t, eng, metricAborts, labelAbort)
			start := time.Now()
			resp, raw := post(t, c, w.URL+tt.path, tt.body)
			took := time.Since(start)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("status %d, Content-Type %q; want a 200 stream", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			e, n := checkErrorEnd(t, raw, tt.status)
			if !strings.Contains(e.Message, tt.msg) {
				t.Errorf("error event %+v; want a message containing %q", e, tt.msg)
			}
			if n < tt.minEvents {
				t.Errorf("%d events before the error; want at least %d", n, tt.minEvents)
			}
			if tt.status == 504 {
				t.Logf("hung stream ended after %v", took)
				if took < 900*time.Millisecond || took > 2500*time.Millisecond {
					t.Errorf("hung stream ended after %v; want about 1 s (STREAM_IDLE_TIMEOUT_SECONDS=1)", took)
				}
				// The idle time-out also aborts the engine's request.
				waitMetric(t, eng, time.Now(), 5*time.Millisecond, 2*time.Second, func(v float64) bool { return v > aborts }, metricAborts, labelAbort)
				if v := mustMetric(t, w.URL, metricAborted, `reason="idle_timeout"`); v != 1 {
					t.Errorf("%s{reason=idle_timeout} = %v; want 1", metricAborted, v)
				}
			}
		})
	}

	t.Run("a long paced stream is not cut by the idle time-out", func(t *testing.T) {
		start := time.Now()
		resp, raw := post(t, c, w.URL+"/v1/completions", `{"model":"test-model","prompt":"x","max_tokens":60,"stream":true}`)
		took := time.Since(start)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, raw)
		}
		if events := checkSSE(t, raw); len(events) != 61 {
			t.Errorf("%d events; want 60 tokens and [DONE]", len(events))
		}
		if took < 2500*time.Millisecond {
			t.Errorf("the stream took %v; want about 3 s, well beyond the 1 s idle time-out", took)
		}
	})

	t.Run("still serving", func(t *testing.T) {
		if resp, raw := post(t, c, w.URL+"/v1/chat/completions", chatBody(`"max_tokens":3`)); resp.StatusCode != 200 {
			t.Errorf("status %d: %s", resp.StatusCode, raw)
		}
	})
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// TestEngineUnreachable: with ENGINE_URL at a closed port the worker never becomes
// ready: /health and every API route answer 503 with Retry-After and the envelope,
// and once VLLM_STARTUP_TIMEOUT passes the worker exits with an error naming the
// engine. An engine that goes away after the worker is ready gives 502, at once,
// and /health stops saying ready;
// an engine process that exits under a request gives 502 and the worker exits.
func TestEngineUnreachable(t *testing.T) {
	t.Run("closed port: 503 while starting, then exit", func(t *testing.T) {
		w := startWorkerAsync(t, "ENGINE_URL=http://"+closedPort(t), "VLLM_STARTUP_TIMEOUT=3")
		resp, err := http.Get(w.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/health %d; want 503", resp.StatusCode)
		}
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/v1/chat/completions", chatBody("")},
			{"POST", "/openai/v1/completions", `{"model":"test-model","prompt":"x","stream":true}`},
			{"POST", "/v2/ep/openai/v1/chat/completions", chatBody("")},
			{"GET", "/v1/models", ""},
			{"POST", "/v1/tokenize", `{"prompt":"x"}`},
		} {
			req, _ := http.NewRequest(r.method, w.URL+r.path, strings.NewReader(r.body))
			if r.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw := readAll(t, resp)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s %s while starting: %d, Retry-After %q; want 503 with Retry-After: %s", r.method, r.path,
					resp.StatusCode, resp.Header.Get("Retry-After"), raw)
				continue
			}
			if e := checkEnvelope(t, raw, 503); !strings.Contains(e.Message, "starting") {
				t.Errorf("%s %s: message %q; want it to say the engine is starting", r.method, r.path, e.Message)
			}
		}
		err = w.wait(t, 20*time.Second)
		if err == nil || !strings.Contains(err.Error(), "external engine") {
			t.Errorf("run returned %v; want an error about the external engine", err)
		}
	})

	t.Run("external engine goes away: 502", func(t *testing.T) {
		srv := httptest.NewServer(sim.New(sim.Options{Model: testModel}))
		defer srv.Close()
		w := startWorker(t, "ENGINE_URL="+srv.URL)
		if resp, raw := post(t, nil, w.URL+"/v1/chat/completions", chatBody(`"max_tokens":2`)); resp.StatusCode != 200 {
			t.Fatalf("with the engine up: %d %s", resp.StatusCode, raw)
		}
		srv.CloseClientConnections()
		srv.Close()
		for _, body := range []string{chatBody(`"max_tokens":2`), chatBody(`"max_tokens":2,"stream":true`)} {
			start := time.Now()
			resp, raw := post(t, &http.Client{Timeout: 10 * time.Second}, w.URL+"/v1/chat/completions", body)
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("engine gone: %d; want 502: %s", resp.StatusCode, raw)
				continue
			}
			if e := checkEnvelope(t, raw, 502); !strings.Contains(e.Message, "unreachable") {
				t.Errorf("message %q; want it to say the engine is unreachable", e.Message)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("502 after %v; want it at once (connection refused)", took)
			}
		}
		// A worker whose engine is gone must stop reporting ready, or the load
		// balancer keeps sending it requests that can only fail.
		for deadline := time.Now().Add(6 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			resp, err := http.Get(w.URL + "/health")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("/health still 200 ready 6 s after the external engine went away; want 503 unhealthy")
				break
			}
		}
		// Then requests get 503 with Retry-After, as docs/operations.md says.
		resp, raw := post(t, nil, w.URL+"/v1/chat/completions", chatBody(`"max_tokens":2`))
		if e := checkEnvelope(t, raw, resp.StatusCode); resp.StatusCode != http.StatusServiceUnavailable ||
			resp.Header.Get("Retry-After") == "" || !strings.Contains(e.Message, "unhealthy") {
			t.Errorf("once unhealthy: %d (Retry-After %q) %+v; want 503 saying the engine is unhealthy", resp.StatusCode, resp.Header.Get("Retry-After"), e)
		}
	})

	t.Run("engine process exits under a request: 502, worker exits", func(t *testing.T) {
		w := startWorker(t)
		resp, raw := post(t, &http.Client{Timeout: 10 * time.Second}, w.URL+"/v1/completions", `{"model":"test-model","prompt":"x","sim_fault":"exit"}`)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d; want 502: %s", resp.StatusCode, raw)
		} else {
			checkEnvelope(t, raw, 502)
		}
		if err := w.wait(t, 20*time.Second); err == nil || !strings.Contains(err.Error(), "engine died") {
			t.Errorf("run returned %v; want engine died", err)
		}
	})
}
