package main

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMetricsAndRequestIDs: /metrics has the worker's series and the engine's
// vllm: series in one scrape, and a request can be followed by its id through
// the worker's log and the engine.
func TestMetricsAndRequestIDs(t *testing.T) {
	w := startWorker(t, "BATCH_MAX_WAIT_MS=0")
	req, _ := http.NewRequest(http.MethodPost, w.URL+"/v1/chat/completions", strings.NewReader(
		`{"model":"test-model","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "trace-me-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "trace-me-123" || !strings.Contains(string(raw), `"id":"chatcmpl-trace-me-123-`) {
		t.Errorf("the request id did not reach the engine and back: header %q, body %.200s", resp.Header.Get("X-Request-Id"), raw)
	}
	w.Log.waitLine(t, 5*time.Second, func(l map[string]any) bool {
		return l["message"] == "request" && l["request_id"] == "trace-me-123" && l["path"] == "/v1/chat/completions"
	})
	if res := runSync(t, w, `{"prompt":"count","sampling_params":{"max_tokens":5},"stream":true}`); res.Status != "COMPLETED" {
		t.Fatalf("job: %s %s", res.Status, res.Error)
	}

	resp, err = http.Get(w.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`vllm_worker_requests_total{code="200",route="/v1/chat/completions"} 1`,
		`vllm_worker_time_to_first_token_seconds_count{route="/v1/chat/completions"} 1`,
		`vllm_worker_batch_item_units_count{kind="sse"}`,
		`vllm_worker_batch_item_units_sum{kind="tokens"} 5`,
		`vllm_worker_stream_events_total 7`, // role chunk, 5 tokens, [DONE]
		`vllm_worker_stream_tokens_total 5`,
		`vllm_worker_jobs_total{outcome="COMPLETED"} 1`,
		`vllm_worker_engine_up 1`,
		`vllm_worker_requests_in_flight 0`,
		`vllm:num_requests_running{`,
		`vllm:request_success_total{`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	checkMetricsDocumented(t, string(body))
}

// checkMetricsDocumented checks that every vllm_worker_* family of a real
// worker's scrape is in docs/metrics.md, which metrics' TestMetricsDoc
// generates from a registry it builds itself: a family registered outside the
// paths that test takes would be missing there.
func checkMetricsDocumented(t *testing.T, scrape string) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(scrape) {
		rest, ok := strings.CutPrefix(line, "# TYPE vllm_worker_")
		if !ok {
			continue
		}
		n++
		name := "vllm_worker_" + strings.Fields(rest)[0]
		if !strings.Contains(string(doc), "| `"+name+"` |") {
			t.Errorf("the worker serves %s, which docs/metrics.md lacks", name)
		}
	}
	if n == 0 {
		t.Error("the scrape has no vllm_worker_* family")
	}
}
