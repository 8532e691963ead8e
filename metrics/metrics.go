// Package metrics defines the worker's Prometheus metrics and serves /metrics:
// the worker's own series plus the engine's vllm: series in the same scrape.
//
// It records nothing by itself: the packages that see an event (server, runpod,
// cmd) update the collectors. It never lets the engine break a scrape.
package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the worker's collectors, registered on a private registry. A nil
// *Metrics is valid and records nothing, so tests and tools need not build one.
type Metrics struct {
	reg *prometheus.Registry

	requests       *prometheus.CounterVec   // route, code
	requestSeconds *prometheus.HistogramVec // route
	inFlight       prometheus.Gauge
	queued         prometheus.Gauge
	ttftSeconds    *prometheus.HistogramVec // route
	events         prometheus.Counter       // SSE events relayed to HTTP clients
	tokens         prometheus.Counter       // token deltas in native job items
	batchUnits     *prometheus.HistogramVec // kind: sse|tokens|job_sse; units per flushed item
	jobs           *prometheus.CounterVec   // outcome
	engineUp       prometheus.Gauge
	engineRestarts prometheus.Counter
	limits         map[string]prometheus.Counter  // by limit, one child each, made up front
	aborted        map[string]prometheus.Counter  // by reason, one child each, made up front
	batchKinds     map[string]prometheus.Observer // batchUnits by kind, made up front

	// routes caches each route's children, so that a request's metrics are
	// found without hashing label values (client_golang's WithLabelValues).
	routesMu sync.RWMutex
	routes   map[string]*routeMetrics
}

// routeMetrics are the children of one route's series.
type routeMetrics struct {
	seconds prometheus.Observer
	ttft    prometheus.Observer
	mu      sync.Mutex
	codes   map[int]prometheus.Counter
}

// route returns the children of route's series, made on first use.
func (m *Metrics) route(route string) *routeMetrics {
	m.routesMu.RLock()
	rm := m.routes[route]
	m.routesMu.RUnlock()
	if rm != nil {
		return rm
	}
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	if rm = m.routes[route]; rm == nil {
		rm = &routeMetrics{seconds: m.requestSeconds.WithLabelValues(route), ttft: m.ttftSeconds.WithLabelValues(route),
			codes: map[int]prometheus.Counter{}}
		m.routes[route] = rm
	}
	return rm
}

// code returns the requests counter of one status code of the route.
func (rm *routeMetrics) code(m *Metrics, route string, code int) prometheus.Counter {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	c := rm.codes[code]
	if c == nil {
		c = m.requests.WithLabelValues(route, strconv.Itoa(code))
		rm.codes[code] = c
	}
	return c
}

// The reasons an engine request is aborted before its end, the label values of
// vllm_worker_requests_aborted_total.
const (
	AbortClientGone   = "client_gone"   // an HTTP client left mid-answer
	AbortCancel       = "cancel"        // /cancel of a running job
	AbortJobStop      = "job_stop"      // RunPod's job-stop
	AbortIdleTimeout  = "idle_timeout"  // the engine sent nothing for STREAM_IDLE_TIMEOUT_SECONDS
	AbortWriteTimeout = "write_timeout" // a client read nothing for CLIENT_WRITE_TIMEOUT_SECONDS
	AbortShutdown     = "shutdown"      // the drain after SIGTERM ended with it still running
)

var abortReasons = []string{AbortClientGone, AbortCancel, AbortJobStop, AbortIdleTimeout, AbortWriteTimeout, AbortShutdown}

// The limits of contract section 8, the label values of
// vllm_worker_limit_rejections_total.
const (
	LimitJSONDepth     = "json_depth"      // a body nested deeper than 128 levels: 400
	LimitBodySize      = "body_size"       // a body over MAX_REQUEST_BYTES: 413
	LimitReadTimeout   = "read_timeout"    // headers or body stalled for REQUEST_READ_TIMEOUT_SECONDS: 408
	LimitWriteTimeout  = "write_timeout"   // a client read nothing for CLIENT_WRITE_TIMEOUT_SECONDS: dropped
	LimitConcurrency   = "concurrency"     // MAX_CONCURRENCY and MAX_QUEUE full: 429
	LimitJobStoreBytes = "job_store_bytes" // the job store holds JOB_STORE_MAX_BYTES: 429
	LimitJobStoreJobs  = "job_store_jobs"  // the job store holds its most jobs: 429
	LimitWebhook       = "webhook"         // a webhook refused at submit (400) or at dial time
	LimitEnginePath    = "engine_path"     // a route or pass-through path refused: 400
	LimitPolicy        = "policy"          // a job policy time out of RunPod's range: 400
)

// limitNames lists every limit, so that each one's series exists from the start.
var limitNames = []string{LimitJSONDepth, LimitBodySize, LimitReadTimeout, LimitWriteTimeout, LimitConcurrency,
	LimitJobStoreBytes, LimitJobStoreJobs, LimitWebhook, LimitEnginePath, LimitPolicy}

// New returns the worker's metrics, with Go runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) prometheus.Collector { reg.MustRegister(c); return c }
	latency := []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	m := &Metrics{
		reg: reg,
		requests: f(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vllm_worker_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"})).(*prometheus.CounterVec),
		requestSeconds: f(prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vllm_worker_request_duration_seconds", Help: "End-to-end HTTP request latency by route.", Buckets: latency,
		}, []string{"route"})).(*prometheus.HistogramVec),
		inFlight: f(prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vllm_worker_requests_in_flight", Help: "OpenAI requests being served.",
		})).(prometheus.Gauge),
		queued: f(prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vllm_worker_requests_queued", Help: "OpenAI requests waiting for a MAX_CONCURRENCY slot.",
		})).(prometheus.Gauge),
		ttftSeconds: f(prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vllm_worker_time_to_first_token_seconds", Help: "Time from request to the first streamed event, as the client sees it.", Buckets: latency,
		}, []string{"route"})).(*prometheus.HistogramVec),
		events: f(prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vllm_worker_stream_events_total", Help: "SSE events relayed to HTTP clients.",
		})).(prometheus.Counter),
		tokens: f(prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vllm_worker_stream_tokens_total", Help: "Token deltas streamed in native job items.",
		})).(prometheus.Counter),
		batchUnits: f(prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vllm_worker_batch_item_units", Help: "Units per flushed stream item, by kind: sse (events of an OpenAI HTTP stream), job_sse (events of an OpenAI-input job's stream), tokens (token deltas of a native job's stream).",
			Buckets: []float64{1, 2, 3, 5, 9, 15, 27, 40, 50, 75, 100},
		}, []string{"kind"})).(*prometheus.HistogramVec),
		jobs: f(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vllm_worker_jobs_total", Help: "Finished jobs of the local RunPod API (/run, /runsync) by outcome.",
		}, []string{"outcome"})).(*prometheus.CounterVec),
		engineUp: f(prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vllm_worker_engine_up", Help: "1 when the engine serves, 0 otherwise.",
		})).(prometheus.Gauge),
		engineRestarts: f(prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vllm_worker_engine_restarts_total", Help: "Engine restarts after a failure (ENGINE_RESTART=on-failure).",
		})).(prometheus.Counter),
	}
	limits := f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vllm_worker_limit_rejections_total", Help: "Requests, jobs and connections refused or cut by a limit against hostile or slow peers (contract section 8), by limit.",
	}, []string{"limit"})).(*prometheus.CounterVec)
	m.limits = make(map[string]prometheus.Counter, len(limitNames))
	for _, l := range limitNames {
		m.limits[l] = limits.WithLabelValues(l)
	}
	aborted := f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vllm_worker_requests_aborted_total", Help: "Engine requests (of HTTP requests and jobs) aborted before their end, by reason.",
	}, []string{"reason"})).(*prometheus.CounterVec)
	m.aborted = make(map[string]prometheus.Counter, len(abortReasons))
	for _, r := range abortReasons {
		m.aborted[r] = aborted.WithLabelValues(r)
	}
	m.batchKinds = map[string]prometheus.Observer{}
	for _, k := range batchKindNames {
		m.batchKinds[k] = m.batchUnits.WithLabelValues(k)
	}
	m.routes = map[string]*routeMetrics{}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// batchKindNames are the kinds of stream items Batch records.
var batchKindNames = []string{"sse", "tokens", "job_sse"}

// Request records one finished HTTP request.
func (m *Metrics) Request(route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	rm := m.route(route)
	rm.code(m, route, code).Inc()
	rm.seconds.Observe(d.Seconds())
}

// InFlight moves the gauge of OpenAI requests being served by delta.
func (m *Metrics) InFlight(delta int) {
	if m != nil {
		m.inFlight.Add(float64(delta))
	}
}

// Queued moves the gauge of requests waiting for a slot by delta.
func (m *Metrics) Queued(delta int) {
	if m != nil {
		m.queued.Add(float64(delta))
	}
}

// FirstEvent records the time to the first event of a stream.
func (m *Metrics) FirstEvent(route string, d time.Duration) {
	if m != nil {
		m.route(route).ttft.Observe(d.Seconds())
	}
}

// Batch records one flushed stream item of units (kind: sse, job_sse, tokens).
func (m *Metrics) Batch(kind string, units int) {
	if m == nil {
		return
	}
	if o := m.batchKinds[kind]; o != nil {
		o.Observe(float64(units))
	} else {
		m.batchUnits.WithLabelValues(kind).Observe(float64(units))
	}
	if kind == "tokens" {
		m.tokens.Add(float64(units))
	} else if kind == "sse" {
		m.events.Add(float64(units))
	}
}

// Job records a finished job of the local API by its final status.
func (m *Metrics) Job(outcome string) {
	if m != nil {
		m.jobs.WithLabelValues(outcome).Inc()
	}
}

// HandlerCounters are handler mode's running totals.
type HandlerCounters struct {
	Completed, Failed, Cancelled, Cut int64
	DeliveryRetries, DeliveryFailures int64
}

// WatchHandler exports handler mode's counters, read from stats at scrape time:
// vllm_worker_handler_jobs_total{outcome} and the delivery retries and failures.
// Call it once.
func (m *Metrics) WatchHandler(stats func() HandlerCounters) {
	if m == nil {
		return
	}
	counter := func(name, help string, labels prometheus.Labels, v func(HandlerCounters) int64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v(stats())) }))
	}
	const jobsHelp = "Handler mode: finished serverless jobs by outcome (cancelled: stopped by RunPod; shutdown: cut by the shutdown past its grace; neither posts a result)."
	counter("vllm_worker_handler_jobs_total", jobsHelp, prometheus.Labels{"outcome": "completed"}, func(c HandlerCounters) int64 { return c.Completed })
	counter("vllm_worker_handler_jobs_total", jobsHelp, prometheus.Labels{"outcome": "failed"}, func(c HandlerCounters) int64 { return c.Failed })
	counter("vllm_worker_handler_jobs_total", jobsHelp, prometheus.Labels{"outcome": "cancelled"}, func(c HandlerCounters) int64 { return c.Cancelled })
	counter("vllm_worker_handler_jobs_total", jobsHelp, prometheus.Labels{"outcome": "shutdown"}, func(c HandlerCounters) int64 { return c.Cut })
	counter("vllm_worker_delivery_retries_total", "Handler mode: requests to RunPod (take, stream, done) tried again.", nil,
		func(c HandlerCounters) int64 { return c.DeliveryRetries })
	counter("vllm_worker_delivery_failures_total", "Handler mode: stream items and results that could not be delivered after every retry.", nil,
		func(c HandlerCounters) int64 { return c.DeliveryFailures })
}

// LimitHit counts one request, job or connection refused or cut by limit (one
// of the Limit constants; any other name is ignored).
func (m *Metrics) LimitHit(limit string) {
	if m == nil {
		return
	}
	if c := m.limits[limit]; c != nil {
		c.Inc()
	}
}

// Aborted counts one engine request aborted before its end, for reason (one of
// the Abort constants; any other is ignored).
func (m *Metrics) Aborted(reason string) {
	if m == nil {
		return
	}
	if c := m.aborted[reason]; c != nil {
		c.Inc()
	}
}

// EngineUp sets whether the engine serves.
func (m *Metrics) EngineUp(up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.engineUp.Set(v)
}

// EngineRestarted counts an engine restart.
func (m *Metrics) EngineRestarted() {
	if m != nil {
		m.engineRestarts.Inc()
	}
}
