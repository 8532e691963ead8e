package runpod

import (
	"encoding/json"
	"testing"
)

// usageJSON is an item's usage as it goes on the wire.
func usageJSON(t *testing.T, u nativeUsage) string {
	t.Helper()
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTokenCounts: items never say a usage the engine's final one contradicts.
// With vLLM's continuous usage every item knows the prompt; with an engine that
// sends usage only at the end (llm-d's simulator, the sim's no_continuous_usage
// quirk), the items before it leave "input" out rather than say 0, count the
// tokens they carry, and the final usage settles them.
func TestTokenCounts(t *testing.T) {
	t.Run("continuous usage", func(t *testing.T) {
		var c tokenCounts
		c.engineSaid(7, 1, false)
		if got := usageJSON(t, c.flushed(1)); got != `{"input":7,"output":1}` {
			t.Errorf("first item: %s", got)
		}
		c.engineSaid(7, 4, false)
		if got := usageJSON(t, c.flushed(3)); got != `{"input":7,"output":4}` {
			t.Errorf("second item: %s", got)
		}
		c.engineSaid(7, 4, true)
		if !c.settled() {
			t.Error("the last item said the final usage; settled() = false")
		}
	})
	t.Run("usage only at the end", func(t *testing.T) {
		var c tokenCounts
		if got := usageJSON(t, c.flushed(1)); got != `{"output":1}` {
			t.Errorf("first item: %s; want no input before the engine said it", got)
		}
		if got := usageJSON(t, c.flushed(3)); got != `{"output":4}` {
			t.Errorf("second item: %s", got)
		}
		// The engine counts 5 tokens: one made no text (a special token).
		c.engineSaid(9, 5, true)
		if c.settled() {
			t.Error("the last item said no input and 4 tokens; settled() = true")
		}
		if got := usageJSON(t, c.flushed(0)); got != `{"input":9,"output":5}` {
			t.Errorf("the usage item: %s; want the engine's final usage", got)
		}
		if !c.settled() {
			t.Error("settled() = false after the final usage was said")
		}
	})
	t.Run("not streamed, no usage at all", func(t *testing.T) {
		var c tokenCounts
		c.seen.Add(12)
		if got := usageJSON(t, c.flushed(c.seen.Load())); got != `{"output":12}` {
			t.Errorf("the item: %s; want the tokens seen, and no input", got)
		}
	})
}
