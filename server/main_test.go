package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/runpod"
	"github.com/vllm-worker/vllm-worker/runpod/jobstore"
)

// TestMain checks that no test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStatus is a readiness whose state the test sets.
type fakeStatus struct {
	mu sync.Mutex
	st Status
}

func (f *fakeStatus) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeStatus) set(st Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st = st
}

// engineRequest is what the fake engine received.
type engineRequest struct {
	Method, Path, Query, RequestID, ContentType string
	Body                                        string
}

// fakeEngine is an httptest engine: GET /v1/models lists model "m"; every other
// request is recorded and answered by the test's handler.
type fakeEngine struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []engineRequest
	handler http.HandlerFunc
}

func newFakeEngine(t *testing.T, h http.HandlerFunc) *fakeEngine {
	t.Helper()
	e := &fakeEngine{handler: h}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/models" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"m","object":"model"}]}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		e.mu.Lock()
		e.reqs = append(e.reqs, engineRequest{r.Method, r.URL.Path, r.URL.RawQuery,
			r.Header.Get("X-Request-Id"), r.Header.Get("Content-Type"), string(body)})
		h := e.handler
		e.mu.Unlock()
		if h == nil {
			t.Errorf("unexpected engine request %s %s", r.Method, r.URL)
			http.Error(w, "unexpected", http.StatusTeapot)
			return
		}
		h(w, r)
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *fakeEngine) setHandler(h http.HandlerFunc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handler = h
}

func (e *fakeEngine) requests() []engineRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]engineRequest(nil), e.reqs...)
}

// harness is a worker in front of a fake engine.
type harness struct {
	engine *fakeEngine
	status *fakeStatus
	deps   Deps
	srv    *httptest.Server // the worker
}

// newHarness serves server.New over engineFn; mod may change the Deps first.
// Jobs default to a real store over fakeRunner.
func newHarness(t *testing.T, engineFn http.HandlerFunc, mod func(*Deps)) *harness {
	t.Helper()
	h := &harness{engine: newFakeEngine(t, engineFn), status: &fakeStatus{st: Status{State: StateReady}}}
	client := engine.New(engine.Options{BaseURL: h.engine.URL})
	t.Cleanup(client.CloseIdle)
	h.deps = Deps{
		Engine: client,
		Models: engine.NewModels(client, []string{"m"}),
		Status: h.status,
		Log:    zerolog.Nop(),
	}
	if mod != nil {
		mod(&h.deps)
	}
	if h.deps.Jobs == nil {
		h.deps.Jobs = newStore(t, jobstore.StoreOptions{Runner: &fakeRunner{}})
	}
	h.srv = httptest.NewServer(New(h.deps))
	t.Cleanup(h.srv.Close)
	return h
}

func newStore(t testing.TB, o jobstore.StoreOptions) *jobstore.Store {
	t.Helper()
	s := jobstore.NewStore(o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

// do sends one request to the worker and returns the response with its body read.
func (h *harness) do(t *testing.T, method, path, body string, header ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

// envelope is the OpenAI error body.
type envelope struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    int     `json:"code"`
	} `json:"error"`
}

// checkError checks that a response is the error envelope with status.
func checkError(t *testing.T, resp *http.Response, body string, status int) envelope {
	t.Helper()
	var e envelope
	if resp.StatusCode != status {
		t.Errorf("got status %d; want %d (body %s)", resp.StatusCode, status, body)
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Errorf("got body %q; want the error envelope", body)
	}
	if e.Error.Code != status {
		t.Errorf("got code %d; want %d", e.Error.Code, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("got Content-Type %q; want application/json", ct)
	}
	return e
}

// fakeRunner runs store jobs: each emits its prompt as one item, and the prompt
// "block" waits for its context.
type fakeRunner struct{}

func (fakeRunner) Run(ctx context.Context, _ string, in *runpod.Input, emit runpod.Emit) ([]json.RawMessage, error) {
	if in.Prompt == "block" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	item, _ := json.Marshal(map[string]string{"text": in.Prompt})
	return nil, emit(item)
}

// sse writes raw bytes to the client and flushes them.
func sse(w http.ResponseWriter, chunks ...string) {
	for _, c := range chunks {
		_, _ = io.WriteString(w, c)
		_ = http.NewResponseController(w).Flush()
	}
}
