package batching

import (
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned by Add and Flush after Close.
var ErrClosed = errors.New("batching: rechunker closed")

// Unit is one indivisible piece of a stream.
type Unit struct {
	// Tag says what the unit belongs to, e.g. the choice index of a token
	// delta, or the kind of an SSE event.
	Tag int
	// Data is the unit's bytes.
	Data []byte
	// Payload is a second form of the unit that its producer keeps with it
	// (an SSE event's data field), so that no consumer parses the unit again;
	// nil when the producer gave none. Opaque here, like Data.
	Payload []byte
}

// FlushFunc receives the units of one item, in order. The slice and the
// units' Data are reused afterwards and valid only during the call. It is
// called with the Rechunker's lock held, so it must not call the
// Rechunker's methods. A non-nil error stops the Rechunker for good.
type FlushFunc func(units []Unit) error

// span is one buffered unit: its tag, and where its data and its payload end in
// the arena (its data starts where the previous unit ends; its payload follows
// its data).
type span struct {
	tag     int
	dataEnd int
	end     int
}

// Rechunker groups units into items by a Policy and hands each item to a
// FlushFunc. One goroutine calls Add; the MaxWait timer flushes on another,
// and a mutex keeps flushes in order and never overlapping. After warm-up it
// does not allocate: unit bytes go to an arena reused between items.
type Rechunker struct {
	mu      sync.Mutex
	flush   FlushFunc
	maxWait time.Duration
	size    sizer
	limit   int // units that fill the current item

	arena   []byte // bytes of the pending units
	spans   []span // pending units
	units   []Unit // reused argument of flush
	counted int    // pending units that count toward limit (AddRider's do not)

	timer *time.Timer // created on first use when maxWait > 0
	start time.Time   // when the oldest pending unit arrived
	err   error       // sticky error from flush
	done  bool        // Close was called
}

// New returns a Rechunker that applies p and calls flush for every item.
// It does not validate p (see Policy.Validate): with Max < 1 every unit is
// its own item.
func New(p Policy, flush FlushFunc) *Rechunker {
	if flush == nil {
		panic("batching: nil FlushFunc")
	}
	r := &Rechunker{flush: flush, maxWait: p.MaxWait, size: newSizer(p)}
	r.limit = r.size.limit()
	if b, ok := buffers.Get().(*rechunkBuffers); ok {
		r.arena, r.spans, r.units = b.arena, b.spans, b.units
	}
	return r
}

// rechunkBuffers are a closed Rechunker's grown slices, for the next one: a
// stream's items then cost no allocation from the first.
type rechunkBuffers struct {
	arena []byte
	spans []span
	units []Unit
}

var buffers sync.Pool

// maxPooledArena bounds the arena kept for reuse (a stream of huge events
// does not pin its memory).
const maxPooledArena = 64 << 10

// release hands r's slices to the next Rechunker. r.mu is held and r is done.
func (r *Rechunker) release() {
	if cap(r.arena) <= maxPooledArena && r.arena != nil {
		clear(r.units[:cap(r.units)]) // drop references into the arena
		buffers.Put(&rechunkBuffers{arena: r.arena[:0], spans: r.spans[:0], units: r.units[:0]})
	}
	r.arena, r.spans, r.units = nil, nil, nil
}

// Add appends a copy of data (and of payload, which may be nil) as one unit.
// It flushes the item, synchronously, once the item is full, and starts the
// MaxWait clock when the unit is the first of its item. It returns the flush
// error, a sticky earlier one, or ErrClosed after Close.
func (r *Rechunker) Add(tag int, data, payload []byte) error { return r.add(tag, data, payload, true) }

// AddRider adds a unit that rides with the next one: it goes out in the same
// item but does not count toward the item's size, so it never fills an item
// on its own. The MaxWait clock starts with it as with any first unit, so it
// is never held longer than that. A chat stream's leading role chunk is one:
// counted, it would fill the first item (size 1) alone and hold the first
// token back for the next item or the time cap.
func (r *Rechunker) AddRider(tag int, data, payload []byte) error {
	return r.add(tag, data, payload, false)
}

// add appends a unit, counted toward the item's size or not (a rider).
func (r *Rechunker) add(tag int, data, payload []byte, counted bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		return err
	}
	if len(r.spans) == 0 && r.maxWait > 0 {
		r.arm()
	}
	r.arena = append(r.arena, data...)
	dataEnd := len(r.arena)
	r.arena = append(r.arena, payload...)
	r.spans = append(r.spans, span{tag: tag, dataEnd: dataEnd, end: len(r.arena)})
	if !counted {
		return nil
	}
	r.counted++
	if r.counted >= r.limit {
		return r.flushLocked()
	}
	return nil
}

// Flush emits the pending units now as one item (a no-op when there are
// none). The item counts like any other: the size still advances.
func (r *Rechunker) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		return err
	}
	return r.flushLocked()
}

// Close flushes the remainder and stops the timer. Once Close has returned,
// flush is never called again, not even by a timer that fired concurrently.
// It returns the flush error, if any; calling it again returns the sticky
// error or nil.
func (r *Rechunker) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return r.err
	}
	r.done = true
	if r.err == nil {
		r.flushLocked()
	}
	r.disarm()
	r.release()
	return r.err
}

func (r *Rechunker) usable() error {
	switch {
	case r.err != nil:
		return r.err
	case r.done:
		return ErrClosed
	}
	return nil
}

// flushLocked hands the pending units to flush and starts the next item.
func (r *Rechunker) flushLocked() error {
	if len(r.spans) == 0 {
		return nil
	}
	units := r.units[:0]
	start := 0
	for _, s := range r.spans {
		// The full slice expressions keep a callee's append from
		// overwriting the next bytes.
		u := Unit{Tag: s.tag, Data: r.arena[start:s.dataEnd:s.dataEnd]}
		if s.end > s.dataEnd {
			u.Payload = r.arena[s.dataEnd:s.end:s.end]
		}
		units = append(units, u)
		start = s.end
	}
	r.units = units
	err := r.flush(units)
	r.arena = r.arena[:0]
	r.spans = r.spans[:0]
	if r.counted > 0 { // an item of riders alone (the time cap) does not count
		r.size.advance()
		r.limit = r.size.limit()
	}
	r.counted = 0
	r.disarm()
	if err != nil {
		r.err = err
	}
	return err
}

// arm starts the MaxWait clock for a new item.
func (r *Rechunker) arm() {
	r.start = time.Now()
	if r.timer == nil {
		r.timer = time.AfterFunc(r.maxWait, r.onTimer)
		return
	}
	r.timer.Reset(r.maxWait)
}

func (r *Rechunker) disarm() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// onTimer runs on the timer's goroutine. The callback may have been started
// just before a Stop or Reset for a later item, so it checks the pending
// item's own age instead of trusting that it is due.
func (r *Rechunker) onTimer() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.usable() != nil || len(r.spans) == 0 {
		return
	}
	if left := r.maxWait - time.Since(r.start); left > 0 {
		r.timer.Reset(left)
		return
	}
	r.flushLocked() // an error is sticky; the producer sees it on its next call
}
