package server

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/vllm-worker/vllm-worker/metrics"
	"github.com/vllm-worker/vllm-worker/openai"
)

// limiter bounds the requests in flight to the engine. Beyond its slots a
// request waits in a bounded queue; beyond the queue it is refused at once with
// 429 and Retry-After, so overload never turns into unbounded goroutines.
type limiter struct {
	metrics  *metrics.Metrics
	slots    chan struct{}
	maxQueue int64
	waiting  atomic.Int64
	active   activity // in flight and queued, for the drain
	free     func()   // release, made once: a method value per request would allocate
}

// newLimiter returns a limiter of n slots and a queue of maxQueue; n <= 0
// means no limit (nil).
func newLimiter(n, maxQueue int, m *metrics.Metrics) *limiter {
	if n <= 0 {
		return nil
	}
	l := &limiter{slots: make(chan struct{}, n), maxQueue: int64(maxQueue), metrics: m}
	l.free = l.release
	return l
}

// InFlight and Waiting are the limiter's gauges.
func (l *limiter) InFlight() int { return len(l.slots) }

func (l *limiter) Waiting() int { return int(l.waiting.Load()) }

// acquire takes a slot for r, waiting in the queue when all are taken. It is
// called after the request body was read: only then does net/http notice a
// client that leaves, so a client that gives up while queued frees its place at
// once. It returns the release function of the slot; or the 429 to answer when
// the queue is full too; or neither when the client left while queued (nobody to
// answer). A nil limiter admits everything.
func (l *limiter) acquire(r *http.Request) (release func(), err error) {
	if l == nil {
		return noRelease, nil
	}
	l.active.add()
	select {
	case l.slots <- struct{}{}:
		l.metrics.InFlight(1)
		return l.free, nil
	default:
	}
	if l.waiting.Add(1) > l.maxQueue {
		l.waiting.Add(-1)
		l.active.done()
		return nil, refused(metrics.LimitConcurrency, openai.NewError(http.StatusTooManyRequests,
			"the worker is at capacity ("+strconv.Itoa(cap(l.slots))+" requests in flight and "+
				strconv.FormatInt(l.maxQueue, 10)+" queued); retry later").WithRetryAfter(1))
	}
	l.metrics.Queued(1)
	defer func() {
		l.waiting.Add(-1)
		l.metrics.Queued(-1)
	}()
	select {
	case l.slots <- struct{}{}:
		l.metrics.InFlight(1)
		return l.free, nil
	case <-r.Context().Done():
		l.active.done()
		return nil, nil // the client left; nobody to answer
	}
}

func noRelease() {}

func (l *limiter) release() {
	<-l.slots
	l.metrics.InFlight(-1)
	l.active.done()
}

// activity counts work in progress and tells when there is none. Unlike a
// sync.WaitGroup it may grow from zero while someone waits: a request admitted
// just as the drain began still counts.
type activity struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to zero; nil when nobody waits
}

func (a *activity) add() {
	a.mu.Lock()
	a.n++
	a.mu.Unlock()
}

func (a *activity) done() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n--; a.n == 0 && a.idle != nil {
		close(a.idle)
		a.idle = nil
	}
}

// wait returns once no work is in progress, or when ctx ends (its error).
func (a *activity) wait(ctx context.Context) error {
	a.mu.Lock()
	if a.n == 0 {
		a.mu.Unlock()
		return nil
	}
	if a.idle == nil {
		a.idle = make(chan struct{})
	}
	idle := a.idle
	a.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
