package supervisor

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
)

// relayAll runs a lineRelay over input with a clock that advances by step per reading.
func relayAll(t *testing.T, input string, step time.Duration) (kept, seen []string) {
	t.Helper()
	now := time.Unix(1000, 0)
	r := lineRelay{
		log:           zerolog.Nop(),
		keep:          func(s string) { kept = append(kept, s) },
		seen:          func(s string) { seen = append(seen, s) },
		now:           func() time.Time { now = now.Add(step); return now },
		progressEvery: time.Second,
	}
	if err := r.copy(strings.NewReader(input)); err != nil {
		t.Fatalf("copy: %v", err)
	}
	return kept, seen
}

func TestLineRelay(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxLineBytes+10)
	for _, tc := range []struct {
		name  string
		input string
		step  time.Duration
		want  []string
	}{
		{"lines", "a\nb\n", 0, []string{"a", "b"}},
		{"no final newline", "a\nb", 0, []string{"a", "b"}},
		{"blank lines dropped", "a\n\n  \nb\n", 0, []string{"a", "b"}},
		{"crlf", "a\r\nb\r\n", 0, []string{"a", "b"}},
		{"tqdm throttled", "\r 0%\r 50%\r 90%\r100%\n", time.Millisecond, []string{" 0%", "100%"}},
		{"tqdm slow", "\r 0%\r 50%\r100%\n", 2 * time.Second, []string{" 0%", " 50%", "100%"}},
		{"bar then crlf", "\r 0%\r 50%\r\nnext\n", time.Millisecond, []string{" 0%", " 50%", "next"}},
		{"bar cut off", "\r 0%\r 50%\r", time.Millisecond, []string{" 0%", " 50%"}},
		{"new bar shown at once", "\ra 0%\ra 100%\n\rb 0%\rb 9%\n", time.Millisecond, []string{"a 0%", "a 100%", "b 0%", "b 9%"}},
		{"long line", long + "\nshort\n", 0, []string{strings.Repeat("x", maxLineBytes) + " ...[truncated 10 bytes]", "short"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept, _ := relayAll(t, tc.input, tc.step)
			if diff := cmp.Diff(tc.want, kept); diff != "" {
				t.Errorf("kept lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRelaySeesEveryProgressUpdate(t *testing.T) {
	t.Parallel()
	_, seen := relayAll(t, "\rCapturing 0%\rCapturing 50%\rCapturing 100%\n", time.Millisecond)
	if len(seen) != 3 {
		t.Errorf("seen = %q; want all three updates", seen)
	}
}

func TestRing(t *testing.T) {
	t.Parallel()
	r := newRing(3)
	if got := r.Lines(); len(got) != 0 {
		t.Errorf("empty ring: %q", got)
	}
	for _, s := range []string{"1", "2", "3", "4", "5"} {
		r.Add(s)
	}
	if diff := cmp.Diff([]string{"3", "4", "5"}, r.Lines()); diff != "" {
		t.Errorf("ring (-want +got):\n%s", diff)
	}
}

// FuzzLineReader checks that segments never exceed the cap and that, untruncated, they give
// back the input with its line breaks.
func FuzzLineReader(f *testing.F) {
	for _, s := range []string{"", "a\nb", "\r\r\n", "abc\rdef\n", strings.Repeat("y", 100)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 16
		lr := newLineReader(bytes.NewReader(in), max)
		var out []byte
		truncated := false
		for {
			text, term, dropped, err := lr.next()
			if err != nil {
				break
			}
			if len(text) > max {
				t.Fatalf("segment of %d bytes; cap %d", len(text), max)
			}
			truncated = truncated || dropped > 0
			out = append(out, text...)
			if term != 0 {
				out = append(out, term)
			}
		}
		if !truncated && !bytes.Equal(out, in) {
			t.Fatalf("reassembled %q; want %q", out, in)
		}
	})
}
