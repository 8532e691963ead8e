package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vllm-worker/vllm-worker/openai"
)

// TestHTTPStreamFlushPolicy checks when the OpenAI routes flush their SSE stream,
// against an engine producing one token every 100 ms: with the time cap each
// event reaches the client on its own; without it (BATCH_MAX_WAIT_MS=0) the
// dynamic batch holds events back and they arrive together; DEFAULT_BATCH_SIZE=1
// flushes every event.
func TestHTTPStreamFlushPolicy(t *testing.T) {
	tests := []struct {
		name      string
		env       []string
		wantGroup bool // events arriving together
	}{
		{"time cap 20ms", []string{"BATCH_MAX_WAIT_MS=20"}, false},
		{"no time cap", []string{"BATCH_MAX_WAIT_MS=0"}, true},
		{"batch size 1", []string{"BATCH_MAX_WAIT_MS=0", "DEFAULT_BATCH_SIZE=1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := startWorker(t, append([]string{"SIM_ITL_MS=100"}, tt.env...)...)
			start := time.Now()
			resp, err := http.Post(w.URL+"/v1/completions", "application/json",
				strings.NewReader(`{"prompt":"x","max_tokens":8,"stream":true}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			events := openai.NewEventReader(resp.Body)
			var arrivals []time.Duration
			for {
				ev, err := events.Next()
				if err != nil {
					t.Fatalf("stream ended without [DONE]: %v", err)
				}
				if ev.Done() {
					break
				}
				arrivals = append(arrivals, time.Since(start))
			}
			if len(arrivals) != 8 {
				t.Fatalf("got %d events; want 8", len(arrivals))
			}
			// The first event is flushed at once, whatever the policy.
			if arrivals[0] > 150*time.Millisecond {
				t.Errorf("first event after %v; want it at once", arrivals[0])
			}
			together := 0
			for i := 1; i < len(arrivals); i++ {
				if arrivals[i]-arrivals[i-1] < 15*time.Millisecond {
					together++
				}
			}
			if grouped := together > 0; grouped != tt.wantGroup {
				t.Errorf("arrivals %v: %d events arrived with their predecessor; want grouping %v", arrivals, together, tt.wantGroup)
			}
		})
	}
}
