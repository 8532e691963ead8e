package serverless

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/runpod"
)

// handlerJob is one job taken from RunPod, from take to its final POST.
type handlerJob struct {
	id    string
	input json.RawMessage

	// ctx is the engine side: it ends when the job is stopped, at the drain
	// timeout and at Abort, and its cause tells which.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// sendCtx bounds the job's stream POSTs: it ends only when the job is stopped,
	// so the items of a job failed by shutdown are still delivered (up to the
	// drain deadline, see Handler.drainOver).
	sendCtx  context.Context
	stopSend context.CancelFunc
	stopped  atomic.Bool
}

// startJob registers a taken job and runs it in its own goroutine. hasSlot says
// whether the caller already holds a concurrency slot for it.
func (h *Handler) startJob(tj takenJob, hasSlot bool) {
	ctx, cancel := context.WithCancelCause(h.jobsCtx)
	sendCtx, stopSend := context.WithCancel(context.Background())
	j := &handlerJob{id: tj.id, input: tj.input, ctx: ctx, cancel: cancel, sendCtx: sendCtx, stopSend: stopSend}
	h.mu.Lock()
	_, dup := h.jobs[j.id]
	if !dup {
		h.jobs[j.id] = j
	}
	h.mu.Unlock()
	if dup {
		// RunPod handed out a job this worker is running already: running it twice
		// would post two results.
		h.o.Log.Warn().Str("job_id", j.id).Msg("job taken twice; the second copy is ignored")
		cancel(nil)
		stopSend()
		if hasSlot {
			<-h.slots
		}
		return
	}
	h.jobsTaken.Add(1)
	h.jobsWG.Go(func() { h.runJob(j, hasSlot) })
}

// runJob owns one job: it waits for a slot if it has none, runs the job, posts
// its result and frees its place.
func (h *Handler) runJob(j *handlerJob, hasSlot bool) {
	log := h.o.Log.With().Str("job_id", j.id).Logger()
	defer func() {
		j.cancel(nil)
		j.stopSend()
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

	stream, items, err := h.execute(j, log)
	if err != nil && j.ctx.Err() != nil {
		err = context.Cause(j.ctx) // the shutdown or abort, not the engine's echo of it
	} else if fatal := h.engineFailure(err); fatal != nil {
		h.Abort(fatal) // this job's result, like every running one's, carries stopPod
	}
	body := resultBody(items, err, h.abortCtx.Err() != nil)
	// Checked last, just before the POST: a job stopped at any moment until now
	// (also during the drain after SIGTERM) posts nothing.
	if j.stopped.Load() {
		h.cancelled.Add(1)
		log.Info().Msg("job stopped by RunPod; no result is posted")
		return
	}
	if err != nil {
		h.failed.Add(1)
		log.Warn().Err(err).Msg("job failed")
	} else {
		h.completed.Add(1)
		log.Debug().Int("items", len(items)).Msg("job completed")
	}
	h.deliverResult(log, j.id, stream, body)
}

// execute parses and runs the job. With a stream URL, every output item (of a
// streamed job or not) is posted to it as it comes, and all of them are
// delivered (or given up) before execute returns. stream is the input's flag,
// which only sets isStream on the final result.
func (h *Handler) execute(j *handlerJob, log zerolog.Logger) (stream bool, items []json.RawMessage, err error) {
	in, err := runpod.ParseInput(j.input)
	if err != nil {
		return false, nil, err
	}
	if j.ctx.Err() != nil { // shut down or aborted while waiting for a slot
		return in.Stream, nil, context.Cause(j.ctx)
	}
	var emit runpod.Emit
	var s *streamSender
	if h.o.StreamURL != "" {
		s = newStreamSender(h, j, log)
		emit = s.push
	}
	log.Debug().Bool("stream", in.Stream).Msg("job started")
	items, err = h.o.Runner.Run(j.ctx, j.id, in, emit)
	if s != nil {
		s.finish()
	}
	return in.Stream, items, err
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
