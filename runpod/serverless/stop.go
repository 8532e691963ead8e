package serverless

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// stopLoop long-polls job-stop until ctx ends and stops the jobs it names.
func (h *Handler) stopLoop(ctx context.Context) {
	for ctx.Err() == nil {
		start := time.Now()
		ids, pause, err := h.pollStop(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.o.Log.Warn().Err(err).Msg("job-stop poll failed")
			pause = h.t.stopErr
		}
		for _, id := range ids {
			h.stopJob(id)
		}
		if len(ids) == 0 && pause == 0 {
			// A long-polling server is asked again at once; one that answers
			// "nothing" at once is not asked more than once per stopIdle.
			pause = h.t.stopIdle - time.Since(start)
		}
		sleepCtx(ctx, pause)
	}
}

// pollStop makes one job-stop call. It returns the job ids to stop, and how long
// to wait before the next call when RunPod asked for it (429).
func (h *Handler) pollStop(ctx context.Context) (ids []string, pause time.Duration, err error) {
	a, err := h.rpc().Poll(ctx, h.stop, shownURL(h.stop), h.t.longPoll, 1<<20, h.t.tooMany)
	switch {
	case err != nil:
		return nil, 0, err
	case a.Status == http.StatusOK:
		return parseJobsToStop(a.Body), 0, nil
	}
	return nil, a.Pause, nil // the poll ran out, 204, 400 or 429
}

// parseJobsToStop reads {"jobsToStop": ["id", ...]}; ids that are not strings are
// dropped and any other shape means none.
func parseJobsToStop(body []byte) []string {
	var v struct {
		JobsToStop []json.RawMessage `json:"jobsToStop"`
	}
	if len(body) == 0 || json.Unmarshal(body, &v) != nil {
		return nil
	}
	var ids []string
	for _, raw := range v.JobsToStop {
		var id string
		if json.Unmarshal(raw, &id) == nil && id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// stopJob cancels a running job at RunPod's request: its engine request is
// aborted and no result is posted for it. Unknown ids are ignored.
func (h *Handler) stopJob(id string) {
	h.mu.Lock()
	j := h.jobs[id]
	h.mu.Unlock()
	if j == nil {
		h.o.Log.Debug().Str("job_id", id).Msg("job-stop names a job that is not running here")
		return
	}
	if j.stopped.Swap(true) {
		return
	}
	h.o.Log.Info().Str("job_id", id).Msg("job-stop: cancelling the job")
	j.cancel(errJobStopped)
}
