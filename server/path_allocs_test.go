//go:build !race

package server

import "testing"

// The allocation budget is checked without the race detector, which allocates
// on its own account: make test runs this file in a plain build of its own
// (the unit target), after the race-detector run of everything.

// allocBudget is what one relayed request may allocate, in the whole process
// (the worker and the canned engine's net/http server), measured as the
// average of many: allocations are deterministic, unlike time, so this is a
// test, and a change that allocates more per request fails make test. Lower
// the budget when the path gets cheaper.
var allocBudget = map[string]float64{
	"chat":   67,
	"stream": 105,
}

// TestRequestPathAllocs keeps the request path's allocations within allocBudget.
func TestRequestPathAllocs(t *testing.T) {
	h := pathWorker(t)
	for _, bc := range []struct{ name, body string }{{"chat", pathChatBody}, {"stream", pathStreamBody}} {
		send := pathRequest(t, h, bc.body)
		send()
		got := testing.AllocsPerRun(200, send)
		t.Logf("%s: %.1f allocations per request (budget %.0f)", bc.name, got, allocBudget[bc.name])
		if got > allocBudget[bc.name] {
			t.Errorf("%s: %.1f allocations per request; the budget is %.0f", bc.name, got, allocBudget[bc.name])
		}
	}
}
