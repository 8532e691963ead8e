package check

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRunOne: a check's failure carries the request that showed it; a panic,
// its time limit and the total one each end a check, and only it.
func TestRunOne(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusTeapot)
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	s := &session{target: Target{Kind: KindWorker, Base: srv.URL},
		opts: &Options{Timeout: 50 * time.Millisecond, TotalTimeout: time.Minute, APIKey: "k"}, transport: tr}
	ctx := context.Background()

	res := s.run(ctx, checkDef{"teapot", func(p *probe) error {
		_, err := p.call(http.MethodPost, p.target.URL("/runsync"), map[string]any{"input": 1}, http.StatusOK, nil)
		return err
	}})
	if res.OK || !strings.Contains(res.Error, "POST /runsync: status 418, want 200: nope") || res.Request == nil ||
		res.Request.Body != `{"input":1}` || res.Request.Method != http.MethodPost {
		t.Errorf("a failed request: %+v (request %+v)", res, res.Request)
	}

	res = s.run(ctx, checkDef{"pass", func(p *probe) error { p.detail = "fine"; p.firstToken(); return nil }})
	if !res.OK || res.Detail != "fine" || res.TTFT <= 0 || res.Request != nil || res.Name != "pass" {
		t.Errorf("a passing check: %+v", res)
	}

	res = s.run(ctx, checkDef{"panics", func(p *probe) error { panic("boom") }})
	if res.OK || res.Error != "internal error in the check: boom" {
		t.Errorf("a panic: %+v", res)
	}

	start := time.Now()
	res = s.run(ctx, checkDef{"slow", func(p *probe) error { <-p.ctx.Done(); return p.ctx.Err() }})
	if res.OK || res.Error != "timed out after 50ms (--timeout): context deadline exceeded" || time.Since(start) > 5*time.Second {
		t.Errorf("a slow check: %+v", res)
	}

	done, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-done.Done()
	res = s.run(done, checkDef{"late", func(p *probe) error { return errors.New("ran") }})
	if res.OK || res.Error != "not run: the total time limit of 1m0s (--total-timeout) was reached" {
		t.Errorf("past the total time limit: %+v", res)
	}
}

// TestHealthShapes: RunPod's endpoint health (counts only) and a worker's
// (status and counts) both pass; a worker not ready fails, saying its state.
func TestHealthShapes(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		status     int
		wantErr    string
	}{
		{"runpod", `{"jobs":{"completed":3,"failed":0,"inProgress":0,"inQueue":1,"retried":0},` +
			`"workers":{"idle":0,"initializing":1,"ready":0,"running":0,"throttled":0,"unhealthy":0}}`, 200, ""},
		{"worker ready", `{"status":"ready","engine":{},"jobs":{"completed":0,"failed":0,"inProgress":0,"inQueue":0},` +
			`"workers":{"idle":1,"ready":1,"running":0}}`, 200, ""},
		{"worker starting", `{"status":"starting","phase":"loading_weights","jobs":{},"workers":{}}`, 503,
			"GET /health: status 503, the worker is starting (loading_weights), not ready"},
		{"no counts", `{"status":"ready"}`, 200, "GET /health: no jobs.completed, jobs.failed"},
		{"not JSON", `OK`, 200, "not a JSON object"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tt.status)
			_, _ = w.Write([]byte(tt.body))
		}))
		tr := &http.Transport{}
		s := &session{target: Target{Kind: KindRunPod, Base: srv.URL}, opts: &Options{}, transport: tr}
		res := s.run(context.Background(), checkDef{"health", checkHealth})
		if tt.wantErr == "" && !res.OK || tt.wantErr != "" && !strings.Contains(res.Error, tt.wantErr) {
			t.Errorf("%s: %+v; want error %q", tt.name, res, tt.wantErr)
		}
		tr.CloseIdleConnections()
		srv.Close()
	}
}
