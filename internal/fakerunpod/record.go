package fakerunpod

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Done is one job-done POST the server accepted.
type Done struct {
	IsStream bool              // the isStream query parameter was "true"
	Body     json.RawMessage   // the body as sent
	Output   []json.RawMessage // the body's "output" when it is a list
	Error    string            // the body's "error"
	StopPod  bool              // the body's "stopPod"
}

// Ping is one heartbeat.
type Ping struct {
	JobIDs   []string // job_id split at commas; nil when absent or empty
	HasJobID bool     // the job_id parameter was present
	Version  string   // runpod_version
	At       time.Time
}

// Take is one job-take or job-take-batch call.
type Take struct {
	Batch         bool
	BatchSize     int    // batch_size, 1 for a single take
	JobInProgress string // the job_in_progress parameter as sent
	Status        int    // the answer: 200 (jobs), 204 (none), or an injected status
	Jobs          int    // jobs handed out
}

// Request is any request the server received.
type Request struct {
	Route  string // job-take, job-take-batch, job-stream, job-done, ping, job-stop; "" when unknown
	Method string
	Path   string
	Query  url.Values
	Header http.Header
}

type streamItem struct {
	output   json.RawMessage
	isStream string
}

func (s *Server) record(route string, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, Request{Route: route, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
}

// Requests returns every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// Unauthorized counts the requests refused for a wrong Authorization header.
func (s *Server) Unauthorized() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unauth
}

// Taken returns the ids of the jobs handed out, in order.
func (s *Server) Taken() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

// Takes returns every take call.
func (s *Server) Takes() []Take {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.takes)
}

// Queued counts the jobs not handed out yet.
func (s *Server) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Stream returns the items streamed for a job (each stream POST's "output"), in
// arrival order.
func (s *Server) Stream(jobID string) []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]json.RawMessage, len(s.streams[jobID]))
	for i, it := range s.streams[jobID] {
		out[i] = it.output
	}
	return out
}

// StreamFlags returns the isStream parameter of each of a job's stream POSTs.
func (s *Server) StreamFlags(jobID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.streams[jobID]))
	for i, it := range s.streams[jobID] {
		out[i] = it.isStream
	}
	return out
}

// Dones returns a job's done POSTs (one, when all is well).
func (s *Server) Dones(jobID string) []Done {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dones[jobID])
}

// DoneCount counts the jobs with at least one done POST.
func (s *Server) DoneCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dones)
}

// Pings returns every heartbeat.
func (s *Server) Pings() []Ping {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pings)
}

// InFlight counts the jobs taken and neither done nor stopped.
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flight
}

// MaxInFlight is the most jobs ever in flight at once: the worker's observed
// concurrency (jobs taken minus jobs done or stopped).
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxFl
}

// Faulted counts the faults injected.
func (s *Server) Faulted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nFaults
}

// Wait waits until cond holds or ctx ends; cond is checked after every recorded
// event and may call the Server's methods.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakerunpod: %w", ctx.Err())
		}
	}
}

// WaitDone waits until n jobs have a done POST.
func (s *Server) WaitDone(ctx context.Context, n int) error {
	if err := s.Wait(ctx, func() bool { return s.DoneCount() >= n }); err != nil {
		return fmt.Errorf("%w: %d of %d jobs done", err, s.DoneCount(), n)
	}
	return nil
}

// WaitTaken waits until n jobs were handed out.
func (s *Server) WaitTaken(ctx context.Context, n int) error {
	if err := s.Wait(ctx, func() bool { return len(s.Taken()) >= n }); err != nil {
		return fmt.Errorf("%w: %d of %d jobs taken", err, len(s.Taken()), n)
	}
	return nil
}

// WaitStream waits until a job has n streamed items.
func (s *Server) WaitStream(ctx context.Context, jobID string, n int) error {
	if err := s.Wait(ctx, func() bool { return len(s.Stream(jobID)) >= n }); err != nil {
		return fmt.Errorf("%w: job %s streamed %d of %d items", err, jobID, len(s.Stream(jobID)), n)
	}
	return nil
}

// WaitPing waits for a heartbeat that satisfies ok.
func (s *Server) WaitPing(ctx context.Context, ok func(Ping) bool) error {
	return s.Wait(ctx, func() bool { return slices.ContainsFunc(s.Pings(), ok) })
}

// Times returns when a job was taken, its stream POSTs accepted and its result
// received (zero times for what has not happened).
func (s *Server) Times(jobID string) JobTimes {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.times[jobID]
	if t == nil {
		return JobTimes{}
	}
	return JobTimes{Taken: t.Taken, Done: t.Done, StreamPosts: slices.Clone(t.StreamPosts)}
}

// MaxStreamPostsAtOnce is the most stream POSTs of a job the server was
// answering at once: 1 when the worker posts a job's items one after another.
func (s *Server) MaxStreamPostsAtOnce(jobID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxPost[jobID]
}
