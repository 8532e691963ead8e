package server

import (
	"net/http"

	"github.com/go-chi/cors"

	"github.com/vllm-worker/vllm-worker/openai"
)

// routePreflight is the route label of CORS preflights in the access log and the
// metrics: they are answered before routing, for any path.
const routePreflight = "preflight"

// corsMaxAge is how long, in seconds, a browser may keep a preflight's answer:
// within it, a page's next requests need no preflight of their own.
const corsMaxAge = 3600

// corsAllowedHeaders are the request headers a page may send cross-origin: what
// the official OpenAI SDKs send from a browser (openai-node 6: Authorization,
// Content-Type, Accept, User-Agent, which Firefox lists in its preflights, its
// X-Stainless-* headers, OpenAI-Organization, OpenAI-Project, OpenAI-Beta) and
// X-Request-Id. go-chi/cors matches names exactly, with no prefix wildcard (a
// lone "*" would allow every header), so the X-Stainless-* family is listed name
// by name; tests/node/cors.test.mjs (run by TestTLS in cmd/vllm-worker) checks
// the list against the SDK's actual requests.
func corsAllowedHeaders() []string {
	return []string{
		"Authorization", "Content-Type", "Accept", "User-Agent", "X-Request-Id",
		"OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta",
		"X-Stainless-Lang", "X-Stainless-Package-Version", "X-Stainless-OS", "X-Stainless-Arch",
		"X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Retry-Count",
		"X-Stainless-Timeout", "X-Stainless-Helper-Method", "X-Stainless-Poll-Helper",
		"X-Stainless-Custom-Poll-Interval",
	}
}

// isPreflight tells a CORS preflight: OPTIONS with Origin and
// Access-Control-Request-Method, as go-chi/cors tells it.
func isPreflight(r *http.Request) bool {
	_, origin := r.Header["Origin"]
	return r.Method == http.MethodOptions && origin && r.Header.Get("Access-Control-Request-Method") != ""
}

// allowCORS answers browsers for d.CORSAllowedOrigins (CORS_ALLOWED_ORIGINS)
// with go-chi/cors. A preflight is answered here, on any path: 204 with the
// Access-Control-Allow-* headers (GET and POST, corsAllowedHeaders, for
// corsMaxAge), or 403 without any CORS header when its origin, method or headers
// are not allowed. It never reaches the routes, so neither the API key check nor
// the engine. Any other request goes on to the routes, with
// Access-Control-Allow-Origin and -Expose-Headers (X-Request-Id, Retry-After)
// set first when its origin is allowed, so that its answer, errors included, is
// readable by the page. Cookies are not allowed (no
// Access-Control-Allow-Credentials): a page sends the key in Authorization.
func allowCORS(d *Deps) func(http.Handler) http.Handler {
	c := cors.New(cors.Options{
		AllowedOrigins: d.CORSAllowedOrigins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders: corsAllowedHeaders(),
		ExposedHeaders: []string{"X-Request-Id", "Retry-After"},
		MaxAge:         corsMaxAge,
		// The answer to a preflight is ours: go-chi/cors sets the headers, then
		// hands the preflight to answer instead of writing a bare 200.
		OptionsPassthrough: true,
	})
	answer := c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if w.Header().Get("Access-Control-Allow-Origin") == "" {
			d.writeError(w, r, openai.NewError(http.StatusForbidden,
				"cross-origin request refused: its origin, method or headers are not allowed (CORS_ALLOWED_ORIGINS)"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return func(next http.Handler) http.Handler {
		actual := c.Handler(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isPreflight(r) {
				infoOf(r.Context()).preflight = true
				answer.ServeHTTP(w, r)
				return
			}
			actual.ServeHTTP(w, r)
		})
	}
}
