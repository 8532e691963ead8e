package serverless

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/metrics"
	"github.com/vllm-worker/vllm-worker/runpod"
)

// handlerJob is one job taken from RunPod, from take to its final POST.
type handlerJob struct {
	id    string
	input json.RawMessage

	// ctx bounds the job's engine request and its stream POSTs: it ends when the
	// job is stopped (errJobStopped), when the drain is cut (errDraining) and at
	// Abort, and its cause tells which.
	ctx     context.Context
	cancel  context.CancelCauseFunc
	stopped atomic.Bool
}

// startJob registers a taken job and runs it in its own goroutine. hasSlot says
// whether the caller already holds a concurrency slot for it.
func (h *Handler) startJob(tj takenJob, hasSlot bool) {
	ctx, cancel := context.WithCancelCause(h.jobsCtx)
	j := &handlerJob{id: tj.id, input: tj.input, ctx: ctx, cancel: cancel}
	h.mu.Lock()
	_, dup := h.jobs[j.id]
	if !dup {
		h.jobs[j.id] = j
	}
	h.mu.Unlock()
	if dup {
		// RunPod handed out a job this worker is running already: running it twice
		// would post two results.
		h.o.Log.Warn().Str("job_id", j.id).Str("requestId", j.id).Msg("job taken twice; the second copy is ignored")
		cancel(nil)
		if hasSlot {
			<-h.slots
		}
		return
	}
	h.jobsTaken.Add(1)
	h.jobsWG.Go(func() { h.runJob(j, hasSlot) })
}

// runJob owns one job: it waits for a slot if it has none, runs the job, posts
// its result and frees its place. Its log lines carry the job id twice: as
// job_id, and as requestId, the field RunPod's console groups a job's lines by
// (the SDK's JSON log format).
func (h *Handler) runJob(j *handlerJob, hasSlot bool) {
	log := h.o.Log.With().Str("job_id", j.id).Str("requestId", j.id).Logger()
	defer func() {
		j.cancel(nil)
		h.mu.Lock()
		delete(h.jobs, j.id)
		h.mu.Unlock()
		if hasSlot {
			<-h.slots
		}
	}()
	if !hasSlot {
		// More jobs came in a batch than were asked for: this one waits its turn.
		select {
		case h.slots <- struct{}{}:
			hasSlot = true
		case <-j.ctx.Done():
		}
	}

	started := time.Now()
	items, err := h.execute(j, log)
	if err != nil && j.ctx.Err() != nil {
		err = context.Cause(j.ctx) // the stop, cut or abort, not the engine's echo of it
	} else if fatal := h.engineFailure(err); fatal != nil {
		h.Abort(fatal) // this job's result, like every running one's, carries stopPod
	}
	took := time.Since(started)
	// Checked last, just before the POST: a job stopped at any moment until now
	// (also during the drain after SIGTERM) posts nothing.
	switch {
	case j.stopped.Load():
		h.cancelled.Add(1)
		h.o.Metrics.Aborted(metrics.AbortJobStop)
		log.Info().Str("end", "stopped").Dur("took", took).Msg("job stopped by RunPod; no result is posted")
		return
	case errors.Is(err, errDraining):
		// Cut by the shutdown: RunPod gets nothing, so it can give the job to
		// another worker, as with the SDK killed under a job.
		h.cut.Add(1)
		h.o.Metrics.Aborted(metrics.AbortShutdown)
		log.Warn().Str("end", "shutdown").Dur("took", took).Msg("job cut by the shutdown; no result is posted, so that RunPod can retry it elsewhere")
		return
	case err != nil:
		h.failed.Add(1)
		log.Warn().Err(err).Str("end", "failed").Dur("took", took).Msg("job failed")
	default:
		h.completed.Add(1)
		log.Info().Str("end", "completed").Int("items", len(items)).Dur("took", took).Msg("job completed")
	}
	h.deliverResult(log, j.id, resultBody(items, err, h.abortCtx.Err() != nil))
}

// execute parses and runs the job. With a stream URL, every output item (of a
// streamed job or not) is posted to it as it comes, paced by RunPod, and all of
// them are delivered (or given up) before execute returns; the items are then
// the job's output as posted.
func (h *Handler) execute(j *handlerJob, log zerolog.Logger) ([]json.RawMessage, error) {
	in, err := runpod.ParseInput(j.input)
	if err != nil {
		return nil, err
	}
	if j.ctx.Err() != nil { // cut or aborted while waiting for a slot
		return nil, context.Cause(j.ctx)
	}
	log.Debug().Bool("stream", in.Stream).Msg("job started")
	if h.o.StreamURL == "" {
		return h.o.Runner.Run(j.ctx, j.id, in, nil)
	}
	s := newStreamSender(h, j, log)
	_, err = h.o.Runner.Run(j.ctx, j.id, in, s.push)
	return s.finish(), err
}

// resultBody is a job's final result: {"output":[items]} or {"error":"..."},
// with "stopPod": true after Abort (as the SDK's refresh_worker does).
func resultBody(items []json.RawMessage, err error, stopPod bool) []byte {
	if err == nil {
		if items == nil {
			items = []json.RawMessage{}
		}
		b, merr := json.Marshal(struct {
			Output  []json.RawMessage `json:"output"`
			StopPod bool              `json:"stopPod,omitempty"`
		}{items, stopPod})
		if merr == nil {
			return b
		}
		err = errors.New("the job's output is not valid JSON: " + merr.Error())
	}
	b, _ := json.Marshal(struct {
		Error   string `json:"error"`
		StopPod bool   `json:"stopPod,omitempty"`
	}{err.Error(), stopPod})
	return b
}

// engineExitGrace is how long a failed job waits for the engine's exit to be
// seen: the broken stream and the process exit race.
const engineExitGrace = 2 * time.Second

// engineFailure tells a job's failure from the engine's: a CUDA error (after
// which the GPU cannot be trusted), or an engine that died under the job. Either
// is an *engine.FatalError, and aborts the handler so that the worker exits and
// the platform replaces it, as worker-vllm does.
func (h *Handler) engineFailure(err error) error {
	var ee *engine.Error
	if err == nil || !errors.As(err, &ee) || ee.Status < 500 {
		return nil
	}
	if ee.Fatal() {
		return &engine.FatalError{Reason: "the engine reported a CUDA error", Err: ee}
	}
	if h.o.EngineGone != nil {
		if dead := h.o.EngineGone(engineExitGrace); dead != nil {
			return &engine.FatalError{Reason: "the engine died", Err: dead}
		}
	}
	return nil
}
