package batching

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// unit is a test-side copy of a flushed Unit.
type unit struct {
	Tag     int
	Data    string
	Payload string
}

// recorder is a FlushFunc that keeps copies of the items and, if flushed
// is set, reports each item's length on it.
type recorder struct {
	mu      sync.Mutex
	items   [][]unit
	flushed chan int
}

func (rec *recorder) flush(units []Unit) error {
	item := make([]unit, len(units))
	for i, u := range units {
		item[i] = unit{Tag: u.Tag, Data: string(u.Data), Payload: string(u.Payload)}
	}
	rec.mu.Lock()
	rec.items = append(rec.items, item)
	rec.mu.Unlock()
	if rec.flushed != nil {
		rec.flushed <- len(units)
	}
	return nil
}

func (rec *recorder) snapshot() [][]unit {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([][]unit(nil), rec.items...)
}

func sizesOf(items [][]unit) []int {
	var out []int
	for _, it := range items {
		out = append(out, len(it))
	}
	return out
}

func flatten(items [][]unit) []unit {
	var out []unit
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func TestRechunkerItemsFollowSizes(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		n    int
	}{
		{"defaults 100", defaults, 100},
		{"defaults 102", defaults, 102},
		{"defaults exact", defaults, 90},
		{"max 5", Policy{Max: 5, Min: 1, Growth: 3}, 23},
		{"growth 1", Policy{Max: 50, Min: 1, Growth: 1}, 120},
		{"growth 1.5", Policy{Max: 50, Min: 1, Growth: 1.5}, 60},
		{"min above max", Policy{Max: 5, Min: 10, Growth: 3}, 12},
		{"max 1", Policy{Max: 1, Min: 1, Growth: 3}, 4},
		{"max 0", Policy{}, 3},
		{"one unit", defaults, 1},
		{"none", defaults, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			r := New(tt.p, rec.flush)
			var want []unit
			for i := range tt.n {
				u := unit{Tag: i % 3, Data: fmt.Sprintf("u%d;", i)}
				want = append(want, u)
				if err := r.Add(u.Tag, []byte(u.Data), []byte(u.Payload)); err != nil {
					t.Fatalf("Add #%d: %v", i, err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			items := rec.snapshot()
			if diff := cmp.Diff(Sizes(tt.p, tt.n), sizesOf(items)); diff != "" {
				t.Errorf("item sizes mismatch (-Sizes +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, flatten(items)); diff != "" {
				t.Errorf("units mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCloseFlushesRemainder(t *testing.T) {
	var rec recorder
	r := New(defaults, rec.flush)
	for _, s := range []string{"a", "b", "c"} {
		if err := r.Add(0, []byte(s), nil); err != nil {
			t.Fatal(err)
		}
	}
	// "a" is item 1 (size 1); "b", "c" wait for a third unit.
	if got := len(rec.snapshot()); got != 1 {
		t.Fatalf("before Close: %d items; want 1", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	want := [][]unit{{{0, "a", ""}}, {{0, "b", ""}, {0, "c", ""}}}
	if diff := cmp.Diff(want, rec.snapshot()); diff != "" {
		t.Errorf("items mismatch (-want +got):\n%s", diff)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
	if got := len(rec.snapshot()); got != 2 {
		t.Errorf("second Close flushed again: %d items", got)
	}
}

func TestAddAfterClose(t *testing.T) {
	var rec recorder
	r := New(defaults, rec.flush)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(0, []byte("x"), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close = %v; want ErrClosed", err)
	}
	if err := r.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v; want ErrClosed", err)
	}
	if got := rec.snapshot(); len(got) != 0 {
		t.Errorf("flushed %v after Close of an empty Rechunker", got)
	}
}

func TestFlushCountsAsItem(t *testing.T) {
	var rec recorder
	r := New(defaults, rec.flush)
	if err := r.Flush(); err != nil { // empty: no item, size stays 1
		t.Fatal(err)
	}
	add := func(s string) {
		t.Helper()
		if err := r.Add(0, []byte(s), nil); err != nil {
			t.Fatal(err)
		}
	}
	add("a") // item of 1
	add("b")
	if err := r.Flush(); err != nil { // item of 1 though 3 were allowed
		t.Fatal(err)
	}
	for i := range 10 { // next size is 9
		add(fmt.Sprint(i))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{1, 1, 9, 1}, sizesOf(rec.snapshot())); diff != "" {
		t.Errorf("item sizes mismatch (-want +got):\n%s", diff)
	}
}

func TestAddCopiesData(t *testing.T) {
	var rec recorder
	r := New(Policy{Max: 3, Min: 3, Growth: 1}, rec.flush)
	buf := []byte("one")
	if err := r.Add(0, buf, nil); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXX")
	if err := r.Add(1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(2, []byte{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	want := [][]unit{{{0, "one", ""}, {1, "", ""}, {2, "", ""}}}
	if diff := cmp.Diff(want, rec.snapshot()); diff != "" {
		t.Errorf("items mismatch (-want +got):\n%s", diff)
	}
}

// TestFlushCalleeAppend checks that a FlushFunc appending to a unit's Data
// cannot overwrite the next unit.
func TestFlushCalleeAppend(t *testing.T) {
	var got []string
	r := New(Policy{Max: 2, Min: 2, Growth: 1}, func(units []Unit) error {
		_ = append(units[0].Data, "!!!"...)
		for _, u := range units {
			got = append(got, string(u.Data))
		}
		return nil
	})
	_ = r.Add(0, []byte("ab"), nil)
	_ = r.Add(0, []byte("cd"), nil)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ab", "cd"}, got); diff != "" {
		t.Errorf("units mismatch (-want +got):\n%s", diff)
	}
}

func TestFlushErrorSticky(t *testing.T) {
	errBoom := errors.New("boom")
	t.Run("from Add", func(t *testing.T) {
		calls := 0
		r := New(Policy{Max: 1, Min: 1, Growth: 1}, func([]Unit) error {
			calls++
			if calls == 2 {
				return errBoom
			}
			return nil
		})
		if err := r.Add(0, []byte("a"), nil); err != nil {
			t.Fatalf("Add #1 = %v; want nil", err)
		}
		if err := r.Add(0, []byte("b"), nil); !errors.Is(err, errBoom) {
			t.Fatalf("Add #2 = %v; want %v", err, errBoom)
		}
		if err := r.Add(0, []byte("c"), nil); !errors.Is(err, errBoom) {
			t.Errorf("Add #3 = %v; want %v", err, errBoom)
		}
		if err := r.Flush(); !errors.Is(err, errBoom) {
			t.Errorf("Flush = %v; want %v", err, errBoom)
		}
		if err := r.Close(); !errors.Is(err, errBoom) {
			t.Errorf("Close = %v; want %v", err, errBoom)
		}
		if err := r.Close(); !errors.Is(err, errBoom) {
			t.Errorf("second Close = %v; want %v", err, errBoom)
		}
		if calls != 2 {
			t.Errorf("flush called %d times; want 2", calls)
		}
	})
	t.Run("from timer", func(t *testing.T) {
		flushed := make(chan struct{}, 1)
		var calls atomic.Int32
		r := New(Policy{Max: 50, Min: 5, Growth: 3, MaxWait: 5 * time.Millisecond}, func([]Unit) error {
			calls.Add(1)
			flushed <- struct{}{}
			return errBoom
		})
		if err := r.Add(0, []byte("a"), nil); err != nil {
			t.Fatalf("Add = %v; want nil", err)
		}
		select {
		case <-flushed:
		case <-time.After(10 * time.Second):
			t.Fatal("timer never flushed")
		}
		if err := r.Add(0, []byte("b"), nil); !errors.Is(err, errBoom) {
			t.Errorf("Add after failed timer flush = %v; want %v", err, errBoom)
		}
		if err := r.Close(); !errors.Is(err, errBoom) {
			t.Errorf("Close = %v; want %v", err, errBoom)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("flush called %d times; want 1", n)
		}
	})
}

func TestAddDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
	}{
		{"defaults", defaults},
		{"fixed", Policy{Max: 7, Min: 1, Growth: 1}},
		{"max wait armed", Policy{Max: 50, Min: 1, Growth: 3, MaxWait: time.Hour}},
	}
	data := []byte(`data: {"choices":[{"delta":{"content":"hi"}}]}` + "\n\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			r := New(tt.p, func(u []Unit) error { n += len(u); return nil })
			defer r.Close()
			for range 500 { // warm up: grow the arena and slices to an item's size
				if err := r.Add(0, data, nil); err != nil {
					t.Fatal(err)
				}
			}
			allocs := testing.AllocsPerRun(1000, func() {
				if err := r.Add(1, data, nil); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("Add allocates %v times per call; want 0", allocs)
			}
		})
	}
}

func BenchmarkRechunker(b *testing.B) {
	data := []byte(`data: {"choices":[{"delta":{"content":"hello"}}]}` + "\n\n")
	for _, p := range []Policy{defaults, {Max: 50, Min: 1, Growth: 3, MaxWait: 50 * time.Millisecond}} {
		b.Run(fmt.Sprintf("max_wait=%v", p.MaxWait), func(b *testing.B) {
			n := 0
			r := New(p, func(u []Unit) error { n += len(u); return nil })
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for i := 0; b.Loop(); i++ {
				if err := r.Add(i&3, data, nil); err != nil {
					b.Fatal(err)
				}
			}
			if err := r.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestAddRider: a rider goes out with the next unit, in its item, without
// counting toward the item's size; an item of riders alone (the time cap)
// does not advance the size either.
func TestAddRider(t *testing.T) {
	var items [][]string
	flush := func(units []Unit) error {
		var item []string
		for _, u := range units {
			item = append(item, string(u.Data))
		}
		items = append(items, item)
		return nil
	}
	r := New(Policy{Max: 9, Min: 1, Growth: 3}, flush)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.AddRider(0, []byte("role"), nil))
	if len(items) != 0 {
		t.Fatalf("a rider alone was flushed: %v", items)
	}
	for _, u := range []string{"a", "b", "c", "d"} {
		must(r.Add(0, []byte(u), nil))
	}
	must(r.Close())
	if got := fmt.Sprint(items); got != "[[role a] [b c d]]" {
		t.Errorf("items %s; want [[role a] [b c d]]", got)
	}

	items = nil
	first := make(chan struct{})
	r = New(Policy{Max: 9, Min: 1, Growth: 3, MaxWait: 10 * time.Millisecond}, func(units []Unit) error {
		err := flush(units)
		if len(items) == 1 {
			close(first)
		}
		return err
	})
	must(r.AddRider(0, []byte("role"), nil))
	<-first // the time cap flushed the rider alone
	for _, u := range []string{"a", "b"} {
		must(r.Add(0, []byte(u), nil))
	}
	must(r.Close())
	if got := fmt.Sprint(items); got != "[[role] [a] [b]]" {
		t.Errorf("items %s; want [[role] [a] [b]]: an item of riders alone does not advance the size", got)
	}
}
