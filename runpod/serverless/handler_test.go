package serverless

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/internal/fakerunpod"
	"github.com/vllm-worker/vllm-worker/sim"

	"github.com/vllm-worker/vllm-worker/runpod"
)

// handlerHarness is a Handler running against the simulated engine and a fake
// RunPod, both in-process.
type handlerHarness struct {
	t      *testing.T
	sim    *sim.Server
	runner *runpod.Runner
	rp     *fakerunpod.Server
	h      *Handler
	cancel context.CancelFunc
	done   chan error
	ran    bool
}

// newHarness builds the harness; set o's knobs (MaxConcurrency, DrainTimeout,
// PingInterval...) as needed, the URLs and Runner are filled in. start runs it.
func newHarness(t *testing.T, so sim.Options, o HandlerOptions) *handlerHarness {
	t.Helper()
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })

	so.Model = "m"
	s := sim.New(so)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	eng := engine.New(engine.Options{BaseURL: ts.URL})
	t.Cleanup(eng.CloseIdle)
	runner := &runpod.Runner{Engine: eng, Models: engine.NewModels(eng, []string{"m"}),
		Batch: batching.Policy{Max: 50, Min: 1, Growth: 3}, RawOpenAI: true}
	rp := fakerunpod.New(t, fakerunpod.Options{RetryAfter: "0.05", LongPoll: 100 * time.Millisecond})

	ro := rp.Options()
	o.Runner = runner
	o.TakeURL, o.DoneURL, o.StreamURL, o.PingURL = rp.TakeURL(), rp.DoneURL(), rp.StreamURL(), rp.PingURL()
	o.APIKey, o.WorkerID, o.Version = ro.APIKey, ro.WorkerID, "test"
	if o.Log.GetLevel() == zerolog.DebugLevel { // the zero Logger: log warnings to the test
		o.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	}
	h, err := NewHandler(o)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	shortenTimings(h)
	return &handlerHarness{t: t, sim: s, runner: runner, rp: rp, h: h, done: make(chan error, 1)}
}

// shortenTimings makes the loop's waits test-sized.
func shortenTimings(h *Handler) {
	h.t.retryMin, h.t.retryMax = 5*time.Millisecond, 50*time.Millisecond
	h.t.takeErrMin, h.t.takeErrMax = 5*time.Millisecond, 50*time.Millisecond
	h.t.takeBadRequest, h.t.tooMany = 20*time.Millisecond, 50*time.Millisecond
	h.t.stopErr, h.t.stopIdle, h.t.takeIdle = 20*time.Millisecond, 20*time.Millisecond, 20*time.Millisecond
}

// start runs the handler until the test ends (or stop is called).
func (x *handlerHarness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel, x.ran = cancel, true
	go func() { x.done <- x.h.Run(ctx) }()
	x.t.Cleanup(func() {
		cancel()
		if _, err := x.wait(30 * time.Second); err != nil {
			x.t.Error(err)
		}
	})
}

// stop cancels Run's context (SIGTERM) and returns Run's error.
func (x *handlerHarness) stop() error {
	x.cancel()
	err, werr := x.wait(30 * time.Second)
	if werr != nil {
		x.t.Fatal(werr)
	}
	return err
}

// wait returns Run's error once it returned.
func (x *handlerHarness) wait(d time.Duration) (runErr, waitErr error) {
	if !x.ran {
		return nil, nil
	}
	select {
	case err := <-x.done:
		x.ran = false
		return err, nil
	case <-time.After(d):
		return nil, fmt.Errorf("Run did not return within %v", d)
	}
}

// waitCtx is a context for the fake's wait helpers.
func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// direct runs an input straight through the runner, as the reference.
func (x *handlerHarness) direct(input string) ([]json.RawMessage, error) {
	in, err := runpod.ParseInput(json.RawMessage(input))
	if err != nil {
		return nil, err
	}
	return x.runner.Run(context.Background(), "direct", in, nil)
}

// volatile matches the per-response parts of an OpenAI answer (also inside a
// JSON string of SSE events).
var volatile = regexp.MustCompile(`(\\?"(?:id|created)\\?":\s*)(\\?"[^"\\]*\\?"|\d+)`)

func normalize(items []json.RawMessage) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = volatile.ReplaceAllString(string(it), "${1}X")
	}
	return out
}

// fold merges a job's items into one (runpod.MergeItems), its content
// whatever the item boundaries.
func fold(t *testing.T, items []json.RawMessage) string {
	t.Helper()
	var all json.RawMessage
	for _, it := range items {
		var err error
		if all, err = runpod.MergeItems(all, it); err != nil {
			t.Fatalf("merge %s: %v", it, err)
		}
	}
	return normalize([]json.RawMessage{all})[0]
}

func TestHandlerJobs(t *testing.T) {
	x := newHarness(t, sim.Options{ITL: time.Millisecond}, HandlerOptions{MaxConcurrency: 3})
	inputs := map[string]string{
		"native-stream":  `{"prompt":"hello world","stream":true,"sampling_params":{"max_tokens":30}}`,
		"native":         `{"prompt":"hello there","sampling_params":{"max_tokens":20}}`,
		"native-chat-n2": `{"messages":[{"role":"user","content":"hi"}],"stream":true,"sampling_params":{"max_tokens":12,"n":2}}`,
		"native-batch":   `{"prompt":"a b","stream":true,"max_batch_size":4,"min_batch_size":2,"sampling_params":{"max_tokens":25}}`,
		"openai-stream":  `{"openai_route":"/v1/chat/completions","openai_input":{"messages":[{"role":"user","content":"hi"}],"max_tokens":25,"stream":true}}`,
		"openai":         `{"openai_route":"/v1/completions","openai_input":{"prompt":"x y z","max_tokens":10}}`,
		"models":         `{"openai_route":"/v1/models"}`,
		"tokenize":       `{"route":"/tokenize","body":{"prompt":"a b c"}}`,
		"bad-field":      `{"prompt":3}`,
		"engine-error":   `{"prompt":"x","stream":true,"sampling_params":{"sim_fault":"error_before"}}`,
	}
	for i := range 2 { // more jobs than slots, so batch takes happen
		for id, in := range inputs {
			x.rp.Enqueue(fmt.Sprintf("%s-%d", id, i), json.RawMessage(in))
		}
	}
	x.start()
	n := 2 * len(inputs)
	if err := x.rp.WaitDone(waitCtx(t, 30*time.Second), n); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		for id, input := range inputs {
			jobID := fmt.Sprintf("%s-%d", id, i)
			dones := x.rp.Dones(jobID)
			if len(dones) != 1 {
				t.Errorf("%s: %d done POSTs; want 1", jobID, len(dones))
				continue
			}
			d := dones[0]
			// Every job-done says isStream=true, as the SDK's does for a
			// generator handler such as worker-vllm's, errors included.
			if !d.IsStream {
				t.Errorf("%s: isStream=false; want true", jobID)
			}
			want, wantErr := x.direct(input)
			if wantErr != nil {
				if d.Error != wantErr.Error() || d.Output != nil {
					t.Errorf("%s: done %s; want error %q", jobID, d.Body, wantErr)
				}
			} else if diff := cmp.Diff(fold(t, want), fold(t, d.Output)); diff != "" {
				// Items the policy cut may be merged while a stream POST was in
				// flight: the content is the same.
				t.Errorf("%s: output differs from a direct run (-want +got):\n%s", jobID, diff)
			}
			// Every output item, of a streamed job or not, is posted to the
			// stream URL (one POST per item, isStream=false).
			items := x.rp.Stream(jobID)
			switch {
			case wantErr == nil:
				if diff := cmp.Diff(normalize(d.Output), normalize(items)); diff != "" || len(items) == 0 {
					t.Errorf("%s: streamed items differ from the final output (-done +stream):\n%s", jobID, diff)
				}
				for _, f := range x.rp.StreamFlags(jobID) {
					if f != "false" {
						t.Errorf("%s: stream POST with isStream=%q; want false", jobID, f)
					}
				}
			case len(items) > 0:
				t.Errorf("%s: %d stream POSTs for a job that failed before any output", jobID, len(items))
			}
		}
	}

	if got := x.rp.MaxInFlight(); got > 3 || got < 2 {
		t.Errorf("max jobs in flight = %d; want 2..3 (MAX_CONCURRENCY 3)", got)
	}
	if !slices.ContainsFunc(x.rp.Takes(), func(tk fakerunpod.Take) bool { return tk.Batch && tk.BatchSize > 1 && tk.Jobs > 1 }) {
		t.Errorf("no batch take handed out several jobs: %+v", x.rp.Takes())
	}
	st := x.h.Stats()
	if st.JobsTaken != int64(n) || st.Completed+st.Failed != int64(n) || st.Failed != 4 || st.DeliveryFailures != 0 {
		t.Errorf("stats = %+v; want %d taken, 4 failed, no delivery failure", st, n)
	}
	if err := x.stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	checkHeaders(t, x)
}

// checkHeaders checks the headers of every request the worker made.
func checkHeaders(t *testing.T, x *handlerHarness) {
	t.Helper()
	if n := x.rp.Unauthorized(); n != 0 {
		t.Errorf("%d requests without the bare API key", n)
	}
	key := x.rp.Options().APIKey
	for _, r := range x.rp.Requests() {
		if got := r.Header.Get("Authorization"); got != key {
			t.Errorf("%s: Authorization = %q; want the bare key %q", r.Path, got, key)
		}
		if got := r.Header.Get("User-Agent"); got != "vllm-worker/test" {
			t.Errorf("%s: User-Agent = %q", r.Path, got)
		}
		switch r.Route {
		case "job-done", "job-stream":
			jobID := r.Path[strings.LastIndex(r.Path, "/")+1:]
			want := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Charset": {"utf-8"}, "X-Request-Id": {jobID}}
			for k, v := range want {
				if got := r.Header.Values(k); !slices.Equal(got, v) {
					t.Errorf("%s: %s = %q; want %q", r.Path, k, got, v)
				}
			}
			if r.Query.Get("gpu") != "test" {
				t.Errorf("%s: the template's query was lost: %v", r.Path, r.Query)
			}
		case "job-take", "job-take-batch":
			if ip := r.Query.Get("job_in_progress"); ip != "0" && ip != "1" {
				t.Errorf("%s: job_in_progress = %q", r.Path, ip)
			}
			if r.Route == "job-take-batch" && r.Query.Get("batch_size") == "" {
				t.Errorf("%s: batch take without batch_size", r.Path)
			}
		case "":
			t.Errorf("unexpected request %s %s", r.Method, r.Path)
		}
	}
}

func TestHandlerInvalidInput(t *testing.T) {
	x := newHarness(t, sim.Options{}, HandlerOptions{MaxConcurrency: 2})
	jobs := map[string]string{
		"bad-n":      `{"prompt":"x","sampling_params":{"n":0}}`,
		"bad-route":  `{"openai_route":"/v1/nope","openai_input":{}}`,
		"bad-stream": `{"prompt":"x","stream":"yes"}`,
		"no-input":   ``,
		"not-object": `[1,2]`,
	}
	fields := map[string]string{"bad-n": "sampling_params.n", "bad-route": "openai_route", "bad-stream": "stream", "no-input": "input", "not-object": "input"}
	for id, in := range jobs {
		var raw json.RawMessage
		if in != "" {
			raw = json.RawMessage(in)
		}
		x.rp.Enqueue(id, raw)
	}
	x.start()
	if err := x.rp.WaitDone(waitCtx(t, 10*time.Second), len(jobs)); err != nil {
		t.Fatal(err)
	}
	for id, field := range fields {
		d := x.rp.Dones(id)
		if len(d) != 1 || !strings.HasPrefix(d[0].Error, "invalid input") || !strings.Contains(d[0].Error, field) {
			t.Errorf("%s: done %+v; want one error naming %q", id, d, field)
		}
	}
	if got := x.sim.Stats().Requests; got != 0 {
		t.Errorf("the engine got %d requests; want none for invalid inputs", got)
	}
}

func TestHandlerRunTwice(t *testing.T) {
	x := newHarness(t, sim.Options{}, HandlerOptions{})
	x.start()
	// Once a take arrived, the first Run is surely running.
	if err := x.rp.Wait(waitCtx(t, 5*time.Second), func() bool { return len(x.rp.Takes()) > 0 }); err != nil {
		t.Fatal(err)
	}
	if err := x.h.Run(context.Background()); err == nil {
		t.Error("a second Run returned nil; want an error")
	}
	if err := x.stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
	if errors.Is(x.h.abortCtx.Err(), context.Canceled) {
		t.Error("a plain shutdown counted as an abort")
	}
}
