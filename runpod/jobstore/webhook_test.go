package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vllm-worker/vllm-worker/runpod"
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
	if got := s.Counts(); got != (runpod.Counts{}) {
		t.Errorf("counts: got %+v; want zero", got)
	}
}

func TestStoreCancelRunning(t *testing.T) {
	emitted, emitErr := make(chan struct{}), make(chan error, 1)
	r := &fakeRunner{fn: func(ctx context.Context, emit runpod.Emit) error {
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
	r := &fakeRunner{fn: func(ctx context.Context, emit runpod.Emit) error {
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
			err := NewWebhook(true).Deliver(context.Background(), srv.URL+"/hook", snap)
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
	err := NewWebhook(true).Deliver(ctx, srv.URL, Snapshot{ID: "job-1"})
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
	if got, want := s.Counts(), (runpod.Counts{InProgress: 1}); got != want {
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

func TestWebhookCheck(t *testing.T) {
	tests := []struct {
		url          string
		allowPrivate bool
		want         string // a part of the refusal; "" means accepted
	}{
		{"https://hooks.example.com/done?token=abc", false, ""},
		{"http://93.184.216.34:8080/x", false, ""},
		{"http://[2606:4700::1111]/x", false, ""},
		{"http://127.0.0.1:9000/hook", true, ""},
		{"http://localhost/hook", true, ""},
		{"file:///etc/passwd", false, "http"},
		{"gopher://x/", false, "http"},
		{"/relative", false, "http"},
		{"http://", false, "host"},
		{"http://user:pw@hooks.example.com/", false, "user info"},
		{"http://user:pw@127.0.0.1/", true, "user info"},
		{"http://127.0.0.1:9000/hook", false, "loopback"},
		{"http://[::1]/hook", false, "loopback"},
		{"http://localhost:8000/", false, "loopback"},
		{"http://api.localhost/", false, "loopback"},
		{"http://10.0.0.7/", false, "private"},
		{"http://192.168.1.1/", false, "private"},
		{"http://172.16.0.1/", false, "private"},
		{"http://[fd00:ec2::254]/", false, "private"},
		{"http://100.100.100.200/", false, "private"},
		{"http://169.254.169.254/latest/meta-data/", false, "link-local"},
		{"http://[fe80::1]/", false, "link-local"},
		{"http://0.0.0.0:8000/", false, "unspecified"},
		{"http://0.1.2.3/", false, "non-public"},
		{"http://224.0.0.1/", false, "multicast"},
		{"http://[::ffff:127.0.0.1]/", false, "loopback"},
		{"http://[64:ff9b::a9fe:a9fe]/", false, "link-local"},
	}
	for _, tt := range tests {
		err := NewWebhook(tt.allowPrivate).Check(tt.url)
		if tt.want == "" {
			if err != nil {
				t.Errorf("Check(%q, private %v) = %v; want accepted", tt.url, tt.allowPrivate, err)
			}
			continue
		}
		var re *RequestError
		if !errors.As(err, &re) || re.Field != "webhook" || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check(%q, private %v) = %v; want a webhook refusal naming %q", tt.url, tt.allowPrivate, err, tt.want)
		}
	}
}

// The address is checked when it is dialed: a name that resolves to loopback is
// refused, once, without a retry and without the receiver seeing anything.
func TestWebhookRefusedAtDial(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	for _, target := range []string{srv.URL + "/x", "http://localhost:" + port + "/x"} {
		start := time.Now()
		err := NewWebhook(false).Deliver(context.Background(), target+"?secret=s3cr3t", Snapshot{ID: "j"})
		if err == nil || !strings.Contains(err.Error(), "refusing to connect") {
			t.Errorf("%s: got %v; want a refusal", target, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("the error %q shows the URL's query", err)
		}
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("%s: refused after %v; want at once, not retried", target, d)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the receiver got %d requests; want none", n)
	}
	if err := NewWebhook(true).Deliver(context.Background(), srv.URL+"/x", Snapshot{ID: "j"}); err != nil || hits.Load() != 1 {
		t.Errorf("with private targets allowed: got %v and %d hits; want delivered once", err, hits.Load())
	}
}

func TestWebhookNoRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, other.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	err := NewWebhook(true).Deliver(context.Background(), srv.URL, Snapshot{ID: "j"})
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("got %v; want a refused redirect", err)
	}
	if hits.Load() != 1 || elsewhere.Load() != 0 {
		t.Errorf("hits %d, redirect target %d; want 1 and 0 (no retry, no redirect)", hits.Load(), elsewhere.Load())
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@hooks.example.com:8443/a/b?token=s3cr3t#frag": "https://hooks.example.com:8443/a/b",
		"http://h/":      "http://h/",
		"http://h/p?q=1": "http://h/p",
		"::not a url":    "(an unparsable URL)",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestPolicyLimits(t *testing.T) {
	tests := []struct {
		policy string
		want   string // the refused field; "" means accepted
	}{
		{`{}`, ""},
		{`{"executionTimeout":0,"ttl":0}`, ""},
		{`{"executionTimeout":5000}`, ""},
		{`{"executionTimeout":604800000,"ttl":604800000}`, ""},
		{`{"ttl":10000}`, ""},
		{`{"executionTimeout":18446744073710}`, "policy.executionTimeout"}, // overflowed ms*1e6 before
		{`{"executionTimeout":1e300}`, "policy.executionTimeout"},
		{`{"executionTimeout":4999}`, "policy.executionTimeout"},
		{`{"executionTimeout":604800001}`, "policy.executionTimeout"},
		{`{"executionTimeout":-1}`, "policy.executionTimeout"},
		{`{"executionTimeout":5000.5}`, "policy.executionTimeout"},
		{`{"executionTimeout":"5000"}`, "policy.executionTimeout"},
		{`{"ttl":9999}`, "policy.ttl"},
		{`{"ttl":true}`, "policy.ttl"},
	}
	s := newTestStore(t, StoreOptions{Runner: &fakeRunner{}})
	for _, tt := range tests {
		_, err := s.Submit(request(t, `{"input":`+validInput+`,"policy":`+tt.policy+`}`))
		var re *RequestError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("policy %s: got %v; want accepted", tt.policy, err)
		case tt.want != "" && (!errors.As(err, &re) || re.Field != tt.want):
			t.Errorf("policy %s: got %v; want a refusal of %s", tt.policy, err, tt.want)
		}
	}
}

// The store counts the bytes it holds: inputs until their job starts, outputs
// and errors until they are evicted; past MaxBytes, Submit says ErrStoreBytes.
func TestStoreBytes(t *testing.T) {
	ready := make(chan struct{})
	s := newTestStore(t, StoreOptions{Runner: &fakeRunner{}, MaxBytes: 3000, Ready: ready})
	pad := strings.Repeat("p", 1000)
	big := `{"input":{"prompt":"x","pad":"` + pad + `"}}`
	submit(t, s, big)
	submit(t, s, big)
	if _, err := s.Submit(request(t, big)); !errors.Is(err, ErrStoreBytes) {
		t.Fatalf("third queued input: got %v; want ErrStoreBytes", err)
	}
	close(ready) // the jobs start: their inputs are dropped
	eventually(t, "the inputs to be dropped", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.counts.Completed == 2 && s.bytes < 200
	})
	submit(t, s, big) // room again

	// A failing input is dropped at once; its error stays counted.
	failing := `{"input":{"prompt":42,"pad":"` + pad + `"}}`
	for range 20 {
		final(t, s, submit(t, s, failing))
	}
	s.mu.Lock()
	held := s.bytes
	s.mu.Unlock()
	if held > 3000 {
		t.Errorf("the store holds %d bytes after 20 failed 1 KB inputs; want them dropped", held)
	}
}
