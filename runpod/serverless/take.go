package serverless

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/vllm-worker/vllm-worker/openai"
)

// takenJob is one job as job-take hands it out.
type takenJob struct {
	id    string
	input json.RawMessage
}

// takeLoop takes jobs while slots are free, until ctx ends. It never takes more
// jobs than there are free slots, and waits while none is. A take that got jobs
// is followed by the next at once; one that got none (RunPod's long poll ran out,
// or a server that does not long-poll answered at once) is not followed sooner
// than takeIdle after it began, so an empty answer never makes a hot loop.
func (h *Handler) takeLoop(ctx context.Context) {
	failing := &backoff.ExponentialBackOff{
		InitialInterval: h.t.takeErrMin, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: h.t.takeErrMax,
	}
	failing.Reset()
	for {
		n := h.acquireSlots(ctx)
		if n == 0 {
			return
		}
		start := time.Now()
		jobs, pause, err := h.takeJobs(ctx, n)
		switch {
		case err != nil && ctx.Err() != nil:
			// Shutting down: the long poll was cut.
		case err != nil:
			pause = failing.NextBackOff()
			h.o.Log.Warn().Err(err).Dur("retry_in", pause).Msg("job take failed")
		default:
			failing.Reset()
			if len(jobs) == 0 {
				pause = max(pause, h.t.takeIdle-time.Since(start))
			}
		}
		for i, tj := range jobs {
			h.startJob(tj, i < n)
		}
		for range n - min(n, len(jobs)) {
			<-h.slots
		}
		sleepCtx(ctx, pause)
	}
}

// acquireSlots waits for one free slot, then takes every other free one. It
// returns how many it holds: zero when ctx ended or Abort was called first.
func (h *Handler) acquireSlots(ctx context.Context) int {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	case <-h.abortCtx.Done():
		return 0
	}
	if h.abortCtx.Err() != nil {
		// Abort freed this slot by failing a job; ctx hears of it a moment later.
		<-h.slots
		return 0
	}
	n := 1
	for n < cap(h.slots) {
		select {
		case h.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// takeURL is the single take, or the batch take when more than one slot is free.
func (h *Handler) takeURL(n int) string {
	inProgress := "0"
	if len(h.InProgress()) > 0 {
		inProgress = "1"
	}
	if n > 1 && h.takeBatch != "" {
		return addQuery(h.takeBatch, "batch_size", strconv.Itoa(n), "job_in_progress", inProgress)
	}
	return addQuery(h.take, "job_in_progress", inProgress)
}

// maxTakeBytes bounds a job-take answer: a batch of jobs with RunPod's largest
// payloads (20 MB each) would not come near it.
const maxTakeBytes = 256 << 20

// takeJobs makes one (long-poll) take call for up to n jobs. pause is how long to
// wait before the next call when RunPod asked for it (429) or had nothing (400);
// takeLoop adds its own least interval after any answer without a job.
func (h *Handler) takeJobs(ctx context.Context, n int) (jobs []takenJob, pause time.Duration, err error) {
	u := h.takeURL(n)
	a, err := h.rpc().Poll(ctx, u, shownURL(u), h.t.longPoll, maxTakeBytes, h.t.tooMany)
	switch {
	case err != nil:
		return nil, 0, err
	case a.Status == http.StatusBadRequest: // expected with FlashBoot: no job
		h.o.Log.Debug().Msg("job take answered 400: no job")
		return nil, h.t.takeBadRequest, nil
	case a.Status == http.StatusTooManyRequests:
		h.o.Log.Debug().Dur("retry_in", a.Pause).Msg("job take answered 429")
		return nil, a.Pause, nil
	case a.Status != http.StatusOK:
		return nil, 0, nil // the poll ran out, or 204: no job
	}
	if mt, _, _ := mime.ParseMediaType(a.Header.Get("Content-Type")); mt != "application/json" {
		h.o.Log.Debug().Str("content_type", a.Header.Get("Content-Type")).Msg("job take answered no JSON: no job")
		return nil, 0, nil
	}
	jobs, err = parseTaken(a.Body)
	if err != nil {
		h.o.Log.Error().Err(err).Msg("job take answered jobs that cannot be run")
	}
	return jobs, 0, nil
}

// parseTaken reads a job-take answer: an object is one job, an array many, an
// empty body none. A job without an id cannot be reported and is skipped (and
// named in the error); one without input runs and fails on it.
func parseTaken(body []byte) ([]takenJob, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil
	}
	if err := openai.CheckJSON(body); err != nil {
		return nil, fmt.Errorf("job take: %w", err)
	}
	var raws []json.RawMessage
	switch body[0] {
	case '{':
		raws = []json.RawMessage{body}
	case '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, fmt.Errorf("job take: invalid JSON: %w", err)
		}
	default:
		return nil, errors.New("job take: the answer is neither a job nor a list of jobs")
	}
	var jobs []takenJob
	var errs []error
	for i, raw := range raws {
		var j struct {
			ID    json.RawMessage `json:"id"`
			Input json.RawMessage `json:"input"`
		}
		if err := json.Unmarshal(raw, &j); err != nil {
			errs = append(errs, fmt.Errorf("job take: job %d: %w", i, err))
			continue
		}
		id, ok := takenJobID(j.ID)
		if !ok {
			errs = append(errs, fmt.Errorf("job take: job %d has no id", i))
			continue
		}
		jobs = append(jobs, takenJob{id: id, input: j.Input})
	}
	return jobs, errors.Join(errs...)
}

// takenJobID reads a job id: a non-empty string, or a number as written.
func takenJobID(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, s != ""
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), true
	}
	return "", false
}
