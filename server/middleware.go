package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/metrics"
	"github.com/vllm-worker/vllm-worker/openai"
)

type ctxKey int

const requestIDKey ctxKey = 0

// requestIDs makes process-unique ids cheaply: a random prefix and a counter.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (g *requestIDs) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 10)
}

// requestID takes the client's X-Request-Id (or makes one), echoes it in the
// response and stores it in the context for the engine call and every log line.
func requestID(next http.Handler) http.Handler {
	ids := newRequestIDs()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			id = ids.next()
		}
		w.Header().Set("X-Request-Id", id)
		info := &requestInfo{id: id, start: time.Now()}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, info)))
	})
}

// requestInfo is what the middleware knows of a request. The handler fills in
// how its answer went (from its own goroutine, or from the relay's flushes,
// which it waits for), and the access log reads it once the handler returned.
type requestInfo struct {
	id     string
	start  time.Time
	events int    // server-sent events written to the client
	abort  string // why the answer was cut before its end (a metrics.Abort reason), or ""
	// preflight marks a CORS preflight, answered by allowCORS before routing.
	preflight bool
}

// infoOf returns the request's requestInfo, or a throwaway one outside the
// middleware (in tests of a single handler).
func infoOf(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestIDKey).(*requestInfo); ok {
		return info
	}
	return &requestInfo{start: time.Now()}
}

// requestStart is when the request reached the worker.
func requestStart(ctx context.Context) time.Time { return infoOf(ctx).start }

// RequestID returns the request id stored by the middleware.
func RequestID(ctx context.Context) string {
	if info, ok := ctx.Value(requestIDKey).(*requestInfo); ok {
		return info.id
	}
	return ""
}

// statusWriter records the status and size of a response. It keeps Flush and
// Unwrap so http.ResponseController reaches the real writer.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// statusClientLeft is the status the access log and the metrics give an answer
// whose client left (or stalled past CLIENT_WRITE_TIMEOUT_SECONDS) before its
// end, whatever was sent: nginx's 499 "client closed request".
const statusClientLeft = 499

// accessLog writes one line per request, carrying its id, and for a stream the
// events sent; an answer cut before its end says why ("abort"), with status 499
// when the client left. It also counts the request in the metrics, by route
// pattern.
func accessLog(log zerolog.Logger, m *metrics.Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			// Deferred, so that a response aborted on purpose (http.ErrAbortHandler
			// after its first byte) is logged and counted too.
			defer func() {
				aborted := recover()
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				info := infoOf(r.Context())
				if info.abort == metrics.AbortClientGone || info.abort == metrics.AbortWriteTimeout {
					status = statusClientLeft
				}
				elapsed := time.Since(start)
				route := routeLabel(r)
				if info.preflight {
					route = routePreflight // one label for all: they are answered before routing
				}
				m.Request(route, status, elapsed)
				level := zerolog.InfoLevel
				switch {
				case status >= 500 || aborted != nil:
					level = zerolog.ErrorLevel
				case status >= 400:
					level = zerolog.WarnLevel
				case r.URL.Path == "/health" || r.URL.Path == "/ping" || r.URL.Path == "/metrics" || info.preflight:
					// Browsers send a preflight before most cross-origin requests:
					// an allowed one is routine, a refused one a warning above.
					level = zerolog.DebugLevel
				}
				ev := log.WithLevel(level).
					Str("request_id", info.id).
					Str("method", r.Method).
					Str("path", r.URL.Path).
					Int("status", status).
					Int64("bytes", sw.bytes).
					Dur("duration", elapsed)
				if info.preflight {
					ev = ev.Str("origin", truncate(r.Header.Get("Origin"), 200)).
						Str("preflight_method", truncate(r.Header.Get("Access-Control-Request-Method"), 32))
				}
				if info.events > 0 {
					ev = ev.Int("events", info.events)
				}
				if info.abort != "" {
					ev = ev.Str("abort", info.abort)
				}
				if aborted != nil {
					ev = ev.Bool("aborted", true)
				}
				ev.Msg("request")
				if aborted != nil {
					panic(aborted) // net/http cuts the connection
				}
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// truncate cuts s, a header a client sent, to at most n bytes for a log line.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// routeLabel is the request's route pattern, without the /v2/{endpoint_id}
// prefix: a bounded set of values for metric labels.
func routeLabel(r *http.Request) string {
	rc := chi.RouteContext(r.Context())
	if rc == nil {
		return "unmatched"
	}
	p := strings.TrimPrefix(rc.RoutePattern(), "/v2/{endpoint_id}")
	if p == "" {
		return "unmatched"
	}
	return p
}

// recoverer turns a panic into a 500 envelope; the stack goes to the log, never
// to the client. http.ErrAbortHandler is re-panicked: it is how a handler aborts a
// response on purpose.
func recoverer(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Error().Str("request_id", RequestID(r.Context())).
						Interface("panic", v).Bytes("stack", debug.Stack()).Msg("handler panicked")
					if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
						panic(http.ErrAbortHandler) // the answer has begun: cut it, never append to it
					}
					openai.WriteError(w, openai.NewError(http.StatusInternalServerError, "internal error"))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// requireKey checks the bearer key when one is configured, before anything of
// the body is read. RunPod clients send the key bare or as "Bearer <key>"; both
// are accepted.
func requireKey(d *Deps) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if d.APIKey == "" {
			return next
		}
		want := []byte(d.APIKey)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := r.Header.Get("Authorization")
			if len(got) > 7 && strings.EqualFold(got[:7], "bearer ") {
				got = got[7:]
			}
			if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
				d.writeError(w, r, openai.NewError(http.StatusUnauthorized, "invalid or missing API key"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
