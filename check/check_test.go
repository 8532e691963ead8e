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
