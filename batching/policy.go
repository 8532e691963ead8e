// Package batching decides how streamed output is grouped into items: the
// dynamic batch-size policy of worker-vllm (first item Min units, each next
// one Growth times bigger, capped at Max, plus a MaxWait time cap) and a
// Rechunker that applies it to a stream of units.
//
// A unit is opaque: one token delta of one choice, or one whole SSE event.
// The package never splits, reorders, inspects or drops a unit. It knows
// nothing about HTTP, JSON or RunPod; callers turn items into bytes on the
// wire. It imports nothing else of this module.
package batching

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// overrideLimit bounds per-request values; anything above it is a typo or an
// attack, not a batch size.
const overrideLimit = 1 << 20

// Policy is the batch-size policy of one stream.
//
// The first item holds Min units; each next item may hold the previous size
// times Growth, capped at Max. The size is kept as a float, so a fractional
// size effectively rounds up. Batching is dynamic iff Growth > 1, Min >= 1
// and Max > Min; otherwise every item holds Max units. Any item, however it
// was emitted (full, timed out or flushed by hand), advances the size.
type Policy struct {
	// Max caps the units per item (worker-vllm DEFAULT_BATCH_SIZE, 50).
	// The zero value is invalid; a Rechunker given Max < 1 emits every unit
	// as its own item.
	Max int
	// Min is the size of the first item when batching is dynamic
	// (MIN_BATCH_SIZE, 1). Zero or negative disables dynamic batching.
	Min int
	// Growth multiplies the size after each item (BATCH_SIZE_GROWTH_FACTOR,
	// 3). A value <= 1 (or NaN) disables dynamic batching.
	Growth float64
	// MaxWait flushes an item once its oldest unit has waited this long, so
	// batching never holds a unit back longer. Zero disables the time cap.
	MaxWait time.Duration
}

// Dynamic reports whether item sizes grow (Growth > 1, Min >= 1, Max > Min);
// otherwise every item holds Max units.
func (p Policy) Dynamic() bool {
	return p.Growth > 1 && p.Min >= 1 && p.Max > p.Min
}

// Validate reports every problem with p at once: Max and Min must be >= 1,
// Growth positive and finite, MaxWait not negative. It is meant for the
// configured defaults; a Rechunker itself accepts any Policy.
func (p Policy) Validate() error {
	var errs []error
	if p.Max < 1 {
		errs = append(errs, fmt.Errorf("batching: max batch size must be >= 1, got %d", p.Max))
	}
	if p.Min < 1 {
		errs = append(errs, fmt.Errorf("batching: min batch size must be >= 1, got %d", p.Min))
	}
	if !(p.Growth > 0) || math.IsInf(p.Growth, 0) {
		errs = append(errs, fmt.Errorf("batching: batch size growth factor must be positive and finite, got %v", p.Growth))
	}
	if p.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("batching: max wait must not be negative, got %v", p.MaxWait))
	}
	return errors.Join(errs...)
}

// FieldError is a rejected per-request override. Field is the request field
// name (max_batch_size, min_batch_size or batch_size_growth_factor).
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Reason }

// Override returns p with the per-request values applied. As in worker-vllm,
// a zero value keeps p's value. A negative, NaN, infinite or absurd
// (> 1<<20) value is a *FieldError naming the field. The result need not be
// dynamic: Min > Max or Growth <= 1 means every item holds Max units.
func (p Policy) Override(maxBatch, minBatch int, growth float64) (Policy, error) {
	if err := checkInt("max_batch_size", maxBatch); err != nil {
		return p, err
	}
	if err := checkInt("min_batch_size", minBatch); err != nil {
		return p, err
	}
	if math.IsNaN(growth) || math.IsInf(growth, 0) || growth < 0 || growth > overrideLimit {
		return p, &FieldError{
			Field:  "batch_size_growth_factor",
			Reason: fmt.Sprintf("must be a number between 0 and %d (0 keeps the default), got %v", overrideLimit, growth),
		}
	}
	if maxBatch != 0 {
		p.Max = maxBatch
	}
	if minBatch != 0 {
		p.Min = minBatch
	}
	if growth != 0 {
		p.Growth = growth
	}
	return p, nil
}

func checkInt(field string, v int) error {
	if v < 0 || v > overrideLimit {
		return &FieldError{
			Field:  field,
			Reason: fmt.Sprintf("must be an integer between 0 and %d (0 keeps the default), got %d", overrideLimit, v),
		}
	}
	return nil
}

// Sizes returns the sizes of the items that n units make under p without
// the time cap: full items, then the remainder. It is pure and allocates the
// result; it documents and tests the policy.
func Sizes(p Policy, n int) []int {
	var out []int
	s := newSizer(p)
	for n > 0 {
		k := min(s.limit(), n)
		out = append(out, k)
		n -= k
		s.advance()
	}
	return out
}

// sizer is the running item size of one stream.
type sizer struct {
	cur     float64 // size of the current item; fractional sizes round up
	dynamic bool
	growth  float64
	max     float64
}

func newSizer(p Policy) sizer {
	s := sizer{cur: float64(p.Max), dynamic: p.Dynamic(), growth: p.Growth, max: float64(p.Max)}
	if s.dynamic {
		s.cur = float64(p.Min)
	}
	return s
}

// limit is the number of units that fill the current item: the smallest
// count with count >= cur, and at least 1 so a unit is never held forever.
func (s *sizer) limit() int {
	switch {
	case !(s.cur > 1): // also NaN, which cannot occur but must not hang
		return 1
	case s.cur >= math.MaxInt:
		return math.MaxInt
	}
	return int(math.Ceil(s.cur))
}

// advance moves to the next item: cur = min(cur*growth, max) when dynamic.
func (s *sizer) advance() {
	if s.dynamic {
		s.cur = min(s.cur*s.growth, s.max)
	}
}
