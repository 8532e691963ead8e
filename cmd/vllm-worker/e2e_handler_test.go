package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vllm-worker/vllm-worker/internal/fakerunpod"
	"github.com/vllm-worker/vllm-worker/runpod"
)

// mixedInput is job i of a mixed load: native and OpenAI, streamed and not.
func mixedInput(i int) string {
	tokens := 8 + i%17
	switch i % 4 {
	case 0:
		return fmt.Sprintf(`{"prompt":"job %d says hello","sampling_params":{"max_tokens":%d},"stream":true}`, i, tokens)
	case 1:
		return fmt.Sprintf(`{"messages":[{"role":"user","content":"job %d"}],"sampling_params":{"max_tokens":%d}}`, i, tokens)
	case 2:
		return fmt.Sprintf(`{"openai_route":"/v1/chat/completions","openai_input":{"messages":[{"role":"user","content":"job %d"}],"max_tokens":%d,"stream":true}}`, i, tokens)
	default:
		return fmt.Sprintf(`{"openai_route":"/v1/completions","openai_input":{"prompt":"job %d","max_tokens":%d}}`, i, tokens)
	}
}

var (
	volatileID      = regexp.MustCompile(`(\\?"id\\?":\\?")[^"\\]*`)
	volatileCreated = regexp.MustCompile(`(\\?"created\\?":)[0-9]+`)
)

// normalise blanks what differs between two runs of the same job: ids and times.
func normalise(items []json.RawMessage) string {
	b, _ := json.Marshal(items)
	s := volatileID.ReplaceAllString(string(b), "${1}X")
	return volatileCreated.ReplaceAllString(s, "${1}0")
}

// fold is a job's output as one item (runpod.MergeItems), normalised: the
// content of the job, however its items were cut.
func fold(t *testing.T, items []json.RawMessage) string {
	t.Helper()
	var all json.RawMessage
	for _, it := range items {
		var err error
		if all, err = runpod.MergeItems(all, it); err != nil {
			t.Fatalf("merge %s: %v", it, err)
		}
	}
	return normalise([]json.RawMessage{all})
}

func waitFake(t *testing.T, timeout time.Duration, what string, wait func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := wait(ctx); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestHandlerModeNothingLost runs 200 mixed jobs through handler mode at
// MAX_CONCURRENCY=16 while a fifth of the stream and done POSTs fail once and the
// job take answers 429 and 400 for a while: every job gets exactly one result,
// equal to what /runsync returns for the same input, streamed items arrive in
// order, and the concurrency never exceeds the limit.
func TestHandlerModeNothingLost(t *testing.T) {
	const jobs = 200
	fake := fakerunpod.New(t, fakerunpod.Options{LongPoll: 100 * time.Millisecond})
	fake.SetFaults(fakerunpod.Faults{StreamFail: 0.1, StreamDrop: 0.1, DoneFail: 0.1, DoneDrop: 0.1})
	fake.FailTakes(429, 2)
	for i := range jobs {
		fake.Enqueue(fmt.Sprintf("job-%03d", i), json.RawMessage(mixedInput(i)))
	}
	w := startWorker(t, append(fake.Env(), "MAX_CONCURRENCY=16", "BATCH_MAX_WAIT_MS=0", "SIM_ITL_MS=2", "RUNPOD_PING_INTERVAL=200")...)
	waitFake(t, 2*time.Minute, "all results", func(ctx context.Context) error { return fake.WaitDone(ctx, jobs) })

	batchTakes := 0
	for _, take := range fake.Takes() {
		if take.Batch {
			batchTakes++
		}
	}
	if batchTakes == 0 {
		t.Error("no batch take was used")
	}
	if m := fake.MaxInFlight(); m > 16 || m < 2 {
		t.Errorf("max jobs in flight %d; want 2..16", m)
	}
	if fake.Faulted() == 0 {
		t.Error("no fault was injected: the test proves nothing")
	}
	for i := range jobs {
		id := fmt.Sprintf("job-%03d", i)
		dones := fake.Dones(id)
		if len(dones) != 1 {
			t.Errorf("%s: %d results; want exactly 1", id, len(dones))
			continue
		}
		d := dones[0]
		if d.Error != "" {
			t.Errorf("%s failed: %s", id, d.Error)
			continue
		}
		var want jobResult
		postJSON(t, w.URL+"/runsync", `{"input":`+mixedInput(i)+`}`, &want)
		// The items may be cut differently (a retried POST paces the next
		// ones); their content may not differ.
		if fold(t, d.Output) != fold(t, want.Output) {
			t.Errorf("%s: handler output differs from /runsync:\n%s\n%s", id, normalise(d.Output), normalise(want.Output))
		}
		if !d.IsStream {
			t.Errorf("%s: job-done with isStream=false; the SDK says true for every job of a generator handler", id)
		}
		// Streamed or not, every output item is posted to the stream URL.
		if got := fake.Stream(id); normalise(got) != normalise(d.Output) {
			t.Errorf("%s: stream items differ from the result (missing or out of order):\n%s\n%s", id, normalise(got), normalise(d.Output))
		}
	}
	// Handler mode's own series are served, and documented.
	resp, err := http.Get(w.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(scrape), `vllm_worker_handler_jobs_total{outcome="completed"} `+strconv.Itoa(jobs)) {
		t.Errorf("/metrics lacks vllm_worker_handler_jobs_total{outcome=\"completed\"} %d", jobs)
	}
	checkMetricsDocumented(t, string(scrape))
}

// TestHandlerHeartbeatAndStop: the heartbeat names the jobs in progress; a
// job-stop aborts the job's engine request and posts no result for it.
func TestHandlerHeartbeatAndStop(t *testing.T) {
	fake := fakerunpod.New(t, fakerunpod.Options{LongPoll: 100 * time.Millisecond})
	fake.Enqueue("long", json.RawMessage(`{"prompt":"a long story","sampling_params":{"max_tokens":2000},"stream":true}`))
	w := startWorker(t, append(fake.Env(), "SIM_ITL_MS=20", "RUNPOD_PING_INTERVAL=100")...)
	waitFake(t, 20*time.Second, "first stream item", func(ctx context.Context) error { return fake.WaitStream(ctx, "long", 1) })
	waitFake(t, 10*time.Second, "a heartbeat naming the job", func(ctx context.Context) error {
		return fake.WaitPing(ctx, func(p fakerunpod.Ping) bool { return len(p.JobIDs) == 1 && p.JobIDs[0] == "long" && p.Version != "" })
	})
	before := engineAborts(t, w)
	fake.Stop("long")
	for deadline := time.Now().Add(10 * time.Second); engineAborts(t, w) <= before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("job-stop did not abort the engine request")
		}
	}
	fake.Enqueue("after", json.RawMessage(`{"prompt":"short","sampling_params":{"max_tokens":3}}`))
	waitFake(t, 20*time.Second, "the next job", func(ctx context.Context) error {
		return fake.Wait(ctx, func() bool { return len(fake.Dones("after")) == 1 })
	})
	if d := fake.Dones("long"); len(d) != 0 {
		t.Errorf("a stopped job posted a result: %+v", d)
	}
	waitFake(t, 10*time.Second, "an idle heartbeat", func(ctx context.Context) error {
		return fake.WaitPing(ctx, func(p fakerunpod.Ping) bool { return !p.HasJobID })
	})
}

// TestHandlerSIGTERMDelivers runs the worker as a real process: SIGTERM while
// jobs run stops the take loop, lets the jobs finish, delivers their results and
// exits 0.
func TestHandlerSIGTERMDelivers(t *testing.T) {
	fake := fakerunpod.New(t, fakerunpod.Options{LongPoll: 100 * time.Millisecond})
	ids := []string{"a", "b", "c", "d"}
	for _, id := range ids {
		fake.Enqueue(id, json.RawMessage(`{"prompt":"x","sampling_params":{"max_tokens":40},"stream":true}`))
	}
	proc, _ := startProcess(t, append(baseEnv("SIM_ITL_MS=25", "MAX_CONCURRENCY=4"), fake.Env()...))
	waitFake(t, 30*time.Second, "jobs taken", func(ctx context.Context) error { return fake.WaitTaken(ctx, len(ids)) })
	waitFake(t, 10*time.Second, "first items", func(ctx context.Context) error { return fake.WaitStream(ctx, "d", 1) })
	if err := proc.terminate(t, 40*time.Second); err != nil {
		t.Fatalf("worker exited with %v; log:\n%s", err, proc.Log)
	}
	for _, id := range ids {
		d := fake.Dones(id)
		if len(d) != 1 || d[0].Error != "" || len(d[0].Output) == 0 {
			t.Errorf("job %s: results %+v; want one completed result", id, d)
		}
	}
}

// TestHandlerSIGTERMPastGrace runs the worker as a real process: on SIGTERM a
// job that finishes within SHUTDOWN_GRACE_SECONDS is delivered, while one still
// running when the grace ends is cut: its engine request is aborted and no
// job-done is posted for it (as the SDK killed under a job posts nothing), so
// that RunPod can hand it to another worker. The worker still exits 0; the cut
// is logged with the job id as requestId, the field RunPod's console groups a
// job's log lines by, and every job-done said isStream=true.
func TestHandlerSIGTERMPastGrace(t *testing.T) {
	fake := fakerunpod.New(t, fakerunpod.Options{LongPoll: 100 * time.Millisecond})
	fake.Enqueue("quick", json.RawMessage(`{"prompt":"x","sampling_params":{"max_tokens":40},"stream":true}`))
	fake.Enqueue("long", json.RawMessage(`{"prompt":"y","sampling_params":{"max_tokens":2000},"stream":true}`))
	proc, _ := startProcess(t, append(baseEnv("SIM_ITL_MS=20", "SHUTDOWN_GRACE_SECONDS=2"), fake.Env()...))
	waitFake(t, 30*time.Second, "first items", func(ctx context.Context) error {
		return fake.Wait(ctx, func() bool { return len(fake.Stream("quick")) > 0 && len(fake.Stream("long")) > 0 })
	})
	start := time.Now()
	if err := proc.terminate(t, 20*time.Second); err != nil {
		t.Fatalf("worker exited with %v; log:\n%s", err, proc.Log)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start))
	if d := fake.Dones("quick"); len(d) != 1 || d[0].Error != "" || len(d[0].Output) == 0 {
		t.Errorf("the job that finished within the grace: results %+v; want one completed result", d)
	}
	if d := fake.Dones("long"); len(d) != 0 {
		t.Errorf("the job cut by the shutdown posted %d results (%+v); want none, so that RunPod retries it", len(d), d)
	}
	proc.Log.waitLine(t, time.Second, func(l map[string]any) bool {
		return l["requestId"] == "long" && l["end"] == "shutdown" && l["level"] == "warn"
	})
	proc.Log.waitLine(t, time.Second, func(l map[string]any) bool {
		return l["requestId"] == "quick" && l["end"] == "completed"
	})
	for _, r := range fake.Requests() {
		if r.Route == "job-done" && r.Query.Get("isStream") != "true" {
			t.Errorf("job-done %s with isStream=%q; want true", r.Path, r.Query.Get("isStream"))
		}
	}
}

// TestHandlerEngineDeath: the engine killed mid-job fails the job with a clear
// error and stopPod, and the worker exits non-zero.
func TestHandlerEngineDeath(t *testing.T) {
	fake := fakerunpod.New(t, fakerunpod.Options{LongPoll: 100 * time.Millisecond})
	fake.Enqueue("doomed", json.RawMessage(`{"prompt":"x","sampling_params":{"max_tokens":1000},"stream":true}`))
	w := startWorker(t, append(fake.Env(), "SIM_ITL_MS=20")...)
	waitFake(t, 20*time.Second, "first stream item", func(ctx context.Context) error { return fake.WaitStream(ctx, "doomed", 1) })
	if err := syscall.Kill(enginePID(t, w.Log), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := w.wait(t, 30*time.Second); exitCode(err) != 1 {
		t.Fatalf("run returned %v; want exit 1", err)
	}
	d := fake.Dones("doomed")
	if len(d) != 1 || d[0].Error == "" || !d[0].StopPod {
		t.Fatalf("results %+v; want one error result with stopPod", d)
	}
	if !strings.Contains(d[0].Error, "engine") {
		t.Errorf("error %q does not say the engine failed", d[0].Error)
	}
}

// TestHandlerCUDAError: an engine error that reports a CUDA error leaves the GPU
// unusable: the job fails with stopPod and the worker exits non-zero, as
// worker-vllm does, although the engine process is still alive.
func TestHandlerCUDAError(t *testing.T) {
	fake := fakerunpod.New(t, fakerunpod.Options{LongPoll: 100 * time.Millisecond})
	fake.Enqueue("gpu-fault", json.RawMessage(`{"prompt":"x","sampling_params":{"max_tokens":5,"sim_fault":"cuda_error"}}`))
	w := startWorkerAsync(t, fake.Env()...) // it may exit before a readiness poll sees it ready
	if err := w.wait(t, 30*time.Second); exitCode(err) != 1 || !strings.Contains(err.Error(), "CUDA error") {
		t.Fatalf("run returned %v; want exit 1 naming the CUDA error", err)
	}
	d := fake.Dones("gpu-fault")
	if len(d) != 1 || !d[0].StopPod || !strings.Contains(d[0].Error, "CUDA error") {
		t.Fatalf("results %+v; want one error result naming the CUDA error, with stopPod", d)
	}
}
