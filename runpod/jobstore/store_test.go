package jobstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vllm-worker/vllm-worker/runpod"
)

// TestMain checks that no test leaves a goroutine behind: every store is closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeRunner is a jobRunner whose Run is fn; it counts calls and the most runs
// at once.
type fakeRunner struct {
	fn      func(ctx context.Context, emit runpod.Emit) error
	started chan string // each Run's job id, if not nil

	mu                         sync.Mutex
	calls, running, maxRunning int
}

func (f *fakeRunner) Run(ctx context.Context, id string, _ *runpod.Input, emit runpod.Emit) ([]json.RawMessage, error) {
	f.mu.Lock()
	f.calls++
	f.running++
	f.maxRunning = max(f.maxRunning, f.running)
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.running--; f.mu.Unlock() }()
	if f.started != nil {
		f.started <- id
	}
	if f.fn == nil {
		return nil, nil
	}
	return nil, f.fn(ctx, emit)
}

func (f *fakeRunner) stats() (calls, running, maxRunning int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.running, f.maxRunning
}

// blockUntil returns a Run body that waits for release (or ctx) and reports
// ctx's error when ctx ended first.
func blockUntil(release <-chan struct{}) func(context.Context, runpod.Emit) error {
	return func(ctx context.Context, _ runpod.Emit) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

const validInput = `{"prompt":"x","stream":true}`

func newTestStore(t *testing.T, o StoreOptions) *Store {
	t.Helper()
	s := NewStore(o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

func request(t *testing.T, body string) Request {
	t.Helper()
	var r Request
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("bad test request %s: %v", body, err)
	}
	return r
}

func submit(t *testing.T, s *Store, body string) string {
	t.Helper()
	id, err := s.Submit(request(t, body))
	if err != nil {
		t.Fatalf("Submit(%s): %v", body, err)
	}
	return id
}

// final waits (at most 5 s) for job id to end and returns its snapshot.
func final(t *testing.T, s *Store, id string) Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap, ok := s.Wait(ctx, id)
	if !ok || !snap.Status.Terminal() {
		t.Fatalf("job %s: got %+v (found %v); want a final status", id, snap, ok)
	}
	return snap
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func outputs(items []json.RawMessage) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = string(it)
	}
	return out
}

func TestStoreLifecycle(t *testing.T) {
	ready, release := make(chan struct{}), make(chan struct{})
	r := &fakeRunner{started: make(chan string, 1), fn: func(ctx context.Context, emit runpod.Emit) error {
		for _, it := range []string{`"a"`, `{"b":1}`} {
			if err := emit(json.RawMessage(it)); err != nil {
				return err
			}
		}
		return blockUntil(release)(ctx, emit)
	}}
	s := newTestStore(t, StoreOptions{Runner: r, Ready: ready})
	id := submit(t, s, `{"input":`+validInput+`}`)

	if snap, _ := s.Get(id); snap.Status != StatusInQueue {
		t.Errorf("before ready: got %s; want %s", snap.Status, StatusInQueue)
	}
	if got, want := s.Counts(), (runpod.Counts{InQueue: 1}); got != want {
		t.Errorf("queued counts: got %+v; want %+v", got, want)
	}
	close(ready)
	if got := <-r.started; got != id {
		t.Errorf("Run got job id %q; want %q", got, id)
	}
	eventually(t, "IN_PROGRESS", func() bool { snap, _ := s.Get(id); return snap.Status == StatusInProgress })
	if got, want := s.Counts(), (runpod.Counts{InProgress: 1}); got != want {
		t.Errorf("running counts: got %+v; want %+v", got, want)
	}
	close(release)
	snap := final(t, s, id)
	if snap.Status != StatusCompleted || snap.Error != "" {
		t.Errorf("got status %s error %q; want COMPLETED and no error", snap.Status, snap.Error)
	}
	if got, want := outputs(snap.Output), []string{`"a"`, `{"b":1}`}; !slices.Equal(got, want) {
		t.Errorf("output: got %v; want %v", got, want)
	}
	if snap.DelayTime < 0 || snap.ExecutionTime < 0 {
		t.Errorf("got delayTime %d executionTime %d; want >= 0", snap.DelayTime, snap.ExecutionTime)
	}
	if got, want := s.Counts(), (runpod.Counts{Completed: 1}); got != want {
		t.Errorf("final counts: got %+v; want %+v", got, want)
	}
}

func TestStoreInvalidInput(t *testing.T) {
	tests := []struct{ input, field string }{
		{`"just text"`, "input"},
		{`{}`, "prompt, messages"},
		{`{"prompt":1}`, "prompt"},
		{`{"messages":[{"content":"hi"}]}`, "messages[0].role"},
		{`{"prompt":"x","stream":"yes"}`, "stream"},
		{`{"prompt":"x","sampling_params":{"n":0}}`, "sampling_params.n"},
		{`{"openai_route":"/v1/nope","openai_input":{"model":"m"}}`, "openai_route"},
		{`{"route":"tokenize"}`, "route"},
	}
	r := &fakeRunner{}
	s := newTestStore(t, StoreOptions{Runner: r})
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			snap := final(t, s, submit(t, s, `{"input":`+tt.input+`}`))
			if snap.Status != StatusFailed || !strings.Contains(snap.Error, tt.field) {
				t.Errorf("got %s %q; want FAILED naming %q", snap.Status, snap.Error, tt.field)
			}
		})
	}
	if calls, _, _ := r.stats(); calls != 0 {
		t.Errorf("Run called %d times; want 0", calls)
	}
	if got := s.Counts().Failed; got != int64(len(tests)) {
		t.Errorf("failed count: got %d; want %d", got, len(tests))
	}
}

func TestStoreMaxConcurrency(t *testing.T) {
	const limit, jobs = 3, 20
	gate := make(chan struct{})
	r := &fakeRunner{fn: func(ctx context.Context, _ runpod.Emit) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	s := newTestStore(t, StoreOptions{Runner: r, MaxConcurrency: limit})
	var ids []string
	for range jobs {
		ids = append(ids, submit(t, s, `{"input":`+validInput+`}`))
	}
	eventually(t, "all slots busy", func() bool { _, running, _ := r.stats(); return running == limit })
	eventually(t, "counts to settle", func() bool { return s.Counts() == runpod.Counts{InProgress: limit, InQueue: jobs - limit} })
	for range jobs {
		gate <- struct{}{}
	}
	for _, id := range ids {
		if snap := final(t, s, id); snap.Status != StatusCompleted {
			t.Errorf("job %s: got %s; want COMPLETED", id, snap.Status)
		}
	}
	if calls, _, most := r.stats(); most != limit || calls != jobs {
		t.Errorf("got %d runs, at most %d at once; want %d, at most %d", calls, most, jobs, limit)
	}
	if got, want := s.Counts(), (runpod.Counts{Completed: jobs}); got != want {
		t.Errorf("counts: got %+v; want %+v", got, want)
	}
}

func TestStoreTimeouts(t *testing.T) {
	tests := []struct {
		name     string
		ready    bool
		policy   string
		wantRuns int
		wantErr  string
	}{
		// Policy times are milliseconds within RunPod's limits; the store's
		// policyUnit makes each one a microsecond here: 20 ms.
		{"ttl waiting for the engine", false, `{"ttl":20000}`, 0, "ttl"},
		{"ttl waiting for a slot", true, `{"ttl":20000}`, 1, "ttl"},
		{"execution timeout", true, `{"executionTimeout":20000}`, 1, "executionTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready := make(chan struct{})
			if tt.ready {
				close(ready)
			}
			release := make(chan struct{})
			r := &fakeRunner{fn: blockUntil(release)}
			s := newTestStore(t, StoreOptions{Runner: r, Ready: ready, MaxConcurrency: 1})
			s.policyUnit = time.Microsecond
			defer close(release)
			var blocker string
			if tt.name == "ttl waiting for a slot" {
				blocker = submit(t, s, `{"input":`+validInput+`}`)
				eventually(t, "the blocker to run", func() bool { _, n, _ := r.stats(); return n == 1 })
			}
			snap := final(t, s, submit(t, s, `{"input":`+validInput+`,"policy":`+tt.policy+`}`))
			if snap.Status != StatusTimedOut || !strings.Contains(snap.Error, tt.wantErr) {
				t.Errorf("got %s %q; want TIMED_OUT mentioning %s", snap.Status, snap.Error, tt.wantErr)
			}
			if calls, _, _ := r.stats(); calls != tt.wantRuns {
				t.Errorf("Run called %d times; want %d", calls, tt.wantRuns)
			}
			if blocker != "" {
				if snap, _ := s.Get(blocker); snap.Status != StatusInProgress {
					t.Errorf("blocker: got %s; want IN_PROGRESS", snap.Status)
				}
			}
		})
	}
}

// streamer is a Run body that emits every string sent on items, acknowledging
// each once it is stored, and completes when items is closed.
func streamer(items <-chan string, acked chan<- struct{}) func(context.Context, runpod.Emit) error {
	return func(ctx context.Context, emit runpod.Emit) error {
		for it := range items {
			if err := emit(json.RawMessage(it)); err != nil {
				return err
			}
			acked <- struct{}{}
		}
		return nil
	}
}

func streamed(st StreamSnapshot) []string {
	out := []string{}
	for _, it := range st.Stream {
		out = append(out, string(it.Output))
	}
	return out
}

func TestStoreStream(t *testing.T) {
	items, acked := make(chan string), make(chan struct{})
	r := &fakeRunner{started: make(chan string, 1), fn: streamer(items, acked)}
	s := newTestStore(t, StoreOptions{Runner: r})
	id := submit(t, s, `{"input":`+validInput+`}`)
	<-r.started
	ctx := context.Background()
	feed := func(vs ...string) {
		for _, v := range vs {
			items <- v
			<-acked
		}
	}

	eventually(t, "IN_PROGRESS", func() bool { return s.Counts().InProgress == 1 })
	if st, ok := s.Stream(ctx, id, 10*time.Millisecond); !ok || st.Status != StatusInProgress || len(st.Stream) != 0 {
		t.Errorf("no items yet: got %+v (found %v); want IN_PROGRESS and an empty stream", st, ok)
	}
	got := make(chan []string)
	go func() { st, _ := s.Stream(ctx, id, 5*time.Second); got <- streamed(st) }()
	feed("1")
	if g := <-got; !slices.Equal(g, []string{"1"}) {
		t.Errorf("waiting stream: got %v; want [1]", g)
	}
	feed("2", "3")
	if st, _ := s.Stream(ctx, id, time.Second); !slices.Equal(streamed(st), []string{"2", "3"}) {
		t.Errorf("second call: got %v; want [2 3]", streamed(st))
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if st, _ := s.Stream(cancelled, id, time.Hour); len(st.Stream) != 0 {
		t.Errorf("ended ctx: got %v; want an empty stream at once", streamed(st))
	}
	feed("4")
	close(items)
	final(t, s, id)
	if st, _ := s.Stream(ctx, id, time.Hour); st.Status != StatusCompleted || !slices.Equal(streamed(st), []string{"4"}) {
		t.Errorf("after completion: got %s %v; want COMPLETED [4]", st.Status, streamed(st))
	}
	if st, _ := s.Stream(ctx, id, time.Hour); len(st.Stream) != 0 {
		t.Errorf("drained: got %v; want an empty stream at once", streamed(st))
	}
	if _, ok := s.Stream(ctx, "no-such-job", time.Hour); ok {
		t.Errorf("unknown id: got found; want not found")
	}
}

// TestStoreStreamExactlyOnce reads a fast producer with concurrent readers:
// every item comes out once, and each reader sees its items in order.
func TestStoreStreamExactlyOnce(t *testing.T) {
	const n = 2000
	r := &fakeRunner{fn: func(ctx context.Context, emit runpod.Emit) error {
		for i := range n {
			if err := emit(json.RawMessage(fmt.Sprint(i))); err != nil {
				return err
			}
		}
		return nil
	}}
	s := newTestStore(t, StoreOptions{Runner: r})
	id := submit(t, s, `{"input":`+validInput+`}`)
	var wg sync.WaitGroup
	seen := make([][]int, 3)
	for k := range seen {
		wg.Go(func() {
			for {
				st, _ := s.Stream(context.Background(), id, time.Second)
				for _, it := range st.Stream {
					var v int
					_ = json.Unmarshal(it.Output, &v)
					seen[k] = append(seen[k], v)
				}
				if st.Status.Terminal() {
					return
				}
			}
		})
	}
	wg.Wait()
	var all []int
	for k, got := range seen {
		if !slices.IsSorted(got) {
			t.Errorf("reader %d: items out of order", k)
		}
		all = append(all, got...)
	}
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("got %d items, item %d is %d; want each of 0..%d once", len(all), i, v, n-1)
		}
	}
	if len(all) != n {
		t.Errorf("got %d items; want %d", len(all), n)
	}
}

func TestStoreWait(t *testing.T) {
	release := make(chan struct{})
	r := &fakeRunner{started: make(chan string, 1), fn: blockUntil(release)}
	s := newTestStore(t, StoreOptions{Runner: r})
	id := submit(t, s, `{"input":`+validInput+`}`)
	<-r.started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if snap, ok := s.Wait(ctx, id); !ok || snap.Status != StatusInProgress {
		t.Errorf("Wait past its ctx: got %+v (found %v); want IN_PROGRESS", snap, ok)
	}
	close(release)
	if snap := final(t, s, id); snap.Status != StatusCompleted {
		t.Errorf("got %s; want COMPLETED", snap.Status)
	}
	if _, ok := s.Wait(context.Background(), "no-such-job"); ok {
		t.Errorf("unknown id: got found; want not found")
	}
}
