package serverless

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/vllm-worker/vllm-worker/runpod"
)

// deliverResult posts a job's final result to job-done, with retries. Every
// job-done says isStream=true, as the SDK's does for a generator handler, which
// worker-vllm's is: the job's items went to job-stream as they came. A result
// that cannot be delivered is logged with the job id and counted.
func (h *Handler) deliverResult(log zerolog.Logger, jobID string, body []byte) {
	u := addQuery(expandURL(h.o.DoneURL, h.o.WorkerID, jobID), "isStream", "true")
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

// streamSender posts one job's items to job-stream, in order, from its own
// goroutine, paced by RunPod. While a POST is in flight, the items the job
// produces meanwhile are merged (runpod.MergeItems) into the one item that
// waits for it: at most one item waits, so a streamed job never falls behind
// its generation, whatever RunPod's latency, and ends at most two POSTs after
// its last token. When RunPod keeps up, the items are the batch policy's.
//
// Each POST has its own bounded retries. One that is given up is logged and
// counted, and its content joins the next item, so that the stream loses
// nothing. When the job's context ends (job-stop, the drain's cut, Abort), the
// sender stops posting. The items as posted (plus, at the end, any it could not
// post) are the job's output.
type streamSender struct {
	h    *Handler
	job  *handlerJob
	log  zerolog.Logger
	url  string
	wake chan struct{} // capacity 1: "something to post, or closed"
	done chan struct{} // closed when run returns

	mu      sync.Mutex
	waiting []json.RawMessage // the item behind the one in flight: one, but for an item MergeItems refused
	held    bool              // waiting[0] holds a given-up item: post it again only with more content, never alone
	closed  bool
	out     []json.RawMessage
}

func newStreamSender(h *Handler, j *handlerJob, log zerolog.Logger) *streamSender {
	s := &streamSender{h: h, job: j, log: log, wake: make(chan struct{}, 1), done: make(chan struct{}),
		url: addQuery(expandURL(h.o.StreamURL, h.o.WorkerID, j.id), "isStream", "false")} // the SDK's stream POSTs say false
	go s.run() // owned by the job's goroutine, which waits in finish
	return s
}

// push adds an item: it waits (merged into the waiting one) while a POST is in
// flight. It is the job's runpod.Emit, and never blocks the engine's reader.
func (s *streamSender) push(item json.RawMessage) error {
	s.mu.Lock()
	s.waitLocked(item)
	s.mu.Unlock()
	s.signal()
	return nil
}

// waitLocked merges item into the waiting one.
func (s *streamSender) waitLocked(item json.RawMessage) {
	s.held = false // what waits now is more than the item given up
	if n := len(s.waiting); n > 0 {
		if merged, err := runpod.MergeItems(s.waiting[n-1], item); err == nil {
			s.waiting[n-1] = merged
			return
		} else {
			s.log.Error().Err(err).Msg("stream items that cannot be merged; posting them one by one")
		}
	}
	s.waiting = append(s.waiting, item)
}

func (s *streamSender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// finish waits until every item was posted or given up, and returns the job's
// items.
func (s *streamSender) finish() []json.RawMessage {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(s.out, s.waiting...) // what came after the sender stopped posting
}

func (s *streamSender) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		if len(s.waiting) == 0 || s.held {
			closed := s.closed
			if closed && s.held {
				// The last content was given up: it stays in the output only.
				s.out = append(s.out, s.waiting...)
				s.waiting, s.held = nil, false
			}
			s.mu.Unlock()
			if closed {
				return
			}
			<-s.wake
			continue
		}
		item := s.waiting[0]
		s.waiting = s.waiting[1:]
		s.mu.Unlock()

		if s.job.ctx.Err() != nil {
			s.stopPosting(item)
			return
		}
		body := make([]byte, 0, len(item)+12)
		body = append(append(append(body, `{"output":`...), item...), '}')
		err := s.h.post(s.job.ctx, s.log, s.url, s.job.id, body)
		s.mu.Lock()
		switch {
		case err == nil:
			s.out = append(s.out, item)
		case s.job.ctx.Err() != nil:
			s.mu.Unlock()
			s.stopPosting(item)
			return
		default:
			// Given up after its retries: logged and counted, and its content
			// joins the next item, or, after the last, stays in the output only.
			s.h.failures.Add(1)
			s.log.Error().Err(err).Int("bytes", len(body)).Msg("a stream item could not be delivered to RunPod; its content joins the next item")
			rest := s.waiting
			s.waiting = nil
			s.waitLocked(item)
			for _, r := range rest {
				s.waitLocked(r)
			}
			s.held = len(rest) == 0 // nothing new yet: wait for it rather than post the same body again
		}
		s.mu.Unlock()
	}
}

// stopPosting ends the stream when the job's context ended: a stopped job wants
// nothing more posted; a cut or aborted one keeps what was not posted in its
// output, which only a job that had finished still delivers.
func (s *streamSender) stopPosting(item json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = append(s.out, item)
	s.out = append(s.out, s.waiting...)
	s.waiting = nil
}
