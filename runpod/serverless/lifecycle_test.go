package serverless

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/vllm-worker/vllm-worker/internal/fakerunpod"
	"github.com/vllm-worker/vllm-worker/sim"

	"github.com/vllm-worker/vllm-worker/runpod"
)

// until polls cond for up to d.
func until(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

func TestHandlerHeartbeat(t *testing.T) {
	x := newHarness(t, sim.Options{ITL: 20 * time.Millisecond}, HandlerOptions{PingInterval: time.Millisecond})
	if x.h.o.PingInterval != 100*time.Millisecond {
		t.Errorf("ping interval %v; want it raised to 100ms", x.h.o.PingInterval)
	}
	x.rp.Enqueue("slow", json.RawMessage(`{"prompt":"x","stream":true,"sampling_params":{"max_tokens":40}}`))
	x.start()
	ctx := waitCtx(t, 10*time.Second)
	if err := x.rp.WaitPing(ctx, func(p fakerunpod.Ping) bool { return slices.Equal(p.JobIDs, []string{"slow"}) }); err != nil {
		t.Fatalf("no ping carried the running job: %v (%+v)", err, x.rp.Pings())
	}
	if err := x.rp.WaitDone(ctx, 1); err != nil {
		t.Fatal(err)
	}
	doneAt := time.Now()
	if err := x.rp.WaitPing(ctx, func(p fakerunpod.Ping) bool { return p.At.After(doneAt) && !p.HasJobID }); err != nil {
		t.Fatalf("no ping without job_id once idle: %v", err)
	}
	pings := x.rp.Pings()
	for _, p := range pings {
		if p.Version != ProtocolVersion || ProtocolVersion != "1.12.0" {
			t.Errorf("runpod_version = %q; want the SDK protocol version 1.12.0", p.Version)
		}
	}
	// About 10 pings a second: a tight loop would send far more.
	if elapsed := time.Since(pings[0].At); len(pings) > int(elapsed/(50*time.Millisecond))+2 {
		t.Errorf("%d pings in %v: the interval is not honoured", len(pings), elapsed)
	}
}

func TestHandlerJobStop(t *testing.T) {
	x := newHarness(t, sim.Options{ITL: 20 * time.Millisecond}, HandlerOptions{MaxConcurrency: 2})
	x.rp.Enqueue("long", json.RawMessage(`{"prompt":"x","stream":true,"sampling_params":{"max_tokens":1000}}`))
	x.start()
	ctx := waitCtx(t, 10*time.Second)
	if err := x.rp.WaitStream(ctx, "long", 1); err != nil {
		t.Fatal(err)
	}
	x.rp.Stop("long")
	until(t, 5*time.Second, "the engine request to be aborted", func() bool { return x.sim.Stats().Aborts >= 1 })
	until(t, 5*time.Second, "the job to leave the in-progress set", func() bool { return len(x.h.InProgress()) == 0 })

	x.rp.Enqueue("after", json.RawMessage(`{"prompt":"y"}`))
	if err := x.rp.WaitDone(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if d := x.rp.Dones("long"); len(d) != 0 {
		t.Errorf("a stopped job posted a result: %+v", d)
	}
	if d := x.rp.Dones("after"); len(d) != 1 || d[0].Error != "" {
		t.Errorf("the next job: %+v; want one result", d)
	}
	if st := x.h.Stats(); st.Cancelled != 1 || st.Completed != 1 {
		t.Errorf("stats = %+v; want 1 cancelled, 1 completed", st)
	}
}

func TestHandlerShutdownDrains(t *testing.T) {
	x := newHarness(t, sim.Options{ITL: 5 * time.Millisecond}, HandlerOptions{MaxConcurrency: 4, DrainTimeout: 20 * time.Second})
	for i := range 4 {
		x.rp.Enqueue(fmt.Sprint("job-", i), json.RawMessage(`{"prompt":"x","stream":true,"sampling_params":{"max_tokens":60}}`))
	}
	x.start()
	ctx := waitCtx(t, 10*time.Second)
	if err := x.rp.WaitTaken(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if err := x.rp.WaitStream(ctx, "job-0", 1); err != nil {
		t.Fatal(err)
	}
	if err := x.stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	x.rp.Enqueue("late", json.RawMessage(`{"prompt":"x"}`))
	for i := range 4 {
		id := fmt.Sprint("job-", i)
		d := x.rp.Dones(id)
		if len(d) != 1 || d[0].Error != "" || len(d[0].Output) == 0 {
			t.Errorf("%s: %+v; want one completed result", id, d)
			continue
		}
		if got := x.rp.Stream(id); len(got) != len(d[0].Output) {
			t.Errorf("%s: %d items streamed, %d in the result", id, len(got), len(d[0].Output))
		}
	}
	if got := x.rp.Taken(); len(got) != 4 {
		t.Errorf("taken %v; want no job taken after shutdown", got)
	}
}

// TestHandlerShutdownCutsAfterDrainTimeout: jobs still running when the drain
// times out are cut: their engine requests are aborted and they post no result,
// so that RunPod can give them to another worker (as with the SDK killed under a
// job); a job that finished before is delivered. Each cut is logged with the job
// id (and RunPod's requestId).
func TestHandlerShutdownCutsAfterDrainTimeout(t *testing.T) {
	var logs syncBuffer
	x := newHarness(t, sim.Options{}, HandlerOptions{MaxConcurrency: 3, DrainTimeout: 100 * time.Millisecond, Log: zerolog.New(&logs)})
	x.rp.Enqueue("quick", json.RawMessage(`{"prompt":"x","stream":true,"sampling_params":{"max_tokens":5}}`))
	x.rp.Enqueue("hang-1", json.RawMessage(`{"prompt":"x","stream":true,"sampling_params":{"sim_fault":"hang"}}`))
	x.rp.Enqueue("hang-2", json.RawMessage(`{"openai_input":{"messages":[{"role":"user","content":"x"}],"stream":true,"sim_fault":"hang"}}`))
	x.start()
	if err := x.rp.WaitDone(waitCtx(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	until(t, 5*time.Second, "both engine requests", func() bool { return x.sim.Stats().Running == 2 })
	start := time.Now()
	if err := x.stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v to return after a 100ms drain", d)
	}
	if d := x.rp.Dones("quick"); len(d) != 1 || d[0].Error != "" || !d[0].IsStream {
		t.Errorf("quick: %+v; want its result", d)
	}
	for _, id := range []string{"hang-1", "hang-2"} {
		if d := x.rp.Dones(id); len(d) != 0 {
			t.Errorf("%s: %+v; want no result for a job cut by the shutdown", id, d)
		}
		if !strings.Contains(logs.String(), `"requestId":"`+id+`"`) || !strings.Contains(logs.String(), "cut by the shutdown") {
			t.Errorf("%s: no log line of its cut with its requestId:\n%s", id, logs.String())
		}
	}
	until(t, 5*time.Second, "the engine requests to be aborted", func() bool { return x.sim.Stats().Aborts >= 2 })
	if st := x.h.Stats(); st.Cut != 2 || st.Failed != 0 || st.Completed != 1 {
		t.Errorf("stats = %+v; want 2 cut, 1 completed", st)
	}
}

func TestHandlerAbort(t *testing.T) {
	x := newHarness(t, sim.Options{}, HandlerOptions{MaxConcurrency: 2, DrainTimeout: time.Minute})
	for i := range 3 {
		x.rp.Enqueue(fmt.Sprint("hang-", i), json.RawMessage(`{"prompt":"x","sampling_params":{"sim_fault":"hang"}}`))
	}
	x.start()
	if err := x.rp.WaitTaken(waitCtx(t, 5*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	until(t, 5*time.Second, "both engine requests", func() bool { return x.sim.Stats().Running == 2 })
	died := errors.New("the engine exited with code 1")
	x.h.Abort(died)
	err, werr := x.wait(10 * time.Second)
	if werr != nil {
		t.Fatal(werr)
	}
	if !errors.Is(err, died) {
		t.Errorf("Run = %v; want an error wrapping %v", err, died)
	}
	for _, id := range []string{"hang-0", "hang-1"} {
		d := x.rp.Dones(id)
		if len(d) != 1 || d[0].Error != died.Error() || !d[0].StopPod {
			t.Errorf("%s: %+v; want one error with stopPod", id, d)
		}
	}
	if got := x.rp.Taken(); len(got) != 2 || x.rp.Queued() != 1 {
		t.Errorf("taken %v; want no job taken after Abort", got)
	}
}

// TestHandlerJobStopDuringDrain: job-stop is still polled while jobs drain after
// SIGTERM; a job RunPod stops then is aborted at once and posts nothing.
func TestHandlerJobStopDuringDrain(t *testing.T) {
	x := newHarness(t, sim.Options{ITL: 20 * time.Millisecond}, HandlerOptions{MaxConcurrency: 2, DrainTimeout: time.Minute})
	// 1000 tokens at 20ms: 20s of work, far longer than the wait below.
	x.rp.Enqueue("long", json.RawMessage(`{"prompt":"x","stream":true,"sampling_params":{"max_tokens":1000}}`))
	x.rp.Enqueue("short", json.RawMessage(`{"prompt":"x","sampling_params":{"max_tokens":5}}`))
	x.start()
	if err := x.rp.WaitStream(waitCtx(t, 10*time.Second), "long", 1); err != nil {
		t.Fatal(err)
	}
	x.cancel() // SIGTERM: the drain begins
	x.rp.Stop("long")
	err, werr := x.wait(10 * time.Second)
	if werr != nil {
		t.Fatalf("%v: the job stopped during the drain kept running", werr)
	}
	if err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if d := x.rp.Dones("long"); len(d) != 0 {
		t.Errorf("a job stopped during the drain posted a result: %+v", d)
	}
	if d := x.rp.Dones("short"); len(d) != 1 || d[0].Error != "" {
		t.Errorf("the other job: %+v; want one result", d)
	}
	if got := x.sim.Stats().Aborts; got < 1 {
		t.Errorf("engine aborts = %d; want the stopped job's request aborted", got)
	}
	if st := x.h.Stats(); st.Cancelled != 1 {
		t.Errorf("stats = %+v; want 1 cancelled", st)
	}
}

// stoppingRunner stands for a job that RunPod stops at the very last moment:
// after its output is complete, before its result is posted.
type stoppingRunner struct{ h *Handler }

func (r stoppingRunner) Run(_ context.Context, id string, _ *runpod.Input, _ runpod.Emit) ([]json.RawMessage, error) {
	if id == "stopped-late" {
		r.h.stopJob(id)
	}
	return []json.RawMessage{json.RawMessage(`"done"`)}, nil
}

func TestHandlerJobStoppedBeforeResult(t *testing.T) {
	x := newHarness(t, sim.Options{}, HandlerOptions{})
	x.h.o.Runner = stoppingRunner{x.h}
	x.rp.Enqueue("stopped-late", json.RawMessage(`{"prompt":"x"}`))
	x.rp.Enqueue("next", json.RawMessage(`{"prompt":"x"}`))
	x.start()
	if err := x.rp.Wait(waitCtx(t, 10*time.Second), func() bool { return len(x.rp.Dones("next")) == 1 }); err != nil {
		t.Fatal(err)
	}
	if err := x.stop(); err != nil {
		t.Fatal(err)
	}
	if d := x.rp.Dones("stopped-late"); len(d) != 0 {
		t.Errorf("a job stopped before its result was posted posted it: %+v", d)
	}
	if st := x.h.Stats(); st.Cancelled != 1 || st.Completed != 1 {
		t.Errorf("stats = %+v; want 1 cancelled, 1 completed", st)
	}
}

// TestHandlerTakeIdle: against a take URL that answers 204 at once (no long
// poll), takes that got no job are spaced by takeIdle; takes that got jobs are
// followed by the next at once.
func TestHandlerTakeIdle(t *testing.T) {
	t.Run("empty answers", func(t *testing.T) {
		x := newHarness(t, sim.Options{}, HandlerOptions{PingInterval: time.Hour})
		fast := fakerunpod.New(t, fakerunpod.Options{LongPoll: -1})
		x.h.take = expandURL(fast.TakeURL(), x.h.o.WorkerID, x.h.o.WorkerID)
		x.h.takeBatch = ""
		x.h.t.takeIdle = 50 * time.Millisecond
		x.start()
		time.Sleep(300 * time.Millisecond) // measuring a rate: the waiting is the test
		if err := x.stop(); err != nil {
			t.Fatal(err)
		}
		takes := fast.Takes()
		for _, tk := range takes {
			if tk.Status != http.StatusNoContent {
				t.Errorf("take answered %d; want 204", tk.Status)
			}
		}
		// One take per 50ms: about 6 in 300ms, where a hot loop makes thousands.
		if n := len(takes); n < 2 || n > 10 {
			t.Errorf("%d takes in 300ms; want one per 50ms", n)
		}
	})
	t.Run("jobs", func(t *testing.T) {
		x := newHarness(t, sim.Options{}, HandlerOptions{PingInterval: time.Hour})
		fast := fakerunpod.New(t, fakerunpod.Options{LongPoll: -1})
		x.h.take = expandURL(fast.TakeURL(), x.h.o.WorkerID, x.h.o.WorkerID)
		x.h.takeBatch = ""
		x.h.o.DoneURL, x.h.o.StreamURL = fast.DoneURL(), fast.StreamURL()
		x.h.t.takeIdle = time.Hour // an empty take before the last job would stall the test
		for i := range 3 {
			fast.Enqueue(fmt.Sprint("job-", i), json.RawMessage(`{"prompt":"x","sampling_params":{"max_tokens":3}}`))
		}
		x.start()
		if err := fast.WaitDone(waitCtx(t, 10*time.Second), 3); err != nil {
			t.Fatal(err)
		}
		if err := x.stop(); err != nil {
			t.Fatal(err)
		}
	})
}
