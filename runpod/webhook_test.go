package runpod

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// How jobs leave the store: cancel, purge, webhook delivery, shutdown and the
// memory bound.

func TestStoreCancelQueued(t *testing.T) {
	r := &fakeRunner{}
	s := newTestStore(t, StoreOptions{Runner: r, Ready: make(chan struct{})}) // never ready
	id := submit(t, s, `{"input":`+validInput+`}`)
	snap, ok := s.Cancel(id)
	if !ok || snap.Status != StatusCancelled {
		t.Errorf("Cancel: got %+v (found %v); want CANCELLED", snap, ok)
	}
	if snap := final(t, s, id); snap.Status != StatusCancelled {
		t.Errorf("after cancel: got %s; want CANCELLED", snap.Status)
	}
	if _, ok := s.Cancel("no-such-job"); ok {
		t.Errorf("Cancel of an unknown id: got found; want not found")
	}
	s.Close(context.Background()) // the job goroutine has exited: Run can no longer be called
	if calls, _, _ := r.stats(); calls != 0 {
		t.Errorf("Run called %d times; want 0", calls)
	}
	if got := s.Counts(); got != (Counts{}) {
		t.Errorf("counts: got %+v; want zero", got)
	}
}

func TestStoreCancelRunning(t *testing.T) {
	emitted, emitErr := make(chan struct{}), make(chan error, 1)
	r := &fakeRunner{fn: func(ctx context.Context, emit Emit) error {
		if err := emit(json.RawMessage(`"before"`)); err != nil {
			return err
		}
		close(emitted)
		<-ctx.Done()
		emitErr <- emit(json.RawMessage(`"after"`))
		return nil // a runner that ignores the cancellation must not make it COMPLETED
	}}
	s := newTestStore(t, StoreOptions{Runner: r})
	id := submit(t, s, `{"input":`+validInput+`}`)
	<-emitted
	if snap, ok := s.Cancel(id); !ok || snap.Status != StatusCancelled {
		t.Errorf("Cancel: got %+v (found %v); want CANCELLED", snap, ok)
	}
	if err := <-emitErr; err == nil {
		t.Errorf("emit after cancel: got nil; want an error")
	}
	if snap := final(t, s, id); snap.Status != StatusCancelled {
		t.Errorf("got %s; want CANCELLED", snap.Status)
	}
	st, _ := s.Stream(context.Background(), id, 0)
	if len(st.Stream) != 1 || string(st.Stream[0].Output) != `"before"` {
		t.Errorf("stream after cancel: got %+v; want only the item before", st.Stream)
	}
}

// hookCall is one delivery to a fake StoreOptions.Webhook.
type hookCall struct {
	url  string
	snap Snapshot
}

func TestStoreWebhookOnce(t *testing.T) {
	calls := make(chan hookCall, 10)
	hook := func(ctx context.Context, url string, snap Snapshot) error {
		calls <- hookCall{url, snap}
		return nil
	}
	r := &fakeRunner{fn: func(ctx context.Context, emit Emit) error {
		return emit(json.RawMessage(`"out"`))
	}}
	s := NewStore(StoreOptions{Runner: r, Webhook: hook})
	id := submit(t, s, `{"input":`+validInput+`,"webhook":"http://example.invalid/hook"}`)
	final(t, s, submit(t, s, `{"input":`+validInput+`}`)) // no webhook: no call
	final(t, s, id)
	s.Cancel(id) // a final job stays as it is: no second call
	s.Close(context.Background())
	close(calls)
	var got []hookCall
	for c := range calls {
		got = append(got, c)
	}
	if len(got) != 1 {
		t.Fatalf("got %d webhook calls; want 1", len(got))
	}
	c := got[0]
	if c.url != "http://example.invalid/hook" || c.snap.ID != id || c.snap.Status != StatusCompleted ||
		len(c.snap.Output) != 1 || string(c.snap.Output[0]) != `"out"` {
		t.Errorf("got %s %+v; want the hook URL and the COMPLETED snapshot with output [\"out\"]", c.url, c.snap)
	}
}

func TestStoreClose(t *testing.T) {
	t.Run("drains", func(t *testing.T) {
		release := make(chan struct{})
		r := &fakeRunner{started: make(chan string, 1), fn: blockUntil(release)}
		s := NewStore(StoreOptions{Runner: r})
		id := submit(t, s, `{"input":`+validInput+`}`)
		<-r.started
		closed := make(chan struct{})
		go func() { s.Close(context.Background()); close(closed) }()
		eventually(t, "Submit to refuse", func() bool {
			_, err := s.Submit(request(t, `{"input":`+validInput+`}`))
			return errors.Is(err, ErrClosed)
		})
		select {
		case <-closed:
			t.Fatalf("Close returned while a job was running")
		default:
		}
		close(release)
		<-closed
		if snap, _ := s.Get(id); snap.Status != StatusCompleted {
			t.Errorf("drained job: got %s; want COMPLETED", snap.Status)
		}
	})
	t.Run("cancels when its ctx ends", func(t *testing.T) {
		r := &fakeRunner{started: make(chan string, 1), fn: blockUntil(nil)}
		s := NewStore(StoreOptions{Runner: r})
		id := submit(t, s, `{"input":`+validInput+`}`)
		<-r.started
		queued := submit(t, s, `{"input":`+validInput+`}`)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		s.Close(ctx)
		for _, id := range []string{id, queued} {
			if snap, _ := s.Get(id); snap.Status != StatusCancelled {
				t.Errorf("job %s: got %s; want CANCELLED", id, snap.Status)
			}
		}
	})
	t.Run("cancels webhook deliveries when its ctx ends", func(t *testing.T) {
		delivering := make(chan struct{})
		hook := func(ctx context.Context, _ string, _ Snapshot) error {
			close(delivering)
			<-ctx.Done() // an unreachable receiver, retried until the context ends
			return ctx.Err()
		}
		s := NewStore(StoreOptions{Runner: &fakeRunner{}, Webhook: hook})
		submit(t, s, `{"input":`+validInput+`,"webhook":"http://example.invalid/"}`)
		<-delivering
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		closed := make(chan struct{})
		go func() { s.Close(ctx); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("Close did not return after its ctx ended: a webhook delivery held it")
		}
	})
}

func TestWebhook(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int // answers in order; the last repeats
		wantCalls int32
		wantErr   bool
	}{
		{"success", []int{http.StatusOK}, 1, false},
		{"retry on 500 then success", []int{http.StatusInternalServerError, http.StatusNoContent}, 2, false},
		{"no retry on 400", []int{http.StatusBadRequest}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			var got Snapshot
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1))
				if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("got %s with Content-Type %q; want a JSON POST", r.Method, r.Header.Get("Content-Type"))
				}
				b, _ := io.ReadAll(r.Body)
				if err := json.Unmarshal(b, &got); err != nil {
					t.Errorf("body %s: %v", b, err)
				}
				w.WriteHeader(tt.statuses[min(n, len(tt.statuses))-1])
			}))
			defer srv.Close()
			snap := Snapshot{ID: "job-1", Status: StatusCompleted, Output: []json.RawMessage{json.RawMessage(`"x"`)}}
			err := Webhook(srv.Client())(context.Background(), srv.URL+"/hook", snap)
			if (err != nil) != tt.wantErr {
				t.Errorf("got error %v; want error %v", err, tt.wantErr)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("got %d calls; want %d", n, tt.wantCalls)
			}
			if got.ID != "job-1" || got.Status != StatusCompleted || len(got.Output) != 1 {
				t.Errorf("delivered %+v; want the snapshot", got)
			}
		})
	}
}

func TestWebhookStopsWithCtx(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Webhook(srv.Client())(ctx, srv.URL, Snapshot{ID: "job-1"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v; want the context's error", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("returned after %v; want soon after the context ended, not after the retry wait", d)
	}
}

func TestStorePurgeQueue(t *testing.T) {
	release := make(chan struct{})
	r := &fakeRunner{started: make(chan string, 1), fn: blockUntil(release)}
	s := newTestStore(t, StoreOptions{Runner: r, MaxConcurrency: 1})
	running := submit(t, s, `{"input":`+validInput+`}`)
	<-r.started
	var queued []string
	for range 3 {
		queued = append(queued, submit(t, s, `{"input":`+validInput+`}`))
	}
	if got := s.PurgeQueue(); got != 3 {
		t.Errorf("PurgeQueue: got %d; want 3", got)
	}
	for _, id := range queued {
		if snap := final(t, s, id); snap.Status != StatusCancelled {
			t.Errorf("purged job: got %s; want CANCELLED", snap.Status)
		}
	}
	if got, want := s.Counts(), (Counts{InProgress: 1}); got != want {
		t.Errorf("counts after purge: got %+v; want %+v", got, want)
	}
	close(release)
	if snap := final(t, s, running); snap.Status != StatusCompleted {
		t.Errorf("running job: got %s; want COMPLETED", snap.Status)
	}
	if calls, _, _ := r.stats(); calls != 1 {
		t.Errorf("Run called %d times; want 1", calls)
	}
	if got := s.PurgeQueue(); got != 0 {
		t.Errorf("second PurgeQueue: got %d; want 0", got)
	}
}

func TestStoreBounded(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		s := newTestStore(t, StoreOptions{Runner: &fakeRunner{}, MaxJobs: 2, Ready: make(chan struct{})})
		first := submit(t, s, `{"input":`+validInput+`}`)
		submit(t, s, `{"input":`+validInput+`}`)
		if _, err := s.Submit(request(t, `{"input":`+validInput+`}`)); !errors.Is(err, ErrStoreFull) {
			t.Errorf("third Submit: got %v; want ErrStoreFull", err)
		}
		s.Cancel(first) // a finished job gives way to a new one
		submit(t, s, `{"input":`+validInput+`}`)
		if _, ok := s.Get(first); ok {
			t.Errorf("the oldest finished job: got found; want evicted")
		}
		s.PurgeQueue() // the engine never becomes ready: let Close return at once
	})
	t.Run("many finished jobs", func(t *testing.T) {
		s := newTestStore(t, StoreOptions{Runner: &fakeRunner{}, MaxJobs: 10})
		for range 200 {
			final(t, s, submit(t, s, `{"input":`+validInput+`}`))
		}
		s.mu.Lock()
		held, finished := len(s.jobs), len(s.finished)
		s.mu.Unlock()
		if held > 10 || finished > 10 {
			t.Errorf("got %d jobs held, %d finished; want at most 10", held, finished)
		}
	})
	t.Run("retention", func(t *testing.T) {
		s := newTestStore(t, StoreOptions{Runner: &fakeRunner{}, Retention: time.Millisecond})
		old := submit(t, s, `{"input":`+validInput+`}`)
		final(t, s, old)
		eventually(t, "the old job to expire", func() bool {
			final(t, s, submit(t, s, `{"input":`+validInput+`}`))
			_, ok := s.Get(old)
			return !ok
		})
	})
}
