package main

import (
	"sync"
	"time"

	"github.com/vllm-worker/vllm-worker/server"
)

// status is the worker's state as /health and /ping report it: starting, ready,
// then draining or unhealthy. The engine events and the life cycle move it.
type status struct {
	mu        sync.Mutex
	st        server.State
	started   time.Time
	detail    string
	engineURL string
	phase     func() (string, time.Time) // the engine's start-up phase, while starting
}

func newStatus(engineURL string) *status {
	return &status{st: server.StateStarting, started: time.Now(), engineURL: engineURL}
}

// Status implements server's readiness.
func (s *status) Status() server.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := server.Status{State: s.st, Elapsed: time.Since(s.started), Engine: s.engineURL, Detail: s.detail}
	if s.st == server.StateStarting {
		st.Phase = "starting"
		if s.phase != nil {
			st.Phase, _ = s.phase()
		}
	}
	return st
}

func (s *status) state() server.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *status) set(st server.State, detail string) {
	s.mu.Lock()
	s.st, s.detail = st, detail
	s.mu.Unlock()
}

func (s *status) setPhaseSource(f func() (string, time.Time)) {
	s.mu.Lock()
	s.phase = f
	s.mu.Unlock()
}
