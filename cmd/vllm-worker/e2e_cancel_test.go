package main

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// abortBudget is how soon a generation must be aborted in the engine after its
// client left or its job was cancelled. The measured figures are logged.
const abortBudget = 100 * time.Millisecond

// abortTrials is how many times each way of leaving is measured.
const abortTrials = 5

// TestCancellationAbortsEngine: a streaming client that disconnects, a
// non-streaming client that disconnects, and /cancel of a running job (streamed
// or not) each abort the engine request within abortBudget, measured from the
// disconnect (or the /cancel call) to the engine's abort counter rising, polled
// every 5 ms.
func TestCancellationAbortsEngine(t *testing.T) {
	w := startWorker(t, "SIM_ITL_MS=20")
	eng := engineBase(t, w)

	// idle waits until the engine runs nothing, so the next trial's request is
	// the only one.
	idle := func(t *testing.T) {
		t.Helper()
		waitMetric(t, eng, time.Now(), 5*time.Millisecond, 10*time.Second, func(v float64) bool { return v == 0 }, metricRunning)
	}
	running := func(t *testing.T) {
		t.Helper()
		waitMetric(t, eng, time.Now(), 5*time.Millisecond, 10*time.Second, func(v float64) bool { return v >= 1 }, metricRunning)
	}
	// measure returns how long after start the abort counter rose above before.
	measure := func(t *testing.T, before float64, start time.Time) time.Duration {
		t.Helper()
		return waitMetric(t, eng, start, 5*time.Millisecond, 5*time.Second, func(v float64) bool { return v > before }, metricAborts, labelAbort)
	}
	report := func(t *testing.T, what string, lat []time.Duration) {
		t.Helper()
		sorted := slices.Clone(lat)
		slices.Sort(sorted)
		t.Logf("%s: engine abort after min %v, median %v, max %v (trials %v)", what,
			sorted[0], sorted[len(sorted)/2], sorted[len(sorted)-1], lat)
		if sorted[len(sorted)-1] > abortBudget {
			t.Errorf("%s: slowest abort %v; want under %v", what, sorted[len(sorted)-1], abortBudget)
		}
	}

	t.Run("streaming client disconnects", func(t *testing.T) {
		var lat []time.Duration
		for range abortTrials {
			idle(t)
			// Its own transport: cancelling closes this connection and no other.
			c := &http.Client{Transport: &http.Transport{}}
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+"/v1/chat/completions",
				strings.NewReader(chatBody(`"max_tokens":2000,"stream":true`)))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if first, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(first, "data: ") {
				t.Fatalf("first event: %q %v", first, err)
			}
			before := mustMetric(t, eng, metricAborts, labelAbort)
			start := time.Now()
			cancel()
			lat = append(lat, measure(t, before, start))
			resp.Body.Close()
		}
		report(t, "streaming client disconnect", lat)
	})

	t.Run("non-streaming client disconnects", func(t *testing.T) {
		var lat []time.Duration
		for range abortTrials {
			idle(t)
			c := &http.Client{Transport: &http.Transport{}}
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+"/v1/completions",
				strings.NewReader(`{"model":"test-model","prompt":"a long answer","max_tokens":2000}`))
			req.Header.Set("Content-Type", "application/json")
			done := make(chan error, 1)
			go func() {
				resp, err := c.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			running(t)
			before := mustMetric(t, eng, metricAborts, labelAbort)
			start := time.Now()
			cancel()
			lat = append(lat, measure(t, before, start))
			if err := <-done; err == nil {
				t.Error("the cancelled request got an answer")
			}
		}
		report(t, "non-streaming client disconnect", lat)
	})

	for _, stream := range []bool{true, false} {
		name := map[bool]string{true: "cancel a streamed job", false: "cancel a non-streamed job"}[stream]
		t.Run(name, func(t *testing.T) {
			var lat, answer []time.Duration
			for range abortTrials {
				idle(t)
				var run struct{ ID string }
				postJSON(t, w.URL+"/run", `{"input":{"prompt":"a long story","sampling_params":{"max_tokens":2000},"stream":`+
					map[bool]string{true: "true", false: "false"}[stream]+`}}`, &run)
				running(t)
				before := mustMetric(t, eng, metricAborts, labelAbort)
				start := time.Now()
				var c jobResult
				postJSON(t, w.URL+"/cancel/"+run.ID, ``, &c)
				answer = append(answer, time.Since(start))
				if c.Status != "CANCELLED" {
					t.Fatalf("/cancel answered %s", c.Status)
				}
				lat = append(lat, measure(t, before, start))
				var final jobResult
				postJSON(t, w.URL+"/status/"+run.ID, ``, &final)
				if final.Status != "CANCELLED" {
					t.Errorf("status after /cancel: %s; want CANCELLED", final.Status)
				}
			}
			t.Logf("%s: /cancel answered after %v", name, answer)
			report(t, name, lat)
		})
	}
}

// TestClientGoneIsVisible: a client that hangs up mid-stream, and one that hangs
// up while waiting for a non-streamed answer, each move
// vllm_worker_requests_aborted_total{reason="client_gone"}, and their
// access-log lines say status 499 (nginx's "client closed request") and why,
// the stream's with the events and bytes it was sent.
func TestClientGoneIsVisible(t *testing.T) {
	w := startWorker(t, "SIM_ITL_MS=20")
	leave := func(path, body string, readFirst bool) {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{}} // its own connection, closed by cancel
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if !readFirst {
			time.AfterFunc(300*time.Millisecond, cancel) // mid-generation: 2000 tokens take 40 s
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
				t.Fatal("the request was answered before its client left")
			}
			return
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		for range 3 { // the role chunk and two tokens, each an event and a blank line
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		resp.Body.Close()
	}

	leave("/v1/chat/completions", chatBody(`"max_tokens":2000,"stream":true`), true)
	waitMetric(t, w.URL, time.Now(), 10*time.Millisecond, 5*time.Second, func(v float64) bool { return v == 1 },
		metricAborted, `reason="client_gone"`)
	line := w.Log.waitLine(t, 5*time.Second, func(l map[string]any) bool {
		return l["message"] == "request" && l["path"] == "/v1/chat/completions"
	})
	if line["status"] != 499.0 || line["abort"] != "client_gone" {
		t.Errorf("access log of the stream left mid-way: %v; want status 499 and abort client_gone", line)
	}
	if events, _ := line["events"].(float64); events < 3 {
		t.Errorf("access log says %v events were sent; want at least the 3 the client read", line["events"])
	}
	if bytes, _ := line["bytes"].(float64); bytes <= 0 {
		t.Errorf("access log says %v bytes were sent; want the bytes of the events", line["bytes"])
	}

	leave("/v1/completions", `{"model":"test-model","prompt":"a long answer","max_tokens":2000}`, false)
	waitMetric(t, w.URL, time.Now(), 10*time.Millisecond, 5*time.Second, func(v float64) bool { return v == 2 },
		metricAborted, `reason="client_gone"`)
	line = w.Log.waitLine(t, 5*time.Second, func(l map[string]any) bool {
		return l["message"] == "request" && l["path"] == "/v1/completions"
	})
	if line["status"] != 499.0 || line["abort"] != "client_gone" {
		t.Errorf("access log of the non-streamed request left mid-way: %v; want status 499 and abort client_gone", line)
	}
	for _, route := range []string{"/v1/chat/completions", "/v1/completions"} {
		if v := mustMetric(t, w.URL, "vllm_worker_requests_total", `code="499"`, `route="`+route+`"`); v != 1 {
			t.Errorf("vllm_worker_requests_total{route=%s,code=499} = %v; want 1", route, v)
		}
	}
}
