// Package serverless is RunPod's serverless handler mode: the job loop of the
// runpod-python SDK (job take and batch take, stream and done POSTs, the
// heartbeat, job-stop), run against the worker's engine through package runpod's
// runner, plus the SDK's local --test_input mode. Every request to RunPod goes
// through package httpretry.
//
// It serves no HTTP and starts no engine; cmd wires it to the engine's life cycle.
package serverless

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/internal/httpretry"
	"github.com/vllm-worker/vllm-worker/metrics"

	"github.com/vllm-worker/vllm-worker/runpod"
)

// jobRunner runs one job; *runpod.Runner is the real one.
type jobRunner interface {
	Run(ctx context.Context, requestID string, in *runpod.Input, emit runpod.Emit) ([]json.RawMessage, error)
}

// HandlerOptions configure a Handler: RunPod's serverless job loop (handler mode).
// The URLs are the RUNPOD_WEBHOOK_* templates as the platform sets them.
type HandlerOptions struct {
	// Runner runs the jobs; *runpod.Runner in production. Required.
	Runner jobRunner
	// TakeURL is RUNPOD_WEBHOOK_GET_JOB; $ID and $RUNPOD_POD_ID become WorkerID.
	// Required. Its /job-take/ segment gives the batch-take and job-stop URLs.
	TakeURL string
	// DoneURL is RUNPOD_WEBHOOK_POST_OUTPUT; $RUNPOD_POD_ID becomes WorkerID and
	// $ID the job id. Required.
	DoneURL string
	// StreamURL is RUNPOD_WEBHOOK_POST_STREAM, with DoneURL's substitutions. When
	// set, every output item of every job, streamed or not, is posted to it as it
	// comes. Empty means items are not posted one by one (the final result still
	// holds them all).
	StreamURL string
	// PingURL is RUNPOD_WEBHOOK_PING; $RUNPOD_POD_ID becomes WorkerID. Empty
	// disables the heartbeat.
	PingURL string
	// APIKey is RUNPOD_AI_API_KEY, sent bare as Authorization. A secret: it is
	// never logged and never part of an error.
	APIKey string
	// WorkerID is RUNPOD_POD_ID. Empty means a random id.
	WorkerID string
	// PingInterval is the heartbeat period (RUNPOD_PING_INTERVAL). Zero means
	// 10 s; values below 100 ms are raised to 100 ms.
	PingInterval time.Duration
	// MaxConcurrency bounds the jobs in flight (MAX_CONCURRENCY). Zero means 1.
	MaxConcurrency int
	// DrainTimeout is how long, once Run's context ends, jobs in flight may run
	// on before they are cut: their engine requests aborted and no result posted,
	// so that RunPod can hand them to another worker (CutDrain ends it sooner).
	// Zero cuts them at once.
	DrainTimeout time.Duration
	// Metrics counts aborted jobs; nil counts nothing.
	Metrics *metrics.Metrics
	// EngineGone, when set, is asked after a job failed on an engine error of
	// status 5xx: it returns the engine's exit if the engine died within wait
	// (the broken stream and the process's exit race), and then the whole
	// handler is aborted, as after a CUDA error.
	EngineGone func(wait time.Duration) error
	// Version is the worker's, sent in the User-Agent "vllm-worker/<Version>".
	// Empty means "dev". (runpod_version is ProtocolVersion.)
	Version string
	// Client makes every request to RunPod. Nil means a client of its own,
	// without an overall timeout (take and job-stop are long polls); each call
	// is bounded by its own deadline. A caller's client is left as it is.
	Client *http.Client
	// Log receives the loop's events, with job_id on a job's lines. The zero
	// Logger discards them.
	Log zerolog.Logger
	// RetryMaxAttempts bounds the tries of one stream or done POST. Zero means 6.
	RetryMaxAttempts int
	// RetryMaxElapsed bounds the time spent retrying one POST (each stream item
	// has its own). Zero means 1 minute.
	RetryMaxElapsed time.Duration
}

// HandlerStats are a Handler's counters (for /metrics).
type HandlerStats struct {
	JobsTaken        int64 // jobs received from job-take
	Completed        int64 // jobs that ended with an output
	Failed           int64 // jobs that ended with an error (invalid input, engine, abort)
	Cancelled        int64 // jobs stopped through job-stop (no result is posted)
	Cut              int64 // jobs cut by the shutdown (no result is posted)
	DeliveryRetries  int64 // stream and done POSTs tried again
	DeliveryFailures int64 // stream items and results that could not be delivered
}

// handlerTimings are the loop's waits; tests shorten them.
type handlerTimings struct {
	longPoll       time.Duration // bound of one job-take or job-stop call
	takeErrMin     time.Duration // first pause after a failed take, doubling...
	takeErrMax     time.Duration // ...up to this
	takeBadRequest time.Duration // pause after a 400 (FlashBoot answers it while warming)
	tooMany        time.Duration // pause after a 429 without Retry-After
	retryAfterMax  time.Duration // cap of a Retry-After
	stopErr        time.Duration // pause after a failed job-stop call
	stopIdle       time.Duration // least time between two empty job-stop answers
	takeIdle       time.Duration // least time between two takes that got no job
	retryMin       time.Duration // first wait before a POST is tried again...
	retryMax       time.Duration // ...growing up to this
	attempt        time.Duration // bound of one stream or done POST
	minPing        time.Duration // the shortest ping interval
}

var defaultTimings = handlerTimings{
	longPoll: 90 * time.Second, takeErrMin: 250 * time.Millisecond, takeErrMax: 10 * time.Second,
	takeBadRequest: time.Second, tooMany: 5 * time.Second, retryAfterMax: time.Minute,
	stopErr: time.Second, stopIdle: time.Second, takeIdle: time.Second, retryMin: 250 * time.Millisecond,
	retryMax: 10 * time.Second, attempt: time.Minute, minPing: 100 * time.Millisecond,
}

// errDraining cuts the jobs still running when the drain after SIGTERM ends.
var errDraining = errors.New("the worker is shutting down")

// ProtocolVersion is the version of runpod-python whose serverless protocol the
// handler speaks (runpod/runpod-python v1.12.0, 2026-08-10, the SDK worker-vllm
// pins): sent as runpod_version on the heartbeat, where the platform may gate
// features on it (job-stop came with 1.10). The worker's own name and version
// are in the User-Agent.
const ProtocolVersion = "1.12.0"

// errJobStopped is the cancel cause of a job named by job-stop.
var errJobStopped = errors.New("the job was stopped by RunPod")

// Handler is RunPod's serverless job loop: it takes jobs (up to MaxConcurrency in
// flight), runs them, posts streamed items and final results with retries, sends
// the heartbeat and honours job-stop. Run drives it once.
type Handler struct {
	o         HandlerOptions
	t         handlerTimings
	take      string // resolved URLs
	takeBatch string // "" when TakeURL has no /job-take/
	stop      string // "" when TakeURL has no /job-take/
	ping      string
	client    *http.Client
	ownClient bool
	userAgent string

	slots   chan struct{} // one token per job in flight
	jobsWG  sync.WaitGroup
	started atomic.Bool

	// abortCtx ends at Abort, with its error as cause. jobsCtx (under it) also
	// ends when the drain after SIGTERM is cut (its DrainTimeout, or CutDrain),
	// with errDraining: every job's context derives from it, so a cut aborts the
	// engine requests and the stream POSTs of the jobs still running.
	abortCtx   context.Context
	abort      context.CancelCauseFunc
	jobsCtx    context.Context
	cancelJobs context.CancelCauseFunc
	// drainCut is closed by CutDrain: the drain ends now.
	drainCut chan struct{}
	cutOnce  sync.Once

	mu   sync.Mutex
	jobs map[string]*handlerJob // taken and not finished

	jobsTaken, completed, failed, cancelled, cut, retries, failures atomic.Int64
}

// NewHandler validates o and returns a Handler.
func NewHandler(o HandlerOptions) (*Handler, error) {
	if o.Runner == nil {
		return nil, errors.New("runpod handler: no job runner")
	}
	if o.WorkerID == "" {
		o.WorkerID = runpod.NewID()
	}
	if o.PingInterval == 0 {
		o.PingInterval = 10 * time.Second
	}
	o.PingInterval = max(o.PingInterval, defaultTimings.minPing)
	o.MaxConcurrency = max(o.MaxConcurrency, 1)
	o.DrainTimeout = max(o.DrainTimeout, 0)
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.RetryMaxAttempts <= 0 {
		o.RetryMaxAttempts = 6
	}
	if o.RetryMaxElapsed <= 0 {
		o.RetryMaxElapsed = time.Minute
	}
	h := &Handler{o: o, t: defaultTimings, slots: make(chan struct{}, o.MaxConcurrency), jobs: map[string]*handlerJob{}}
	h.userAgent = "vllm-worker/" + o.Version

	var errs []error
	check := func(name, tmpl string, required bool) {
		if tmpl == "" {
			if required {
				errs = append(errs, fmt.Errorf("%s is required", name))
			}
			return
		}
		u, err := url.Parse(expandURL(tmpl, o.WorkerID, "job"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q is not an http(s) URL", name, tmpl))
		}
	}
	check("RUNPOD_WEBHOOK_GET_JOB", o.TakeURL, true)
	check("RUNPOD_WEBHOOK_POST_OUTPUT", o.DoneURL, true)
	check("RUNPOD_WEBHOOK_POST_STREAM", o.StreamURL, false)
	check("RUNPOD_WEBHOOK_PING", o.PingURL, false)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("runpod handler: %w", err)
	}

	h.take = expandURL(o.TakeURL, o.WorkerID, o.WorkerID)
	if strings.Contains(h.take, "/job-take/") {
		h.takeBatch = strings.Replace(h.take, "/job-take/", "/job-take-batch/", 1)
		h.stop = strings.Replace(h.take, "/job-take/", "/job-stop/", 1)
	} else {
		o.Log.Warn().Msg("RUNPOD_WEBHOOK_GET_JOB has no /job-take/ segment: batch take and job-stop are disabled")
	}
	if o.PingURL != "" {
		h.ping = strings.ReplaceAll(o.PingURL, "$RUNPOD_POD_ID", o.WorkerID)
	}
	if o.StreamURL == "" {
		o.Log.Warn().Msg("RUNPOD_WEBHOOK_POST_STREAM is not set: output items reach RunPod only with the final result")
	}
	h.client = o.Client
	if h.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64 // stream POSTs of concurrent jobs
		h.client, h.ownClient = &http.Client{Transport: tr}, true
	}
	h.abortCtx, h.abort = context.WithCancelCause(context.Background())
	h.jobsCtx, h.cancelJobs = context.WithCancelCause(h.abortCtx)
	h.drainCut = make(chan struct{})
	return h, nil
}

// rpc is the retrying client of every request to RunPod, with the SDK's
// headers and the handler's (test-shortened) timings.
func (h *Handler) rpc() *httpretry.Client {
	return &httpretry.Client{
		HTTP: h.client, Prepare: h.setHeaders,
		Attempts: h.o.RetryMaxAttempts, MaxElapsed: h.o.RetryMaxElapsed,
		MinWait: h.t.retryMin, MaxWait: h.t.retryMax, AttemptTimeout: h.t.attempt, RetryAfterMax: h.t.retryAfterMax,
	}
}

// setHeaders sets the headers of every request to RunPod.
func (h *Handler) setHeaders(req *http.Request) {
	req.Header.Set("Authorization", h.o.APIKey)
	req.Header.Set("User-Agent", h.userAgent)
}

// expandURL fills a URL template: $RUNPOD_POD_ID becomes the worker id, then $ID
// becomes id (the job id, or the worker id for the take URL).
func expandURL(tmpl, workerID, id string) string {
	s := strings.ReplaceAll(tmpl, "$RUNPOD_POD_ID", workerID)
	return strings.ReplaceAll(s, "$ID", url.PathEscape(id))
}

// addQuery appends key=value pairs to a URL that may already have a query.
func addQuery(u string, kv ...string) string {
	var b strings.Builder
	b.WriteString(u)
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(sep)
		b.WriteString(url.QueryEscape(kv[i]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv[i+1]))
		sep = "&"
	}
	return b.String()
}

// Run takes and runs jobs until ctx ends or Abort is called. Then it stops taking
// jobs, lets the jobs in flight finish for DrainTimeout (not after Abort), fails
// what is left, delivers every result, stops polling job-stop (a job stopped
// during the drain posts nothing) and the heartbeat, and returns: nil after ctx
// ended, an error wrapping Abort's error after Abort. Run may be called once.
func (h *Handler) Run(ctx context.Context) error {
	if !h.started.CompareAndSwap(false, true) {
		return errors.New("runpod handler: Run called twice")
	}
	if h.ownClient {
		defer h.client.CloseIdleConnections()
	}
	takeCtx, stopTaking := context.WithCancel(ctx)
	defer stopTaking()
	unhook := context.AfterFunc(h.abortCtx, stopTaking)
	defer unhook()

	var heart sync.WaitGroup
	heartCtx, stopHeart := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHeart()
	if h.ping != "" {
		heart.Go(func() { h.heartbeat(heartCtx) })
	}
	h.o.Log.Info().Str("worker_id", h.o.WorkerID).Int("max_concurrency", h.o.MaxConcurrency).Msg("handler mode: taking jobs")

	// job-stop is polled until the drain is over: RunPod may stop a job that is
	// draining, and that job must then post nothing.
	var stopper sync.WaitGroup
	stopCtx, stopStopping := context.WithCancel(context.WithoutCancel(ctx))
	defer stopStopping()
	if h.stop != "" {
		stopper.Go(func() { h.stopLoop(stopCtx) })
	}
	h.takeLoop(takeCtx) // no job starts after this: only takeLoop starts jobs
	h.drain()
	stopStopping()
	stopper.Wait()
	stopHeart()
	heart.Wait()

	if h.abortCtx.Err() != nil {
		return fmt.Errorf("runpod handler aborted: %w", context.Cause(h.abortCtx))
	}
	h.o.Log.Info().Msg("handler mode: stopped")
	return nil
}

// drain waits for the jobs in flight (and their deliveries), failing those still
// running after DrainTimeout.
func (h *Handler) drain() {
	done := make(chan struct{})
	go func() { h.jobsWG.Wait(); close(done) }() // ends when the last job does; awaited below
	if n := len(h.InProgress()); n > 0 && h.abortCtx.Err() == nil {
		h.o.Log.Info().Int("jobs", n).Dur("timeout", h.o.DrainTimeout).Msg("draining jobs in flight")
	}
	timer := time.NewTimer(h.o.DrainTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-h.abortCtx.Done():
	case <-timer.C:
		h.cutJobs("the drain timed out")
	case <-h.drainCut:
		h.cutJobs("the drain was cut short")
	}
	<-done
}

// cutJobs ends the drain: the jobs still running are cut, their engine requests
// aborted, and they post no result, so that RunPod can give them to another
// worker (as the SDK does, which posts nothing for a job it is killed under).
// Jobs that finished still deliver their results.
func (h *Handler) cutJobs(why string) {
	if n := len(h.InProgress()); n > 0 {
		h.o.Log.Warn().Int("jobs", n).Msg(why + ": cutting the jobs still running; they post no result")
	}
	h.cancelJobs(errDraining)
}

// CutDrain ends the drain after Run's context ended at once, as if its
// DrainTimeout had passed (a second SIGTERM). Before the drain it makes it end
// as soon as it begins.
func (h *Handler) CutDrain() { h.cutOnce.Do(func() { close(h.drainCut) }) }

// Abort is called when the engine died: every running job fails with err's
// message and its result carries "stopPod": true, no job is taken any more, and
// Run returns an error wrapping err once the results are delivered.
func (h *Handler) Abort(err error) {
	if err == nil {
		err = errors.New("the engine stopped")
	}
	if h.abortCtx.Err() == nil {
		h.o.Log.Error().Err(err).Msg("handler aborted: failing every running job")
	}
	h.abort(err)
}

// InProgress returns the ids of the jobs taken and not yet finished, sorted.
func (h *Handler) InProgress() []string {
	h.mu.Lock()
	ids := make([]string, 0, len(h.jobs))
	for id := range h.jobs {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// Counts returns the job counters for /health.
func (h *Handler) Counts() runpod.Counts {
	h.mu.Lock()
	n := len(h.jobs)
	h.mu.Unlock()
	return runpod.Counts{Completed: h.completed.Load(), Failed: h.failed.Load(), InProgress: int64(n)}
}

// Stats returns the handler's counters.
func (h *Handler) Stats() HandlerStats {
	return HandlerStats{
		JobsTaken: h.jobsTaken.Load(), Completed: h.completed.Load(), Failed: h.failed.Load(),
		Cancelled: h.cancelled.Load(), Cut: h.cut.Load(), DeliveryRetries: h.retries.Load(), DeliveryFailures: h.failures.Load(),
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
