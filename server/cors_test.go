package server

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

const (
	allowedOrigin = "https://app.example"
	refusedOrigin = "https://evil.example"
)

// sdkHeaders is what openai-node lists in a preflight's
// Access-Control-Request-Headers, in a browser's lower case.
func sdkHeaders() string { return strings.ToLower(strings.Join(corsAllowedHeaders(), ",")) }

func preflight(origin, method, headers string) []string {
	h := []string{"Origin", origin, "Access-Control-Request-Method", method}
	if headers != "" {
		h = append(h, "Access-Control-Request-Headers", headers)
	}
	return h
}

// corsHeaders are the response headers that tell a browser anything about CORS.
func corsHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			out[k] = strings.Join(v, ", ")
		}
	}
	return out
}

// Without CORS_ALLOWED_ORIGINS nothing changes: a preflight is an OPTIONS like
// any other (405 on the worker's own routes; the /v1/* pass-through forwards
// any method), and no answer carries a CORS header.
func TestCORSOff(t *testing.T) {
	h := newHarness(t, okEngine, nil)
	for _, path := range []string{"/runsync", "/v2/ep/status/x", "/v2/ep/openai/v1/models", "/v1/chat/completions"} {
		resp, body := h.do(t, http.MethodOptions, path, "", preflight(allowedOrigin, "POST", "authorization")...)
		if !strings.Contains(path, "v1/") {
			checkError(t, resp, body, http.StatusMethodNotAllowed)
		}
		if c := corsHeaders(resp.Header); len(c) > 0 {
			t.Errorf("preflight of %s without CORS: got CORS headers %v", path, c)
		}
	}
	if reqs := h.engine.requests(); len(reqs) != 2 || reqs[0].Method != http.MethodOptions || reqs[1].Method != http.MethodOptions {
		t.Errorf("the engine saw %+v; want the two OPTIONS of the pass-through", reqs)
	}
	resp, body := h.do(t, http.MethodPost, "/v1/chat/completions", chatBody, "Origin", allowedOrigin)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	if c := corsHeaders(resp.Header); len(c) > 0 || resp.Header.Get("Vary") != "" {
		t.Errorf("POST without CORS: got CORS headers %v, Vary %q", c, resp.Header.Get("Vary"))
	}
}

// With CORS on, preflights are answered before routing and before the key
// check, on every path, and never reach the engine; other requests get the
// headers when their origin is allowed, errors included.
func TestCORS(t *testing.T) {
	h := newHarness(t, nil, func(d *Deps) { // any engine request fails the test
		d.APIKey = "k"
		d.CORSAllowedOrigins = []string{allowedOrigin, "http://localhost:5173"}
	})
	for _, path := range []string{"/v1/chat/completions", "/openai/v1/chat/completions", "/openai/v1/responses",
		"/v2/ep/openai/v1/chat/completions", "/v2/ep/runsync", "/status/x", "/metrics", "/no/such/route"} {
		t.Run("preflight "+path, func(t *testing.T) {
			resp, body := h.do(t, http.MethodOptions, path, "", preflight(allowedOrigin, "POST", sdkHeaders())...)
			if resp.StatusCode != http.StatusNoContent || body != "" {
				t.Fatalf("got %d %q; want 204 and no body", resp.StatusCode, body)
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":  allowedOrigin,
				"Access-Control-Allow-Methods": "POST",
				"Access-Control-Allow-Headers": strings.Join(parseList(sdkHeaders()), ", "),
				"Access-Control-Max-Age":       "3600",
			}
			if got := corsHeaders(resp.Header); !maps.Equal(got, want) {
				t.Errorf("got CORS headers %v; want %v", got, want)
			}
			if vary := resp.Header.Values("Vary"); !slices.Contains(vary, "Origin") {
				t.Errorf("got Vary %q; want Origin among them", vary)
			}
		})
	}
	refused := []struct {
		name   string
		header []string
	}{
		{"origin", preflight(refusedOrigin, "POST", "authorization,content-type")},
		{"origin that only shares a prefix", preflight(allowedOrigin+".evil.example", "POST", "")},
		{"method", preflight(allowedOrigin, "PUT", "")},
		{"header", preflight(allowedOrigin, "POST", "authorization,x-custom")},
	}
	for _, tt := range refused {
		t.Run("refused "+tt.name, func(t *testing.T) {
			resp, body := h.do(t, http.MethodOptions, "/v1/chat/completions", "", tt.header...)
			checkError(t, resp, body, http.StatusForbidden)
			if c := corsHeaders(resp.Header); len(c) > 0 {
				t.Errorf("got CORS headers %v; want none", c)
			}
		})
	}
	t.Run("OPTIONS that is no preflight", func(t *testing.T) {
		resp, body := h.do(t, http.MethodOptions, "/runsync", "", "Origin", allowedOrigin)
		checkError(t, resp, body, http.StatusMethodNotAllowed)
	})

	h.engine.setHandler(okEngine)
	actual := []struct {
		name, origin string
		key          string
		status       int
		cors         bool
	}{
		{"allowed origin", "http://localhost:5173", "Bearer k", http.StatusOK, true},
		{"allowed origin, no key: the 401 is readable", allowedOrigin, "", http.StatusUnauthorized, true},
		{"refused origin: served, but unreadable in a browser", refusedOrigin, "Bearer k", http.StatusOK, false},
		{"no origin", "", "Bearer k", http.StatusOK, false},
	}
	for _, tt := range actual {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.origin != "" {
				hdr = append(hdr, "Origin", tt.origin)
			}
			if tt.key != "" {
				hdr = append(hdr, "Authorization", tt.key)
			}
			resp, body := h.do(t, http.MethodPost, "/v2/ep/openai/v1/chat/completions", chatBody, hdr...)
			if resp.StatusCode != tt.status {
				t.Fatalf("got %d %s; want %d", resp.StatusCode, body, tt.status)
			}
			want := map[string]string{}
			if tt.cors {
				want = map[string]string{
					"Access-Control-Allow-Origin":   tt.origin,
					"Access-Control-Expose-Headers": "X-Request-Id, Retry-After",
				}
			}
			if got := corsHeaders(resp.Header); !maps.Equal(got, want) {
				t.Errorf("got CORS headers %v; want %v", got, want)
			}
		})
	}
}

func TestCORSAnyOrigin(t *testing.T) {
	h := newHarness(t, okEngine, func(d *Deps) { d.CORSAllowedOrigins = []string{"*"} })
	resp, _ := h.do(t, http.MethodOptions, "/runsync", "", preflight("http://anything.example:8080", "POST", "content-type")...)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight: got %d, Allow-Origin %q; want 204, *", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp, _ = h.do(t, http.MethodGet, "/v1/models", "", "Origin", "null")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("GET: got %d, Allow-Origin %q; want 200, *", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

func parseList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		out = append(out, http.CanonicalHeaderKey(strings.TrimSpace(p)))
	}
	return out
}
