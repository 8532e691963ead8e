package server

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/openai"
)

// maxErrorBody bounds how much of an engine error body is read.
const maxErrorBody = 1 << 20

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var eventReaders = sync.Pool{New: func() any { return openai.NewEventReader(nil) }}

// relay writes the engine's response to the client: errors in the OpenAI envelope
// with the engine's status, streams event by event, anything else byte for byte.
func relay(d *Deps, w http.ResponseWriter, r *http.Request, resp *http.Response) {
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		out := openai.NormalizeError(resp.StatusCode, body)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(out)
		return
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		relayStream(d, w, r, resp)
		return
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
	_, err := io.CopyBuffer(w, resp.Body, *buf)
	copyBufs.Put(buf)
	if err != nil && r.Context().Err() == nil {
		// Headers are gone: the only honest signal left is to abort the response.
		d.Log.Warn().Err(err).Str("request_id", RequestID(r.Context())).Msg("engine response cut")
		panic(http.ErrAbortHandler)
	}
}

// relayStream relays an SSE stream as whole events, flushed in batches by d.Batch:
// the first event at once, then growing batches, never held back longer than the
// policy's MaxWait. A stream the engine ends without [DONE] gets one in-band
// error event and [DONE], so a client never mistakes a cut for a finished answer.
func relayStream(d *Deps, w http.ResponseWriter, r *http.Request, resp *http.Response) {
	ctx := r.Context()
	h := w.Header()
	h.Set("Content-Type", resp.Header.Get("Content-Type"))
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // headers now: the client knows it was accepted

	events := eventReaders.Get().(*openai.EventReader)
	events.Reset(resp.Body)
	defer eventReaders.Put(events)

	batch := batching.New(d.Batch, func(units []batching.Unit) error {
		for _, u := range units {
			if _, err := w.Write(u.Data); err != nil {
				return err
			}
		}
		return rc.Flush()
	})
	done := false
	var readErr error
	for {
		ev, err := events.Next()
		if err != nil {
			readErr = err
			break
		}
		if err := batch.Add(0, ev.Raw); err != nil {
			break // the client is gone; ctx cancellation aborts the engine request
		}
		if ev.Done() {
			done = true
			break
		}
	}
	writeErr := batch.Close()
	if done {
		// Let the connection be reused: the engine's chunked body ends right after [DONE].
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		return
	}
	if writeErr != nil || ctx.Err() != nil {
		return
	}
	d.Log.Warn().Err(readErr).Str("request_id", RequestID(ctx)).Msg("engine stream ended before [DONE]")
	msg := "the engine stream ended unexpectedly"
	if readErr == openai.ErrEventTooLarge {
		msg = "the engine sent an event larger than the relay limit"
	}
	_, _ = w.Write(openai.NewError(http.StatusBadGateway, msg).SSE())
	_, _ = io.WriteString(w, openai.DoneEvent)
	_ = rc.Flush()
}
