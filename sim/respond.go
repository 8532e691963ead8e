package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// null marshals as JSON null: vLLM's fields that are present but unset.
type null struct{}

// MarshalJSON implements json.Marshaler.
func (null) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

// usage is vLLM's usage object of a non-streaming response.
type usage struct {
	PromptTokens            int  `json:"prompt_tokens"`
	TotalTokens             int  `json:"total_tokens"`
	CompletionTokens        int  `json:"completion_tokens"`
	PromptTokensDetails     null `json:"prompt_tokens_details"`
	CompletionTokensDetails null `json:"completion_tokens_details"`
}

func newUsage(prompt, completion int) usage {
	return usage{PromptTokens: prompt, TotalTokens: prompt + completion, CompletionTokens: completion}
}

// stopReason is a choice's stop_reason: the matched stop string, or null.
func stopReason(sq *sequence) *string {
	if sq.reason != "stop" || sq.tool != nil {
		return nil
	}
	return &sq.stop
}

// marshal is json.Marshal without the HTML escapes Python's json never writes.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // cannot fail: strings, numbers and nulls only
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// pacer sleeps between generation steps on one reusable timer. It keeps to a
// schedule (start + TTFT + k*ITL) so that writing a chunk does not stretch the
// inter-token latency, but never bursts to catch up once it has fallen behind.
type pacer struct {
	t    *time.Timer
	next time.Time
}

func newPacer(start time.Time) *pacer { return &pacer{next: start} }

// wait sleeps until d after the previous deadline; false means ctx ended first.
func (p *pacer) wait(ctx context.Context, d time.Duration) bool {
	if d > 0 {
		p.next = p.next.Add(d)
		if sleep := time.Until(p.next); sleep > 0 {
			if p.t == nil {
				p.t = time.NewTimer(sleep)
			} else {
				p.t.Reset(sleep) // Go ≥1.23 timers: Reset needs no drain
			}
			select {
			case <-ctx.Done():
				return false
			case <-p.t.C:
				return true
			}
		}
		p.next = time.Now()
	}
	select {
	case <-ctx.Done():
		return false
	default:
		return true
	}
}

func (p *pacer) stop() {
	if p.t != nil {
		p.t.Stop()
	}
}

// complete serves a non-streaming request: it waits as long as generation would
// take, then writes the whole response.
func (s *Server) complete(ctx context.Context, w http.ResponseWriter, g *generation) {
	if !s.admit(ctx) {
		s.finish(g, aborted)
		return
	}
	defer s.release()
	s.metrics.promptTokens.Add(int64(g.tokens))
	if g.fault == faultHang {
		<-ctx.Done()
		s.finish(g, aborted)
		return
	}
	p := newPacer(time.Now())
	defer p.stop()
	if !p.wait(ctx, s.o.TTFT) {
		s.finish(g, aborted)
		return
	}
	s.metrics.ttft.observe(time.Since(g.start))
	if !p.wait(ctx, time.Duration(g.steps()-1)*s.o.ITL) {
		s.finish(g, aborted)
		return
	}
	if s.faultAfterStart(w, g) {
		return
	}
	var body []byte
	switch g.kind {
	case kindChat:
		body = s.chatBody(g)
	case kindCompletion:
		body = s.completionBody(g)
	default:
		body = s.responseBody(g)
	}
	writeJSON(w, http.StatusOK, body)
	s.finish(g, finished)
}
