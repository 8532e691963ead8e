package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vllm-worker/vllm-worker/runpod"
)

func TestPassthrough(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/responses" {
			w.Header().Set("Content-Type", "text/event-stream")
			sse(w, "event: response.created\ndata: {\"a\":1}\n\n", "event: response.completed\ndata: {\"b\":2}\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"echo":true}`)
	}, nil)
	tests := []struct {
		method, path, body string
		want               engineRequest
	}{
		{"POST", "/v1/embeddings?user=u1", `{"model":"m", "input":"x"}`,
			engineRequest{Method: "POST", Path: "/v1/embeddings", Query: "user=u1", Body: `{"model":"m", "input":"x"}`}},
		{"DELETE", "/openai/v1/files/f1", "", engineRequest{Method: "DELETE", Path: "/v1/files/f1"}},
		{"GET", "/v2/ep1/openai/v1/tokenize?text=a%20b", "", engineRequest{Method: "GET", Path: "/v1/tokenize", Query: "text=a%20b"}},
		{"POST", "/v2/ep1/v1/score", `{"a":1}`, engineRequest{Method: "POST", Path: "/v1/score", Body: `{"a":1}`}},
		{"POST", "/v2/v1/openai/v1/embeddings", `{"a":1}`, engineRequest{Method: "POST", Path: "/v1/embeddings", Body: `{"a":1}`}},
		{"GET", "/v1/files/a%3Fb", "", engineRequest{Method: "GET", Path: "/v1/files/a?b"}},
	}
	for i, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := h.do(t, tt.method, tt.path, tt.body)
			if resp.StatusCode != http.StatusCreated || body != `{"echo":true}` || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("got %d %q %s; want the engine's 201 JSON answer", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			reqs := h.engine.requests()
			if len(reqs) != i+1 {
				t.Fatalf("the engine saw %d requests; want %d", len(reqs), i+1)
			}
			got := reqs[i]
			got.RequestID, got.ContentType = "", ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("engine request (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("stream", func(t *testing.T) {
		resp, body := h.do(t, http.MethodPost, "/v1/responses", `{"model":"m","stream":true}`)
		want := "event: response.created\ndata: {\"a\":1}\n\nevent: response.completed\ndata: {\"b\":2}\n\n"
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, want) {
			t.Errorf("got %d %q; want the engine's events first", resp.StatusCode, body)
		}
	})
	t.Run("models", func(t *testing.T) {
		for _, path := range []string{"/v1/models", "/openai/v1/models", "/v2/ep1/openai/v1/models"} {
			resp, body := h.do(t, http.MethodGet, path, "")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"id":"m"`) {
				t.Errorf("GET %s: got %d %s; want the engine's model list", path, resp.StatusCode, body)
			}
		}
	})
}

// stubJobs is a jobStore with fixed counts; only Counts is used by /health.
type stubJobs struct {
	jobStore
	counts runpod.Counts
}

func (s stubJobs) Counts() runpod.Counts { return s.counts }

func TestHealth(t *testing.T) {
	counts := runpod.Counts{Completed: 3, Failed: 1, InProgress: 2, InQueue: 4}
	h := newHarness(t, nil, func(d *Deps) { d.Jobs = stubJobs{counts: counts} })
	tests := []struct {
		name    string
		st      Status
		code    int
		ping    int
		want    map[string]any // top-level fields that must match
		workers workers
	}{
		{"starting", Status{State: StateStarting, Phase: "downloading", Elapsed: 12340 * time.Millisecond},
			503, 204, map[string]any{"status": "starting", "phase": "downloading", "elapsed_s": 12.3}, workers{Initializing: 1}},
		{"ready", Status{State: StateReady, Engine: "http://127.0.0.1:1"},
			200, 200, map[string]any{"status": "ready"}, workers{Ready: 1, Running: 1}},
		{"unhealthy", Status{State: StateUnhealthy, Detail: "engine exited with code 1"},
			503, 503, map[string]any{"status": "unhealthy", "detail": "engine exited with code 1"}, workers{Unhealthy: 1}},
		{"draining", Status{State: StateDraining}, 503, 503, map[string]any{"status": "draining"}, workers{}},
	}
	health := NewHealth(h.deps)
	for _, tt := range tests {
		h.status.set(tt.st)
		for _, prefix := range []string{"", "/v2/ep1"} {
			t.Run(tt.name+prefix, func(t *testing.T) {
				resp, body := h.do(t, http.MethodGet, prefix+"/health", "")
				var got struct {
					Jobs    runpod.Counts `json:"jobs"`
					Workers workers       `json:"workers"`
				}
				var top map[string]any
				if err := json.Unmarshal([]byte(body), &got); err != nil || json.Unmarshal([]byte(body), &top) != nil {
					t.Fatalf("got %q: %v; want one JSON object", body, err)
				}
				if resp.StatusCode != tt.code {
					t.Errorf("got status %d; want %d", resp.StatusCode, tt.code)
				}
				for k, v := range tt.want {
					if top[k] != v {
						t.Errorf("%s: got %v; want %v", k, top[k], v)
					}
				}
				if _, ok := top["elapsed_s"]; ok != (tt.st.State == StateStarting) {
					t.Errorf("elapsed_s present %v; want it only while starting", ok)
				}
				if got.Jobs != counts || got.Workers != tt.workers {
					t.Errorf("got jobs %+v workers %+v; want %+v %+v", got.Jobs, got.Workers, counts, tt.workers)
				}
				resp, _ = h.do(t, http.MethodGet, prefix+"/ping", "")
				if resp.StatusCode != tt.ping {
					t.Errorf("ping: got %d; want %d", resp.StatusCode, tt.ping)
				}
			})
		}
		t.Run(tt.name+" health listener", func(t *testing.T) {
			rec := httptest.NewRecorder()
			health.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ping", nil))
			if rec.Code != tt.ping {
				t.Errorf("ping: got %d; want %d", rec.Code, tt.ping)
			}
		})
	}
}
