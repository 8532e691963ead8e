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
