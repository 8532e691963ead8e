package server

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/openai"
)

// doneDrainWait is how long the relay waits, after [DONE], for the engine to
// end its body so that the connection can be reused.
const doneDrainWait = 200 * time.Millisecond

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var eventReaders = sync.Pool{New: func() any { return openai.NewEventReader(nil) }}

// relay writes the engine's response to the client: errors in the OpenAI envelope
// with the engine's status, streams event by event, anything else byte for byte.
func relay(d *Deps, w http.ResponseWriter, r *http.Request, resp *http.Response, cancel context.CancelFunc, expectDone bool) {
	if resp.StatusCode >= 400 {
		out := engine.ErrorBody(resp)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(out)
		return
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		relayStream(d, w, r, resp, cancel, expectDone)
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
	readErr, writeErr := copyBody(w, resp.Body, *buf)
	copyBufs.Put(buf)
	if readErr != nil && writeErr == nil && r.Context().Err() == nil {
		// Headers are gone: the only honest signal left is to abort the response.
		d.Log.Warn().Err(readErr).Str("request_id", RequestID(r.Context())).Msg("engine response cut")
		panic(http.ErrAbortHandler)
	}
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

// relayStream relays an SSE stream as whole events, flushed in batches by d.Batch:
// the first event at once, then growing batches, never held back longer than the
// policy's MaxWait. A stream the engine ends without [DONE] gets one in-band
// error event and [DONE], so a client never mistakes a cut for a finished answer.
func relayStream(d *Deps, w http.ResponseWriter, r *http.Request, resp *http.Response, cancel context.CancelFunc, expectDone bool) {
	ctx := r.Context()
	h := w.Header()
	h.Set("Content-Type", resp.Header.Get("Content-Type"))
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // headers now: the client knows it was accepted

	var body io.Reader = resp.Body
	var idle *idleTimer
	if d.StreamIdleTimeout > 0 {
		idle = newIdleTimer(resp.Body, d.StreamIdleTimeout, cancel)
		defer idle.stop()
		body = idle
	}
	events := eventReaders.Get().(*openai.EventReader)
	events.Reset(body)
	defer eventReaders.Put(events)

	route, first := routeLabel(r), true
	batch := batching.New(d.Batch, func(units []batching.Unit) error {
		if first {
			first = false
			d.Metrics.FirstEvent(route, time.Since(requestStart(ctx)))
		}
		d.Metrics.Batch("sse", len(units))
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
		// Let the connection be reused: the engine's chunked body ends right
		// after [DONE]. An engine that keeps it open loses the connection.
		stop := time.AfterFunc(doneDrainWait, cancel)
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		stop.Stop()
		return
	}
	if writeErr != nil || ctx.Err() != nil {
		return
	}
	if !expectDone && readErr == io.EOF {
		return // a clean end of a stream that has no [DONE], e.g. the Responses API
	}
	d.Log.Warn().Err(readErr).Str("request_id", RequestID(ctx)).Msg("engine stream ended before [DONE]")
	apiErr := openai.NewError(http.StatusBadGateway, "the engine stream ended unexpectedly")
	switch {
	case readErr == openai.ErrEventTooLarge:
		apiErr.Message = "the engine sent an event larger than the relay limit"
	case idle != nil && idle.fired():
		apiErr = openai.NewError(http.StatusGatewayTimeout, "the engine sent nothing for "+
			d.StreamIdleTimeout.String()+" (STREAM_IDLE_TIMEOUT_SECONDS)")
	}
	_, _ = w.Write(apiErr.SSE())
	_, _ = io.WriteString(w, openai.DoneEvent)
	_ = rc.Flush()
}

// idleTimer reads from a stream and cancels it when nothing arrives for a whole
// timeout: a gap, not a total, so a long generation that keeps producing is never
// cut.
type idleTimer struct {
	r       io.Reader
	timeout time.Duration
	timer   *time.Timer
	expired atomic.Bool
}

func newIdleTimer(r io.Reader, timeout time.Duration, cancel context.CancelFunc) *idleTimer {
	t := &idleTimer{r: r, timeout: timeout}
	t.timer = time.AfterFunc(timeout, func() {
		t.expired.Store(true)
		cancel()
	})
	t.timer.Stop() // armed by each Read
	return t
}

// Read counts only the time spent waiting for the engine: a client slow to take
// what was read must not look like an engine that went quiet.
func (t *idleTimer) Read(p []byte) (int, error) {
	t.timer.Reset(t.timeout)
	n, err := t.r.Read(p)
	t.timer.Stop()
	return n, err
}

func (t *idleTimer) fired() bool { return t.expired.Load() }

func (t *idleTimer) stop() { t.timer.Stop() }
