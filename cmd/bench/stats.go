package main

import (
	"math"
	"slices"
	"time"
)

// dist is a sorted sample of durations.
type dist []time.Duration

func newDist(samples []time.Duration) dist {
	d := slices.Clone(samples)
	slices.Sort(d)
	return d
}

// pct is the nearest-rank percentile p (0 < p <= 100); zero for no samples.
func (d dist) pct(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(d)))) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func (d dist) max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}

// median of a small set of values (per-round figures).
func median[T int64 | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rotate returns the targets in round r's order, so no path always runs first
// (right after another path's load) or last.
func rotate(ts []target, r int) []target {
	out := make([]target, 0, len(ts))
	for i := range ts {
		out = append(out, ts[(i+r)%len(ts)])
	}
	return out
}
