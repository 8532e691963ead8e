// Package relay is the one reader of an engine's stream. It reads the
// server-sent events of an engine answer as whole events, turns them into units,
// groups the units into items by the dynamic batch-size policy, hands each item
// to its consumer, and says why the stream ended: [DONE], an error event of the
// engine, a cut, an engine that went quiet, an event too large, or a consumer
// that is gone. Its two consumers are the HTTP relay of package server (items
// flushed to a client) and the job runner of package runpod (items of a job).
//
// It decides, in one place, what ends a stream and whether a [DONE] is due
// (DoneExpected); it never writes to a client or knows about jobs.
package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/openai"
)

// End is why a stream ended.
type End int

// The ends of a stream.
const (
	// Done: [DONE], or the clean end of a stream that has none (the Responses API).
	Done End = iota
	// EngineError: the engine sent an error event (Result.Err holds it, an
	// *engine.Error); Result.SawDone says whether a [DONE] followed it.
	EngineError
	// Cut: the engine's stream ended early: closed without [DONE], or inside an
	// event.
	Cut
	// Idle: the engine sent nothing for Options.IdleTimeout.
	Idle
	// TooLarge: an event was larger than the reader's limit.
	TooLarge
	// Malformed: Options.Units refused an event (a chunk that is not JSON).
	Malformed
	// ConsumerGone: Options.Flush failed (a client that left or stalled, a job
	// that was stopped); Result.Err is its error.
	ConsumerGone
	// Cancelled: ctx ended; Result.Err is its error.
	Cancelled
)

var endNames = [...]string{"done", "engine_error", "cut", "idle_timeout", "too_large", "malformed", "consumer_gone", "cancelled"}

func (e End) String() string {
	if int(e) < len(endNames) {
		return endNames[e]
	}
	return "unknown"
}

// Failed reports whether the stream ended with an error of the engine's side:
// an error event, a cut, an idle engine, an event too large or malformed.
func (e End) Failed() bool { return e >= EngineError && e <= Malformed }

// Unit tags of the default units (one per event).
const (
	TagEvent = 0 // an ordinary event
	TagError = 1 // an error event of the engine
	TagDone  = 2 // the [DONE] event
)

// AddFunc adds one unit to the current item: data is the unit (copied), payload
// an optional parsed form of it the consumer keeps with it (an event's data).
type AddFunc func(tag int, data, payload []byte) error

// Options say how to relay one stream.
type Options struct {
	// Policy groups units into items.
	Policy batching.Policy
	// DoneExpected: the stream must end with [DONE]; an end without it is a cut.
	// Decide it with DoneExpected(path).
	DoneExpected bool
	// IdleTimeout ends a stream the engine sends nothing on for this long (a gap,
	// not a total); zero means none.
	IdleTimeout time.Duration
	// Units turns one event (never an error event or [DONE]) into units; an
	// error ends the stream as Malformed. Nil means each event is one unit of
	// TagEvent with its raw bytes as data and its data field as payload; error
	// events and [DONE] are units too then, of TagError and TagDone.
	Units func(ev openai.Event, add AddFunc) error
	// Flush receives each item, in order (see batching.FlushFunc). Required.
	Flush batching.FlushFunc
	// OnFirstFlush, if set, runs just before the first item is flushed.
	OnFirstFlush func()
}

// Result says how a stream ended.
type Result struct {
	End End
	// Err is the *engine.Error of an error event, a cut, an idle engine, an event
	// too large or a malformed one; the consumer's error for ConsumerGone; ctx's
	// error for Cancelled; nil when Done.
	Err     error
	SawDone bool // the [DONE] event was read
	Events  int  // events read (those the engine sent whole)
}

// DoneExpected reports whether a stream from the engine route path ends with
// [DONE]: OpenAI's chat and text completions do; the Responses API, Anthropic's
// messages and any other route's streams just end.
func DoneExpected(path string) bool {
	path, _, _ = strings.Cut(path, "?")
	return path == "/v1/chat/completions" || path == "/v1/completions"
}

// IsEventStream reports whether an engine answer is a server-sent event stream.
func IsEventStream(resp *http.Response) bool {
	return strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
}

// doneDrainWait is how long Run waits, after [DONE], for the engine to end its
// body so that the connection can be reused.
const doneDrainWait = 200 * time.Millisecond

var readers = sync.Pool{New: func() any { return openai.NewEventReader(nil) }}

// Run relays the stream body (an engine answer's body, which Run closes when the
// engine goes quiet, so that the engine aborts) until it ends, and says why. The
// units of the last item are flushed before Run returns, whatever the end.
func Run(ctx context.Context, body io.ReadCloser, o Options) Result {
	var src io.Reader = body
	var idle *idleTimer
	if o.IdleTimeout > 0 {
		idle = newIdleTimer(body, o.IdleTimeout)
		defer idle.stop()
		src = idle
	}
	events := readers.Get().(*openai.EventReader)
	events.Reset(src)
	defer readers.Put(events)

	flush := o.Flush
	if o.OnFirstFlush != nil {
		first := true
		flush = func(units []batching.Unit) error {
			if first {
				first = false
				o.OnFirstFlush()
			}
			return o.Flush(units)
		}
	}
	batch := batching.New(o.Policy, flush)
	add := AddFunc(batch.Add)
	var res Result
	var engineErr *engine.Error
	leading := true // no event has counted yet
	for {
		ev, err := events.Next()
		if err != nil {
			res.End, res.Err = readEnd(ctx, err, idle, o.DoneExpected, engineErr, res.SawDone)
			break
		}
		res.Events++
		var aerr error
		switch {
		case ev.Done():
			res.SawDone = true
			if o.Units == nil {
				aerr = add(TagDone, ev.Raw, ev.Data)
			}
		case engineErr == nil && isErrorEvent(ev) && engine.EventError(ev.Name, ev.Data) != nil:
			// vLLM follows an error event with [DONE]; others just end the stream.
			engineErr = engine.EventError(ev.Name, ev.Data)
			if o.Units == nil {
				raw, data := errorEvent(ev, engineErr)
				aerr = add(TagError, raw, data)
			}
		case o.Units == nil && leading && isRoleChunk(ev):
			// A chat stream opens with a role chunk (one per choice) and no
			// text: it rides with the first token rather than fill the first
			// item alone and hold that token back.
			aerr = batch.AddRider(TagEvent, ev.Raw, ev.Data)
		case o.Units == nil:
			leading = false
			aerr = add(TagEvent, ev.Raw, ev.Data)
		default:
			if uerr := o.Units(ev, add); uerr != nil {
				var ce consumerError
				if errors.As(uerr, &ce) {
					aerr = ce.err
					break
				}
				res.End, res.Err = Malformed, engine.Broken("the engine sent an event the worker cannot read: "+uerr.Error(), uerr)
			}
		}
		if aerr != nil {
			res.End, res.Err = ConsumerGone, aerr
			if ctx.Err() != nil {
				res.End, res.Err = Cancelled, ctx.Err()
			}
			break
		}
		if res.End == Malformed {
			break
		}
		if res.SawDone {
			res.End, res.Err = Done, nil
			if engineErr != nil {
				res.End, res.Err = EngineError, engineErr
			}
			drainAfterDone(body)
			break
		}
	}
	if err := batch.Close(); err != nil && res.End != ConsumerGone && res.End != Cancelled {
		res.End, res.Err = ConsumerGone, err
		if ctx.Err() != nil {
			res.End, res.Err = Cancelled, ctx.Err()
		}
	}
	return res
}

// consumerError marks an error of AddFunc returned through Options.Units: the
// consumer is gone, the event was fine.
type consumerError struct{ err error }

func (e consumerError) Error() string { return e.err.Error() }

// Gone wraps an error that an AddFunc returned, for Options.Units to return:
// the stream then ends as ConsumerGone rather than Malformed.
func Gone(err error) error { return consumerError{err} }

// errorEvent is an engine's error event as the consumer gets it: vLLM's
// nested envelope as sent, and another server's shape (the classic flat
// {"object":"error",...}) rewritten into that envelope, so that an OpenAI SDK,
// which only recognises {"error":{...}} in a stream, raises the engine's
// message instead of reading on past it. A named event (the Responses API's
// "event: error") has its own format and passes as sent.
func errorEvent(ev openai.Event, e *engine.Error) (raw, data []byte) {
	if len(ev.Name) > 0 || len(e.Envelope) == 0 || string(e.Envelope) == string(ev.Data) {
		return ev.Raw, ev.Data
	}
	raw = make([]byte, 0, len(e.Envelope)+8)
	raw = append(append(append(raw, "data: "...), e.Envelope...), "\n\n"...)
	return raw, e.Envelope
}

// isRoleChunk reports whether ev is a chat stream's opening chunk: a delta with
// a role and no content, tool call or finish. Only the events before the first
// counted one are asked.
func isRoleChunk(ev openai.Event) bool {
	if len(ev.Name) > 0 || !bytes.Contains(ev.Data, []byte(`"role"`)) || openai.CheckJSON(ev.Data) != nil {
		return false
	}
	role, n := true, 0
	gjson.GetBytes(ev.Data, "choices").ForEach(func(_, ch gjson.Result) bool {
		n++
		d := ch.Get("delta")
		role = d.Get("role").Exists() && d.Get("content").String() == "" && d.Get("reasoning_content").String() == "" &&
			d.Get("tool_calls.#").Int() == 0 && ch.Get("finish_reason").String() == ""
		return role
	})
	return role && n > 0
}

// isErrorEvent is the cheap test before engine.EventError parses anything.
func isErrorEvent(ev openai.Event) bool {
	return string(ev.Name) == "error" || (len(ev.Data) > 0 && ev.Data[0] == '{' && strings.Contains(string(ev.Data), `"error"`))
}

// readEnd classifies a read that ended the stream.
func readEnd(ctx context.Context, err error, idle *idleTimer, doneExpected bool, engineErr *engine.Error, sawDone bool) (End, error) {
	switch {
	case idle != nil && idle.fired():
		return Idle, engine.TimedOut("the engine sent nothing for " + idle.timeout.String() + " (STREAM_IDLE_TIMEOUT_SECONDS)")
	case ctx.Err() != nil:
		return Cancelled, ctx.Err()
	case engineErr != nil:
		// The engine ended its stream after an error event, with or without
		// [DONE]: the error is the end, whatever came after it.
		return EngineError, engineErr
	case errors.Is(err, openai.ErrEventTooLarge):
		return TooLarge, engine.Broken("the engine sent an event larger than the relay limit", err)
	case err == io.EOF && (!doneExpected || sawDone):
		return Done, nil
	}
	return Cut, engine.Broken("the engine stream ended unexpectedly", err)
}

// drainAfterDone lets the connection be reused: the engine's chunked body ends
// right after [DONE]. An engine that keeps it open loses the connection.
func drainAfterDone(body io.ReadCloser) {
	stop := time.AfterFunc(doneDrainWait, func() { body.Close() })
	_, _ = io.CopyN(io.Discard, body, 4<<10)
	stop.Stop()
}

// idleTimer reads from a stream and closes it when nothing arrives for a whole
// timeout: a gap, not a total, so a long generation that keeps producing is
// never cut. Closing the engine's body is what tells the engine to abort.
type idleTimer struct {
	r       io.Reader
	timeout time.Duration
	timer   *time.Timer
	expired atomic.Bool
}

func newIdleTimer(body io.ReadCloser, timeout time.Duration) *idleTimer {
	t := &idleTimer{r: body, timeout: timeout}
	t.timer = time.AfterFunc(timeout, func() {
		t.expired.Store(true)
		body.Close()
	})
	t.timer.Stop() // armed by each Read
	return t
}

// Read counts only the time spent waiting for the engine: a consumer slow to
// take what was read must not look like an engine that went quiet.
func (t *idleTimer) Read(p []byte) (int, error) {
	t.timer.Reset(t.timeout)
	n, err := t.r.Read(p)
	t.timer.Stop()
	return n, err
}

func (t *idleTimer) fired() bool { return t.expired.Load() }

func (t *idleTimer) stop() { t.timer.Stop() }
