package sim

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// maxBodyBytes bounds a request body; vLLM has no such limit, but a test that
// sends gigabytes to the simulator has a bug.
const maxBodyBytes = 64 << 20

// defaultMaxTokens is the generation length when the request gives none.
const defaultMaxTokens = 16

// genRequest is a validated chat or completions request.
type genRequest struct {
	chat       bool
	f          openai.Fields
	prompts    []prompt // chat: exactly one
	maxTokens  int
	stops      []string
	continuous bool // stream_options.continuous_usage_stats (with include_usage)
	fault      string
	faultAfter int    // content chunks before a mid-stream fault
	baseID     string // vLLM's request id: X-Request-Id, else request_id, else random
}

// readJSONBody checks the Content-Type as vLLM does (but lets a missing one pass)
// and reads the body.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, *openai.Error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, openai.NewError(http.StatusBadRequest, "Unsupported Media Type: Only 'application/json' is allowed")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return nil, openai.NewError(http.StatusRequestEntityTooLarge, "request body too large")
		}
		return nil, openai.NewError(http.StatusBadRequest, "cannot read request body")
	}
	return body, nil
}

// checkModel answers an absent or empty model with the served one, and any other
// with vLLM's 404.
func (s *Server) checkModel(f openai.Fields) *openai.Error {
	if f.Model == "" || f.Model == s.o.Model {
		return nil
	}
	return openai.NewError(http.StatusNotFound, "The model `"+f.Model+"` does not exist.").WithParam("model")
}

// parse validates a generation request body.
func (s *Server) parse(r *http.Request, body []byte, chat bool) (*genRequest, *openai.Error) {
	f, e := openai.Peek(body)
	if e != nil {
		return nil, e
	}
	req := &genRequest{chat: chat, f: f, faultAfter: 2}
	var maxTokens, maxCompletion gjson.Result
	var seenInput bool
	gjson.ParseBytes(body).ForEach(func(key, v gjson.Result) bool {
		switch key.Str {
		case "messages":
			if chat {
				seenInput = true
				req.prompts = []prompt{{hash: fnvOffset}}
				e = parseMessages(v, req.prompts[0].addText)
			}
		case "prompt":
			if !chat {
				seenInput = true
				req.prompts, e = parsePrompts(v)
			}
		case "max_tokens":
			maxTokens = v
		case "max_completion_tokens":
			maxCompletion = v
		case "stop":
			req.stops, e = parseStop(v)
		case "stream_options":
			req.continuous = v.Get("continuous_usage_stats").Type == gjson.True
		case "request_id":
			if chat && v.Type == gjson.String && v.Str != "" {
				req.baseID = v.Str
			}
		case "sim_fault":
			req.fault, e = parseFault(v)
		case "sim_fault_after":
			if v.Type != gjson.Number || v.Num != float64(int32(v.Num)) || v.Num < 0 {
				e = openai.NewError(http.StatusBadRequest, "'sim_fault_after' must be a non-negative integer").WithParam("sim_fault_after")
			}
			req.faultAfter = int(v.Num)
		}
		return e == nil
	})
	if e != nil {
		return nil, e
	}
	if !seenInput {
		field := "prompt"
		if chat {
			field = "messages"
		}
		return nil, openai.NewError(http.StatusBadRequest, field+": Field required").WithParam(field)
	}
	if e := s.checkModel(f); e != nil {
		return nil, e
	}
	// Peek has checked both are non-negative integers when present. Chat prefers
	// max_completion_tokens, as vLLM does; completions know only max_tokens.
	// Values beyond any context length are clamped before the int conversion.
	req.maxTokens = defaultMaxTokens
	param := "max_tokens"
	if chat && maxCompletion.Type == gjson.Number {
		req.maxTokens, param = int(min(maxCompletion.Num, 1<<40)), "max_completion_tokens"
	} else if maxTokens.Type == gjson.Number {
		req.maxTokens = int(min(maxTokens.Num, 1<<40))
	} else if chat {
		// vLLM lets a chat without a limit fill the context; the simulator generates
		// the default 16 tokens, or what room the prompt leaves.
		req.maxTokens = max(1, min(defaultMaxTokens, s.o.MaxModelLen-req.prompts[0].tokens))
	}
	if req.maxTokens < 1 {
		return nil, openai.NewError(http.StatusBadRequest, fmt.Sprintf("max_tokens must be at least 1, got %d.", req.maxTokens)).WithParam(param)
	}
	for _, p := range req.prompts {
		if e := s.checkContext(p.tokens, req.maxTokens); e != nil {
			return nil, e
		}
	}
	req.continuous = req.continuous && f.IncludeUsage // vLLM ignores it without include_usage
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 256 {
		req.baseID = id // vLLM builds the response id from X-Request-Id
	}
	if req.baseID == "" {
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
		req.baseID = hex.EncodeToString(b[:]) // like vLLM's uuid4().hex
	}
	return req, nil
}

// checkContext rejects a prompt that, with maxTokens, overflows MaxModelLen, with
// vLLM's message.
func (s *Server) checkContext(promptTokens, maxTokens int) *openai.Error {
	limit := s.o.MaxModelLen
	switch {
	case promptTokens >= limit:
		return openai.NewError(http.StatusBadRequest, fmt.Sprintf("This model's maximum context length is %d tokens. "+
			"However, you requested %d tokens in the messages, Please reduce the length of the messages.", limit, promptTokens))
	case promptTokens+maxTokens > limit:
		return openai.NewError(http.StatusBadRequest, fmt.Sprintf("This model's maximum context length is %d tokens. "+
			"However, you requested %d tokens (%d in the messages, %d in the completion). "+
			"Please reduce the length of the messages or completion.", limit, promptTokens+maxTokens, promptTokens, maxTokens))
	}
	return nil
}

// parseStop reads "stop": a string, a list of strings or null. Empty strings stop
// nothing and are dropped.
func parseStop(v gjson.Result) ([]string, *openai.Error) {
	bad := openai.NewError(http.StatusBadRequest, "'stop' must be a string or a list of strings").WithParam("stop")
	switch {
	case v.Type == gjson.Null:
		return nil, nil
	case v.Type == gjson.String:
		if v.Str == "" {
			return nil, nil
		}
		return []string{v.Str}, nil
	case !v.IsArray():
		return nil, bad
	}
	var stops []string
	var e *openai.Error
	v.ForEach(func(_, s gjson.Result) bool {
		if s.Type != gjson.String {
			e = bad
			return false
		}
		if s.Str != "" {
			stops = append(stops, s.Str)
		}
		return true
	})
	return stops, e
}

// generation is one accepted request on its way through the engine.
type generation struct {
	*genRequest
	id      string // chatcmpl-… or cmpl-…, the same on every chunk
	created int64
	start   time.Time
	seqs    []sequence
	tokens  int // prompt tokens over all prompts
}

func (s *Server) newGeneration(req *genRequest, start time.Time) *generation {
	g := &generation{genRequest: req, created: start.Unix(), start: start}
	if req.chat {
		g.id = "chatcmpl-" + req.baseID
	} else {
		g.id = "cmpl-" + req.baseID
	}
	n := req.f.N
	g.seqs = make([]sequence, 0, n*len(req.prompts))
	for pi, p := range req.prompts {
		g.tokens += p.tokens
		for i := range n {
			// With several prompts, vLLM numbers choices prompt_idx*n + i.
			g.seqs = append(g.seqs, s.vocab.newSequence(pi*n+i, p, i, req.maxTokens, req.stops))
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
			g.id, g.f.Stream, len(g.seqs), g.tokens, g.completionTokens(), what, time.Since(g.start).Round(time.Microsecond))
	}
}

// reject writes an error found before generation.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, e *openai.Error) {
	s.logf("%s %s: %d %s", r.Method, r.URL.Path, e.Status, e.Message)
	openai.WriteError(w, e)
}

// handleGenerate serves /v1/chat/completions (chat) and /v1/completions.
func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request, chat bool) {
	start := time.Now()
	body, e := readJSONBody(w, r)
	var req *genRequest
	if e == nil {
		req, e = s.parse(r, body, chat)
	}
	if e != nil {
		s.reject(w, r, e)
		return
	}
	s.requests.Add(1)
	g := s.newGeneration(req, start)
	if !s.faultBefore(w, r, g) {
		return
	}
	if req.f.Stream {
		s.stream(r.Context(), w, g)
	} else {
		s.complete(r.Context(), w, g)
	}
}
