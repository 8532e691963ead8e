package serverless

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/internal/fakerunpod"
	"github.com/vllm-worker/vllm-worker/sim"
)

// TestHandlerFaults: with a fifth of the stream and done POSTs failed once
// (500 or a dropped connection) and takes answered 429 and 400, nothing is lost.
func TestHandlerFaults(t *testing.T) {
	x := newHarness(t, sim.Options{}, HandlerOptions{MaxConcurrency: 4})
	x.rp.SetFaults(fakerunpod.Faults{StreamFail: 0.1, StreamDrop: 0.1, DoneFail: 0.1, DoneDrop: 0.1})
	inputs := []string{
		`{"prompt":"p%d","stream":true,"sampling_params":{"max_tokens":40}}`,
		`{"openai_input":{"messages":[{"role":"user","content":"c%d"}],"max_tokens":30,"stream":true}}`,
		`{"prompt":"q%d","sampling_params":{"max_tokens":5}}`,
	}
	enqueue := func(phase, n int) []string {
		var ids []string
		for i := range n {
			id := fmt.Sprintf("job-%d-%d", phase, i)
			x.rp.Enqueue(id, json.RawMessage(fmt.Sprintf(inputs[i%len(inputs)], i)))
			ids = append(ids, id)
		}
		return ids
	}
	x.rp.FailTakes(http.StatusTooManyRequests, 2)
	ids := enqueue(0, 12)
	x.start()
	ctx := waitCtx(t, 30*time.Second)
	if err := x.rp.WaitDone(ctx, len(ids)); err != nil {
		t.Fatal(err)
	}
	x.rp.FailTakes(http.StatusBadRequest, 3)
	ids = append(ids, enqueue(1, 12)...)
	if err := x.rp.WaitDone(ctx, len(ids)); err != nil {
		t.Fatal(err)
	}

	for _, id := range ids {
		d := x.rp.Dones(id)
		if len(d) != 1 || d[0].Error != "" || len(d[0].Output) == 0 {
			t.Errorf("%s: %d results (%+v); want one output", id, len(d), d)
			continue
		}
		// Streamed or not, every item went to the stream URL too.
		if diff := cmp.Diff(normalize(d[0].Output), normalize(x.rp.Stream(id))); diff != "" {
			t.Errorf("%s: streamed items differ from the result (-done +stream):\n%s", id, diff)
		}
	}
	statuses := map[int]int{}
	for _, tk := range x.rp.Takes() {
		statuses[tk.Status]++
	}
	if statuses[429] != 2 || statuses[400] != 3 {
		t.Errorf("take answers %v; want 2×429 and 3×400", statuses)
	}
	st := x.h.Stats()
	if x.rp.Faulted() == 0 || st.DeliveryRetries < int64(x.rp.Faulted()) || st.DeliveryFailures != 0 {
		t.Errorf("stats %+v with %d faults injected; want a retry per fault and no failure", st, x.rp.Faulted())
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHandlerDeliveryFailure: a result RunPod keeps refusing is logged at error
// level with the job id and counted; 4xx is not retried, 5xx is, boundedly.
func TestHandlerDeliveryFailure(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusBadGateway} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var hits atomic.Int64
			refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.WriteHeader(status)
			}))
			defer refuse.Close()
			var logs syncBuffer
			x := newHarness(t, sim.Options{}, HandlerOptions{
				Log: zerolog.New(&logs), RetryMaxAttempts: 3, APIKey: "secret-key",
			})
			x.h.o.DoneURL = refuse.URL + "/job-done/$RUNPOD_POD_ID/$ID?gpu=x"
			x.rp.Enqueue("lost", json.RawMessage(`{"prompt":"x"}`))
			x.start()
			until(t, 10*time.Second, "the delivery failure", func() bool { return x.h.Stats().DeliveryFailures == 1 })
			if err := x.stop(); err != nil {
				t.Fatal(err)
			}
			want := int64(3)
			if status < 500 {
				want = 1
			}
			if got := hits.Load(); got != want {
				t.Errorf("%d POSTs; want %d", got, want)
			}
			var found bool
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, `"level":"error"`) && strings.Contains(line, `"job_id":"lost"`) {
					found = true
				}
			}
			if !found {
				t.Errorf("no error log line with the job id:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), x.h.o.APIKey) {
				t.Error("the API key appears in the log")
			}
		})
	}
}

// TestHandlerTakeErrorsBackOff: a take URL that fails does not make a hot loop.
func TestHandlerTakeErrorsBackOff(t *testing.T) {
	var calls atomic.Int64
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer broken.Close()
	x := newHarness(t, sim.Options{}, HandlerOptions{PingInterval: time.Hour})
	x.h.take = broken.URL + "/v2/ep/job-take/w?gpu=x"
	x.h.takeBatch = ""
	x.start()
	time.Sleep(300 * time.Millisecond) // measuring a rate: the waiting is the test
	if err := x.stop(); err != nil {
		t.Fatal(err)
	}
	n := calls.Load()
	// Backoff from 5ms doubling to 50ms: well under 20 calls in 300ms.
	if n < 2 || n > 20 {
		t.Errorf("%d take calls in 300ms; want a backing-off few", n)
	}
}

// unavailable is a stream URL that answers 503 to everything; hits counts the POSTs.
func unavailable(t *testing.T) (tmpl string, hits *atomic.Int64) {
	hits = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/job-stream/$RUNPOD_POD_ID/$ID?gpu=x", hits
}

// givenUpLines returns the log lines that report a stream item given up.
func givenUpLines(logs string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "could not be delivered to RunPod; its content joins the next item") {
			out = append(out, line)
		}
	}
	return out
}

// tokens joins the tokens of native items, choice 0.
func tokens(t *testing.T, items []json.RawMessage) string {
	t.Helper()
	var b strings.Builder
	for _, it := range items {
		var v struct {
			Choices []struct{ Tokens []string } `json:"choices"`
		}
		if err := json.Unmarshal(it, &v); err != nil || len(v.Choices) == 0 {
			t.Fatalf("item %s: %v", it, err)
		}
		for _, tok := range v.Choices[0].Tokens {
			b.WriteString(tok)
		}
	}
	return b.String()
}

// TestHandlerStreamURLDown: a stream URL that keeps failing costs each item its
// own bounded retries, but the items never queue up: while one is retried the
// job's later ones merge into one waiting item, and a given-up item's content
// joins the next. So the job ends soon after its retries, each give-up is logged
// with the job id and counted, and the final result holds every token.
func TestHandlerStreamURLDown(t *testing.T) {
	var logs syncBuffer
	x := newHarness(t, sim.Options{}, HandlerOptions{
		MaxConcurrency: 2, Log: zerolog.New(&logs), RetryMaxAttempts: 1000, RetryMaxElapsed: 300 * time.Millisecond,
	})
	var hits *atomic.Int64
	x.h.o.StreamURL, hits = unavailable(t)
	// max_batch_size 1: 40 items a job, 12 s of retries if they queued up.
	for _, id := range []string{"a", "b"} {
		x.rp.Enqueue(id, json.RawMessage(`{"prompt":"x","stream":true,"max_batch_size":1,"sampling_params":{"max_tokens":40}}`))
	}
	start := time.Now()
	x.start()
	if err := x.rp.WaitDone(waitCtx(t, 20*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the results took %v: the stream items queued up", d)
	}
	if err := x.stop(); err != nil {
		t.Fatal(err)
	}
	want, err := x.direct(`{"prompt":"x","stream":true,"max_batch_size":1,"sampling_params":{"max_tokens":40}}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		d := x.rp.Dones(id)
		if len(d) != 1 || d[0].Error != "" || tokens(t, d[0].Output) != tokens(t, want) {
			t.Fatalf("%s: %+v; want one result with every token", id, d)
		}
	}
	lines := givenUpLines(logs.String())
	if st := x.h.Stats(); st.DeliveryFailures != int64(len(lines)) || st.DeliveryFailures < 2 {
		t.Errorf("delivery failures = %d, %d log lines; want one per given-up item, at least one a job", st.DeliveryFailures, len(lines))
	}
	for _, id := range []string{"a", "b"} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, `"job_id":"`+id+`"`) }) {
			t.Errorf("job %s: no log line of a given-up item:\n%s", id, strings.Join(lines, "\n"))
		}
	}
	if hits.Load() == 0 {
		t.Error("the stream URL was never tried")
	}
}

// TestHandlerStreamItemFailsForGood: one stream item that RunPod refuses on
// every try is given up, and the job's later items are still sent; the failed
// item's content joins the next one, so the stream, joined, is whole, and so is
// the final output.
func TestHandlerStreamItemFailsForGood(t *testing.T) {
	var logs syncBuffer
	x := newHarness(t, sim.Options{ITL: 5 * time.Millisecond}, HandlerOptions{
		Log: zerolog.New(&logs), RetryMaxAttempts: 3, RetryMaxElapsed: time.Second,
	})
	input := `{"prompt":"x","stream":true,"max_batch_size":3,"sampling_params":{"max_tokens":30}}`
	x.rp.FailStreamForGood("j", 2)
	x.rp.Enqueue("j", json.RawMessage(input))
	x.start()
	if err := x.rp.WaitDone(waitCtx(t, 20*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if err := x.stop(); err != nil {
		t.Fatal(err)
	}
	want, err := x.direct(input)
	if err != nil {
		t.Fatal(err)
	}
	d := x.rp.Dones("j")
	if len(d) != 1 || d[0].Error != "" || tokens(t, d[0].Output) != tokens(t, want) {
		t.Fatalf("done %+v; want one result with every token", d)
	}
	stream := x.rp.Stream("j")
	if len(stream) < 3 {
		t.Errorf("%d stream items arrived; want the ones after the failed one too", len(stream))
	}
	if tokens(t, stream) != tokens(t, want) {
		t.Errorf("the stream, joined, is %q; want %q (the failed item's content in the next)", tokens(t, stream), tokens(t, want))
	}
	if st := x.h.Stats(); st.DeliveryFailures != 1 || len(givenUpLines(logs.String())) != 1 {
		t.Errorf("stats %+v; want the one given-up item counted and logged", st)
	}
}

// TestHandlerDrainCutsStreamPosts: when the drain times out, a job still running
// is cut, its stream POST in flight with it: the drain does not outlast its
// timeout by a stream item's retries, and the job posts no result.
func TestHandlerDrainCutsStreamPosts(t *testing.T) {
	x := newHarness(t, sim.Options{ITL: 10 * time.Millisecond}, HandlerOptions{
		DrainTimeout: 200 * time.Millisecond, RetryMaxAttempts: 10000, RetryMaxElapsed: time.Minute,
	})
	var hits *atomic.Int64
	x.h.o.StreamURL, hits = unavailable(t)
	x.rp.Enqueue("long", json.RawMessage(`{"prompt":"x","stream":true,"max_batch_size":1,"sampling_params":{"max_tokens":1000}}`))
	x.start()
	until(t, 10*time.Second, "the first stream item to be retried", func() bool { return hits.Load() >= 3 })
	start := time.Now()
	if err := x.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v to return after a 200ms drain", d)
	}
	if d := x.rp.Dones("long"); len(d) != 0 {
		t.Errorf("long: %+v; want no result for a job cut by the shutdown", d)
	}
	if st := x.h.Stats(); st.Cut != 1 {
		t.Errorf("stats = %+v; want the job cut", st)
	}
}
