package sim

import (
	"context"
	"net/http"
	"time"
)

// generation is one accepted request on its way through the engine.
type generation struct {
	*genRequest
	id      string // chatcmpl-…, cmpl-… or resp_…, the same on every chunk
	created int64
	start   time.Time
	seqs    []sequence
	tokens  int // prompt tokens over all prompts
}

func (s *Server) newGeneration(req *genRequest, start time.Time) *generation {
	g := &generation{genRequest: req, created: start.Unix(), start: start}
	switch req.kind {
	case kindChat:
		g.id = "chatcmpl-" + req.baseID
	case kindCompletion:
		g.id = "cmpl-" + req.baseID
	default:
		g.id = req.baseID // resp_…
	}
	n := req.n
	g.seqs = make([]sequence, 0, n*len(req.prompts))
	for pi, p := range req.prompts {
		g.tokens += p.tokens
		for i := range n {
			// With several prompts, vLLM numbers choices prompt_idx*n + i.
			g.seqs = append(g.seqs, s.vocab.newSequence(pi*n+i, p, i, req.maxTokens, req.stops, req.tool))
		}
	}
	return g
}

// completionTokens sums the tokens generated so far over all choices.
func (g *generation) completionTokens() int {
	c := 0
	for i := range g.seqs {
		c += g.seqs[i].k
	}
	return c
}

// steps is the number of generation steps: the longest choice's tokens.
func (g *generation) steps() int {
	n := 0
	for i := range g.seqs {
		n = max(n, g.seqs[i].total)
	}
	return n
}

// admit waits for a MaxNumSeqs slot; false means the client left while waiting.
// Waiters are served in arrival order: a freed slot goes to the oldest blocked
// sender of the channel.
func (s *Server) admit(ctx context.Context) bool {
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
		default:
			s.waiting.Add(1)
			select {
			case s.slots <- struct{}{}:
				s.waiting.Add(-1)
			case <-ctx.Done():
				s.waiting.Add(-1)
				return false
			}
		}
	}
	s.running.Add(1)
	return true
}

// release gives back the slot admit took.
func (s *Server) release() {
	s.running.Add(-1)
	if s.slots != nil {
		<-s.slots
	}
}

// outcome is how a generation ended, for the counters and the log.
type outcome int

const (
	finished outcome = iota
	aborted
	faulted
)

// finish accounts for g's end.
func (s *Server) finish(g *generation, how outcome) {
	m := s.metrics
	m.generationTokens.Add(int64(g.completionTokens()))
	switch how {
	case finished:
		for i := range g.seqs {
			m.finished(g.seqs[i].reason)
		}
	case aborted:
		s.aborts.Add(1)
		for i := range g.seqs {
			if sq := &g.seqs[i]; sq.done() {
				m.finished(sq.reason)
			} else {
				m.success[finishAbort].Add(1)
			}
		}
	case faulted:
		s.faults.Add(1)
	}
	if s.o.Log != nil {
		what := [...]string{"finished", "aborted", "fault " + g.fault}[how]
		s.logf("%s stream=%t n=%d prompt_tokens=%d completion_tokens=%d %s in %s",
			g.id, g.stream, len(g.seqs), g.tokens, g.completionTokens(), what, time.Since(g.start).Round(time.Microsecond))
	}
}

// handleGenerate serves /v1/chat/completions and /v1/completions.
func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request, k kind) {
	start := time.Now()
	o, _, e := readBody(w, r)
	var req *genRequest
	if e == nil {
		req, e = s.parseGenerate(r, o, k)
	}
	if e != nil {
		s.reject(w, r, e)
		return
	}
	s.serve(w, r, req, start)
}

// serve runs an accepted request: the engine's own refusal in-band, the faults
// that act before the first byte, then the stream or the whole answer.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, req *genRequest, start time.Time) {
	if e := req.engineErr; e != nil { // only streams get here: the error comes in-band
		s.logf("%s %s: in-band %d %s", r.Method, r.URL.Path, e.Status, firstLine(e.Message))
		if req.kind == kindResponses {
			s.refuseResponseStream(w, s.newGeneration(req, start))
			return
		}
		s.streamError(w, req)
		return
	}
	s.requests.Add(1)
	g := s.newGeneration(req, start)
	if !s.faultBefore(w, r, g) {
		return
	}
	switch {
	case req.kind == kindResponses && req.stream:
		s.streamResponse(r.Context(), w, g)
	case req.stream:
		s.stream(r.Context(), w, g)
	default:
		s.complete(r.Context(), w, g)
	}
}
