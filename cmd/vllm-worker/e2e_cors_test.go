package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vllm-worker/vllm-worker/openai"
)

// corsDo sends one request with header pairs and returns the answer, its body read.
func corsDo(t *testing.T, method, url, body string, header ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// browserHeaders is what a browser lists in the preflight of openai-node's
// chat request (Firefox includes User-Agent).
const browserHeaders = "authorization,content-type,user-agent,x-stainless-arch,x-stainless-lang,x-stainless-os," +
	"x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout"

// TestCORS runs a worker with CORS_ALLOWED_ORIGINS and API_KEY on the simulated
// engine: preflights are answered on every route without the key and without
// the engine (even before it is ready), a refused origin gets no CORS header,
// and cross-origin requests, streams included, carry Access-Control-Allow-Origin.
func TestCORS(t *testing.T) {
	const (
		origin = "http://localhost:5173"
		key    = "cors-key"
	)
	w := startWorkerAsync(t, "API_KEY="+key, "CORS_ALLOWED_ORIGINS=https://app.example, "+origin, "SIM_STARTUP_MS=1000")
	preflight := func(origin, method string) []string {
		return []string{"Origin", origin, "Access-Control-Request-Method", method, "Access-Control-Request-Headers", browserHeaders}
	}
	chat := `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"max_tokens":5`

	// While the engine starts: the preflight is answered all the same, and the
	// 503 the page then gets is readable, with its Retry-After.
	resp, body := corsDo(t, http.MethodOptions, w.URL+"/v1/chat/completions", "", preflight(origin, "POST")...)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("preflight while the engine starts: %d %v %q; want 204 allowing %s", resp.StatusCode, resp.Header, body, origin)
	}
	resp, body = corsDo(t, http.MethodPost, w.URL+"/v1/chat/completions", chat+"}",
		"Origin", origin, "Authorization", "Bearer "+key, "Content-Type", "application/json")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
		resp.Header.Get("Retry-After") == "" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("POST while the engine starts: %d %v %q; want a readable 503 with Retry-After exposed", resp.StatusCode, resp.Header, body)
	}
	waitReady(t, w.URL, 30*time.Second, w.Log)

	for _, path := range []string{"/openai/v1/chat/completions", "/v2/ENDPOINT/openai/v1/chat/completions", "/v2/ENDPOINT/runsync", "/openai/v1/models"} {
		t.Run("preflight "+path, func(t *testing.T) {
			method := http.MethodPost
			if strings.HasSuffix(path, "/models") {
				method = http.MethodGet
			}
			resp, body := corsDo(t, http.MethodOptions, w.URL+path, "", preflight(origin, method)...)
			h := resp.Header
			if resp.StatusCode != http.StatusNoContent || body != "" || h.Get("Access-Control-Allow-Origin") != origin ||
				h.Get("Access-Control-Allow-Methods") != method || h.Get("Access-Control-Max-Age") != "3600" {
				t.Fatalf("got %d %v %q; want 204 allowing %s %s for an hour", resp.StatusCode, h, body, origin, method)
			}
			allowed := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
			for name := range strings.SplitSeq(browserHeaders, ",") {
				if !strings.Contains(allowed, name) {
					t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowed, name)
				}
			}
		})
	}
	t.Run("refused origin", func(t *testing.T) {
		resp, _ := corsDo(t, http.MethodOptions, w.URL+"/openai/v1/chat/completions", "", preflight("https://evil.example", "POST")...)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("got %d; want 403", resp.StatusCode)
		}
		for name := range resp.Header {
			if strings.HasPrefix(name, "Access-Control-") {
				t.Errorf("a refused preflight got %s: %q", name, resp.Header.Get(name))
			}
		}
		resp, _ = corsDo(t, http.MethodGet, w.URL+"/openai/v1/models", "", "Origin", "https://evil.example", "Authorization", "Bearer "+key)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET from a refused origin: %d, Allow-Origin %q; want 200 (CORS is the browser's to enforce) without it",
				resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("cross-origin chat", func(t *testing.T) {
		resp, body := corsDo(t, http.MethodPost, w.URL+"/v2/ENDPOINT/openai/v1/chat/completions", chat+"}",
			"Origin", origin, "Authorization", "Bearer "+key, "Content-Type", "application/json")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(body, `"chat.completion"`) {
			t.Errorf("got %d %v %.200s; want a chat completion allowed to %s", resp.StatusCode, resp.Header, body, origin)
		}
	})
	t.Run("cross-origin stream", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, w.URL+"/openai/v1/chat/completions", strings.NewReader(chat+`,"stream":true}`))
		req.Header.Set("Origin", origin)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("got %d %v; want an event stream allowed to %s", resp.StatusCode, resp.Header, origin)
		}
		events := openai.NewEventReader(resp.Body)
		n := 0
		for {
			ev, err := events.Next()
			if err != nil {
				t.Fatalf("the stream ended without [DONE] after %d events: %v", n, err)
			}
			if ev.Done() {
				break
			}
			n++
		}
		if n < 5 {
			t.Errorf("got %d events; want the role chunk and 5 tokens at least", n)
		}
	})
	t.Run("cross-origin job", func(t *testing.T) {
		resp, body := corsDo(t, http.MethodPost, w.URL+"/v2/ENDPOINT/runsync", `{"input":{"prompt":"hi","sampling_params":{"max_tokens":3}}}`,
			"Origin", origin, "Authorization", key, "Content-Type", "application/json")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(body, "COMPLETED") {
			t.Errorf("got %d %v %.200s; want a completed job allowed to %s", resp.StatusCode, resp.Header, body, origin)
		}
	})

	// Preflights are logged (at debug) with their origin and counted under one
	// route label.
	w.Log.waitLine(t, 5*time.Second, func(l map[string]any) bool {
		return l["message"] == "request" && l["method"] == "OPTIONS" && l["status"] == float64(204) &&
			l["origin"] == origin && l["preflight_method"] == "POST" && l["level"] == "debug"
	})
	w.Log.waitLine(t, 5*time.Second, func(l map[string]any) bool {
		return l["message"] == "request" && l["method"] == "OPTIONS" && l["status"] == float64(403) &&
			l["origin"] == "https://evil.example" && l["level"] == "warn"
	})
	_, metrics := corsDo(t, http.MethodGet, w.URL+"/metrics", "", "Authorization", "Bearer "+key)
	for _, want := range []string{
		`vllm_worker_requests_total{code="204",route="preflight"} 5`,
		`vllm_worker_requests_total{code="403",route="preflight"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
