package server

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/metrics"
	"github.com/vllm-worker/vllm-worker/openai"
	"github.com/vllm-worker/vllm-worker/relay"
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// relayAnswer writes the engine's answer to the client: an error status as an
// error (the engine's envelope, byte for byte), a stream event by event, anything
// else byte for byte. An error it returns has not been written yet.
func relayAnswer(d *Deps, w http.ResponseWriter, r *http.Request, resp *http.Response, path string) error {
	if resp.StatusCode >= 400 {
		return engine.ReadError(resp)
	}
	if relay.IsEventStream(resp) {
		relayStream(d, w, r, resp, path)
		return nil
	}
	h := w.Header()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	}
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	buf := copyBufs.Get().(*[]byte)
	readErr, writeErr := copyBody(w, resp.Body, *buf)
	copyBufs.Put(buf)
	if writeErr != nil {
		d.clientLeft(r)
	}
	if readErr != nil && writeErr == nil && r.Context().Err() == nil {
		// Headers are gone: the only honest signal left is to abort the response.
		d.Log.Warn().Err(readErr).Str("request_id", RequestID(r.Context())).Msg("engine response cut")
		panic(http.ErrAbortHandler)
	}
	return nil
}

// copyBody copies the engine's answer to the client, telling a failed read (the
// engine's fault) from a failed write (the client's: gone, or too slow).
func copyBody(w io.Writer, r io.Reader, buf []byte) (readErr, writeErr error) {
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil, werr
			}
		}
		switch {
		case err == io.EOF:
			return nil, nil
		case err != nil:
			return err, nil
		}
	}
}

// relayStream relays an SSE stream as whole events, flushed in batches by
// d.Batch: the first event at once, then growing batches, never held back longer
// than the policy's MaxWait. A stream that ends on the engine's side short of its
// end gets exactly one in-band error event (the engine's own, or the worker's 502
// or 504 when the engine sent none) and [DONE], so a client never mistakes a cut
// for a finished answer.
func relayStream(d *Deps, w http.ResponseWriter, r *http.Request, resp *http.Response, path string) {
	ctx := r.Context()
	h := w.Header()
	h.Set("Content-Type", resp.Header.Get("Content-Type"))
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // headers now: the client knows it was accepted

	route := routeLabel(r)
	info := infoOf(ctx)
	doneExpected := relay.DoneExpected(path)
	res := relay.Run(ctx, resp.Body, relay.Options{
		Policy:       d.Batch,
		DoneExpected: doneExpected,
		IdleTimeout:  d.StreamIdleTimeout,
		OnFirstFlush: func() { d.Metrics.FirstEvent(route, time.Since(requestStart(ctx))) },
		Flush: func(units []batching.Unit) error {
			d.Metrics.Batch("sse", len(units))
			for _, u := range units {
				if _, err := w.Write(u.Data); err != nil {
					return err
				}
			}
			info.events += len(units)
			return rc.Flush()
		},
	})
	switch {
	case res.End == relay.ConsumerGone || res.End == relay.Cancelled:
		d.clientLeft(r)
	case res.End == relay.EngineError:
		// The engine's error event was relayed; close the stream as vLLM does.
		if doneExpected && !res.SawDone {
			_, _ = io.WriteString(w, openai.DoneEvent)
			_ = rc.Flush()
		}
	case res.End.Failed():
		if res.End == relay.Idle {
			d.noteAbort(r, metrics.AbortIdleTimeout) // the relay closed the engine's stream
		}
		d.Log.Warn().Err(res.Err).Str("request_id", RequestID(ctx)).Str("end", res.End.String()).Msg("engine stream ended before its end")
		apiErr := openai.NewError(http.StatusBadGateway, "the engine stream ended unexpectedly")
		if ee, ok := res.Err.(*engine.Error); ok {
			apiErr = ee.APIError()
		}
		if doneExpected {
			_, _ = w.Write(apiErr.SSE())
			_, _ = io.WriteString(w, openai.DoneEvent)
		} else { // a stream of named events (the Responses API): a named error event
			_, _ = io.WriteString(w, "event: error\n")
			_, _ = w.Write(apiErr.SSE())
		}
		_ = rc.Flush()
	}
}
