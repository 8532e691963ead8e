package sim

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A streamed Responses answer is a sequence of named events, each
// "event: <type>\ndata: <JSON with the same type>\n\n", numbered from 0 by
// sequence_number, ending with response.completed and no [DONE] (notes 4.4).

// responseStreamer writes one Responses stream.
type responseStreamer struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
	seq int
}

// event appends one event whose JSON payload is the members in before, then
// sequence_number, the members in after (each starting with a comma), and type
// (the keys in alphabetical order, as openai-python's models define them); send
// writes what was appended.
func (rs *responseStreamer) event(typ, before, after string) {
	rs.buf = append(rs.buf, "event: "+typ+"\ndata: {"...)
	rs.buf = append(rs.buf, before...)
	rs.buf = append(rs.buf, `,"sequence_number":`...)
	rs.buf = strconv.AppendInt(rs.buf, int64(rs.seq), 10)
	rs.buf = append(rs.buf, after...)
	rs.buf = append(rs.buf, `,"type":"`+typ+`"}`+"\n\n"...)
	rs.seq++
}

func (rs *responseStreamer) send() bool {
	_, err := rs.w.Write(rs.buf)
	rs.buf = rs.buf[:0]
	return err == nil && rs.rc.Flush() == nil
}

// opening appends response.created and response.in_progress.
func (s *Server) opening(rs *responseStreamer, g *generation) {
	r := string(s.appendResponse(nil, g, "in_progress", []byte("[]"), []byte("null")))
	rs.event("response.created", `"response":`+r, "")
	rs.event("response.in_progress", `"response":`+r, "")
}

// refuseResponseStream answers a Responses stream the engine refused when it
// first ran it: vLLM has sent response.created and response.in_progress, and the
// stream then stops with no error event and no completion.
func (s *Server) refuseResponseStream(w http.ResponseWriter, g *generation) {
	if startStream(w) != nil {
		return
	}
	rs := &responseStreamer{w: w, rc: http.NewResponseController(w)}
	s.opening(rs, g)
	rs.send()
	panic(http.ErrAbortHandler) // the connection ends without the last chunk
}

// streamResponse serves a streaming Responses request. The mid-stream faults all
// cut the connection here (vLLM's Responses stream has no in-band error event
// for such failures), after sim_fault_after text deltas.
func (s *Server) streamResponse(ctx context.Context, w http.ResponseWriter, g *generation) {
	if startStream(w) != nil {
		s.finish(g, aborted)
		return
	}
	rs := &responseStreamer{w: w, rc: http.NewResponseController(w), buf: make([]byte, 0, 1024)}
	abort := func() { s.finish(g, aborted) }
	if !s.admit(ctx) {
		abort()
		return
	}
	defer s.release()
	s.metrics.promptTokens.Add(int64(g.tokens))
	s.opening(rs, g)
	if !rs.send() {
		abort()
		return
	}
	p := newPacer(time.Now())
	defer p.stop()
	if g.fault == faultHang {
		<-ctx.Done()
		abort()
		return
	}
	if !p.wait(ctx, s.o.TTFT) {
		abort()
		return
	}
	cut := func() {
		s.finish(g, faulted)
		panic(http.ErrAbortHandler)
	}
	if midStream(g.fault) && g.faultAfter == 0 {
		cut()
	}
	item := randomHex() // the streamed item id: bare hex, no msg_ prefix
	quotedItem := `"` + item + `"`
	rs.event("response.output_item.added",
		`"item":{"id":`+quotedItem+`,"content":[],"role":"assistant","status":"in_progress","type":"message","phase":null},"output_index":0`, "")
	rs.event("response.content_part.added", `"content_index":0,"item_id":`+quotedItem+
		`,"output_index":0,"part":{"annotations":[],"text":"","type":"output_text","logprobs":[]}`, "")
	sq := &g.seqs[0]
	var text strings.Builder
	sent := 0
	for step := 0; !sq.done(); step++ {
		if step > 0 && !p.wait(ctx, s.o.ITL) {
			abort()
			return
		}
		if midStream(g.fault) && sent == g.faultAfter {
			rs.send()
			cut()
		}
		_, piece, _ := sq.next(s.vocab)
		if piece == "" {
			continue // vLLM sends no empty delta
		}
		text.WriteString(piece)
		rs.event("response.output_text.delta", `"content_index":0,"delta":`+string(appendPyJSON(nil, piece, false))+
			`,"item_id":`+quotedItem+`,"logprobs":[],"output_index":0`, "")
		if !rs.send() {
			abort()
			return
		}
		if sent++; sent == 1 {
			s.metrics.ttft.observe(time.Since(g.start))
		}
	}
	if midStream(g.fault) {
		cut()
	}
	full := text.String()
	quotedText := string(appendPyJSON(nil, full, false))
	rs.event("response.output_text.done", `"content_index":0,"item_id":`+quotedItem+
		`,"logprobs":[],"output_index":0`, `,"text":`+quotedText)
	rs.event("response.content_part.done", `"content_index":0,"item_id":`+quotedItem+
		`,"output_index":0,"part":`+string(appendOutputText(nil, full)), "")
	rs.event("response.output_item.done", `"item":`+string(appendMessageItem(nil, item, full, "completed", `,"summary":[]`))+
		`,"output_index":0`, "")
	output := append(appendMessageItem([]byte{'['}, "msg_"+randomHex(), full, "completed", ""), ']')
	rs.event("response.completed", `"response":`+string(s.appendResponse(nil, g, responseStatus(g), output, responseUsage(g))), "")
	if !rs.send() {
		abort()
		return
	}
	s.finish(g, finished)
}
