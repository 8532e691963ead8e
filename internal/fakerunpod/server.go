// Package fakerunpod is a fake of RunPod's serverless job API as a worker sees it
// (job-take, job-take-batch, job-stream, job-done, ping, job-stop, as
// runpod-python's runpod/serverless/modules speak it), for tests of handler mode
// in any package. It queues
// jobs, hands them out by long poll, records everything the worker sends, asks for
// job stops and injects faults.
//
// It is a test double, for tests and for cmd/bench's handler-mode case: it must
// not be imported by the worker, and it keeps every request in memory.
package fakerunpod

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a Server. The zero value of every field is usable.
type Options struct {
	// Endpoint is the endpoint id in the paths. Empty means "ep-test".
	Endpoint string
	// WorkerID is RUNPOD_POD_ID; requests naming another worker get a 404.
	// Empty means "worker-test".
	WorkerID string
	// APIKey is RUNPOD_AI_API_KEY, which every request must carry bare in
	// Authorization (else 401). Empty means "rp-test-key".
	APIKey string
	// LongPoll is how long job-take and job-stop wait for work before they answer
	// 204. Zero means 200 ms; a negative value means no long poll: with no work,
	// they answer 204 at once (a server that does not long-poll).
	LongPoll time.Duration
	// RetryAfter is the Retry-After header of injected 429 answers. Empty means "1".
	RetryAfter string
	// PostLatency is how long every stream and done POST takes before it is
	// answered, as for a worker far from RunPod's API. Zero means none.
	PostLatency time.Duration
}

// Server is the fake RunPod job API, an httptest server.
type Server struct {
	o   Options
	srv *httptest.Server

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every recorded event
	queue   []Job
	stops   []string
	taken   map[string]bool // job id -> still in flight (taken, no done, not stopped)
	order   []string        // ids in take order
	streams map[string][]streamItem
	dones   map[string][]Done
	takes   []Take
	pings   []Ping
	reqs    []Request
	unauth  int
	flight  int
	maxFl   int
	faults  Faults
	faulted map[string]bool
	nFaults int
	takeErr struct{ status, n int }
	latency time.Duration
	// permanent: job id -> the nth distinct stream body (1-based) answered 500
	// on every try.
	permanent map[string]int
	bodies    map[string][]string // job id -> distinct stream bodies, in first-seen order
	posting   map[string]int      // job id -> stream POSTs being answered now
	maxPost   map[string]int      // job id -> the most stream POSTs answered at once
	times     map[string]*JobTimes
}

// JobTimes are when a job was handed out and when its result arrived.
type JobTimes struct {
	Taken, Done time.Time
	// StreamPosts are the times the stream POSTs of the job were accepted.
	StreamPosts []time.Time
}

// Job is a queued job.
type Job struct {
	ID    string
	Input json.RawMessage
}

// New starts a Server; it is closed when tb's test ends.
func New(tb testing.TB, o Options) *Server {
	tb.Helper()
	s := Start(o)
	tb.Cleanup(s.Close)
	return s
}

// Start starts a Server outside a test (cmd/bench); the caller closes it.
func Start(o Options) *Server {
	if o.Endpoint == "" {
		o.Endpoint = "ep-test"
	}
	if o.WorkerID == "" {
		o.WorkerID = "worker-test"
	}
	if o.APIKey == "" {
		o.APIKey = "rp-test-key"
	}
	if o.LongPoll == 0 {
		o.LongPoll = 200 * time.Millisecond
	}
	if o.RetryAfter == "" {
		o.RetryAfter = "1"
	}
	s := &Server{
		o: o, changed: make(chan struct{}), taken: map[string]bool{},
		streams: map[string][]streamItem{}, dones: map[string][]Done{}, faulted: map[string]bool{},
		latency: o.PostLatency, permanent: map[string]int{}, bodies: map[string][]string{},
		posting: map[string]int{}, maxPost: map[string]int{}, times: map[string]*JobTimes{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close stops the server, cutting long polls in flight.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// URL is the server's root, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.srv.URL }

// Options returns the options in effect (defaults filled in).
func (s *Server) Options() Options { return s.o }

func (s *Server) base(route string) string {
	return s.srv.URL + "/v2/" + s.o.Endpoint + "/" + route + "/$RUNPOD_POD_ID"
}

// TakeURL is the RUNPOD_WEBHOOK_GET_JOB template.
func (s *Server) TakeURL() string { return s.base("job-take") + "?gpu=test" }

// DoneURL is the RUNPOD_WEBHOOK_POST_OUTPUT template.
func (s *Server) DoneURL() string { return s.base("job-done") + "/$ID?gpu=test" }

// StreamURL is the RUNPOD_WEBHOOK_POST_STREAM template.
func (s *Server) StreamURL() string { return s.base("job-stream") + "/$ID?gpu=test" }

// PingURL is the RUNPOD_WEBHOOK_PING template.
func (s *Server) PingURL() string { return s.base("ping") + "?gpu=test" }

// Env is the environment RunPod gives a worker of this endpoint.
func (s *Server) Env() []string {
	return []string{
		"RUNPOD_WEBHOOK_GET_JOB=" + s.TakeURL(),
		"RUNPOD_WEBHOOK_POST_OUTPUT=" + s.DoneURL(),
		"RUNPOD_WEBHOOK_POST_STREAM=" + s.StreamURL(),
		"RUNPOD_WEBHOOK_PING=" + s.PingURL(),
		"RUNPOD_AI_API_KEY=" + s.o.APIKey,
		"RUNPOD_POD_ID=" + s.o.WorkerID,
		"RUNPOD_ENDPOINT_ID=" + s.o.Endpoint,
	}
}

// serve routes /v2/<endpoint>/<route>/<worker>[/<job>].
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	route := ""
	if len(parts) >= 4 && parts[0] == "v2" && parts[1] == s.o.Endpoint {
		route = parts[2]
	}
	s.record(route, r)
	if r.Header.Get("Authorization") != s.o.APIKey {
		s.mu.Lock()
		s.unauth++
		s.notifyLocked()
		s.mu.Unlock()
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if route == "" || parts[3] != s.o.WorkerID {
		http.NotFound(w, r)
		return
	}
	job := ""
	if len(parts) == 5 {
		job = parts[4]
	}
	switch {
	case route == "job-take" && len(parts) == 4 && r.Method == http.MethodGet:
		s.handleTake(w, r, false)
	case route == "job-take-batch" && len(parts) == 4 && r.Method == http.MethodGet:
		s.handleTake(w, r, true)
	case route == "job-stop" && len(parts) == 4 && r.Method == http.MethodGet:
		s.handleStop(w, r)
	case route == "ping" && len(parts) == 4 && r.Method == http.MethodGet:
		s.handlePing(w, r)
	case route == "job-stream" && job != "" && r.Method == http.MethodPost:
		s.handleStream(w, r, job)
	case route == "job-done" && job != "" && r.Method == http.MethodPost:
		s.handleDone(w, r, job)
	default:
		http.NotFound(w, r)
	}
}

// Enqueue queues a job; the next take hands it out.
func (s *Server) Enqueue(id string, input json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, Job{ID: id, Input: append([]byte(nil), input...)})
	s.notifyLocked()
}

// Stop asks the worker, through job-stop, to stop a job. Once the worker has been
// told, the job no longer counts in flight.
func (s *Server) Stop(jobID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stops = append(s.stops, jobID)
	s.notifyLocked()
}

// notifyLocked wakes the long polls and waiters.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitChange waits until something changes, the deadline passes, or r's client leaves. It
// reports false in the last two cases, and at once when long polls are off
// (deadline nil). Call it without the lock, with ch read under it.
func waitChange(r *http.Request, ch <-chan struct{}, deadline *time.Timer) bool {
	if deadline == nil {
		return false
	}
	select {
	case <-ch:
		return true
	case <-deadline.C:
		return false
	case <-r.Context().Done():
		return false
	}
}
