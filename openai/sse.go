package openai

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Event is one server-sent event. Raw is the event exactly as received, including
// the blank line that ends it; Data is its payload (the data: lines joined by "\n").
// Both are valid only until the next call to EventReader.Next.
type Event struct {
	Raw  []byte
	Data []byte
	Name []byte // the event: field, if any (the Responses API uses it)
}

// Done reports whether e is the terminating "data: [DONE]" event.
func (e Event) Done() bool { return IsDone(e.Data) }

// IsDone reports whether an event payload is the [DONE] sentinel.
func IsDone(data []byte) bool { return string(data) == "[DONE]" }

// ErrEventTooLarge is returned for an event larger than the reader's limit.
var ErrEventTooLarge = errors.New("sse: event too large")

// DefaultMaxEventBytes bounds one event; a chunk with many logprobs can be large,
// but never this large.
const DefaultMaxEventBytes = 16 << 20

// EventReader reads whole server-sent events from a byte stream, however the
// stream is split into network reads. It allocates only when an event outgrows its
// buffers, so steady-state reading is allocation-free.
type EventReader struct {
	r        *bufio.Reader
	raw      []byte
	data     []byte
	name     []byte
	MaxBytes int // zero means DefaultMaxEventBytes
}

// NewEventReader returns an EventReader reading from r.
func NewEventReader(r io.Reader) *EventReader {
	// Events are a few hundred bytes; a longer one grows raw, not the buffer.
	return &EventReader{r: bufio.NewReaderSize(r, 4<<10)}
}

// Reset makes er read from r, keeping its buffers.
func (er *EventReader) Reset(r io.Reader) {
	er.r.Reset(r)
	er.raw, er.data, er.name = er.raw[:0], er.data[:0], er.name[:0]
}

// Next returns the next event that carries data or a name; comment-only events and
// stray blank lines are skipped. At a clean end of stream it returns io.EOF; if the
// stream ends inside an event it returns io.ErrUnexpectedEOF.
func (er *EventReader) Next() (Event, error) {
	limit := er.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxEventBytes
	}
	er.raw, er.data, er.name = er.raw[:0], er.data[:0], er.name[:0]
	hasData := false
	for {
		lineStart := len(er.raw)
		// Read one line into raw, however long it is.
		for {
			chunk, err := er.r.ReadSlice('\n')
			er.raw = append(er.raw, chunk...)
			if len(er.raw) > limit {
				return Event{}, ErrEventTooLarge
			}
			if err == nil {
				break
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				if len(er.raw) == 0 {
					return Event{}, io.EOF
				}
				if hasData || len(bytes.TrimSpace(er.raw)) > 0 {
					return Event{}, io.ErrUnexpectedEOF
				}
				return Event{}, io.EOF
			}
			return Event{}, err
		}
		line := er.raw[lineStart:]
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 { // blank line: end of event
			if hasData || len(er.name) > 0 {
				return Event{Raw: er.raw, Data: er.data, Name: er.name}, nil
			}
			er.raw = er.raw[:0] // a blank line or comment block with no event
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				er.data = append(er.data, '\n')
			}
			er.data = append(er.data, value...)
			hasData = true
		case "event":
			er.name = append(er.name[:0], value...)
		}
		// comments (":..."), id: and retry: lines stay in Raw only.
	}
}

// AppendEvent appends one "data: <payload>\n\n" event to dst. The payload must not
// contain a newline (JSON from encoding/json never does).
func AppendEvent(dst, payload []byte) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, payload...)
	return append(dst, '\n', '\n')
}

// DoneEvent is the terminating event of an OpenAI stream.
const DoneEvent = "data: [DONE]\n\n"
