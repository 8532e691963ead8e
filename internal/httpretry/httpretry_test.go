package httpretry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{"0.25", 250 * time.Millisecond, true},
		{"9999", time.Minute, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second, true},
		{now.Add(-10 * time.Second).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		got, ok := RetryAfter(http.Header{"Retry-After": {tt.v}}, now, time.Minute)
		if got != tt.want || ok != tt.ok {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

// answers is a server that answers each request with the next status (the last
// repeats), a Retry-After when asked.
func answers(t *testing.T, retryAfter string, statuses ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1))
		code := statuses[min(i, len(statuses))-1]
		if retryAfter != "" && (code == 429 || code == 503) {
			w.Header().Set("Retry-After", retryAfter)
		}
		if r.Header.Get("X-Test") != "prepared" {
			code = http.StatusTeapot
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestPost(t *testing.T) {
	prepare := func(r *http.Request) { r.Header.Set("X-Test", "prepared") }
	tests := []struct {
		name     string
		statuses []int
		calls    int32
		ok       bool
	}{
		{"at once", []int{200}, 1, true},
		{"5xx then ok", []int{500, 502, 204}, 3, true},
		{"429 then ok", []int{429, 200}, 2, true},
		{"4xx is final", []int{404}, 1, false},
		{"a redirect is final", []int{307}, 1, false},
		{"attempts run out", []int{503}, 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := answers(t, "0", tt.statuses...)
			var retries int
			c := &Client{HTTP: srv.Client(), Prepare: prepare, Attempts: 4, MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond,
				OnRetry: func(error, time.Duration) { retries++ }}
			err := c.Post(context.Background(), srv.URL, "the server", []byte("{}"), nil)
			if (err == nil) != tt.ok || calls.Load() != tt.calls || retries != int(tt.calls)-1 {
				t.Errorf("err %v after %d calls (%d retries); want ok %v after %d", err, calls.Load(), retries, tt.ok, tt.calls)
			}
			var se *StatusError
			if !tt.ok && (!errors.As(err, &se) || se.URL != "the server") {
				t.Errorf("err %v; want a StatusError showing the URL as given", err)
			}
		})
	}
	t.Run("Retry-After is honoured", func(t *testing.T) {
		srv, _ := answers(t, "0.2", 429, 200)
		c := &Client{HTTP: srv.Client(), Prepare: prepare, MinWait: time.Millisecond, MaxWait: time.Millisecond}
		start := time.Now()
		if err := c.Post(context.Background(), srv.URL, "s", nil, nil); err != nil || time.Since(start) < 150*time.Millisecond {
			t.Errorf("err %v after %v; want success after about 200ms", err, time.Since(start))
		}
	})
	t.Run("Permanent", func(t *testing.T) {
		c := &Client{HTTP: &http.Client{}, Attempts: 5, MinWait: time.Millisecond, Permanent: func(error) bool { return true }}
		var retried bool
		c.OnRetry = func(error, time.Duration) { retried = true }
		if err := c.Post(context.Background(), "http://127.0.0.1:1/", "s", nil, nil); err == nil || retried {
			t.Errorf("err %v, retried %v; want a final error", err, retried)
		}
	})
}

func TestPoll(t *testing.T) {
	prepare := func(r *http.Request) { r.Header.Set("X-Test", "prepared") }
	for _, tt := range []struct {
		status int
		pause  time.Duration
		err    bool
	}{{200, 0, false}, {204, 0, false}, {400, 0, false}, {429, 3 * time.Second, false}, {500, 0, true}} {
		srv, _ := answers(t, "3", tt.status)
		c := &Client{HTTP: srv.Client(), Prepare: prepare}
		a, err := c.Poll(context.Background(), srv.URL, "s", time.Second, 1<<10, time.Minute)
		if a.Status != tt.status || a.Pause != tt.pause || (err != nil) != tt.err {
			t.Errorf("status %d: got %+v, %v; want pause %v, error %v", tt.status, a, err, tt.pause, tt.err)
		}
	}
	// A long poll that runs out is no error: ask again.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	a, err := (&Client{HTTP: slow.Client()}).Poll(context.Background(), slow.URL, "s", 20*time.Millisecond, 1, time.Second)
	if err != nil || a.Status != 0 {
		t.Errorf("a poll that ran out: %+v, %v; want nothing", a, err)
	}
}
