package main

import (
	"strings"
	"testing"
	"time"
)

// TestFloorTable checks the Go floor table's figures and quotients on made-up
// results, and that a run without the floor says why instead of printing zeros.
func TestFloorTable(t *testing.T) {
	us := time.Microsecond
	r := newResults()
	r.lat[pathDirect] = newDist([]time.Duration{100 * us})
	r.lat[pathWorker] = newDist([]time.Duration{250 * us})
	r.lat[pathFloor] = newDist([]time.Duration{220 * us})
	r.lat[pathNginx] = newDist([]time.Duration{160 * us})
	r.rps = map[string][]float64{pathWorker: {12_000}, pathFloor: {15_000}, pathNginx: {20_000}}
	r.cpuReq = map[string][]time.Duration{pathWorker: {55 * us}, pathFloor: {44 * us}, pathNginx: {22 * us}}

	var b strings.Builder
	r.floorTable(&b)
	got := b.String()
	for _, want := range []string{
		"| added latency p50, non-streaming, c=1 | +150 µs | +120 µs | +60 µs | 1.25× | 2× |",
		"| requests/s, c=64 | 12.0k | 15.0k | 20.0k | 0.8× | 0.75× |",
		"| proxy CPU time per relayed request, c=64 | 55 µs | 44 µs | 22 µs | 1.25× | 2× |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("floor table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "wrk") {
		t.Errorf("floor table has wrk rows for a run without wrk:\n%s", got)
	}

	r.floorNote = "the Go floor failed to start: boom"
	b.Reset()
	r.floorTable(&b)
	if got := b.String(); !strings.Contains(got, "none in this run (the Go floor failed to start: boom)") || strings.Contains(got, "|") {
		t.Errorf("floor table without a floor = %q", got)
	}
}

// TestC64Rows checks the c=64 rows of both load generators in the main table:
// figures, quotients against nginx and verdicts.
func TestC64Rows(t *testing.T) {
	us := time.Microsecond
	r := newResults()
	r.lat[pathNginx] = newDist([]time.Duration{100 * us})
	r.rps = map[string][]float64{pathDirect: {30_000}, pathWorker: {16_000, 15_000, 14_000}, pathNginx: {20_000}}
	r.cpuReq = map[string][]time.Duration{pathWorker: {26 * us}, pathNginx: {20 * us}}
	r.wrkRPS = map[string][]float64{pathDirect: {40_000}, pathWorker: {12_000}, pathNginx: {20_000}}
	r.wrkCPU = map[string][]time.Duration{pathWorker: {50 * us}, pathNginx: {20 * us}}
	got := r.markdown()
	for _, want := range []string{
		"| requests/s, non-streaming, c=64 (median round) | 30.0k | 15.0k | 20.0k | 0.75× | ≥ 0.8× nginx's | **FAIL** |",
		"| proxy CPU time per relayed request, non-streaming, c=64 | — | 26 µs | 20 µs | 1.3× | ≤ 1.3× nginx's | pass |",
		"| requests/s, non-streaming, c=64, wrk (median round) | 40.0k | 12.0k | 20.0k | 0.6× | ≥ 0.8× nginx's | **FAIL** |",
		"| proxy CPU time per relayed request, non-streaming, c=64, wrk | — | 50 µs | 20 µs | 2.5× | ≤ 1.3× nginx's | **FAIL** |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}
