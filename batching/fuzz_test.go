package batching

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// op is one step of a fuzzed stream: an early Flush (standing in for the
// time cap, which emits an item the same way) or one unit.
type op struct {
	flush bool
	u     unit
}

// decodeOps turns fuzz bytes into steps: a header byte (bit 7: flush first;
// bit 6: the data again as the payload; bits 0-1: tag), a length byte (mod 8),
// then that many data bytes (fewer at the end of the input).
func decodeOps(b []byte) []op {
	var out []op
	for len(b) >= 2 {
		n := min(int(b[1])%8, len(b)-2)
		u := unit{Tag: int(b[0] & 3), Data: string(b[2 : 2+n])}
		if b[0]&0x40 != 0 {
			u.Payload = strings.ToUpper(u.Data) + "!"
		}
		out = append(out, op{flush: b[0]&0x80 != 0, u: u})
		b = b[2+n:]
	}
	return out
}

// FuzzRechunker checks that any policy and any stream of units come out
// unchanged and in order, never split, with items no bigger than the policy
// allows, and exactly Sizes(p, n) when nothing flushes early.
//
// Early items come from explicit Flush calls rather than a real MaxWait
// timer: a timer makes coverage nondeterministic, which stalls the fuzzer in
// endless minimization. TestRandomTimed covers the timer with the same checks.
func FuzzRechunker(f *testing.F) {
	f.Add(50, 1, 3.0, []byte("\x00\x03abc\x01\x00\x02\x07defghij"))
	f.Add(5, 1, 3.0, bytes.Repeat([]byte("\x01\x02hi\x81\x01!"), 40))
	f.Add(50, 1, 1.5, bytes.Repeat([]byte("\x00\x01x"), 100))
	f.Add(5, 10, 3.0, bytes.Repeat([]byte("\x02\x05hello"), 12))
	f.Add(0, 0, 0.0, []byte("\x00\x00\x80\x00"))
	f.Add(math.MaxInt, 1, math.Inf(1), bytes.Repeat([]byte("\x03\x01z"), 9))
	f.Add(-7, -1, math.NaN(), []byte("\x00\x01a\x00\x01b"))
	f.Fuzz(func(t *testing.T, maxBatch, minBatch int, growth float64, stream []byte) {
		p := Policy{Max: maxBatch, Min: minBatch, Growth: growth}
		ops := decodeOps(stream)
		var rec recorder
		r := New(p, rec.flush)
		early := false
		var in []unit
		for i, o := range ops {
			if o.flush {
				early = early || r.pending() > 0
				if err := r.Flush(); err != nil {
					t.Fatalf("Flush before #%d: %v", i, err)
				}
			}
			buf, payload := []byte(o.u.Data), []byte(o.u.Payload)
			if err := r.Add(o.u.Tag, buf, payload); err != nil {
				t.Fatalf("Add #%d: %v", i, err)
			}
			clear(buf) // Add must have copied
			clear(payload)
			in = append(in, o.u)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		checkItems(t, p, in, rec.snapshot(), !early)
	})
}

// TestRandomTimed runs random policies and streams with a real 1µs MaxWait,
// so the timer races the producer, and applies the fuzz checks.
func TestRandomTimed(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		p := Policy{
			Max:     rng.IntN(60) - 2,
			Min:     rng.IntN(10) - 1,
			Growth:  rng.Float64() * 4,
			MaxWait: time.Duration(1+rng.IntN(20)) * time.Microsecond,
		}
		var rec recorder
		r := New(p, rec.flush)
		var in []unit
		for j := range rng.IntN(200) {
			u := unit{Tag: rng.IntN(4), Data: string(rune('a' + j%26))}
			if j%3 == 0 {
				u.Payload = strings.Repeat(u.Data, j%5)
			}
			in = append(in, u)
			if err := r.Add(u.Tag, []byte(u.Data), []byte(u.Payload)); err != nil {
				t.Fatalf("run %d: Add #%d: %v", i, j, err)
			}
			if rng.IntN(8) == 0 {
				spin(time.Duration(rng.IntN(30)) * time.Microsecond) // let the timer win sometimes
			}
		}
		if err := r.Close(); err != nil {
			t.Fatalf("run %d: Close: %v", i, err)
		}
		checkItems(t, p, in, rec.snapshot(), false)
		if t.Failed() {
			t.Fatalf("run %d: policy %+v", i, p)
		}
	}
}

// pending is the number of units in the current item.
func (r *Rechunker) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.spans)
}

// spin busy-waits for d to perturb timing; it synchronises nothing.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// checkItems reports a violation of the Rechunker's guarantees: items
// concatenate to in, none is empty or bigger than the policy's size for its
// position, and with exact set the sizes equal Sizes(p, len(in)).
func checkItems(t *testing.T, p Policy, in []unit, items [][]unit, exact bool) {
	t.Helper()
	out := flatten(items)
	if len(out) != len(in) {
		t.Fatalf("got %d units; want %d", len(out), len(in))
	}
	for i := range in {
		if out[i] != in[i] {
			t.Fatalf("unit %d = %+v; want %+v", i, out[i], in[i])
		}
	}
	s := newSizer(p)
	for i, it := range items {
		if len(it) == 0 {
			t.Fatalf("item %d is empty", i)
		}
		if len(it) > s.limit() || len(it) > max(p.Max, 1) {
			t.Fatalf("item %d has %d units; policy allows %d (max %d)", i, len(it), s.limit(), p.Max)
		}
		s.advance()
	}
	if !exact {
		return
	}
	want := Sizes(p, len(in))
	if len(want) != len(items) {
		t.Fatalf("got %d items; want %d", len(items), len(want))
	}
	for i, it := range items {
		if len(it) != want[i] {
			t.Fatalf("item %d has %d units; want %d", i, len(it), want[i])
		}
	}
}
