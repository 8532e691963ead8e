package sim

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/vllm-worker/vllm-worker/openai"
)

// streamer writes one request's SSE events. Chunks are built by hand into one
// reused buffer: this is the hot path of every proxy benchmark.
type streamer struct {
	w           http.ResponseWriter
	rc          *http.ResponseController
	buf         []byte
	head        []byte // `data: {"id":…,"object":…,"created":…,"model":…,"choices":[`
	chat        bool
	fingerprint string
}

func newStreamer(w http.ResponseWriter, g *generation, model, fingerprint string) *streamer {
	object := "text_completion"
	if g.chat {
		object = "chat.completion.chunk"
	}
	head := make([]byte, 0, 128+len(g.id)+len(model))
	head = append(head, `data: {"id":`...)
	head = appendJSONString(head, g.id)
	head = append(head, `,"object":"`+object+`","created":`...)
	head = strconv.AppendInt(head, g.created, 10)
	head = append(head, `,"model":`...)
	head = appendJSONString(head, model)
	head = append(head, `,"choices":[`...)
	return &streamer{w: w, rc: http.NewResponseController(w), buf: make([]byte, 0, 512), head: head, chat: g.chat,
		fingerprint: fingerprint}
}

// send writes the buffered event(s) and flushes; false means the client has gone.
func (st *streamer) send() bool {
	if _, err := st.w.Write(st.buf); err != nil {
		return false
	}
	return st.rc.Flush() == nil
}

// chunk starts an event with one choice of index i.
func (st *streamer) chunk(i int) {
	st.buf = append(append(st.buf[:0], st.head...), `{"index":`...)
	st.buf = strconv.AppendInt(st.buf, int64(i), 10)
}

// end closes the choices list, adds usage when u is not nil and the top-level
// members in tail, and ends the event.
func (st *streamer) end(u *usage, tail string) {
	st.buf = append(st.buf, ']')
	if u != nil {
		st.buf = append(st.buf, `,"usage":{"prompt_tokens":`...)
		st.buf = strconv.AppendInt(st.buf, int64(u.PromptTokens), 10)
		st.buf = append(st.buf, `,"total_tokens":`...)
		st.buf = strconv.AppendInt(st.buf, int64(u.TotalTokens), 10)
		st.buf = append(st.buf, `,"completion_tokens":`...)
		st.buf = strconv.AppendInt(st.buf, int64(u.CompletionTokens), 10)
		st.buf = append(st.buf, '}')
	}
	st.buf = append(st.buf, tail...)
	st.buf = append(st.buf, "}\n\n"...)
}

// fingerprintTail is the system_fingerprint member of a stream's final chunk.
func (st *streamer) fingerprintTail() string {
	return `,"system_fingerprint":"` + st.fingerprint + `"`
}

// role builds a chat role chunk, vLLM's first event of every choice.
func (st *streamer) role(i int, u *usage) {
	st.chunk(i)
	st.buf = append(st.buf, `,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}`...)
	st.end(u, `,"prompt_token_ids":null,"prompt_text":null`)
}

// finishTail ends a choice after its delta: finish_reason (and stop_reason on the
// last chunk of the choice), then chat's token_ids.
func (st *streamer) finishTail(sq *sequence, last bool) {
	st.buf = append(st.buf, `,"logprobs":null,"finish_reason":`...)
	switch {
	case !last:
		st.buf = append(st.buf, "null"...)
		if !st.chat {
			st.buf = append(st.buf, `,"stop_reason":null`...)
		}
	case sq.tool != nil:
		st.buf = append(st.buf, '"')
		st.buf = append(st.buf, sq.finishReason(true)...)
		st.buf = append(st.buf, `","stop_reason":null`...)
	case sq.reason == "stop":
		st.buf = append(st.buf, `"stop","stop_reason":`...)
		st.buf = appendJSONString(st.buf, sq.stop)
	default:
		st.buf = append(st.buf, `"length","stop_reason":null`...)
	}
	if st.chat {
		st.buf = append(st.buf, `,"token_ids":null`...)
	}
	st.buf = append(st.buf, '}')
}

// content builds a chunk with one token's text; the last chunk of a choice also
// carries its finish_reason and stop_reason, as vLLM sends it.
func (st *streamer) content(sq *sequence, quoted []byte, piece string, last bool, u *usage, tail string) {
	st.chunk(sq.index)
	if st.chat {
		if piece == "" {
			st.buf = append(st.buf, `,"delta":{}`...)
		} else {
			st.buf = append(st.buf, `,"delta":{"content":`...)
			st.buf = appendPiece(st.buf, quoted, piece)
			st.buf = append(st.buf, '}')
		}
	} else {
		st.buf = append(st.buf, `,"text":`...)
		st.buf = appendPiece(st.buf, quoted, piece)
	}
	st.finishTail(sq, last)
	st.end(u, tail)
}

// toolDelta builds a chunk with one tool-call token's delta (vLLM's DeltaToolCall
// shapes; see tools.go).
func (st *streamer) toolDelta(sq *sequence, t toolToken, last bool, u *usage, tail string) {
	c := sq.tool
	st.chunk(sq.index)
	switch t.kind {
	case tokSilent:
		st.buf = append(st.buf, `,"delta":{}`...)
	case tokName, tokNameArgs:
		st.buf = append(st.buf, `,"delta":{"tool_calls":[{"id":"`+c.id+`","type":"function","index":0,"function":{"name":`...)
		st.buf = appendPyJSON(st.buf, c.name, false)
		if t.kind == tokNameArgs {
			st.buf = append(st.buf, `,"arguments":`...)
			st.buf = appendPyJSON(st.buf, t.text, false)
		}
		st.buf = append(st.buf, "}}]}"...)
	case tokArgs, tokArgsNullName:
		st.buf = append(st.buf, `,"delta":{"tool_calls":[{"index":0,"function":{`...)
		if t.kind == tokArgsNullName {
			st.buf = append(st.buf, `"name":null,`...)
		}
		st.buf = append(st.buf, `"arguments":`...)
		st.buf = appendPyJSON(st.buf, t.text, false)
		st.buf = append(st.buf, "}}]}"...)
	}
	st.finishTail(sq, last)
	st.end(u, tail)
}

func appendPiece(dst, quoted []byte, piece string) []byte {
	if quoted != nil {
		return append(dst, quoted...)
	}
	return appendJSONString(dst, piece)
}

// startStream writes the headers of an SSE stream and flushes them.
func startStream(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	return http.NewResponseController(w).Flush()
}

// streamError answers a stream the engine refused when it first ran it: 200, the
// in-band error event (no role chunk before it), [DONE].
func (s *Server) streamError(w http.ResponseWriter, req *genRequest) {
	if startStream(w) != nil {
		return
	}
	b := s.errorEvent(nil, req.engineErr)
	b = s.endErrorStream(b, false)
	_, _ = w.Write(b)
}

// stream serves a streaming request in vLLM's order: headers at once, then after
// admission and TTFT the role chunk of every choice (chat), content chunks one token
// each with the choices interleaved round-robin, the usage chunk when asked, [DONE].
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, g *generation) {
	if startStream(w) != nil {
		s.finish(g, aborted)
		return
	}
	st := newStreamer(w, g, s.o.Model, s.fingerprint)
	if !s.admit(ctx) {
		s.finish(g, aborted)
		return
	}
	defer s.release()
	s.metrics.promptTokens.Add(int64(g.tokens))
	if s.generate(ctx, st, g) {
		s.finish(g, finished)
	}
}

// generate writes the events of an admitted stream; false means it ended early
// (client gone, or a fault) and has been accounted for.
func (s *Server) generate(ctx context.Context, st *streamer, g *generation) bool {
	// Continuous usage is per choice: its own prompt and its tokens so far.
	var cu usage
	progress := func(sq *sequence) *usage {
		if !g.continuous {
			return nil
		}
		pt := g.prompts[sq.index/g.n].tokens
		cu = usage{PromptTokens: pt, CompletionTokens: sq.k, TotalTokens: pt + sq.k}
		return &cu
	}
	abort := func() bool { s.finish(g, aborted); return false }

	p := newPacer(time.Now())
	defer p.stop()
	if g.fault != faultHang && !p.wait(ctx, s.o.TTFT) {
		return abort()
	}
	if g.chat {
		for i := range g.seqs {
			st.role(g.seqs[i].index, progress(&g.seqs[i]))
			if !st.send() {
				return abort()
			}
		}
	}
	if g.fault == faultHang {
		<-ctx.Done()
		return abort()
	}
	sent := 0
	live := len(g.seqs)
	for step := 0; live > 0; step++ {
		if step > 0 && !p.wait(ctx, s.o.ITL) {
			return abort()
		}
		for i := range g.seqs {
			sq := &g.seqs[i]
			if sq.done() && !(sq.total == 0 && step == 0) {
				continue
			}
			if midStream(g.fault) && sent == g.faultAfter {
				s.faultMidStream(st, g)
				return false
			}
			var (
				last   bool
				tok    = -1
				piece  string
				tt     toolToken
				silent bool // nothing to send: vLLM sends no empty deltas
			)
			switch {
			case sq.total == 0: // echo with max_tokens 0: the finish alone
				last = true
			case sq.tool != nil:
				tt, last = sq.nextTool()
				silent = tt.kind == tokSilent
			default:
				tok, piece, last = sq.next(s.vocab)
				silent = piece == "" // inside a stop string
			}
			if last {
				live--
			} else if silent {
				continue
			}
			// The stream's last chunk carries system_fingerprint when no usage
			// chunk follows.
			tail := ""
			if last && live == 0 && !g.includeUsage {
				tail = st.fingerprintTail()
			}
			if sq.tool != nil {
				st.toolDelta(sq, tt, last, progress(sq), tail)
			} else {
				var quoted []byte
				if tok >= 0 {
					quoted = s.vocab.quoted[tok]
				}
				st.content(sq, quoted, piece, last, progress(sq), tail)
			}
			if !st.send() {
				return abort()
			}
			if sent++; sent == 1 {
				s.metrics.ttft.observe(time.Since(g.start))
			}
		}
	}
	if midStream(g.fault) { // the stream was shorter than sim_fault_after
		s.faultMidStream(st, g)
		return false
	}
	st.buf = st.buf[:0]
	if g.includeUsage {
		st.buf = append(st.buf, st.head...)
		u := newUsage(g.tokens, g.completionTokens())
		st.end(&u, st.fingerprintTail())
	}
	st.buf = append(st.buf, openai.DoneEvent...)
	if !st.send() {
		return abort()
	}
	return true
}
