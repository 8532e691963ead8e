package openai

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, r io.Reader) ([]string, []string, error) {
	t.Helper()
	er := NewEventReader(r)
	var raws, datas []string
	for {
		ev, err := er.Next()
		if err != nil {
			if err == io.EOF {
				return raws, datas, nil
			}
			return raws, datas, err
		}
		raws = append(raws, string(ev.Raw))
		datas = append(datas, string(ev.Data))
	}
}

func TestEventReader(t *testing.T) {
	long := strings.Repeat("x", 200<<10) // far beyond bufio's buffer and Scanner's 64 KiB
	tests := []struct {
		name    string
		in      string
		raws    []string
		datas   []string
		wantErr error
	}{
		{"two events", "data: {\"a\":1}\n\ndata: [DONE]\n\n",
			[]string{"data: {\"a\":1}\n\n", "data: [DONE]\n\n"}, []string{`{"a":1}`, "[DONE]"}, nil},
		{"crlf", "data: x\r\n\r\ndata: y\r\n\r\n",
			[]string{"data: x\r\n\r\n", "data: y\r\n\r\n"}, []string{"x", "y"}, nil},
		{"multi-line data", "data: a\ndata: b\n\n", []string{"data: a\ndata: b\n\n"}, []string{"a\nb"}, nil},
		{"no space after colon", "data:x\n\n", []string{"data:x\n\n"}, []string{"x"}, nil},
		{"comments and blank lines skipped", ": keep-alive\n\n\n\ndata: x\n\n", []string{"data: x\n\n"}, []string{"x"}, nil},
		{"named event", "event: response.created\ndata: {}\n\n",
			[]string{"event: response.created\ndata: {}\n\n"}, []string{"{}"}, nil},
		{"long line", "data: " + long + "\n\n", []string{"data: " + long + "\n\n"}, []string{long}, nil},
		{"empty", "", nil, nil, nil},
		{"cut mid event", "data: {\"a\":1}\n\ndata: {\"b\"", []string{"data: {\"a\":1}\n\n"}, []string{`{"a":1}`}, io.ErrUnexpectedEOF},
		{"cut before blank line", "data: x\n", nil, nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		for _, split := range []struct {
			name string
			r    func(string) io.Reader
		}{
			{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
			{"one byte reads", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
			{"half reads", func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) }},
		} {
			t.Run(tt.name+"/"+split.name, func(t *testing.T) {
				raws, datas, err := readAll(t, split.r(tt.in))
				if !errors.Is(err, tt.wantErr) && !(err == nil && tt.wantErr == nil) {
					t.Fatalf("err = %v; want %v", err, tt.wantErr)
				}
				if strings.Join(raws, "|") != strings.Join(tt.raws, "|") {
					t.Errorf("raws = %q; want %q", raws, tt.raws)
				}
				if strings.Join(datas, "|") != strings.Join(tt.datas, "|") {
					t.Errorf("datas = %q; want %q", datas, tt.datas)
				}
			})
		}
	}
}

func TestEventReaderLimit(t *testing.T) {
	er := NewEventReader(strings.NewReader("data: " + strings.Repeat("y", 1000) + "\n\n"))
	er.MaxBytes = 100
	if _, err := er.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v; want ErrEventTooLarge", err)
	}
}

func TestEventReaderAllocs(t *testing.T) {
	stream := bytes.Repeat([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" hi\"}}]}\n\n"), 64)
	r := bytes.NewReader(stream)
	er := NewEventReader(r)
	allocs := testing.AllocsPerRun(20, func() {
		r.Reset(stream)
		er.Reset(r)
		for {
			if _, err := er.Next(); err != nil {
				break
			}
		}
	})
	if allocs > 0 {
		t.Errorf("allocs per stream of 64 events = %v; want 0", allocs)
	}
}

// FuzzEventReader checks that any byte stream, however split, yields whole events
// whose raw bytes are a verbatim, in-order part of the input, and never panics.
func FuzzEventReader(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\ndata: [DONE]\n\n"), uint8(3))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n: c\n\nevent: e\n\n"), uint8(1))
	f.Add([]byte("data:"), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		whole, _, errWhole := readAll(t, bytes.NewReader(in))
		split, _, errSplit := readAll(t, &chunkReader{b: in, n: int(step%16) + 1})
		if strings.Join(whole, "\x00") != strings.Join(split, "\x00") || (errWhole == nil) != (errSplit == nil) {
			t.Fatalf("result depends on read boundaries: %q (%v) vs %q (%v)", whole, errWhole, split, errSplit)
		}
		rest := in
		for _, raw := range whole {
			i := bytes.Index(rest, []byte(raw))
			if i < 0 {
				t.Fatalf("event %q is not a verbatim part of the input", raw)
			}
			if !strings.HasSuffix(raw, "\n") {
				t.Fatalf("event %q does not end with its blank line", raw)
			}
			rest = rest[i+len(raw):]
		}
	})
}

type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(c.n, len(p), len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}
