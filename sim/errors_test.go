package sim

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"
)

func TestAcceptsLenientInput(t *testing.T) {
	_, ts := newTest(t, Options{})
	for _, tt := range []struct{ route, body string }{
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"temperature":0,"top_k":-1,"unknown_field":{"a":1}}`},
		{"/v1/chat/completions", `{"messages":[],"n":"2","temperature":"0.5","stream":"false","stream_options":{},"max_tokens":2.0,"best_of":3}`},
		{"/v1/chat/completions", `{"model":"","messages":[{"role":"assistant","content":null},{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"x"}]}]}`},
		{"/v1/completions", `{"prompt":[[1,2],[3]],"n":2}`},
		{"/v1/completions", `{"prompt":["a","b c"],"stop":null,"max_tokens":null}`},
	} {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+tt.route, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s %s: %d %s", tt.route, tt.body, resp.StatusCode, body)
		}
	}
	_, b := postRead(t, ts.URL+"/v1/completions", `{"prompt":[[1,2],[3]],"n":2}`)
	if n := len(gjson.GetBytes(b, "choices").Array()); n != 4 || gjson.GetBytes(b, "usage.prompt_tokens").Int() != 3 {
		t.Errorf("two id prompts, n=2: %d choices, usage %s; want 4 choices, 3 prompt tokens", n, gjson.GetBytes(b, "usage").Raw)
	}
}

func TestRoutes(t *testing.T) {
	_, ts := newTest(t, Options{})
	tests := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/health", 200, ""},
		{"GET", "/ping", 200, ""},
		{"POST", "/ping", 200, ""},
		{"GET", "/version", 200, `{"version":"0.0.0-sim"}`},
		{"GET", "/nope", 404, `{"detail":"Not Found"}`},
		{"GET", "/v1/embeddings", 404, `{"detail":"Not Found"}`},
		{"GET", "/v1/chat/completions", 405, `{"detail":"Method Not Allowed"}`},
		{"GET", "/v1/responses", 405, `{"detail":"Method Not Allowed"}`},
		{"POST", "/v1/responses/resp_1", 405, `{"detail":"Method Not Allowed"}`},
		{"GET", "/v1/responses/resp_1", 404, `{"error":{"message":"Response with id 'resp_1' not found.","type":"invalid_request_error","param":"response_id","code":404}}`},
		{"POST", "/v1/responses/resp_1/cancel", 404, `{"error":{"message":"Response with id 'resp_1' not found.","type":"invalid_request_error","param":"response_id","code":404}}`},
		{"POST", "/health", 405, `{"detail":"Method Not Allowed"}`},
	}
	for _, tt := range tests {
		req, _ := http.NewRequestWithContext(context.Background(), tt.method, ts.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || string(body) != tt.body {
			t.Errorf("%s %s = %d %q; want %d %q", tt.method, tt.path, resp.StatusCode, body, tt.status, tt.body)
		}
	}
}

func TestTokenize(t *testing.T) {
	_, ts := newTest(t, Options{MaxModelLen: 512})
	_, b := postRead(t, ts.URL+"/tokenize", `{"model":"`+testModel+`","prompt":"the quick  brown fox"}`)
	if gjson.GetBytes(b, "count").Int() != 4 || gjson.GetBytes(b, "max_model_len").Int() != 512 ||
		len(gjson.GetBytes(b, "tokens").Array()) != 4 || gjson.GetBytes(b, "token_strs").Type != gjson.Null {
		t.Errorf("tokenize = %s", b)
	}
	_, b = postRead(t, ts.URL+"/tokenize", `{"messages":[{"role":"user","content":"a b"},{"role":"user","content":"c"}],"return_token_strs":true}`)
	if gjson.GetBytes(b, "count").Int() != 3 || gjson.GetBytes(b, "token_strs.2").Str != "c" {
		t.Errorf("tokenize messages = %s", b)
	}
	resp, b := postRead(t, ts.URL+"/tokenize", `{"model":"other","prompt":"x"}`)
	wantError(t, resp, b, 404, "NotFoundError", "model")
}

func TestMetrics(t *testing.T) {
	_, ts := newTest(t, Options{})
	postRead(t, ts.URL+"/v1/completions", `{"prompt":"a b c","max_tokens":5,"n":2}`)
	_, b := postRead(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"max_tokens":5}`)
	stop := strings.Fields(gjson.GetBytes(b, "choices.0.message.content").Str)[1]
	postRead(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"max_tokens":5,"stop":"`+stop+`"}`)

	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	labels := `{model_name="` + testModel + `",engine="0"`
	for _, want := range []string{
		"# TYPE vllm:num_requests_running gauge\n",
		"vllm:num_requests_running" + labels + "} 0\n",
		"vllm:num_requests_waiting" + labels + "} 0\n",
		"vllm:prompt_tokens_total" + labels + "} 5\n",
		"vllm:generation_tokens_total" + labels + "} 17\n", // 2*5 + 5 + 2 (stop on the 2nd token)
		"vllm:request_success_total" + labels + `,finished_reason="length"} 3` + "\n",
		"vllm:request_success_total" + labels + `,finished_reason="stop"} 1` + "\n",
		"vllm:request_success_total" + labels + `,finished_reason="abort"} 0` + "\n",
		"# TYPE vllm:time_to_first_token_seconds histogram\n",
		"vllm:time_to_first_token_seconds_bucket" + labels + `,le="+Inf"} 3` + "\n",
		"vllm:time_to_first_token_seconds_count" + labels + "} 3\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// lockedBuffer is a concurrency-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRequestIDAndLog(t *testing.T) {
	var log lockedBuffer
	_, ts := newTest(t, Options{Log: &log})
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(`{"messages":[{"role":"user","content":"x"}],"max_tokens":2}`))
	req.Header.Set("X-Request-Id", "req-42")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if id := gjson.GetBytes(b, "id").Str; id != "chatcmpl-req-42" {
		t.Errorf("id = %q; want chatcmpl-req-42 (vLLM builds it from X-Request-Id)", id)
	}
	postRead(t, ts.URL+"/v1/completions", `{"model":"nope","prompt":"x"}`)
	eventually(t, "two log lines", func() bool { return strings.Count(log.String(), "\n") == 2 })
	if s := log.String(); !strings.Contains(s, "chatcmpl-req-42") || !strings.Contains(s, "404") {
		t.Errorf("log = %q", s)
	}
}
