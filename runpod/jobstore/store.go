// Package jobstore is the local job store behind RunPod's endpoint API: /run,
// /runsync, /status, /status-sync, /stream, /cancel and /purge-queue. It queues
// jobs, runs them through the runner at most MAX_CONCURRENCY at once, keeps
// their items and results for their retention, bounds the bytes and jobs it
// holds, and delivers results to webhooks that are checked against SSRF.
//
// It writes no HTTP answers (package server does) and knows nothing of RunPod's
// serverless queue (package serverless).
package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/metrics"
	"github.com/vllm-worker/vllm-worker/runpod"
)

// ErrStoreFull is returned by Submit when the store holds MaxJobs unfinished or
// retained jobs; the client should retry later (429).
var ErrStoreFull = errors.New("too many jobs: the worker's job store is full")

// ErrStoreBytes is returned by Submit when the store holds StoreOptions.MaxBytes
// of inputs and results; the client should retry later (429).
var ErrStoreBytes = errors.New("the worker's job store is full (JOB_STORE_MAX_BYTES); retry later")

// ErrClosed is returned by Submit once the store is shutting down (503).
var ErrClosed = errors.New("the worker is shutting down")

// RequestError is a /run or /runsync request the store refuses: a policy out of
// RunPod's range, or a webhook that is not allowed (400).
type RequestError struct {
	Field   string // the request field: "webhook", "policy.ttl", ...
	Message string
}

func (e *RequestError) Error() string { return e.Field + ": " + e.Message }

// jobRunner runs one job; *Runner is the real one.
type jobRunner interface {
	Run(ctx context.Context, requestID string, in *runpod.Input, emit runpod.Emit) ([]json.RawMessage, error)
}

// StoreOptions configure a Store.
type StoreOptions struct {
	Runner jobRunner
	// MaxConcurrency is how many jobs run at once (MAX_CONCURRENCY); zero means 1.
	MaxConcurrency int
	// MaxJobs bounds the jobs held (queued, running and retained); zero means 10,000.
	MaxJobs int
	// MaxBytes bounds the bytes held: the inputs of jobs not yet started, and the
	// outputs and errors of jobs until their retention ends; zero means 256 MiB.
	// Beyond it Submit returns ErrStoreBytes.
	MaxBytes int64
	// CheckWebhook vets a job's webhook URL at submit (a *RequestError refuses
	// it); nil accepts any.
	CheckWebhook func(url string) error
	// Retention is how long a finished job's result is kept; zero means 30 minutes.
	Retention time.Duration
	// Ready is closed when the engine serves; queued jobs wait for it. Nil means ready.
	Ready <-chan struct{}
	// Webhook delivers final results to a job's webhook URL; nil disables webhooks.
	Webhook func(ctx context.Context, url string, result Snapshot) error
	// Metrics counts finished jobs by status; nil records nothing.
	Metrics *metrics.Metrics
	Log     zerolog.Logger
}

// Store runs the jobs of RunPod's endpoint API (/run, /runsync, /status, /stream,
// /cancel) in the background, at most MaxConcurrency at once, and keeps their
// results for Retention. Its memory is bounded by MaxJobs.
type Store struct {
	o     StoreOptions
	slots chan struct{}
	base  context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	mu       sync.Mutex
	jobs     map[string]*job
	finished []*job // in finishing order, for retention
	closed   bool
	counts   runpod.Counts
	bytes    int64 // held: see StoreOptions.MaxBytes

	policyUnit time.Duration // what a millisecond of a job policy is; shortened by tests
}

// NewStore returns a Store; Close stops it.
func NewStore(o StoreOptions) *Store {
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = 1
	}
	if o.MaxJobs <= 0 {
		o.MaxJobs = 10000
	}
	if o.Retention <= 0 {
		o.Retention = 30 * time.Minute
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 256 << 20
	}
	base, stop := context.WithCancel(context.Background())
	return &Store{o: o, slots: make(chan struct{}, o.MaxConcurrency), base: base, stop: stop, jobs: map[string]*job{},
		policyUnit: time.Millisecond}
}

// Submit queues a job and returns its id. The job runs in the background. A
// policy out of RunPod's range or a refused webhook is a *RequestError; a full
// store is ErrStoreFull or ErrStoreBytes; a closed one ErrClosed.
func (s *Store) Submit(req Request) (string, error) {
	timeout, ttl, err := req.Policy.durations(s.policyUnit)
	if err != nil {
		return "", err
	}
	if req.Webhook != "" {
		if s.o.Webhook == nil {
			return "", &RequestError{Field: "webhook", Message: "webhooks are not delivered by this worker"}
		}
		if s.o.CheckWebhook != nil {
			if err := s.o.CheckWebhook(req.Webhook); err != nil {
				return "", err
			}
		}
	}
	size := int64(len(req.Input) + len(req.Webhook))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", ErrClosed
	}
	s.evictLocked(time.Now())
	if len(s.jobs) >= s.o.MaxJobs {
		return "", ErrStoreFull
	}
	if s.bytes+size > s.o.MaxBytes {
		return "", ErrStoreBytes
	}
	ctx, cancel := context.WithCancel(s.base)
	j := &job{
		id: runpod.NewID(), input: req.Input, webhook: req.Webhook, ttl: ttl, timeout: timeout,
		status: StatusInQueue, created: time.Now(), inputBytes: size,
		ctx: ctx, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{}),
	}
	s.bytes += size
	s.jobs[j.id] = j
	s.counts.InQueue++
	s.wg.Add(1)
	go s.runJob(j)
	return j.id, nil
}

// evictLocked forgets finished jobs past their retention, then, while the store
// holds MaxJobs, the oldest finished ones.
func (s *Store) evictLocked(now time.Time) {
	n := 0
	for n < len(s.finished) {
		j := s.finished[n]
		if now.Sub(j.finished) < s.o.Retention && len(s.jobs) < s.o.MaxJobs {
			break
		}
		delete(s.jobs, j.id)
		s.bytes -= j.outputBytes
		n++
	}
	s.finished = s.finished[n:]
}

// dropInputLocked forgets a job's input once it has started (or ended).
func (s *Store) dropInputLocked(j *job) {
	j.input = nil
	s.bytes -= j.inputBytes
	j.inputBytes = 0
}

// runJob owns one job from the queue to its final status.
func (s *Store) runJob(j *job) {
	defer s.wg.Done()
	defer j.cancel()
	log := s.o.Log.With().Str("job_id", j.id).Logger()

	// Parsed at once, so that an invalid input fails without waiting for a
	// slot. The parsed input holds what the raw one did: the input's bytes stay
	// counted until the job starts.
	s.mu.Lock()
	raw := j.input
	j.input = nil
	s.mu.Unlock()
	in, err := runpod.ParseInput(raw)
	if err != nil {
		if limit := runpod.InputLimit(err); limit != "" {
			s.o.Metrics.LimitHit(limit)
			log.Warn().Str("limit", limit).Err(err).Msg("job input refused")
		}
		s.finish(j, StatusFailed, err.Error())
		return
	}
	if !s.acquire(j) {
		return
	}
	defer func() { <-s.slots }()

	ctx := j.ctx
	if j.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, j.timeout)
		defer cancel()
	}
	log.Debug().Msg("job started")
	started := time.Now()
	_, err = s.o.Runner.Run(ctx, j.id, in, func(item json.RawMessage) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if j.status.Terminal() {
			return context.Canceled
		}
		j.items = append(j.items, item)
		j.outputBytes += int64(len(item))
		s.bytes += int64(len(item))
		j.notify()
		return nil
	})
	log = log.With().Dur("took", time.Since(started)).Logger()
	switch {
	case err == nil:
		s.finish(j, StatusCompleted, "")
		log.Debug().Str("end", "completed").Msg("job completed")
	case j.ctx.Err() != nil && s.base.Err() != nil:
		s.finish(j, StatusCancelled, "the worker shut down")
		s.o.Metrics.Aborted(metrics.AbortShutdown)
		log.Warn().Str("end", "shutdown").Msg("job cut by the shutdown; its engine request was aborted")
	case j.ctx.Err() != nil:
		s.finish(j, StatusCancelled, "") // no-op: /cancel finished it before its context ended
		s.o.Metrics.Aborted(metrics.AbortCancel)
		log.Info().Str("end", "cancelled").Msg("job cancelled; its engine request was aborted")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.finish(j, StatusTimedOut, "the job ran longer than its executionTimeout")
		log.Warn().Str("end", "timed_out").Msg("job ran past its executionTimeout; its engine request was aborted")
	default:
		s.finish(j, StatusFailed, err.Error())
		log.Warn().Err(err).Str("end", "failed").Msg("job failed")
	}
}

// acquire waits for the engine and a free slot, honouring the job's TTL. It
// reports false when the job ended while queued.
func (s *Store) acquire(j *job) bool {
	var expired <-chan time.Time
	if j.ttl > 0 {
		t := time.NewTimer(j.ttl - time.Since(j.created))
		defer t.Stop()
		expired = t.C
	}
	if s.o.Ready != nil {
		select {
		case <-s.o.Ready:
		case <-j.ctx.Done():
			s.finish(j, StatusCancelled, "")
			return false
		case <-expired:
			s.finish(j, StatusTimedOut, "the job expired in the queue (ttl)")
			return false
		}
	}
	select {
	case s.slots <- struct{}{}:
	case <-j.ctx.Done():
		s.finish(j, StatusCancelled, "")
		return false
	case <-expired:
		s.finish(j, StatusTimedOut, "the job expired in the queue (ttl)")
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.status.Terminal() { // cancelled or purged while waiting
		<-s.slots
		return false
	}
	j.status, j.started = StatusInProgress, time.Now()
	s.dropInputLocked(j)
	s.counts.InQueue--
	s.counts.InProgress++
	j.notify()
	return true
}

// finish moves j to a final status once; later calls do nothing.
func (s *Store) finish(j *job, st Status, msg string) {
	s.mu.Lock()
	if j.status.Terminal() {
		s.mu.Unlock()
		return
	}
	if j.status == StatusInQueue {
		s.counts.InQueue--
	} else {
		s.counts.InProgress--
	}
	switch st {
	case StatusCompleted:
		s.counts.Completed++
	case StatusFailed, StatusTimedOut:
		s.counts.Failed++
	}
	j.status, j.err, j.finished = st, msg, time.Now()
	s.dropInputLocked(j)
	j.outputBytes += int64(len(msg))
	s.bytes += int64(len(msg))
	s.o.Metrics.Job(string(st))
	s.finished = append(s.finished, j)
	j.notify()
	close(j.done)
	snap := j.snapshot()
	s.mu.Unlock()
	j.cancel()
	if j.webhook != "" && s.o.Webhook != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			// s.base, so that a Close whose grace ran out does not wait for retries.
			ctx, cancel := context.WithTimeout(s.base, time.Minute)
			defer cancel()
			if err := s.o.Webhook(ctx, j.webhook, snap); err != nil {
				var refused *dialRefused
				if errors.As(err, &refused) {
					s.o.Metrics.LimitHit(metrics.LimitWebhook)
				}
				s.o.Log.Error().Err(err).Str("job_id", j.id).Msg("webhook delivery failed")
			}
		}()
	}
}

func (s *Store) lookup(id string) (*job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	return j, ok
}

// Get returns a job's snapshot.
func (s *Store) Get(id string) (Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return Snapshot{}, false
	}
	return j.snapshot(), true
}

// Wait returns a job's snapshot once it is final or ctx ends, whichever is first.
func (s *Store) Wait(ctx context.Context, id string) (Snapshot, bool) {
	j, ok := s.lookup(id)
	if !ok {
		return Snapshot{}, false
	}
	select {
	case <-j.done:
	case <-ctx.Done():
	}
	return s.Get(id)
}

// Stream returns the items produced since the previous Stream call. When there
// are none yet and the job is still running it waits, up to wait, for one.
func (s *Store) Stream(ctx context.Context, id string, wait time.Duration) (StreamSnapshot, bool) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		j, ok := s.jobs[id]
		if !ok {
			s.mu.Unlock()
			return StreamSnapshot{}, false
		}
		if j.streamed < len(j.items) || j.status.Terminal() {
			out := StreamSnapshot{ID: j.id, Status: j.status, Error: j.err, Stream: make([]StreamItem, 0, len(j.items)-j.streamed)}
			for _, it := range j.items[j.streamed:] {
				out.Stream = append(out.Stream, StreamItem{Output: it})
			}
			j.streamed = len(j.items)
			s.mu.Unlock()
			return out, true
		}
		changed := j.changed
		snap := StreamSnapshot{ID: j.id, Status: j.status, Stream: []StreamItem{}}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return snap, true
		case <-ctx.Done():
			return snap, true
		}
	}
}

// Cancel cancels a job: a queued one never runs, a running one has its engine
// request aborted. A final job is left as it is.
func (s *Store) Cancel(id string) (Snapshot, bool) {
	j, ok := s.lookup(id)
	if !ok {
		return Snapshot{}, false
	}
	s.finish(j, StatusCancelled, "")
	return s.Get(id)
}

// PurgeQueue cancels every job still in the queue and reports how many.
func (s *Store) PurgeQueue() int {
	return s.cancelQueued("removed by purge-queue")
}

// cancelQueued cancels the jobs still in the queue, with why as their error.
func (s *Store) cancelQueued(why string) int {
	s.mu.Lock()
	var queued []*job
	for _, j := range s.jobs {
		if j.status == StatusInQueue {
			queued = append(queued, j)
		}
	}
	s.mu.Unlock()
	for _, j := range queued {
		s.finish(j, StatusCancelled, why)
	}
	return len(queued)
}

// Counts returns the job counters for /health.
func (s *Store) Counts() runpod.Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Close stops accepting jobs, lets running ones finish until ctx ends, then
// cancels what is left and waits for every job goroutine to return.
func (s *Store) Close(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.o.Ready != nil {
		select {
		case <-s.o.Ready:
		default: // the engine never served: queued jobs cannot run; do not wait for them
			s.cancelQueued("the worker shut down before the engine was ready")
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.stop()
		<-done
	}
	s.stop()
}
