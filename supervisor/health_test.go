package supervisor

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitHealthy(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if err := WaitHealthy(context.Background(), nil, srv.URL+"/health", 10*time.Millisecond, 10*time.Second); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("health calls = %d; want 3 (503, 503, 200)", got)
	}
}

func TestWaitHealthyFailures(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	err := WaitHealthy(context.Background(), srv.Client(), srv.URL, 10*time.Millisecond, 200*time.Millisecond)
	if !errors.Is(err, ErrStartupTimeout) || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("WaitHealthy on a 503 server = %v; want ErrStartupTimeout with the status", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WaitHealthy(ctx, nil, srv.URL, 10*time.Millisecond, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitHealthy with a cancelled ctx = %v; want context.Canceled", err)
	}

	if err := WaitHealthy(context.Background(), nil, "::not a url", 0, time.Second); err == nil || errors.Is(err, ErrStartupTimeout) {
		t.Errorf("WaitHealthy with a bad URL = %v; want an immediate URL error", err)
	}
}
