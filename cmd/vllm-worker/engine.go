package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/config"
	"github.com/vllm-worker/vllm-worker/supervisor"
)

// engineManager owns the engine for the worker's whole life: it starts it, waits
// until it serves, and when it dies either gives up (ENGINE_RESTART=never, the
// serverless default: the platform replaces the worker) or restarts it with
// exponential backoff (on-failure, for Pods and Kubernetes).
type engineManager struct {
	cfg     *config.Config
	environ []string
	port    int    // the engine's loopback port, the same across restarts
	url     string // its base URL
	log     zerolog.Logger

	// onReady runs each time the engine starts serving; onDown each time it
	// stops serving unexpectedly (before a restart, or before giving up).
	onReady func()
	onDown  func(err error)
	// onStarting receives each new engine's start-up phase source.
	onStarting func(phase func() (string, time.Time))
	// onRestart runs before each restart after a failure.
	onRestart func()

	mu       sync.Mutex
	current  *supervisor.Engine
	stopping bool
	stopped  chan struct{} // closed by stop
	once     sync.Once
}

func newEngineManager(cfg *config.Config, environ []string, port int, url string, log zerolog.Logger) *engineManager {
	return &engineManager{cfg: cfg, environ: environ, port: port, url: url, log: log, stopped: make(chan struct{})}
}

// Backoff between restarts: 1 s doubling to 1 min; reset once an engine has
// served for restartResetAfter.
const (
	restartBackoffMin = time.Second
	restartBackoffMax = time.Minute
	restartResetAfter = 5 * time.Minute
)

// run manages the engine until stop is called (it returns nil) or the engine
// fails and is not to be restarted (it returns the failure). ctx only cancels a
// start-up in progress; stopping the engine is stop's job, after the drain.
func (m *engineManager) run(ctx context.Context) error {
	if m.cfg.Engine.URL != "" {
		return m.runExternal(ctx)
	}
	backoff := restartBackoffMin
	for attempt := 1; ; attempt++ {
		started := time.Now()
		err := m.runOnce(ctx, attempt)
		if m.isStopping() {
			return nil
		}
		if ctx.Err() != nil {
			var exit *supervisor.ExitError
			if !errors.As(err, &exit) {
				return nil // a start-up interrupted by the signal
			}
			// The engine died on its own while the worker drains: not a clean stop.
			m.onDown(err)
			return err
		}
		m.onDown(err)
		if m.cfg.Engine.Restart != config.RestartOnFailure {
			return err
		}
		if time.Since(started) > restartResetAfter {
			backoff = restartBackoffMin
		}
		m.log.Warn().Err(err).Dur("backoff", backoff).Int("attempt", attempt+1).Msg("restarting the engine (ENGINE_RESTART=on-failure)")
		select {
		case <-time.After(backoff):
		case <-m.stopped:
			return nil
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, restartBackoffMax)
		if m.onRestart != nil {
			m.onRestart()
		}
	}
}

// runOnce starts one engine and returns when it has exited (or failed to start).
func (m *engineManager) runOnce(ctx context.Context, attempt int) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
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
		return fmt.Errorf("start engine: %w", err)
	}
	m.mu.Lock()
	m.current = eng
	stopping := m.stopping
	m.mu.Unlock()
	if stopping { // stop raced with the start
		_ = eng.Stop(context.Background())
		return nil
	}
	m.onStarting(eng.Phase)
	if err := eng.WaitReady(ctx); err != nil {
		_ = eng.Stop(context.Background())
		return fmt.Errorf("engine start-up: %w", err)
	}
	m.onReady()
	m.watch(eng.Exited())
	<-eng.Exited()
	if err := eng.Err(); err != nil {
		return fmt.Errorf("engine died: %w", err)
	}
	return errors.New("engine died: it exited with status 0")
}

// runExternal waits for an engine given by ENGINE_URL; the worker does not own
// its process, so there is nothing to restart.
func (m *engineManager) runExternal(ctx context.Context) error {
	m.log.Info().Str("engine", m.url).Msg("waiting for the external engine")
	err := supervisor.WaitHealthy(ctx, &http.Client{Timeout: 5 * time.Second}, m.url+"/health",
		500*time.Millisecond, m.cfg.Engine.StartupTimeout)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		m.onDown(err)
		return fmt.Errorf("external engine: %w", err)
	}
	m.onReady()
	m.watch(ctx.Done())
	return nil
}

// Health watching of a serving engine: vLLM's /health turns 503 as soon as its
// engine core dies, seconds before the process exits, and an external engine has
// no process to watch at all.
const (
	healthWatchInterval = time.Second
	healthWatchFailures = 2 // consecutive failed checks before the engine counts as down
)

// watch checks the engine's /health until done is closed or stop is called. The
// engine counts as down after healthWatchFailures failed checks, and as ready
// again after one good check.
func (m *engineManager) watch(done <-chan struct{}) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(healthWatchInterval)
	defer tick.Stop()
	fails, down := 0, false
	for {
		select {
		case <-done:
			return
		case <-m.stopped:
			return
		case <-tick.C:
		}
		err := probeHealth(client, m.url+"/health")
		switch {
		case err == nil && down:
			fails, down = 0, false
			m.log.Info().Msg("the engine's /health answers again")
			m.onReady()
		case err == nil:
			fails = 0
		case !down:
			if fails++; fails >= healthWatchFailures {
				down = true
				m.onDown(fmt.Errorf("the engine's /health is failing: %w", err))
			}
		}
	}
}

func probeHealth(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
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
	m.once.Do(func() { close(m.stopped) })
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
