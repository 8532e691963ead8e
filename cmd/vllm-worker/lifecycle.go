package main

import (
	"net"
	"sync"
	"time"

	"github.com/vllm-worker/vllm-worker/server"
)

// lifecycle is the worker's state as /health reports it. The serve loop moves it
// from starting to ready, then to draining or unhealthy.
type lifecycle struct {
	mu        sync.Mutex
	state     server.State
	started   time.Time
	detail    string
	engineURL string
	phase     func() (string, time.Time) // the engine's start-up phase, while starting
}

func newLifecycle(engineURL string) *lifecycle {
	return &lifecycle{state: server.StateStarting, started: time.Now(), engineURL: engineURL}
}

func (l *lifecycle) Status() server.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := server.Status{State: l.state, Elapsed: time.Since(l.started), Engine: l.engineURL, Detail: l.detail}
	if l.state == server.StateStarting {
		st.Phase = "starting"
		if l.phase != nil {
			st.Phase, _ = l.phase()
		}
	}
	return st
}

func (l *lifecycle) set(s server.State, detail string) {
	l.mu.Lock()
	l.state, l.detail = s, detail
	l.mu.Unlock()
}

func (l *lifecycle) setPhaseSource(f func() (string, time.Time)) {
	l.mu.Lock()
	l.phase = f
	l.mu.Unlock()
}

// freePort asks the kernel for a free loopback port for the engine.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
