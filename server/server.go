// Package server is the worker's HTTP surface: the chi router, middleware (request
// ids, access log, auth, panic recovery), the OpenAI proxy handlers, health and
// readiness. Every route is listed in routes.go.
//
// It forwards request bodies to the engine byte for byte and relays streams as whole
// SSE events; it never starts or stops the engine process (see supervisor) and
// holds no job semantics of its own (see runpod).
package server

import (
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/metrics"
)

// State is the worker's life-cycle state as /health and /ping report it.
type State string

// The states of State.
const (
	StateStarting  State = "starting"
	StateReady     State = "ready"
	StateUnhealthy State = "unhealthy"
	StateDraining  State = "draining"
)

// Status is a snapshot of the worker and its engine.
type Status struct {
	State   State
	Phase   string        // start-up phase while starting (downloading, loading_weights, ...)
	Elapsed time.Duration // since the engine was started
	Engine  string        // the engine's base URL
	Detail  string        // why the worker is unhealthy, for operators
}

// readiness is what the server needs from the life-cycle owner.
type readiness interface {
	Status() Status
}

// Deps are what the handlers need; all but APIKey are required.
type Deps struct {
	Engine *engine.Client
	Models *engine.Models
	Status readiness
	Jobs   jobStore // the RunPod endpoint API's jobs
	Log    zerolog.Logger
	// Batch decides when a relayed SSE stream is flushed to the client.
	Batch batching.Policy
	// MaxRequestBytes bounds request bodies (413 beyond); zero means 32 MiB.
	MaxRequestBytes int64
	// APIKey, when set, is required as a bearer token on every route but health.
	APIKey string
	// MaxConcurrency bounds the OpenAI requests in flight (0 = no bound); up to
	// MaxQueue more wait for a slot, and beyond that requests get 429.
	MaxConcurrency int
	MaxQueue       int
	// StreamIdleTimeout ends a relayed stream the engine stopped feeding; zero
	// means none.
	StreamIdleTimeout time.Duration
	// RequestReadTimeout answers 408 to a request body that made no progress
	// (progressBytes) for this long; zero means none.
	RequestReadTimeout time.Duration
	// ClientWriteTimeout drops a client that took nothing of its answer for this
	// long; zero means none.
	ClientWriteTimeout time.Duration
	// CORSAllowedOrigins are the origins browsers may call the API from ("*",
	// or scheme://host[:port] as browsers send them); nil turns CORS off: no
	// Access-Control-* header, and a preflight is an OPTIONS like any other (405).
	CORSAllowedOrigins []string

	// Metrics records requests, streams and the queue; nil records nothing.
	// /metrics serves it, with the engine's vllm: series appended.
	Metrics *metrics.Metrics

	limit   *limiter     // built by New from MaxConcurrency and MaxQueue
	cutting *atomic.Bool // set by Server.Cut: connections cut now are the shutdown's
}

func (d *Deps) maxBody() int64 {
	if d.MaxRequestBytes <= 0 {
		return 32 << 20
	}
	return d.MaxRequestBytes
}
