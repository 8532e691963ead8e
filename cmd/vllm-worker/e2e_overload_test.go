package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOverload: with MAX_CONCURRENCY=2 and MAX_QUEUE=2 in front of a slow engine,
// six concurrent streams give four answers (two of them after waiting for a slot)
// and two immediate 429s with Retry-After and the OpenAI envelope. Clients that
// leave give back their slot or their place in the queue, and afterwards every
// slot and queue place is free again.
func TestOverload(t *testing.T) {
	w := startWorker(t, "MAX_CONCURRENCY=2", "MAX_QUEUE=2", "SIM_ITL_MS=50")
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	stream := func(tokens int) string {
		return `{"model":"test-model","prompt":"x","max_tokens":` + strconv.Itoa(tokens) + `,"stream":true}`
	}

	type result struct {
		status      int
		retryAfter  string
		raw         []byte
		ttfb, total time.Duration
		err         error
	}
	// send runs one streaming request of the given length under ctx.
	send := func(ctx context.Context, id string, tokens int) result {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+"/v1/completions", strings.NewReader(stream(tokens)))
		req.Header.Set("Content-Type", "application/json")
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return result{err: err}
		}
		defer resp.Body.Close()
		r := result{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), ttfb: time.Since(start)}
		r.raw, r.err = io.ReadAll(resp.Body)
		r.total = time.Since(start)
		return r
	}
	// burst sends n streams at once and returns their results.
	burst := func(n, tokens int) []result {
		out := make([]result, n)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-gate
				out[i] = send(context.Background(), "", tokens)
			})
		}
		close(gate)
		wg.Wait()
		return out
	}
	check429 := func(t *testing.T, r result) {
		t.Helper()
		if n, err := strconv.Atoi(r.retryAfter); err != nil || n < 1 {
			t.Errorf("429 with Retry-After %q; want a number of seconds", r.retryAfter)
		}
		if e := checkEnvelope(t, r.raw, 429); e.Type != "RateLimitError" || !strings.Contains(e.Message, "capacity") {
			t.Errorf("429 error %+v; want a RateLimitError about capacity", e)
		}
		if r.total > 500*time.Millisecond {
			t.Errorf("429 after %v; want it at once, not after queueing", r.total)
		}
	}
	// gauges waits until the worker's limiter holds inFlight requests and
	// queued ones, as its /metrics reports them.
	gauges := func(t *testing.T, inFlight, queued float64) {
		t.Helper()
		now := time.Now()
		waitMetric(t, w.URL, now, 5*time.Millisecond, 5*time.Second, func(v float64) bool { return v == inFlight }, metricInFlight)
		waitMetric(t, w.URL, now, 5*time.Millisecond, 5*time.Second, func(v float64) bool { return v == queued }, metricQueued)
	}
	// refused checks that one more request is refused at once: the slots and
	// the queue are full.
	refused := func(t *testing.T) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if r := send(ctx, "", 1); r.status != http.StatusTooManyRequests {
			t.Fatalf("a request beyond the slots and the queue: %d %v; want 429", r.status, r.err)
		} else {
			check429(t, r)
		}
	}
	t.Run("six streams: four served, two refused", func(t *testing.T) {
		results := burst(6, 20)
		var ok, refused []result
		for _, r := range results {
			switch r.status {
			case http.StatusOK:
				ok = append(ok, r)
			case http.StatusTooManyRequests:
				refused = append(refused, r)
			default:
				t.Errorf("status %d (%v): %s", r.status, r.err, r.raw)
			}
		}
		if len(ok) != 4 || len(refused) != 2 {
			t.Fatalf("%d served, %d refused; want 4 and 2", len(ok), len(refused))
		}
		for _, r := range refused {
			check429(t, r)
		}
		var ttfb []time.Duration
		for _, r := range ok {
			if events := checkSSE(t, r.raw); len(events) != 21 {
				t.Errorf("served stream has %d events; want 20 tokens and [DONE]", len(events))
			}
			ttfb = append(ttfb, r.ttfb)
		}
		slices.Sort(ttfb)
		t.Logf("time to first byte of the served streams: %v", ttfb)
		// Two start at once; two wait about a second (20 tokens at 50 ms) for a slot.
		if ttfb[1] > 500*time.Millisecond || ttfb[2] < 700*time.Millisecond {
			t.Errorf("first bytes after %v; want two at once and two after waiting for a slot", ttfb)
		}
	})

	t.Run("clients that leave give back their slot and queue place", func(t *testing.T) {
		// call is one request in the background; res is valid once done is closed.
		type call struct {
			cancel context.CancelFunc
			done   chan struct{}
			res    result
		}
		var all []*call
		defer func() { // whatever happened, leave nothing behind for the next subtest
			for _, cl := range all {
				cl.cancel()
				<-cl.done
			}
			gauges(t, 0, 0)
		}()
		launch := func(ids []string, tokens int) []*call {
			var out []*call
			for _, id := range ids {
				ctx, cancel := context.WithCancel(context.Background())
				cl := &call{cancel: cancel, done: make(chan struct{})}
				go func() {
					defer close(cl.done)
					cl.res = send(ctx, id, tokens)
				}()
				out = append(out, cl)
			}
			all = append(all, out...)
			return out
		}
		// A and B hold both slots with long streams; C and D wait in the queue.
		holders := launch([]string{"hold-a", "hold-b"}, 400)
		gauges(t, 2, 0)
		queued := launch([]string{"queued-c", "queued-d"}, 1)
		gauges(t, 2, 2)
		refused(t)
		// C and D leave the queue: their places must be free for F and G.
		for _, cl := range queued {
			cl.cancel()
		}
		gauges(t, 2, 0)
		later := launch([]string{"later-f", "later-g"}, 5)
		gauges(t, 2, 2)
		refused(t)
		// A and B leave: F and G get the slots and finish.
		for _, cl := range holders {
			cl.cancel()
		}
		for i, cl := range later {
			<-cl.done
			if r := cl.res; r.status != http.StatusOK {
				t.Errorf("queued stream %d: %d %v: %s", i, r.status, r.err, r.raw)
			} else {
				checkSSE(t, r.raw)
			}
		}
	})

	t.Run("afterwards every slot and queue place is free", func(t *testing.T) {
		gauges(t, 0, 0)
		for i, r := range burst(4, 5) {
			if r.status != http.StatusOK {
				t.Errorf("request %d: %d %v: %s", i, r.status, r.err, r.raw)
			}
		}
		if resp, raw := post(t, c, w.URL+"/v1/chat/completions", chatBody(`"max_tokens":2`)); resp.StatusCode != 200 {
			t.Errorf("a new request: %d %s", resp.StatusCode, raw)
		}
	})
}
