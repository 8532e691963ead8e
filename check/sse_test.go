package check

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const goodStream = "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
	"data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" blue\"},\"finish_reason\":\"length\"}]}\n\n" +
	"data: {\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n" +
	"data: [DONE]\n\n"

func TestReadStream(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		wantErr  string // "" for a good stream
		chunks   int
	}{
		{name: "good", in: goodStream, chunks: 3},
		{name: "comments and blank lines between events", in: ": keep-alive\n\n\n" + goodStream, chunks: 3},
		{name: "no [DONE]", in: strings.TrimSuffix(goodStream, "data: [DONE]\n\n"), wantErr: "the stream ended after 3 events without data: [DONE]"},
		{name: "empty", in: "", wantErr: "the stream ended after 0 events without data: [DONE]"},
		{name: "no space after data:", in: "data:{}\n\ndata: [DONE]\n\n", wantErr: `event 1: "data:" is not followed by a space: data:{}`},
		{name: "not a data line", in: "event: x\ndata: {}\n\n", wantErr: `event 1: not a "data: " line: event: x`},
		{name: "two data lines", in: "data: {}\ndata: {}\n\ndata: [DONE]\n\n", wantErr: `event 1: the "data: " line is followed by data: {}, not a blank line`},
		{name: "CRLF", in: "data: {}\r\n\r\ndata: [DONE]\r\n\r\n", wantErr: `event 1: a line ends with "\r\n"`},
		{name: "after [DONE]", in: goodStream + "data: {}\n\n", wantErr: "the stream went on after data: [DONE]: data: {}"},
		{name: "cut inside an event", in: "data: {}\n\ndata: {\"a\"", wantErr: `event 2: the stream ended inside a line: data: {"a"`},
		{name: "cut before the blank line", in: "data: {}\n", wantErr: "event 1: the stream ended before the blank line"},
		{name: "not JSON", in: "data: hello\n\ndata: [DONE]\n\n", wantErr: "event 1 is not a JSON object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			first := 0
			// One byte per read: events are whole however the stream is split.
			st, err := readStream(iotest.OneByteReader(strings.NewReader(tt.in)), func() { first++ })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !isFraming(err) {
					t.Fatalf("readStream: %v; want a framing error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !st.done || len(st.chunks) != tt.chunks || len(st.raw) != tt.chunks {
				t.Errorf("done %v, %d chunks; want done, %d", st.done, len(st.chunks), tt.chunks)
			}
			if first != 1 {
				t.Errorf("first called %d times; want once", first)
			}
			last := st.chunks[len(st.chunks)-1]
			if !last.hasUsage() || len(last.Choices) != 0 {
				t.Errorf("the last chunk %s: want choices [] with usage", st.raw[len(st.raw)-1])
			}
		})
	}
}

func TestFrameReaderTransportError(t *testing.T) {
	boom := errors.New("connection reset")
	fr := newFrameReader(io.MultiReader(strings.NewReader("data: {}\n\n"), iotest.ErrReader(boom)))
	if _, err := fr.next(); err != nil {
		t.Fatal(err)
	}
	if _, err := fr.next(); !errors.Is(err, boom) || isFraming(err) {
		t.Errorf("next after a transport error: %v; want it, not a framing error", err)
	}
}

func TestChunkUsageAndText(t *testing.T) {
	for _, tt := range []struct {
		in          string
		usage, text bool
	}{
		{`{"choices":[{"delta":{"content":"x"}}]}`, false, true},
		{`{"choices":[{"delta":{"content":""}}],"usage":null}`, false, false},
		{`{"choices":[{"text":" a"}],"usage":{"prompt_tokens":1}}`, true, true},
		{`{"choices":[]}`, false, false},
	} {
		st, err := readStream(strings.NewReader("data: "+tt.in+"\n\ndata: [DONE]\n\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c := st.chunks[0]; c.hasUsage() != tt.usage || c.hasText() != tt.text {
			t.Errorf("%s: usage %v, text %v; want %v, %v", tt.in, c.hasUsage(), c.hasText(), tt.usage, tt.text)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"a":1}`, `{"a":1}`},
		{"", `""`},
		{"a\r\n", `"a\r"`},
		{"{}\n", `{}`},
		{strings.Repeat("x", 200), strings.Repeat("x", 160) + "..."},
		{strings.Repeat("é", 100), strings.Repeat("é", 80) + "..."},
	} {
		if got := quote([]byte(tt.in)); got != tt.want {
			t.Errorf("quote(%q) = %s; want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzFrameReader: whatever a server sends, the reader returns events or an
// error, never panics, and never returns an event after an error.
func FuzzFrameReader(f *testing.F) {
	f.Add(goodStream)
	f.Add("data: {}\r\n\r\n")
	f.Add(": c\n\ndata: [DONE]\n\ndata: x\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		fr := newFrameReader(strings.NewReader(in))
		for range len(in) + 2 {
			payload, err := fr.next()
			if err != nil {
				if err != io.EOF && !isFraming(err) {
					t.Fatalf("not a framing error: %v", err)
				}
				if err == io.EOF && !fr.done {
					t.Fatal("io.EOF without [DONE]")
				}
				return
			}
			if !strings.Contains(in, "data: "+string(payload)+"\n\n") {
				t.Fatalf("event %q is not in the input", payload)
			}
		}
		t.Fatal("the reader never ended")
	})
}
