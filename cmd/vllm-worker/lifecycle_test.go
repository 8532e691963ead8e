package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/config"
	"github.com/vllm-worker/vllm-worker/engine"
)

// events records what an engine manager reports, in order.
type events struct {
	mu      sync.Mutex
	log     []string
	at      []time.Time
	changed chan struct{}
}

func newEvents() *events { return &events{changed: make(chan struct{})} }

func (e *events) add(what string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, what)
	e.at = append(e.at, time.Now())
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *events) EngineStarting(func() (string, time.Time)) { e.add("starting") }
func (e *events) EngineReady()                              { e.add("ready") }
func (e *events) EngineDown(error)                          { e.add("down") }
func (e *events) EngineRestarting()                         { e.add("restarting") }

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.log, " ")
}

// waitFor waits until the events so far are exactly want.
func (e *events) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		e.mu.Lock()
		got, changed := strings.Join(e.log, " "), e.changed
		e.mu.Unlock()
		if got == want {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("events %q; want %q", got, want)
		}
	}
}

// newTestManager is an engine manager of the simulated engine (the test binary
// as vllm-worker sim) that reports to a recorder.
func newTestManager(t *testing.T, extraEnv ...string) (*engineManager, *events) {
	t.Helper()
	env := baseEnv(extraEnv...)
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	m := newEngineManager(cfg, env, port, "http://127.0.0.1:"+strconv.Itoa(port), zerolog.Nop(), ev)
	return m, ev
}

// runManager runs m.run in the background; its result arrives on the channel.
func runManager(ctx context.Context, m *engineManager) <-chan error {
	done := make(chan error, 1)
	go func() { done <- m.run(ctx) }()
	return done
}

func waitRun(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the engine manager did not return")
		return nil
	}
}

func currentPID(t *testing.T, m *engineManager) int {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.current == nil {
		t.Fatal("no engine process")
	}
	return m.current.PID()
}

// TestEngineManagerDiesDuringStart: with ENGINE_RESTART=on-failure an engine
// that exits before it serves is reported down, and the manager waits its
// backoff before the next start; stop ends that wait, and run returns nil.
func TestEngineManagerDiesDuringStart(t *testing.T) {
	m, ev := newTestManager(t, "SIM_STARTUP_EXIT=3", "ENGINE_RESTART=on-failure")
	m.backoff = backoffPolicy{Min: time.Hour, Max: time.Hour, ResetAfter: time.Hour}
	done := runManager(context.Background(), m)
	ev.waitFor(t, "starting down")
	m.stop()
	if err := waitRun(t, done); err != nil {
		t.Errorf("run returned %v; want nil after stop", err)
	}
	if got := ev.String(); got != "starting down" {
		t.Errorf("events %q; want starting down (no restart within the backoff)", got)
	}
}

// TestEngineManagerStartFailsNoRestart: with ENGINE_RESTART=never a failed start
// is fatal at once.
func TestEngineManagerStartFailsNoRestart(t *testing.T) {
	m, ev := newTestManager(t, "SIM_STARTUP_EXIT=3")
	err := waitRun(t, runManager(context.Background(), m))
	var fatal *engine.FatalError
	if !errors.As(err, &fatal) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("run returned %v; want a fatal error with the exit status", err)
	}
	if got := ev.String(); got != "starting down" {
		t.Errorf("events %q; want starting down", got)
	}
	if strings.Count(err.Error(), "start engine") > 1 {
		t.Errorf("error %q says start engine twice", err)
	}
}

// TestEngineManagerDiesWhileServing: an engine killed while it serves is
// reported down and, with ENGINE_RESTART=never, ends run with a fatal error.
func TestEngineManagerDiesWhileServing(t *testing.T) {
	m, ev := newTestManager(t)
	done := runManager(context.Background(), m)
	ev.waitFor(t, "starting ready")
	pid := currentPID(t, m)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := waitRun(t, done)
	var fatal *engine.FatalError
	if !errors.As(err, &fatal) || fatal.Reason != "the engine died" || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("run returned %v; want the engine died (killed)", err)
	}
	if got := ev.String(); got != "starting ready down" {
		t.Errorf("events %q; want starting ready down", got)
	}
	waitGone(t, pid)
}

// TestEngineManagerRestartBackoff: with ENGINE_RESTART=on-failure an engine that
// dies is started again after the backoff, which doubles; stop ends it all.
func TestEngineManagerRestartBackoff(t *testing.T) {
	m, ev := newTestManager(t, "ENGINE_RESTART=on-failure")
	m.backoff = backoffPolicy{Min: 300 * time.Millisecond, Max: 600 * time.Millisecond, ResetAfter: time.Hour}
	done := runManager(context.Background(), m)
	want := "starting ready"
	ev.waitFor(t, want)
	var pids []int
	for round := range 2 {
		pid := currentPID(t, m)
		pids = append(pids, pid)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		want += " down restarting starting ready"
		ev.waitFor(t, want)
		ev.mu.Lock()
		n := len(ev.at)
		waited := ev.at[n-3].Sub(ev.at[n-4]) // from down to restarting
		ev.mu.Unlock()
		want := []time.Duration{300 * time.Millisecond, 600 * time.Millisecond}[round]
		if waited < want || waited > want+2*time.Second {
			t.Errorf("restart %d after %v; want the backoff of %v", round+1, waited, want)
		}
	}
	last := currentPID(t, m)
	m.stop()
	if err := waitRun(t, done); err != nil {
		t.Errorf("run after stop returned %v; want nil", err)
	}
	for _, pid := range append(pids, last) {
		waitGone(t, pid)
	}
}

// TestEngineManagerStopDuringStart: a stop (or a signal) while the engine starts
// ends run with nil and no process left.
func TestEngineManagerStopDuringStart(t *testing.T) {
	m, ev := newTestManager(t, "SIM_STARTUP_MS=60000")
	ctx, cancel := context.WithCancel(context.Background())
	done := runManager(ctx, m)
	ev.waitFor(t, "starting")
	pid := currentPID(t, m)
	cancel() // as the signal does: ends the start-up
	if err := waitRun(t, done); err != nil {
		t.Errorf("run returned %v; want nil", err)
	}
	m.stop()
	waitGone(t, pid)
}

// TestLifecycleEngineDiesDuringDrain: the engine dying while the worker drains
// after a signal (killed, not stopped) makes the worker exit non-zero, saying so;
// the stream in flight still ends with an error event and [DONE].
func TestLifecycleEngineDiesDuringDrain(t *testing.T) {
	w := startWorker(t, "SIM_ITL_MS=50", "SHUTDOWN_GRACE_SECONDS=20")
	pid := enginePID(t, w.Log)
	resp, err := http.Post(w.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x","max_tokens":400,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first event: %q %v", line, err)
	}
	w.cancel() // the signal: drain
	w.Log.waitLine(t, 5*time.Second, func(l map[string]any) bool { return strings.HasPrefix(l["message"].(string), "shutting down") })
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), `data: {"error":`) || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("the stream in flight ended with ...%q; want an error event and [DONE]", rest[max(0, len(rest)-200):])
	}
	err = w.wait(t, 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "engine died") {
		t.Errorf("run returned %v; want the engine died; log:\n%s", err, w.Log)
	}
	waitGone(t, pid)
}

// TestSIGTERMTwice: a second SIGTERM cuts the drain short: the worker exits at
// once rather than after SHUTDOWN_GRACE_SECONDS, and leaves no process behind.
func TestSIGTERMTwice(t *testing.T) {
	proc, url := startProcess(t, baseEnv("SIM_ITL_MS=50", "SHUTDOWN_GRACE_SECONDS=60"))
	waitReady(t, url, 30*time.Second, proc.Log)
	pid := enginePID(t, proc.Log)
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x","max_tokens":2000,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first event: %q %v", line, err)
	}
	start := time.Now()
	if err := proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	proc.Log.waitLine(t, 5*time.Second, func(l map[string]any) bool { return strings.HasPrefix(l["message"].(string), "shutting down") })
	if err := proc.terminate(t, 20*time.Second); err != nil {
		t.Logf("exit: %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("exited %v after the first SIGTERM; want well before the 60 s grace", d)
	}
	proc.Log.waitLine(t, time.Second, func(l map[string]any) bool { return l["message"] == "a second signal: cutting the drain short" })
	waitGone(t, pid)
}
