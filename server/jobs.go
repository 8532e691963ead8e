package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/vllm-worker/vllm-worker/openai"
	"github.com/vllm-worker/vllm-worker/runpod"
	"github.com/vllm-worker/vllm-worker/runpod/jobstore"
)

// jobStore is what the RunPod endpoint routes need; *jobstore.Store is the real one.
type jobStore interface {
	Submit(req jobstore.Request) (string, error)
	Get(id string) (jobstore.Snapshot, bool)
	Wait(ctx context.Context, id string) (jobstore.Snapshot, bool)
	Stream(ctx context.Context, id string, wait time.Duration) (jobstore.StreamSnapshot, bool)
	Cancel(id string) (jobstore.Snapshot, bool)
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
	return d.handle(func(w http.ResponseWriter, r *http.Request) error {
		id, err := submit(d, w, r)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, map[string]string{"id": id, "status": string(jobstore.StatusInQueue)})
	})
}

// handleRunSync queues a job and waits for it, up to ?wait= ms (default 90 s).
func handleRunSync(d *Deps) http.HandlerFunc {
	return d.handle(func(w http.ResponseWriter, r *http.Request) error {
		id, err := submit(d, w, r)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(r.Context(), syncWait(r))
		defer cancel()
		snap, _ := d.Jobs.Wait(ctx, id)
		return writeJSON(w, http.StatusOK, snap)
	})
}

// handleStatus reports a job; /status-sync waits until it is final first.
func handleStatus(d *Deps, wait bool) http.HandlerFunc {
	return d.handle(func(w http.ResponseWriter, r *http.Request) error {
		id := chi.URLParam(r, "id")
		var snap jobstore.Snapshot
		var ok bool
		if wait {
			ctx, cancel := context.WithTimeout(r.Context(), syncWait(r))
			defer cancel()
			snap, ok = d.Jobs.Wait(ctx, id)
		} else {
			snap, ok = d.Jobs.Get(id)
		}
		if !ok {
			return jobNotFound(id)
		}
		return writeJSON(w, http.StatusOK, snap)
	})
}

// handleStream returns the items produced since the previous /stream call.
func handleStream(d *Deps) http.HandlerFunc {
	return d.handle(func(w http.ResponseWriter, r *http.Request) error {
		id := chi.URLParam(r, "id")
		snap, ok := d.Jobs.Stream(r.Context(), id, streamWait)
		if !ok {
			return jobNotFound(id)
		}
		return writeJSON(w, http.StatusOK, snap)
	})
}

// handleCancel cancels a job and aborts its engine request.
func handleCancel(d *Deps) http.HandlerFunc {
	return d.handle(func(w http.ResponseWriter, r *http.Request) error {
		id := chi.URLParam(r, "id")
		snap, ok := d.Jobs.Cancel(id)
		if !ok {
			return jobNotFound(id)
		}
		return writeJSON(w, http.StatusOK, snap)
	})
}

// handlePurgeQueue drops every job still in the queue.
func handlePurgeQueue(d *Deps) http.HandlerFunc {
	return d.handle(func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, map[string]any{"removed": d.Jobs.PurgeQueue(), "status": "completed"})
	})
}

// submit reads a /run or /runsync body and queues the job.
func submit(d *Deps, w http.ResponseWriter, r *http.Request) (string, error) {
	if st := d.Status.Status().State; st == StateDraining || st == StateUnhealthy {
		return "", ready(d) // 503 with Retry-After; while starting, jobs are queued instead
	}
	body, err := readJSONBody(d, w, r)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(body) {
		return "", openai.NewError(http.StatusBadRequest, "request body is not valid UTF-8")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "", openai.NewError(http.StatusBadRequest, `the body is empty; expected a JSON object {"input": {...}}`)
	}
	if err := openai.CheckJSON(body); err != nil {
		return "", openai.JSONError(err) // before encoding/json, which recurses
	}
	var req jobstore.Request
	if err := json.Unmarshal(body, &req); err != nil {
		return "", openai.NewError(http.StatusBadRequest,
			`the body must be a JSON object {"input": {...}, "webhook"?: url, "policy"?: {...}}: `+err.Error())
	}
	if len(req.Input) == 0 || string(req.Input) == "null" {
		return "", openai.NewError(http.StatusBadRequest, `the body has no "input"`).WithParam("input")
	}
	id, err := d.Jobs.Submit(req)
	if err != nil {
		return "", err // mapped by writeError: 400, 429 or 503
	}
	d.Log.Debug().Str("request_id", RequestID(r.Context())).Str("job_id", id).Msg("job queued")
	return id, nil
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

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode the answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}
