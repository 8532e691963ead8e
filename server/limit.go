package server

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/vllm-worker/vllm-worker/openai"
)

// limiter bounds the requests in flight to the engine. Beyond its slots a
// request waits in a bounded queue; beyond the queue it is refused at once with
// 429 and Retry-After, so overload never turns into unbounded goroutines.
type limiter struct {
	slots    chan struct{}
	maxQueue int64
	waiting  atomic.Int64
}

// newLimiter returns a limiter of n slots and a queue of maxQueue; n <= 0
// means no limit (nil).
func newLimiter(n, maxQueue int) *limiter {
	if n <= 0 {
		return nil
	}
	return &limiter{slots: make(chan struct{}, n), maxQueue: int64(maxQueue)}
}

// InFlight and Waiting are the limiter's gauges.
func (l *limiter) InFlight() int { return len(l.slots) }

func (l *limiter) Waiting() int { return int(l.waiting.Load()) }

// limit is the middleware. A client that leaves while queued gives up its place.
func (l *limiter) limit(next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case l.slots <- struct{}{}:
		default:
			if l.waiting.Add(1) > l.maxQueue {
				l.waiting.Add(-1)
				w.Header().Set("Retry-After", "1")
				openai.WriteError(w, openai.NewError(http.StatusTooManyRequests,
					"the worker is at capacity ("+strconv.Itoa(cap(l.slots))+" requests in flight and "+
						strconv.FormatInt(l.maxQueue, 10)+" queued); retry later"))
				return
			}
			select {
			case l.slots <- struct{}{}:
				l.waiting.Add(-1)
			case <-r.Context().Done():
				l.waiting.Add(-1)
				return
			}
		}
		defer func() { <-l.slots }()
		next.ServeHTTP(w, r)
	})
}
