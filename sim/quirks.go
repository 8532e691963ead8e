package sim

import (
	"fmt"
	"slices"
	"strings"
)

// Quirk names a way in which other OpenAI-compatible servers differ from vLLM.
// Options.Quirks turns them on, so the worker can be tested against those servers
// with the same simulated engine.
type Quirk string

// The quirks. Each one changes only what its comment says.
const (
	// QuirkNoContinuousUsage ignores stream_options.continuous_usage_stats: no
	// usage on the chunks, only the final usage chunk when include_usage is set.
	QuirkNoContinuousUsage Quirk = "no_continuous_usage"
	// QuirkNoN ignores n: every request gets one choice (n is not validated).
	QuirkNoN Quirk = "no_n"
	// QuirkErrorWithoutDone ends a stream with its in-band error event: no
	// data: [DONE] follows it.
	QuirkErrorWithoutDone Quirk = "error_without_done"
	// QuirkFlatErrors writes every error body and error event in the old flat
	// shape {"object":"error","message":...,"type":...,"param":...,"code":...}.
	QuirkFlatErrors Quirk = "flat_errors"
)

// Quirks lists every quirk, in the order of its documentation.
func Quirks() []Quirk {
	return []Quirk{QuirkNoContinuousUsage, QuirkNoN, QuirkErrorWithoutDone, QuirkFlatErrors}
}

// ParseQuirks reads a comma-separated list of quirk names ("" is none; case,
// blanks and repeats do not matter). An unknown name is an error naming the known
// ones.
func ParseQuirks(s string) ([]Quirk, error) {
	var out []Quirk
	for name := range strings.SplitSeq(s, ",") {
		q := Quirk(strings.ToLower(strings.TrimSpace(name)))
		if q == "" {
			continue
		}
		if !slices.Contains(Quirks(), q) {
			return nil, fmt.Errorf("unknown quirk %q; known: %s", string(q), quirkNames())
		}
		if !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	return out, nil
}

func quirkNames() string {
	names := make([]string, 0, len(Quirks()))
	for _, q := range Quirks() {
		names = append(names, string(q))
	}
	return strings.Join(names, ", ")
}

// quirkSet is the quirks a server runs with, one bit each.
type quirkSet uint8

func quirkBit(q Quirk) quirkSet {
	switch q {
	case QuirkNoContinuousUsage:
		return 1 << 0
	case QuirkNoN:
		return 1 << 1
	case QuirkErrorWithoutDone:
		return 1 << 2
	case QuirkFlatErrors:
		return 1 << 3
	}
	return 0
}

func newQuirkSet(qs []Quirk) (quirkSet, error) {
	var set quirkSet
	for _, q := range qs {
		bit := quirkBit(q)
		if bit == 0 {
			return 0, fmt.Errorf("unknown quirk %q; known: %s", string(q), quirkNames())
		}
		set |= bit
	}
	return set, nil
}

func (s quirkSet) has(q Quirk) bool { return s&quirkBit(q) != 0 }
