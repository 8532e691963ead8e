package sim

import (
	"net/http"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// Fault names, selected per request by the top-level body field "sim_fault" (vLLM
// ignores unknown fields, so the worker forwards it untouched). "sim_fault_after"
// sets after how many content chunks the mid-stream faults fire (default 2).
const (
	faultErrorBefore   = "error_before"     // 500 InternalServerError JSON before any byte
	faultErrorMid      = "error_mid_stream" // in-band error event, then [DONE]
	faultErrorNoDone   = "error_no_done"    // in-band error event, then the stream ends without [DONE]
	faultCutMid        = "cut_mid_stream"   // connection closed without [DONE]
	faultHang          = "hang"             // headers and role chunks, then nothing until the client leaves
	faultCUDA          = "cuda_error"       // 500 with vLLM's CUDA error message
	faultExit          = "exit"             // Options.Exit(1), then the connection is dropped
	faultSlowFirstByte = "slow_first_byte"  // Options.SlowFirstByte before the headers
)

// parseFault reads "sim_fault". An unknown name is a 400, so a typo in a test fails
// loudly instead of testing nothing.
func parseFault(v gjson.Result) (string, *openai.Error) {
	if v.Type == gjson.Null {
		return "", nil
	}
	if v.Type == gjson.String {
		switch v.Str {
		case "", faultErrorBefore, faultErrorMid, faultErrorNoDone, faultCutMid, faultHang, faultCUDA, faultExit, faultSlowFirstByte:
			return v.Str, nil
		}
	}
	return "", openai.NewError(http.StatusBadRequest, "unknown sim_fault "+v.Raw+"; want one of "+
		faultErrorBefore+", "+faultErrorMid+", "+faultErrorNoDone+", "+faultCutMid+", "+faultHang+", "+
		faultCUDA+", "+faultExit+", "+faultSlowFirstByte).WithParam("sim_fault")
}

// midStream reports whether the fault fires after some content chunks.
func midStream(fault string) bool {
	return fault == faultErrorMid || fault == faultErrorNoDone || fault == faultCutMid
}

// faultBefore applies the faults that act before the first byte. False means the
// request has been answered (or dropped) and must not be served.
func (s *Server) faultBefore(w http.ResponseWriter, r *http.Request, g *generation) bool {
	switch g.fault {
	case faultExit:
		s.finish(g, faulted)
		if s.o.Exit != nil {
			s.o.Exit(1)
		}
		panic(http.ErrAbortHandler) // without an Exit hook, look like a dead process: drop the connection
	case faultErrorBefore:
		s.finish(g, faulted)
		s.writeError(w, openai.NewError(http.StatusInternalServerError, "simulated engine error (sim_fault=error_before)"))
		return false
	case faultCUDA:
		s.finish(g, faulted)
		s.writeError(w, openai.NewError(http.StatusInternalServerError, "CUDA error: an illegal memory access was encountered"))
		return false
	case faultSlowFirstByte:
		t := time.NewTimer(s.o.SlowFirstByte)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			s.finish(g, aborted)
			return false
		case <-t.C:
		}
	}
	return true
}

// faultAfterStart applies a mid-stream fault to a non-streaming request, once its
// generation time has passed. True means the request has been answered or dropped.
func (s *Server) faultAfterStart(w http.ResponseWriter, g *generation) bool {
	switch g.fault {
	case faultErrorMid, faultErrorNoDone:
		s.finish(g, faulted)
		s.writeError(w, midStreamError(g.fault))
		return true
	case faultCutMid:
		s.finish(g, faulted)
		panic(http.ErrAbortHandler) // closes the connection with no response
	}
	return false
}

// faultMidStream ends a stream with its mid-stream fault: an in-band error event
// and [DONE], an error event and the end of the stream without [DONE] (as some
// OpenAI-compatible servers end an error; QuirkErrorWithoutDone does it to every
// in-band error), or a connection closed without [DONE].
func (s *Server) faultMidStream(st *streamer, g *generation) {
	s.finish(g, faulted)
	if g.fault == faultCutMid {
		// net/http closes the connection without the terminating chunk, so the
		// client sees the stream end early, as when vLLM dies mid-stream.
		panic(http.ErrAbortHandler)
	}
	st.buf = s.errorEvent(st.buf[:0], midStreamError(g.fault))
	st.buf = s.endErrorStream(st.buf, g.fault == faultErrorNoDone)
	st.send()
}

func midStreamError(fault string) *openai.Error {
	return openai.NewError(http.StatusInternalServerError, "simulated engine error mid-stream (sim_fault="+fault+")")
}
