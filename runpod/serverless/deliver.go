package serverless

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// deliverResult posts a job's final result to job-done, with retries. A result
// that cannot be delivered is logged with the job id and counted.
func (h *Handler) deliverResult(log zerolog.Logger, jobID string, stream bool, body []byte) {
	u := addQuery(expandURL(h.o.DoneURL, h.o.WorkerID, jobID), "isStream", strconv.FormatBool(stream))
	// Not tied to any job or shutdown context: a result is worth its retries.
	if err := h.post(context.Background(), log, u, jobID, body); err != nil {
		h.failures.Add(1)
		log.Error().Err(err).Int("bytes", len(body)).Msg("the job's result could not be delivered to RunPod")
	}
}

// post sends one POST with retries on network errors, 429 and 5xx (honouring
// Retry-After); any other 4xx is final. Its body is JSON though the content
// type says form-urlencoded, with the non-standard "charset" header, as the SDK
// sends it.
func (h *Handler) post(ctx context.Context, log zerolog.Logger, u, jobID string, body []byte) error {
	c := h.rpc()
	c.OnRetry = func(err error, wait time.Duration) {
		h.retries.Add(1)
		log.Warn().Err(err).Dur("retry_in", wait).Msg("POST to RunPod failed; retrying")
	}
	return c.Post(ctx, u, shownURL(u), body, http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"},
		"Charset":      {"utf-8"},
		"X-Request-Id": {jobID},
	})
}

// shownURL is a RunPod URL as logs and errors show it: the API key travels in a
// header, and the query only holds ids.
func shownURL(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return "(an unparsable URL)"
}

// streamSender posts one job's output items to job-stream, in order, from its
// own goroutine, so that generation never waits for a POST. Its queue is
// unbounded, but every item is also held in the job's aggregated output anyway.
//
// Its POSTs are bounded so that they never hold up a drain for long: each item
// has the usual retries, but once one item is given up the job's later items are
// dropped without a try (one budget per job, not one per item), and once the
// drain deadline has passed, the item in flight is cut and the ones still queued
// are dropped. A dropped item counts as a delivery failure; the drops are logged
// once per job. The final result is not affected: it holds every item.
type streamSender struct {
	h    *Handler
	job  *handlerJob
	log  zerolog.Logger
	ctx  context.Context // the job's sendCtx, also ended at the drain deadline
	wake chan struct{}   // capacity 1: "the queue changed"
	done chan struct{}   // closed when run returns

	mu     sync.Mutex
	queue  []json.RawMessage
	closed bool
}

func newStreamSender(h *Handler, j *handlerJob, log zerolog.Logger) *streamSender {
	s := &streamSender{h: h, job: j, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(j.sendCtx)
	unhook := context.AfterFunc(h.drainOver, cancel)
	s.ctx = ctx
	go func() { // owned by the job's goroutine, which waits in finish
		defer cancel()
		defer unhook()
		s.run()
	}()
	return s
}

// push queues an item; it is the job's runpod.Emit.
func (s *streamSender) push(item json.RawMessage) error {
	s.mu.Lock()
	s.queue = append(s.queue, item)
	s.mu.Unlock()
	s.signal()
	return nil
}

func (s *streamSender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// finish waits until every queued item was delivered or given up.
func (s *streamSender) finish() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
	<-s.done
}

func (s *streamSender) run() {
	defer close(s.done)
	u := addQuery(expandURL(s.h.o.StreamURL, s.h.o.WorkerID, s.job.id), "isStream", "false")
	dropped, why := 0, "" // why is set once items are being dropped
	defer func() {
		if dropped > 0 {
			s.log.Error().Int("items", dropped).Str("reason", why).Msg("stream items dropped without being delivered to RunPod")
		}
	}()
	drop := func(reason string) {
		if why == "" {
			why = reason
		}
		dropped++
		s.h.failures.Add(1)
	}
	const afterDeadline = "the drain deadline passed"
	for {
		s.mu.Lock()
		batch, closed := s.queue, s.closed
		s.queue = nil
		s.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			<-s.wake
			continue
		}
		for _, item := range batch {
			switch {
			case s.job.sendCtx.Err() != nil:
				continue // the job was stopped: RunPod wants nothing more of it
			case why != "":
				drop(why)
				continue
			case s.h.drainOver.Err() != nil:
				drop(afterDeadline)
				continue
			}
			body := make([]byte, 0, len(item)+12)
			body = append(append(append(body, `{"output":`...), item...), '}')
			err := s.h.post(s.ctx, s.log, u, s.job.id, body)
			switch {
			case err == nil, s.job.sendCtx.Err() != nil:
			case s.h.drainOver.Err() != nil:
				drop(afterDeadline)
			default:
				s.h.failures.Add(1)
				s.log.Error().Err(err).Msg("a stream item could not be delivered to RunPod; the job's later stream items are dropped")
				why = "an earlier stream item of the job could not be delivered"
			}
		}
	}
}
