package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testModel = "sim-test-model"

// newTest starts New(o) behind httptest; o.Model defaults to testModel.
func newTest(t *testing.T, o Options) (*Server, *httptest.Server) {
	t.Helper()
	if o.Model == "" {
		o.Model = testModel
	}
	s := New(o)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func client(ts *httptest.Server) *goopenai.Client {
	cfg := goopenai.DefaultConfig("unused")
	cfg.BaseURL = ts.URL + "/v1"
	cfg.HTTPClient = ts.Client()
	return goopenai.NewClientWithConfig(cfg)
}

// post sends body as JSON and returns the response; the body is closed at cleanup.
func post(t *testing.T, ctx context.Context, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// postRead posts and reads the whole response body.
func postRead(t *testing.T, url, body string) (*http.Response, []byte) {
	t.Helper()
	resp := post(t, context.Background(), url, body)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp, b
}

// events splits a complete SSE body into event payloads, failing on any framing
// error: every event must be exactly "data: <one line>\n\n".
func events(t *testing.T, body []byte) []string {
	t.Helper()
	if !bytes.HasSuffix(body, []byte("\n\n")) {
		t.Fatalf("stream does not end with a blank line: %q", tail(body))
	}
	var out []string
	for _, ev := range strings.SplitAfter(string(body), "\n\n") {
		if ev == "" {
			continue
		}
		data, ok := strings.CutPrefix(ev, "data: ")
		data, ok2 := strings.CutSuffix(data, "\n\n")
		if !ok || !ok2 || strings.Contains(data, "\n") {
			t.Fatalf("bad event framing: %q", ev)
		}
		if data != "[DONE]" && !json.Valid([]byte(data)) {
			t.Fatalf("event is not valid JSON: %q", data)
		}
		out = append(out, data)
	}
	return out
}

func tail(b []byte) []byte {
	if len(b) > 200 {
		return b[len(b)-200:]
	}
	return b
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantError checks vLLM's nested error envelope.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, typ, param string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d; want %d (body %s)", resp.StatusCode, status, body)
	}
	e := gjson.GetBytes(body, "error")
	if !e.IsObject() || !e.Get("message").Exists() || e.Get("type").Str != typ || e.Get("code").Int() != int64(status) {
		t.Errorf("error body = %s; want type %s code %d", body, typ, status)
	}
	if p := e.Get("param"); (param == "" && p.Type != gjson.Null) || (param != "" && p.Str != param) {
		t.Errorf("error param = %s; want %q", p.Raw, param)
	}
}
