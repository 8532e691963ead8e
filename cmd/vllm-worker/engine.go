package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/config"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/supervisor"
)

// engineEvents is what the engine manager reports of the engine, each time its
// state changes. The worker implements it; tests record it.
type engineEvents interface {
	// EngineStarting: a new engine process is starting; phase reads its start-up
	// phase.
	EngineStarting(phase func() (string, time.Time))
	// EngineReady: the engine serves (first, after a restart, or when its
	// /health answers again).
	EngineReady()
	// EngineDown: the engine stopped serving unexpectedly (before a restart, or
	// before the manager gives up).
	EngineDown(err error)
	// EngineRestarting: a new engine is about to start after a failure.
	EngineRestarting()
}

// engineManager owns the engine for the worker's whole life: it starts it, waits
// until it serves, watches its health, and when it dies either gives up
// (ENGINE_RESTART=never, the serverless default: the platform replaces the
// worker) or restarts it with exponential backoff (on-failure, for Pods and
// Kubernetes). With ENGINE_URL there is no process: it waits for that server and
// watches it.
type engineManager struct {
	cfg     *config.Config
	environ []string
	port    int    // the engine's loopback port, the same across restarts
	url     string // its base URL
	log     zerolog.Logger
	events  engineEvents
	backoff backoffPolicy

	// stopped ends when stop is called.
	stopped context.Context
	cancel  context.CancelFunc

	mu       sync.Mutex
	current  *supervisor.Engine
	stopping bool
}

// backoffPolicy is the wait between restarts: Min doubling to Max, back to Min
// once an engine has served for ResetAfter.
type backoffPolicy struct {
	Min, Max, ResetAfter time.Duration
}

var defaultBackoff = backoffPolicy{Min: time.Second, Max: time.Minute, ResetAfter: 5 * time.Minute}

// Health watching of a serving engine (supervisor.Watch).
const (
	healthWatchInterval = time.Second
	healthWatchFailures = 2 // consecutive failed checks before the engine counts as down
)

func newEngineManager(cfg *config.Config, environ []string, port int, url string, log zerolog.Logger, events engineEvents) *engineManager {
	m := &engineManager{cfg: cfg, environ: environ, port: port, url: url, log: log, events: events, backoff: defaultBackoff}
	m.stopped, m.cancel = context.WithCancel(context.Background())
	return m
}

// run manages the engine until stop is called (it returns nil) or the engine
// fails and is not to be restarted (it returns an *engine.FatalError). ctx only
// cancels a start-up in progress (run then returns nil); stopping a serving
// engine is stop's job, after the drain.
func (m *engineManager) run(ctx context.Context) error {
	if m.cfg.Engine.URL != "" {
		return m.runExternal(ctx)
	}
	wait := m.backoff.Min
	for attempt := 1; ; attempt++ {
		started := time.Now()
		served, err := m.runOnce(ctx, attempt)
		if err == nil { // stopped, or a start-up interrupted by ctx
			return nil
		}
		m.events.EngineDown(err)
		if m.isStopping() || ctx.Err() != nil || m.cfg.Engine.Restart != config.RestartOnFailure {
			// An engine that died on its own during the drain is a death too.
			reason := "the engine died"
			if !served {
				reason = "the engine failed to start"
			}
			return &engine.FatalError{Reason: reason, Err: err}
		}
		if time.Since(started) > m.backoff.ResetAfter {
			wait = m.backoff.Min
		}
		m.log.Warn().Err(err).Dur("backoff", wait).Int("attempt", attempt+1).Msg("restarting the engine (ENGINE_RESTART=on-failure)")
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-m.stopped.Done():
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			return nil
		}
		wait = min(2*wait, m.backoff.Max)
		m.events.EngineRestarting()
	}
}

// runOnce starts one engine and returns when it has exited (its error) or failed
// to start. served says whether it ever served. The error is nil when the engine
// stopped because stop was called, or ctx ended during the start.
func (m *engineManager) runOnce(ctx context.Context, attempt int) (served bool, err error) {
	self, err := os.Executable()
	if err != nil {
		return false, fmt.Errorf("find own executable: %w", err)
	}
	argv := m.cfg.EngineArgv(m.port, self)
	logged := make([]string, len(argv))
	for i, a := range argv {
		logged[i] = m.cfg.Scrub(a) // a secret may come in through VLLM_EXTRA_ARGS
	}
	m.log.Info().Strs("argv", logged).Int("attempt", attempt).Msg("starting engine")
	stopGrace := 10 * time.Second
	if m.cfg.Engine.ShutdownTimeout > 0 {
		stopGrace = m.cfg.Engine.ShutdownTimeout + 5*time.Second
	}
	eng, err := supervisor.Start(ctx, supervisor.Options{
		Argv:           argv,
		Env:            m.cfg.EngineEnv(m.environ),
		HealthURL:      m.url + "/health",
		StartupTimeout: m.cfg.Engine.StartupTimeout,
		StallTimeout:   m.cfg.Engine.StallTimeout,
		StopGrace:      stopGrace,
		Logger:         m.log, // the supervisor adds component=engine
	})
	if err != nil {
		if ctx.Err() != nil || m.isStopping() {
			return false, nil
		}
		return false, err // supervisor.Start says "start engine: ..."
	}
	m.mu.Lock()
	m.current = eng
	stopping := m.stopping
	m.mu.Unlock()
	if stopping { // stop raced with the start
		_ = eng.Stop(context.Background())
		return false, nil
	}
	m.events.EngineStarting(eng.Phase)
	if err := eng.WaitReady(ctx); err != nil {
		_ = eng.Stop(context.Background())
		var exit *supervisor.ExitError
		if m.isStopping() || (ctx.Err() != nil && !errors.As(err, &exit)) {
			return false, nil
		}
		return false, fmt.Errorf("engine start-up: %w", err)
	}
	m.events.EngineReady()
	m.watch(eng.Exited())
	<-eng.Exited()
	if err := eng.Err(); err != nil { // nil when the exit followed stop
		return true, err
	}
	if m.isStopping() {
		return true, nil
	}
	return true, errors.New("the engine exited with status 0")
}

// runExternal waits for an engine given by ENGINE_URL, then watches it until
// stop; the worker does not own its process, so there is nothing to restart.
func (m *engineManager) runExternal(ctx context.Context) error {
	m.log.Info().Str("engine", m.url).Msg("waiting for the external engine")
	err := supervisor.WaitHealthy(ctx, nil, m.url+"/health", 500*time.Millisecond, m.cfg.Engine.StartupTimeout)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		m.events.EngineDown(err)
		return &engine.FatalError{Reason: "the external engine never answered", Err: err}
	}
	m.events.EngineReady()
	m.watch(nil)
	return nil
}

// watch checks the engine's /health until gone is closed or stop is called.
func (m *engineManager) watch(gone <-chan struct{}) {
	supervisor.Watch(m.stopped, m.url+"/health", healthWatchInterval, healthWatchFailures, gone, func(healthy bool, err error) {
		if healthy {
			m.log.Info().Msg("the engine's /health answers again")
			m.events.EngineReady()
			return
		}
		m.events.EngineDown(err)
	})
}

func (m *engineManager) isStopping() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopping
}

// stop stops the engine (SIGTERM to its group, SIGKILL after its grace) and
// ends run. It is safe to call more than once.
func (m *engineManager) stop() {
	m.mu.Lock()
	m.stopping = true
	eng := m.current
	m.mu.Unlock()
	m.cancel()
	if eng != nil {
		if err := eng.Stop(context.Background()); err != nil {
			m.log.Warn().Err(err).Msg("engine stop")
		}
	}
}

// exitedWithin reports the current engine's exit if it exits within timeout
// (nil when it is alive, or when there is no child: ENGINE_URL).
func (m *engineManager) exitedWithin(timeout time.Duration) error {
	m.mu.Lock()
	eng := m.current
	m.mu.Unlock()
	if eng == nil {
		return nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-eng.Exited():
		if err := eng.Err(); err != nil {
			return err
		}
		return errors.New("the engine exited")
	case <-t.C:
		return nil
	}
}
