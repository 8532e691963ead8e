package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const engineText = `# HELP vllm:num_requests_running Number of requests running.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
`

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	return rec.Body.String()
}

func TestHandlerMergesEngineMetrics(t *testing.T) {
	engine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, engineText)
	}))
	defer engine.Close()
	m := New()
	m.Request("/v1/chat/completions", 200, 20*time.Millisecond)
	m.Batch("sse", 3)
	m.Job("COMPLETED")
	m.WatchHandler(func() HandlerCounters { return HandlerCounters{Completed: 7, DeliveryFailures: 2} })
	m.EngineUp(true)
	body := scrape(t, m.Handler(func() string { return engine.URL }, engine.Client()))
	for _, want := range []string{
		`vllm_worker_requests_total{code="200",route="/v1/chat/completions"} 1`,
		`vllm_worker_stream_events_total 3`,
		`vllm_worker_jobs_total{outcome="COMPLETED"} 1`,
		`vllm_worker_handler_jobs_total{outcome="completed"} 7`,
		`vllm_worker_delivery_failures_total 2`,
		`vllm_worker_engine_up 1`,
		`vllm:num_requests_running{engine="0",model_name="m"} 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(body, "process_cpu_seconds_total 12.5") {
		t.Error("the engine's process_ series leaked into the scrape (they collide with the worker's)")
	}
	if n := strings.Count(body, "# TYPE process_cpu_seconds_total"); n != 1 {
		t.Errorf("process_cpu_seconds_total declared %d times; want 1", n)
	}
}

// An engine that is down, slow to the limit, or answers garbage never breaks the scrape.
func TestHandlerSurvivesEngine(t *testing.T) {
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "this is { not prometheus")
	}))
	defer garbage.Close()
	m := New()
	for name, url := range map[string]string{"down": "http://127.0.0.1:1", "garbage": garbage.URL, "none": ""} {
		body := scrape(t, m.Handler(func() string { return url }, http.DefaultClient))
		if !strings.Contains(body, "vllm_worker_engine_up") {
			t.Errorf("%s: scrape lacks the worker's own metrics", name)
		}
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.Request("/x", 500, time.Second)
	m.InFlight(1)
	m.Queued(1)
	m.FirstEvent("/x", time.Second)
	m.Batch("tokens", 5)
	m.Job("FAILED")
	m.WatchHandler(nil)
	m.EngineUp(false)
	m.EngineRestarted()
}
