package check

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleReport() *Report {
	return &Report{Target: "http://127.0.0.1:8000", Kind: KindWorker, Model: "demo-model", Checks: []Result{
		{Name: "models", OK: true, Latency: 850 * time.Microsecond, Detail: "demo-model"},
		{Name: "chat_stream", OK: true, Latency: 527 * time.Millisecond, TTFT: 151200 * time.Microsecond, Detail: "18 chunks"},
		{Name: "unknown_model", Latency: 1520 * time.Millisecond, Error: "status 200, want 404:\n{}",
			Request: &Request{Method: "POST", URL: "http://127.0.0.1:8000/openai/v1/chat/completions", Body: `{"model":"x"}`,
				Curl: `curl -sS -X POST 'http://127.0.0.1:8000/openai/v1/chat/completions' -H 'Content-Type: application/json' -d '{"model":"x"}'`}},
	}}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	if err := sampleReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `worker http://127.0.0.1:8000, model demo-model

CHECK          RESULT  LATENCY  TTFT   DETAIL
models         pass    850µs    -      demo-model
chat_stream    pass    527ms    151ms  18 chunks
unknown_model  FAIL    1.52s    -      status 200, want 404: {}

1 of 3 checks failed

unknown_model: status 200, want 404:
{}
  request: curl -sS -X POST 'http://127.0.0.1:8000/openai/v1/chat/completions' -H 'Content-Type: application/json' -d '{"model":"x"}'
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestWriteTableAllPassAndUnreachable(t *testing.T) {
	r := sampleReport()
	r.Checks = r.Checks[:2]
	r.OK = true
	var b strings.Builder
	_ = r.WriteTable(&b)
	if !strings.Contains(b.String(), "\nall 2 checks passed\n") {
		t.Errorf("all passing:\n%s", b.String())
	}
	r = &Report{Target: "http://127.0.0.1:1", Kind: KindEngine, Unreachable: true,
		Checks: []Result{{Name: "connect", Error: "cannot reach http://127.0.0.1:1: connection refused"}}}
	b.Reset()
	_ = r.WriteTable(&b)
	for _, want := range []string{"engine http://127.0.0.1:1\n", "connect  FAIL", "the target did not answer: no check was run",
		"connect: cannot reach http://127.0.0.1:1: connection refused"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("unreachable: no %q in\n%s", want, b.String())
		}
	}
}

func TestWriteTableCutsLongErrors(t *testing.T) {
	long := strings.Repeat("word ", 60)
	r := &Report{Kind: KindWorker, Checks: []Result{{Name: "x", Error: long}}}
	var b strings.Builder
	_ = r.WriteTable(&b)
	row := strings.Split(b.String(), "\n")[3]
	if !strings.HasSuffix(row, "...") || len(row) > 140 {
		t.Errorf("row %q: want it cut at 100 characters", row)
	}
	if !strings.Contains(b.String(), "x: "+long) {
		t.Error("the whole error is not below the table")
	}
}

func TestWriteJSON(t *testing.T) {
	var b strings.Builder
	if err := sampleReport().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	want := map[string]any{
		"target": "http://127.0.0.1:8000", "kind": "worker", "model": "demo-model", "ok": false, "failed": 1.0,
		"checks": []any{
			map[string]any{"name": "models", "ok": true, "latency_ms": 0.9, "ttft_ms": nil, "detail": "demo-model"},
			map[string]any{"name": "chat_stream", "ok": true, "latency_ms": 527.0, "ttft_ms": 151.2, "detail": "18 chunks"},
			map[string]any{"name": "unknown_model", "ok": false, "latency_ms": 1520.0, "ttft_ms": nil,
				"error": "status 200, want 404:\n{}", "request": map[string]any{
					"method": "POST", "url": "http://127.0.0.1:8000/openai/v1/chat/completions", "body": `{"model":"x"}`,
					"curl": `curl -sS -X POST 'http://127.0.0.1:8000/openai/v1/chat/completions' -H 'Content-Type: application/json' -d '{"model":"x"}'`}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}
