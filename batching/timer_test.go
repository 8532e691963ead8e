package batching

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestTimeCap feeds a slow producer: units that would wait for a fuller item
// are flushed MaxWait after the first of them arrived, and each such item
// still advances the size.
func TestTimeCap(t *testing.T) {
	const maxWait = 30 * time.Millisecond
	rec := recorder{flushed: make(chan int, 16)}
	r := New(Policy{Max: 50, Min: 1, Growth: 3, MaxWait: maxWait}, rec.flush)
	defer r.Close()

	wait := func(start time.Time, wantLen int) {
		t.Helper()
		select {
		case n := <-rec.flushed:
			elapsed := time.Since(start)
			if n != wantLen {
				t.Errorf("flushed %d units; want %d", n, wantLen)
			}
			// A timer never fires early; on a loaded CI machine it may fire late.
			if elapsed < maxWait || elapsed > maxWait+500*time.Millisecond {
				t.Errorf("flushed after %v; want within [%v, %v]", elapsed, maxWait, maxWait+500*time.Millisecond)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("held units never flushed")
		}
	}

	if err := r.Add(0, []byte("a"), nil); err != nil { // fills item 1 at once
		t.Fatal(err)
	}
	if n := <-rec.flushed; n != 1 {
		t.Fatalf("first item has %d units; want 1", n)
	}
	start := time.Now()
	if err := r.Add(0, []byte("b"), nil); err != nil { // item 2 may hold 3
		t.Fatal(err)
	}
	wait(start, 1)
	start = time.Now()
	for _, s := range []string{"c", "d"} { // item 3 may hold 9
		if err := r.Add(0, []byte(s), nil); err != nil {
			t.Fatal(err)
		}
	}
	wait(start, 2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	want := [][]unit{{{0, "a", ""}}, {{0, "b", ""}}, {{0, "c", ""}, {0, "d", ""}}}
	if diff := cmp.Diff(want, rec.snapshot()); diff != "" {
		t.Errorf("items mismatch (-want +got):\n%s", diff)
	}
}

// TestStaleTimer calls the timer callback for an item that is not due yet,
// as happens when the callback started just before the timer was reset.
func TestStaleTimer(t *testing.T) {
	var rec recorder
	r := New(Policy{Max: 50, Min: 5, Growth: 3, MaxWait: time.Hour}, rec.flush)
	if err := r.Add(0, []byte("a"), nil); err != nil {
		t.Fatal(err)
	}
	r.onTimer()
	if got := rec.snapshot(); len(got) != 0 {
		t.Fatalf("stale timer flushed %v", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r.onTimer() // after Close: must not flush
	if diff := cmp.Diff([][]unit{{{0, "a", ""}}}, rec.snapshot()); diff != "" {
		t.Errorf("items mismatch (-want +got):\n%s", diff)
	}
}

// TestNoFlushAfterClose races the timer against Close: the unit is flushed
// exactly once, and never after Close has returned.
func TestNoFlushAfterClose(t *testing.T) {
	for i := range 500 {
		var closed atomic.Bool
		var units atomic.Int32
		r := New(Policy{Max: 50, Min: 5, Growth: 3, MaxWait: time.Duration(1+i%50) * time.Microsecond}, func(u []Unit) error {
			if closed.Load() {
				t.Errorf("iteration %d: flush after Close returned", i)
			}
			units.Add(int32(len(u)))
			return nil
		})
		if err := r.Add(0, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		spin(time.Duration(i%7) * 10 * time.Microsecond) // vary how far the timer gets before Close
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		closed.Store(true)
		if n := units.Load(); n != 1 {
			t.Fatalf("iteration %d: %d units flushed; want 1", i, n)
		}
	}
}
