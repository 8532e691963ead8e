package server

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/go-chi/chi/v5"

	"github.com/vllm-worker/vllm-worker/openai"
)

// Server is the worker's whole HTTP surface.
type Server struct {
	http.Handler
	limit   *limiter
	cutting *atomic.Bool
}

// Cut says that the drain is over: the requests still in flight are about to
// be cut by closing their connections, and are counted as aborted by the
// shutdown rather than by their clients.
func (s *Server) Cut() { s.cutting.Store(true) }

// Idle returns once no OpenAI request is in flight or queued for the engine, or
// when ctx ends (its error): the drain after SIGTERM waits for it before the
// listeners close.
func (s *Server) Idle(ctx context.Context) error {
	if s.limit == nil {
		return nil
	}
	return s.limit.active.wait(ctx)
}

// New returns the worker's whole HTTP surface. Every route is served both at the
// root and under /v2/{endpoint_id}/, the shape of RunPod's public API.
func New(d Deps) *Server {
	r := chi.NewRouter()
	r.Use(requestID, accessLog(d.Log, d.Metrics), recoverer(d.Log), guard(&d))
	if len(d.CORSAllowedOrigins) > 0 {
		// Before any route, so that a preflight is answered on every path and
		// before the API key check (browsers send preflights without it).
		r.Use(allowCORS(&d))
	}
	r.NotFound(d.notFound)
	r.MethodNotAllowed(d.methodNotAllowed)

	r.Get("/health", handleHealth(&d))
	r.Get("/ping", handlePing(&d))

	d.limit = newLimiter(d.MaxConcurrency, d.MaxQueue, d.Metrics)
	d.cutting = new(atomic.Bool)
	scrape := d.Metrics.Handler(d.Engine.BaseURL, &http.Client{Transport: &http.Transport{Proxy: nil}})
	api := func(r chi.Router) {
		r.Use(requireKey(&d))
		r.Post("/openai/v1/chat/completions", handleGenerate(&d, "/v1/chat/completions"))
		r.Post("/openai/v1/completions", handleGenerate(&d, "/v1/completions"))
		r.Get("/openai/v1/models", handleModels(&d))
		r.HandleFunc("/openai/v1/*", handlePassthrough(&d))
		r.Post("/v1/chat/completions", handleGenerate(&d, "/v1/chat/completions"))
		r.Post("/v1/completions", handleGenerate(&d, "/v1/completions"))
		r.Get("/v1/models", handleModels(&d))
		r.HandleFunc("/v1/*", handlePassthrough(&d))
		r.Method(http.MethodGet, "/metrics", scrape)

		r.Post("/run", handleRun(&d))
		r.Post("/runsync", handleRunSync(&d))
		r.Get("/status/{id}", handleStatus(&d, false))
		r.Post("/status/{id}", handleStatus(&d, false))
		r.Get("/status-sync/{id}", handleStatus(&d, true))
		r.Post("/status-sync/{id}", handleStatus(&d, true))
		r.Get("/stream/{id}", handleStream(&d))
		r.Post("/stream/{id}", handleStream(&d))
		r.Post("/cancel/{id}", handleCancel(&d))
		r.Post("/purge-queue", handlePurgeQueue(&d))
	}
	r.Group(api)
	r.Route("/v2/{endpoint_id}", func(r chi.Router) {
		r.Get("/health", handleHealth(&d))
		r.Get("/ping", handlePing(&d))
		r.Group(api)
	})
	return &Server{Handler: r, limit: d.limit, cutting: d.cutting}
}

// NewHealth is the surface of the separate PORT_HEALTH listener: /ping and /health.
func NewHealth(d Deps) http.Handler {
	r := chi.NewRouter()
	r.Use(recoverer(d.Log), guard(&d))
	r.NotFound(d.notFound)
	r.Get("/ping", handlePing(&d))
	r.Get("/health", handleHealth(&d))
	return r
}

func (d *Deps) notFound(w http.ResponseWriter, r *http.Request) {
	d.writeError(w, r, openai.NewError(http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path))
}

func (d *Deps) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	d.writeError(w, r, openai.NewError(http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path))
}
