package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxLine bounds one line of a stream; a chunk with many logprobs is large,
// never this large.
const maxLine = 16 << 20

// framingError is a stream that breaks the framing the worker relies on: every
// event one "data: <payload>" line ended by a blank line, the last one
// "data: [DONE]", nothing after it. The worker passes an engine's events to its
// clients as they are (RAW_OPENAI_OUTPUT items are the engine's bytes), so its
// clients see the engine's framing.
type framingError struct{ msg string }

func (e *framingError) Error() string { return e.msg }

func framingf(format string, args ...any) error {
	return &framingError{msg: fmt.Sprintf(format, args...)}
}

// frameReader reads the events of an OpenAI stream strictly. Comment lines
// (":...", keep-alives) and blank lines between events are allowed.
type frameReader struct {
	r    *bufio.Reader
	n    int  // events read
	done bool // [DONE] was read
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 16<<10)}
}

// next returns the payload of the next event ("[DONE]" included). At the end of
// the stream it returns io.EOF when the stream ended with [DONE] and nothing
// after it, and a *framingError when it did not; any other error is the
// transport's.
func (fr *frameReader) next() ([]byte, error) {
	for {
		line, err := fr.line()
		if err == io.EOF {
			if !fr.done {
				return nil, framingf("the stream ended after %s without data: [DONE]", events(fr.n))
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		if len(line) == 0 || line[0] == ':' {
			continue // a blank line between events, or a comment
		}
		if fr.done {
			return nil, framingf("the stream went on after data: [DONE]: %s", quote(line))
		}
		event := fr.n + 1
		payload, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			if bytes.HasPrefix(line, []byte("data:")) {
				return nil, framingf(`event %d: "data:" is not followed by a space: %s`, event, quote(line))
			}
			return nil, framingf(`event %d: not a "data: " line: %s`, event, quote(line))
		}
		payload = bytes.Clone(payload)
		end, err := fr.line()
		switch {
		case err == io.EOF:
			return nil, framingf("event %d: the stream ended before the blank line that ends the event", event)
		case err != nil:
			return nil, err
		case len(end) != 0:
			return nil, framingf(`event %d: the "data: " line is followed by %s, not a blank line (one data line per event)`, event, quote(end))
		}
		fr.n++
		if string(payload) == "[DONE]" {
			fr.done = true
		}
		return payload, nil
	}
}

// line reads one line without its "\n". A line ended by "\r\n" is a framing
// error: the worker's clients split on "\n\n".
func (fr *frameReader) line() ([]byte, error) {
	var line []byte
	for {
		chunk, err := fr.r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine {
			return nil, framingf("event %d: a line longer than %d bytes", fr.n+1, maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			if len(line) == 0 {
				return nil, io.EOF
			}
			return nil, framingf("event %d: the stream ended inside a line: %s", fr.n+1, quote(line))
		}
		if err != nil {
			return nil, err
		}
		line = line[:len(line)-1]
		if bytes.HasSuffix(line, []byte("\r")) {
			return nil, framingf(`event %d: a line ends with "\r\n"; the events must be "data: ...\n\n"`, fr.n+1)
		}
		return line, nil
	}
}

// chunk is what the checks read of a chat or completions chunk. Usage is kept
// raw so that its presence, not its value, is seen.
type chunk struct {
	Object  string `json:"object"`
	Choices []struct {
		Index        int     `json:"index"`
		Text         *string `json:"text"`
		Delta        *delta  `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage json.RawMessage `json:"usage"`
	Error json.RawMessage `json:"error"`
}

type delta struct {
	Role    string  `json:"role"`
	Content *string `json:"content"`
}

// hasUsage reports whether c carries a usage object (not absent, not null).
func (c *chunk) hasUsage() bool {
	u := bytes.TrimSpace(c.Usage)
	return len(u) > 0 && u[0] == '{'
}

// isRoleChunk reports whether c is a chat stream's opening chunk: every choice
// a delta with a role and no text, and no finish.
func (c *chunk) isRoleChunk() bool {
	if len(c.Choices) == 0 {
		return false
	}
	for _, ch := range c.Choices {
		if ch.Delta == nil || ch.Delta.Role == "" || ch.FinishReason != nil && *ch.FinishReason != "" {
			return false
		}
	}
	return !c.hasText()
}

// hasText reports whether c carries generated text.
func (c *chunk) hasText() bool {
	for _, ch := range c.Choices {
		if ch.Text != nil && *ch.Text != "" || ch.Delta != nil && ch.Delta.Content != nil && *ch.Delta.Content != "" {
			return true
		}
	}
	return false
}

// stream is a whole stream as a check read it.
type stream struct {
	chunks []chunk  // every event but [DONE], decoded
	raw    [][]byte // the payloads of chunks
	done   bool     // ended with [DONE]
}

// readStream reads a whole stream strictly (framing, and every event but
// [DONE] a JSON object), calling first at the first event that carries text.
func readStream(r io.Reader, first func()) (*stream, error) {
	fr := newFrameReader(r)
	s := &stream{}
	for {
		payload, err := fr.next()
		if err == io.EOF {
			s.done = true
			return s, nil
		}
		if err != nil {
			return s, err
		}
		if string(payload) == "[DONE]" {
			continue
		}
		var c chunk
		if err := json.Unmarshal(payload, &c); err != nil {
			return s, framingf("event %d is not a JSON object (%v): %s", fr.n, err, quote(payload))
		}
		if c.hasText() && first != nil {
			first()
			first = nil
		}
		s.chunks = append(s.chunks, c)
		s.raw = append(s.raw, payload)
	}
}

// isFraming reports whether err is a framing error rather than the transport's.
func isFraming(err error) bool {
	var fe *framingError
	return errors.As(err, &fe)
}

// quote shows at most 160 bytes of b (without a final newline): as they are
// when they are printable text on one line (JSON is), else Go-quoted.
func quote(b []byte) string {
	const limit = 160
	b = bytes.TrimSuffix(b, []byte("\n")) // the end of a body, not part of it
	more := ""
	if len(b) > limit {
		b, more = b[:limit], "..."
		for len(b) > 0 && !utf8.Valid(b) { // do not cut a character in two
			b = b[:len(b)-1]
		}
	}
	s := string(b)
	if s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return strconv.Quote(s) + more
	}
	return s + more
}

// events says "1 event", "2 events".
func events(n int) string {
	if n == 1 {
		return "1 event"
	}
	return strconv.Itoa(n) + " events"
}
