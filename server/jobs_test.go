package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vllm-worker/vllm-worker/runpod/jobstore"
)

// jobAnswer is the union of the job routes' answers.
type jobAnswer struct {
	ID            string            `json:"id"`
	Status        string            `json:"status"`
	Output        []json.RawMessage `json:"output"`
	Error         string            `json:"error"`
	DelayTime     *int64            `json:"delayTime"`
	ExecutionTime *int64            `json:"executionTime"`
	Stream        []struct {
		Output json.RawMessage `json:"output"`
	} `json:"stream"`
	Removed *int `json:"removed"`
}

// job sends one request to a job route and decodes its 200 answer.
func (h *harness) job(t *testing.T, method, path, body string) jobAnswer {
	t.Helper()
	resp, body := h.do(t, method, path, body)
	var a jobAnswer
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %s; want 200", resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("got %q: %v; want a JSON object", body, err)
	}
	return a
}

func TestJobRoutes(t *testing.T) {
	h := newHarness(t, nil, nil)
	for _, prefix := range []string{"", "/v2/ep1"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			a := h.job(t, "POST", prefix+"/runsync", `{"input":{"prompt":"hello"}}`)
			if a.ID == "" || a.Status != "COMPLETED" || len(a.Output) != 1 || string(a.Output[0]) != `{"text":"hello"}` {
				t.Errorf("runsync: got %+v; want COMPLETED with the output", a)
			}
			for _, method := range []string{"GET", "POST"} {
				st := h.job(t, method, prefix+"/status/"+a.ID, "")
				if st.ID != a.ID || st.Status != "COMPLETED" || len(st.Output) != 1 || st.DelayTime == nil || st.ExecutionTime == nil {
					t.Errorf("%s status: got %+v; want the COMPLETED job with delayTime and executionTime", method, st)
				}
			}
			st := h.job(t, "GET", prefix+"/status-sync/"+a.ID+"?wait=100", "")
			if st.Status != "COMPLETED" {
				t.Errorf("status-sync: got %+v; want COMPLETED", st)
			}
			sm := h.job(t, "POST", prefix+"/stream/"+a.ID, "")
			if sm.ID != a.ID || sm.Status != "COMPLETED" || len(sm.Stream) != 1 || string(sm.Stream[0].Output) != `{"text":"hello"}` {
				t.Errorf("stream: got %+v; want the one item", sm)
			}
			if sm := h.job(t, "GET", prefix+"/stream/"+a.ID, ""); len(sm.Stream) != 0 {
				t.Errorf("second stream: got %+v; want no item twice", sm)
			}

			run := h.job(t, "POST", prefix+"/run", `{"input":{"prompt":"block"}}`)
			if run.ID == "" || run.Status != "IN_QUEUE" {
				t.Errorf("run: got %+v; want an id and IN_QUEUE", run)
			}
			sync := h.job(t, "POST", prefix+"/runsync?wait=20", `{"input":{"prompt":"block"}}`)
			if sync.Status != "IN_QUEUE" && sync.Status != "IN_PROGRESS" {
				t.Errorf("runsync past its wait: got %+v; want the job still queued or running", sync)
			}
			for _, id := range []string{run.ID, sync.ID} {
				if c := h.job(t, "POST", prefix+"/cancel/"+id, ""); c.ID != id || c.Status != "CANCELLED" {
					t.Errorf("cancel: got %+v; want CANCELLED", c)
				}
			}
			if p := h.job(t, "POST", prefix+"/purge-queue", ""); p.Removed == nil || *p.Removed != 0 || p.Status != "completed" {
				t.Errorf("purge-queue: got %+v; want removed 0, status completed", p)
			}

			failed := h.job(t, "POST", prefix+"/runsync", `{"input":{"prompt":7}}`)
			if failed.Status != "FAILED" || !strings.Contains(failed.Error, "prompt") {
				t.Errorf("invalid input: got %+v; want FAILED naming prompt", failed)
			}
		})
	}
}

func TestJobRouteErrors(t *testing.T) {
	h := newHarness(t, nil, nil)
	for _, rt := range []struct{ method, path string }{
		{"GET", "/status/nope"}, {"POST", "/status-sync/nope"}, {"GET", "/stream/nope"},
		{"POST", "/cancel/nope"}, {"GET", "/v2/ep1/status/nope"},
	} {
		t.Run(rt.path, func(t *testing.T) {
			resp, body := h.do(t, rt.method, rt.path, "")
			checkError(t, resp, body, http.StatusNotFound)
		})
	}
	for _, body := range []string{`{}`, `{"input":null}`, `[]`, `{"input":`, `{"webhook":"http://x"}`} {
		t.Run("body "+body, func(t *testing.T) {
			resp, got := h.do(t, "POST", "/run", body)
			checkError(t, resp, got, http.StatusBadRequest)
		})
	}
	t.Run("store full", func(t *testing.T) {
		full := newHarness(t, nil, func(d *Deps) {
			d.Jobs = newStore(t, jobstore.StoreOptions{Runner: fakeRunner{}, MaxJobs: 1, Ready: make(chan struct{})})
		})
		full.job(t, "POST", "/run", `{"input":{"prompt":"x"}}`)
		for _, path := range []string{"/run", "/runsync"} {
			resp, body := full.do(t, "POST", path, `{"input":{"prompt":"x"}}`)
			checkError(t, resp, body, http.StatusTooManyRequests)
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s: got no Retry-After; want one", path)
			}
		}
		if p := full.job(t, "POST", "/purge-queue", ""); p.Removed == nil || *p.Removed != 1 {
			t.Errorf("purge-queue: got %+v; want removed 1", p)
		}
	})
	t.Run("store closed", func(t *testing.T) {
		closed := newHarness(t, nil, nil)
		closed.deps.Jobs.(*jobstore.Store).Close(t.Context())
		resp, body := closed.do(t, "POST", "/run", `{"input":{"prompt":"x"}}`)
		checkError(t, resp, body, http.StatusServiceUnavailable)
	})
}
