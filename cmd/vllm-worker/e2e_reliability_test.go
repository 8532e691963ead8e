package main

// The reliability and security suite (issue 4/6): cancellation
// (e2e_cancel_test.go), engine failures before and after the first byte
// (e2e_engineerrors_test.go), overload (e2e_overload_test.go), a corpus of bad
// requests (e2e_badinput_test.go, testdata/bad_requests.jsonl), secrets
// (e2e_secrets_test.go) and the soak run behind `make soak` (e2e_soak_test.go).
// This file holds what they share: reading the simulated engine's metrics, the
// OpenAI error envelope and raw SSE bodies.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// engineBase returns the engine's base URL as the worker's /health reports it.
func engineBase(t *testing.T, w *testWorker) string {
	t.Helper()
	resp, err := http.Get(w.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct{ Engine struct{ URL string } }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || h.Engine.URL == "" {
		t.Fatalf("health has no engine url (%v)", err)
	}
	return h.Engine.URL
}

// metricsClient reads the engine's /metrics on its own connections, so polling
// never queues behind the requests under test.
var metricsClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

// engineMetric returns the value of the first sample in base's /metrics (the
// engine's, or the worker's) whose name is name and whose labels contain every
// one of labels.
func engineMetric(base, name string, labels ...string) (float64, error) {
	resp, err := metricsClient.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			f := strings.Fields(line)
			return strconv.ParseFloat(f[len(f)-1], 64)
		}
	}
	return 0, fmt.Errorf("no sample %s%v in the engine's metrics", name, labels)
}

func mustMetric(t *testing.T, base, name string, labels ...string) float64 {
	t.Helper()
	v, err := engineMetric(base, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const (
	metricAborts  = "vllm:request_success_total"
	labelAbort    = `finished_reason="abort"`
	metricRunning = "vllm:num_requests_running"
	metricPrompt  = "vllm:prompt_tokens_total"
	// The worker's own gauges of its MAX_CONCURRENCY limiter.
	metricInFlight = "vllm_worker_requests_in_flight"
	metricQueued   = "vllm_worker_requests_queued"
	// The worker's count of engine requests cut before their end, by reason.
	metricAborted = "vllm_worker_requests_aborted_total"
)

// waitMetric polls the engine's metric every `every` until cond holds, and
// returns how long after start it first held; it fails after timeout.
func waitMetric(t *testing.T, base string, start time.Time, every, timeout time.Duration, cond func(float64) bool, name string, labels ...string) time.Duration {
	t.Helper()
	for {
		v, err := engineMetric(base, name, labels...)
		if err == nil && cond(v) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s%v never reached the wanted value within %v (last %v, %v)", name, labels, timeout, v, err)
		}
		time.Sleep(every) // polling the engine's counters, not synchronising
	}
}

// apiError is the OpenAI error envelope's inner object.
type apiError struct {
	Message string
	Type    string
	Param   *string
	Code    int
}

// checkEnvelope verifies that raw is exactly the OpenAI error envelope
// {"error":{"message","type","param","code"}} with code equal to status, and
// returns it.
func checkEnvelope(t *testing.T, raw []byte, status int) apiError {
	t.Helper()
	var env map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil || env["error"] == nil {
		t.Errorf("body is not the OpenAI error envelope (%v): %.300q", err, raw)
		return apiError{}
	}
	inner := env["error"]
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := inner[k]; !ok {
			t.Errorf("error envelope has no %q: %.300s", k, raw)
		}
	}
	var e apiError
	_ = json.Unmarshal(inner["message"], &e.Message)
	_ = json.Unmarshal(inner["type"], &e.Type)
	_ = json.Unmarshal(inner["param"], &e.Param)
	if err := json.Unmarshal(inner["code"], &e.Code); err != nil {
		t.Errorf("error code %s is not the integer status", inner["code"])
	}
	if e.Message == "" || e.Type == "" {
		t.Errorf("error envelope without message or type: %.300s", raw)
	}
	if e.Code != status {
		t.Errorf("error code %d; want %d: %.300s", e.Code, status, raw)
	}
	return e
}

// sseData splits a raw SSE body into its data payloads, failing on anything but
// whole "data: ...\n\n" events.
func sseData(t *testing.T, raw []byte) []string {
	t.Helper()
	if len(raw) == 0 {
		t.Fatal("empty stream")
	}
	if !strings.HasSuffix(string(raw), "\n\n") {
		t.Fatalf("stream ends inside an event: ...%q", raw[max(0, len(raw)-120):])
	}
	var out []string
	for i, ev := range strings.Split(strings.TrimSuffix(string(raw), "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("event %d is not one data line: %q", i, ev)
		}
		out = append(out, data)
	}
	return out
}

// checkErrorEnd verifies a stream that failed after its first byte: content
// events, then exactly one error event, then [DONE] as the very last event. It
// returns the error and the number of events before it.
func checkErrorEnd(t *testing.T, raw []byte, status int) (apiError, int) {
	t.Helper()
	data := sseData(t, raw)
	errIdx := -1
	for i, d := range data {
		if strings.HasPrefix(d, `{"error":`) {
			if errIdx >= 0 {
				t.Errorf("more than one error event: %q", data)
			}
			errIdx = i
		} else if d != "[DONE]" && !json.Valid([]byte(d)) {
			t.Errorf("event %d is not JSON: %q", i, d)
		}
	}
	if n := len(data); n < 2 || data[n-1] != "[DONE]" || errIdx != n-2 {
		t.Fatalf("stream does not end with one error event then [DONE]: ...%q", data[max(0, len(data)-3):])
	}
	if strings.Count(string(raw), "data: [DONE]") != 1 {
		t.Errorf("[DONE] sent more than once")
	}
	return checkEnvelope(t, []byte(data[errIdx]), status), errIdx
}

// post sends one JSON request and returns the response with its whole body.
func post(t *testing.T, c *http.Client, url, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading the body: %v (read %d bytes: ...%q)", url, err, len(raw), raw[max(0, len(raw)-200):])
	}
	return resp, raw
}

// chatBody is a chat request for the test model with extra top-level fields.
func chatBody(extra string) string {
	b := `{"model":"` + testModel + `","messages":[{"role":"user","content":"tell me a story"}]`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

// readAll reads and closes a response body.
func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("reading the body: %v", err)
	}
	return raw
}
