package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/vllm-worker/vllm-worker/openai"
	"github.com/vllm-worker/vllm-worker/runpod"
)

// jobStore is what the RunPod endpoint routes need; *runpod.Store is the real one.
type jobStore interface {
	Submit(req runpod.Request) (string, error)
	Get(id string) (runpod.Snapshot, bool)
	Wait(ctx context.Context, id string) (runpod.Snapshot, bool)
	Stream(ctx context.Context, id string, wait time.Duration) (runpod.StreamSnapshot, bool)
	Cancel(id string) (runpod.Snapshot, bool)
	PurgeQueue() int
	Counts() runpod.Counts
}

const (
	defaultSyncWait = 90 * time.Second
	maxSyncWait     = 5 * time.Minute
	streamWait      = 2 * time.Second // how long /stream waits for a first new item
)

// handleRun queues a job: {"id","status":"IN_QUEUE"} at once.
func handleRun(d *Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := submit(d, w, r)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "status": string(runpod.StatusInQueue)})
	}
}

// handleRunSync queues a job and waits for it, up to ?wait= ms (default 90 s).
func handleRunSync(d *Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := submit(d, w, r)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), syncWait(r))
		defer cancel()
		snap, _ := d.Jobs.Wait(ctx, id)
		writeJSON(w, http.StatusOK, snap)
	}
}

// handleStatus reports a job; /status-sync waits until it is final first.
func handleStatus(d *Deps, wait bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		var snap runpod.Snapshot
		var ok bool
		if wait {
			ctx, cancel := context.WithTimeout(r.Context(), syncWait(r))
			defer cancel()
			snap, ok = d.Jobs.Wait(ctx, id)
		} else {
			snap, ok = d.Jobs.Get(id)
		}
		if !ok {
			openai.WriteError(w, jobNotFound(id))
			return
		}
		writeJSON(w, http.StatusOK, snap)
	}
}

// handleStream returns the items produced since the previous /stream call.
func handleStream(d *Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		snap, ok := d.Jobs.Stream(r.Context(), id, streamWait)
		if !ok {
			openai.WriteError(w, jobNotFound(id))
			return
		}
		writeJSON(w, http.StatusOK, snap)
	}
}

// handleCancel cancels a job and aborts its engine request.
func handleCancel(d *Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		snap, ok := d.Jobs.Cancel(id)
		if !ok {
			openai.WriteError(w, jobNotFound(id))
			return
		}
		writeJSON(w, http.StatusOK, snap)
	}
}

// handlePurgeQueue drops every job still in the queue.
func handlePurgeQueue(d *Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"removed": d.Jobs.PurgeQueue(), "status": "completed"})
	}
}

// submit reads a /run or /runsync body and queues the job.
func submit(d *Deps, w http.ResponseWriter, r *http.Request) (string, bool) {
	if st := d.Status.Status().State; st == StateDraining || st == StateUnhealthy {
		ready(d, w) // 503 with Retry-After; while starting, jobs are queued instead
		return "", false
	}
	body, apiErr := readJSONBody(w, r, d.maxBody())
	if apiErr != nil {
		openai.WriteError(w, apiErr)
		return "", false
	}
	if !utf8.Valid(body) {
		openai.WriteError(w, openai.NewError(http.StatusBadRequest, "request body is not valid UTF-8"))
		return "", false
	}
	var req runpod.Request
	if err := json.Unmarshal(body, &req); err != nil {
		openai.WriteError(w, openai.NewError(http.StatusBadRequest,
			`the body must be a JSON object {"input": {...}, "webhook"?: url, "policy"?: {...}}: `+err.Error()))
		return "", false
	}
	if len(req.Input) == 0 || string(req.Input) == "null" {
		openai.WriteError(w, openai.NewError(http.StatusBadRequest, `the body has no "input"`).WithParam("input"))
		return "", false
	}
	if p := req.Policy; p != nil && (p.ExecutionTimeout < 0 || p.TTL < 0) {
		openai.WriteError(w, openai.NewError(http.StatusBadRequest,
			"policy.executionTimeout and policy.ttl are milliseconds and must not be negative").WithParam("policy"))
		return "", false
	}
	id, err := d.Jobs.Submit(req)
	switch {
	case errors.Is(err, runpod.ErrStoreFull):
		w.Header().Set("Retry-After", "5")
		openai.WriteError(w, openai.NewError(http.StatusTooManyRequests, err.Error()))
		return "", false
	case errors.Is(err, runpod.ErrClosed):
		w.Header().Set("Retry-After", "5")
		openai.WriteError(w, openai.NewError(http.StatusServiceUnavailable, err.Error()))
		return "", false
	case err != nil:
		openai.WriteError(w, openai.NewError(http.StatusInternalServerError, "could not queue the job"))
		return "", false
	}
	d.Log.Debug().Str("request_id", RequestID(r.Context())).Str("job_id", id).Msg("job queued")
	return id, true
}

// syncWait reads ?wait= (ms), bounded as RunPod bounds it.
func syncWait(r *http.Request) time.Duration {
	ms, err := strconv.ParseInt(r.URL.Query().Get("wait"), 10, 64)
	if err != nil || ms <= 0 {
		return defaultSyncWait
	}
	return min(time.Duration(ms)*time.Millisecond, maxSyncWait)
}

func jobNotFound(id string) *openai.Error {
	return openai.NewError(http.StatusNotFound, "no job with id "+strconv.Quote(id)+" (unknown, or its result has expired)")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		openai.WriteError(w, openai.NewError(http.StatusInternalServerError, "could not encode the answer"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
