package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func okEngine(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"cmpl-1","object":"chat.completion"}`)
}

const chatBody = `{"model":"m", "messages":[{"role":"user","content":"hi"}], "temperature": 0}`

func TestRequestID(t *testing.T) {
	h := newHarness(t, okEngine, nil)
	tests := []struct {
		name, given string
		keep        bool
	}{
		{"given", "client-id-1", true},
		{"absent", "", false},
		{"too long", strings.Repeat("x", 200), false},
	}
	seen, engineSeen := map[string]bool{}, map[string]bool{}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.given != "" {
				hdr = []string{"X-Request-Id", tt.given}
			}
			resp, body := h.do(t, http.MethodPost, "/v1/chat/completions", chatBody, hdr...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %s; want 200", resp.StatusCode, body)
			}
			got := resp.Header.Get("X-Request-Id")
			if (got == tt.given) != tt.keep || got == "" || seen[got] {
				t.Errorf("got X-Request-Id %q for %q; want it kept %v, non-empty and unique", got, tt.given, tt.keep)
			}
			seen[got] = true
			// The engine sees the id with a suffix unique to the engine request.
			if reqs := h.engine.requests(); len(reqs) != i+1 || !strings.HasPrefix(reqs[i].RequestID, got+"-") || engineSeen[reqs[i].RequestID] {
				t.Errorf("the engine saw %+v; want request id %q plus a unique suffix", reqs, got)
			} else {
				engineSeen[reqs[i].RequestID] = true
			}
		})
	}
	// Two requests with the same X-Request-Id reach the engine as two ids.
	for range 2 {
		h.do(t, http.MethodPost, "/v1/chat/completions", chatBody, "X-Request-Id", "same-id")
	}
	reqs := h.engine.requests()
	a, b := reqs[len(reqs)-2].RequestID, reqs[len(reqs)-1].RequestID
	if a == b || !strings.HasPrefix(a, "same-id-") || !strings.HasPrefix(b, "same-id-") {
		t.Errorf("two requests with X-Request-Id same-id reached the engine as %q and %q; want two distinct ids", a, b)
	}
}

func TestRequireKey(t *testing.T) {
	h := newHarness(t, okEngine, func(d *Deps) { d.APIKey = "k" })
	tests := []struct {
		path, auth string
		want       int
	}{
		{"/v1/models", "", http.StatusUnauthorized},
		{"/v1/models", "Bearer wrong", http.StatusUnauthorized},
		{"/v1/models", "k2", http.StatusUnauthorized},
		{"/v1/models", "Bearer k", http.StatusOK},
		{"/v1/models", "bearer k", http.StatusOK},
		{"/v1/models", "k", http.StatusOK},
		{"/openai/v1/models", "", http.StatusUnauthorized},
		{"/v2/ep1/openai/v1/models", "", http.StatusUnauthorized},
		{"/v2/ep1/openai/v1/models", "Bearer k", http.StatusOK},
		{"/status/some-id", "", http.StatusUnauthorized},
		{"/health", "", http.StatusOK},
		{"/ping", "", http.StatusOK},
		{"/v2/ep1/health", "", http.StatusOK},
		{"/v2/ep1/ping", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.auth, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			resp, body := h.do(t, http.MethodGet, tt.path, "", hdr...)
			if tt.want == http.StatusUnauthorized {
				if e := checkError(t, resp, body, tt.want); e.Error.Type != "AuthenticationError" {
					t.Errorf("got type %q; want AuthenticationError", e.Error.Type)
				}
			} else if resp.StatusCode != tt.want {
				t.Errorf("got %d %s; want %d", resp.StatusCode, body, tt.want)
			}
		})
	}
}

func TestRecoverer(t *testing.T) {
	h := recoverer(zerolog.Nop())(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret internal detail")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	body := rec.Body.String()
	checkError(t, rec.Result(), body, http.StatusInternalServerError)
	for _, leak := range []string{"secret", "goroutine", ".go:", "panic"} {
		if strings.Contains(body, leak) {
			t.Errorf("got body %s; want no %q in it", body, leak)
		}
	}

	abort := recoverer(zerolog.Nop())(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("got panic %v; want http.ErrAbortHandler re-panicked", v)
		}
	}()
	abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
}

// hideLength hides a reader's length, so the request is sent chunked.
type hideLength struct{ io.Reader }

func TestRequestChecks(t *testing.T) {
	h := newHarness(t, okEngine, func(d *Deps) { d.MaxRequestBytes = 100 })
	big := `{"model":"m","prompt":"` + strings.Repeat("x", 200) + `"}`
	tests := []struct {
		name, path, body, ctype string
		chunked                 bool
		want                    int
		param                   string
	}{
		{"ok", "/v1/chat/completions", chatBody, "application/json; charset=utf-8", false, http.StatusOK, ""},
		{"ok under v2", "/v2/ep1/openai/v1/chat/completions", chatBody, "", true, http.StatusOK, ""},
		{"too large", "/v1/completions", big, "application/json", false, http.StatusRequestEntityTooLarge, ""},
		{"too large chunked", "/v1/completions", big, "application/json", true, http.StatusRequestEntityTooLarge, ""},
		{"too large passthrough", "/v1/embeddings", big, "application/json", false, http.StatusRequestEntityTooLarge, ""},
		{"wrong content type", "/v1/completions", `{"model":"m"}`, "text/plain", false, http.StatusBadRequest, ""},
		{"not json", "/v1/completions", `{"model":`, "application/json", false, http.StatusBadRequest, ""},
		{"not an object", "/v1/completions", `["m"]`, "application/json", false, http.StatusBadRequest, ""},
		{"unknown model", "/v1/completions", `{"model":"nope","prompt":"x"}`, "", false, http.StatusNotFound, "model"},
		{"unknown model openai", "/openai/v1/chat/completions", `{"model":"nope"}`, "", false, http.StatusNotFound, "model"},
		{"model not a string", "/v1/completions", `{"model":1}`, "", false, http.StatusBadRequest, "model"},
		{"unknown route", "/v2/ep1/nowhere", `{}`, "", false, http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rd io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				rd = hideLength{rd}
			}
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+tt.path, rd)
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.want == http.StatusOK {
				if resp.StatusCode != http.StatusOK || string(b) != `{"id":"cmpl-1","object":"chat.completion"}` {
					t.Errorf("got %d %s; want the engine's answer", resp.StatusCode, b)
				}
				return
			}
			e := checkError(t, resp, string(b), tt.want)
			if got := e.Error.Param; (got == nil) != (tt.param == "") || (got != nil && *got != tt.param) {
				t.Errorf("got param %v; want %q", got, tt.param)
			}
		})
	}
	reqs := h.engine.requests()
	if len(reqs) != 2 {
		t.Fatalf("the engine saw %+v; want only the two ok requests", reqs)
	}
	for _, r := range reqs {
		if r.Path != "/v1/chat/completions" || r.Body != chatBody {
			t.Errorf("the engine saw %+v; want the chat route and the body unchanged", r)
		}
	}
}

func TestNotReady(t *testing.T) {
	h := newHarness(t, nil, nil) // the engine must never be called
	tests := []struct {
		st   Status
		want string
	}{
		{Status{State: StateStarting, Phase: "loading_weights"}, "loading_weights"},
		{Status{State: StateDraining}, "shutting down"},
		{Status{State: StateUnhealthy, Detail: "engine exited"}, "unhealthy"},
	}
	for _, tt := range tests {
		h.status.set(tt.st)
		for _, rt := range []struct{ method, path, body string }{
			{http.MethodPost, "/v1/chat/completions", chatBody},
			{http.MethodPost, "/v2/ep1/openai/v1/completions", `{"model":"m","prompt":"x"}`},
			{http.MethodGet, "/openai/v1/models", ""},
			{http.MethodPost, "/v1/embeddings", `{"model":"m","input":"x"}`},
		} {
			t.Run(string(tt.st.State)+rt.path, func(t *testing.T) {
				resp, body := h.do(t, rt.method, rt.path, rt.body)
				e := checkError(t, resp, body, http.StatusServiceUnavailable)
				if resp.Header.Get("Retry-After") == "" || !strings.Contains(e.Error.Message, tt.want) {
					t.Errorf("got Retry-After %q, message %q; want Retry-After and %q in the message",
						resp.Header.Get("Retry-After"), e.Error.Message, tt.want)
				}
			})
		}
	}
}

func TestLimiter(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		okEngine(w, r)
	}, func(d *Deps) { d.MaxConcurrency, d.MaxQueue = 1, 0 })
	first := make(chan int)
	go func() { // not h.do: t.Fatal must not be called off the test goroutine
		resp, err := h.srv.Client().Post(h.srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-entered
	resp, body := h.do(t, http.MethodPost, "/v1/chat/completions", chatBody)
	checkError(t, resp, body, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("got no Retry-After; want one")
	}
	if resp, _ := h.do(t, http.MethodGet, "/v1/models", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("models at capacity: got %d; want 200 (not limited)", resp.StatusCode)
	}
	close(release)
	if code := <-first; code != http.StatusOK {
		t.Errorf("first request: got %d; want 200", code)
	}
}
