// Package supervisor runs the inference engine (vLLM's OpenAI server) as a child process: it
// starts the child in its own process group, relays its output line by line to the log, keeps
// the last lines for error messages, tells when it is ready (GET /health is 200), follows its
// start-up phase, and stops it SIGTERM-then-SIGKILL so that no process of its group is left.
//
// It must not: decide policy (restarts, what to do on a startup timeout: the caller does), read
// the process environment or build the engine's command line (config does), serve or proxy
// HTTP (server does), or log the child's argv or environment, which may hold secrets.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Defaults for the zero values of Options.
const (
	DefaultStopGrace    = 10 * time.Second
	DefaultPollInterval = 200 * time.Millisecond
	DefaultKeepLines    = 200
)

// Options says how to run the engine. Zero values take the defaults documented per field.
type Options struct {
	// Argv is the command line. Argv[0] is looked up in the PATH of Env (or of this process if
	// Env has no PATH) unless it contains a slash.
	Argv []string
	// Env is the child's whole environment. Nil means an empty environment, not this process's.
	Env []string
	// HealthURL is polled by WaitReady, e.g. http://127.0.0.1:PORT/health. Required.
	HealthURL string
	// StartupTimeout bounds WaitReady, counted from Start. Zero means no deadline.
	StartupTimeout time.Duration
	// StallTimeout, when positive, logs a warning (once per stall) when the engine has printed
	// nothing for this long and is not ready yet. Zero turns it off.
	StallTimeout time.Duration
	// StopGrace is the time between SIGTERM and SIGKILL to the process group. Zero means
	// DefaultStopGrace.
	StopGrace time.Duration
	// PollInterval is the health poll period. Zero means DefaultPollInterval.
	PollInterval time.Duration
	// KeepLines is how many last output lines are kept for LastLines and error messages. Zero
	// means DefaultKeepLines.
	KeepLines int
	// Logger receives the engine's output, one info event per line with component=engine and
	// stream=stdout|stderr, and the supervisor's own events. The zero Logger logs nothing.
	Logger zerolog.Logger
}

func (o *Options) setDefaults() {
	if o.StopGrace <= 0 {
		o.StopGrace = DefaultStopGrace
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.KeepLines <= 0 {
		o.KeepLines = DefaultKeepLines
	}
}

// Engine is a running engine child process. Its goroutines (two output relays, the waiter and
// the stall watcher) all end once the child's process group is gone: call Stop, or let the
// child exit.
type Engine struct {
	opts    Options
	log     zerolog.Logger
	cmd     *exec.Cmd
	pgid    int
	started time.Time
	client  *http.Client

	lines   *ring
	phase   *phaseTracker
	lastOut atomic.Int64 // unix nanoseconds of the last output read from the child

	readyOnce sync.Once
	ready     chan struct{} // closed when WaitReady saw 200

	stopping atomic.Bool   // Stop was asked for
	killed   atomic.Bool   // Stop sent SIGKILL (its grace ran out)
	stopOnce atomic.Bool   // the first Stop call runs the stop sequence
	stopDone chan struct{} // closed when that sequence has finished
	stopErr  error         // set before stopDone is closed

	exited  chan struct{} // closed when the child has been reaped and its output read
	exitErr *ExitError    // set before exited is closed
	stopped bool          // Stop was asked for before the exit; set before exited is closed
}

// Start starts the engine and returns at once; use WaitReady to wait until it serves. The
// child runs in its own process group and gets SIGKILL if this process's thread that started
// it dies (Pdeathsig). ctx only bounds the start itself: cancelling it later does not stop the
// engine, Stop does.
func Start(ctx context.Context, o Options) (*Engine, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start engine: %w", err)
	}
	if len(o.Argv) == 0 || o.Argv[0] == "" {
		return nil, errors.New("start engine: empty command line")
	}
	if _, err := http.NewRequest(http.MethodGet, o.HealthURL, nil); o.HealthURL == "" || err != nil {
		return nil, fmt.Errorf("start engine: bad health URL %q", o.HealthURL)
	}
	o.setDefaults()

	path, err := lookPath(o.Argv[0], o.Env)
	if err != nil {
		return nil, fmt.Errorf("start engine: %w", err)
	}
	env := o.Env
	if env == nil {
		env = []string{} // nil would make os/exec pass our own environment
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start engine: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(outR, outW)
		return nil, fmt.Errorf("start engine: %w", err)
	}
	// Our own pipes rather than StdoutPipe: Wait must be able to return while a grandchild
	// still holds the write ends, and must not close the read ends under the relays.
	cmd := &exec.Cmd{
		Path:        path,
		Args:        o.Argv,
		Env:         env,
		Stdout:      outW,
		Stderr:      errW,
		SysProcAttr: sysProcAttr(),
	}
	becomeSubreaper(o.Logger)
	if err := cmd.Start(); err != nil {
		closeAll(outR, outW, errR, errW)
		return nil, fmt.Errorf("start engine: %w", err)
	}
	closeAll(outW, errW) // the child has its copies; EOF comes when the last holder exits

	e := &Engine{
		opts:     o,
		log:      o.Logger,
		cmd:      cmd,
		pgid:     cmd.Process.Pid, // Setpgid with Pgid 0: the group is named after the leader
		started:  time.Now(),
		client:   newProbeClient(),
		lines:    newRing(o.KeepLines),
		ready:    make(chan struct{}),
		stopDone: make(chan struct{}),
		exited:   make(chan struct{}),
	}
	e.phase = newPhaseTracker(e.started, o.Logger)
	e.lastOut.Store(e.started.UnixNano())
	e.log.Info().Int("pid", e.PID()).Str("cmd", o.Argv[0]).Msg("engine started")

	var relays sync.WaitGroup
	relays.Add(2)
	go e.relay(&relays, outR, "stdout")
	go e.relay(&relays, errR, "stderr")
	go e.waitExit(&relays, outR, errR)
	if o.StallTimeout > 0 {
		go e.watchStall()
	}
	return e, nil
}

// stopExplains reports whether an exit is one that Stop could have caused: any
// exit status after the SIGTERM, death by SIGTERM, or by SIGKILL once Stop sent
// it. Any other signal (SIGKILL from the OOM killer or an operator, SIGSEGV, ...)
// is a death, even during a stop: an engine can die while the worker drains.
func (e *Engine) stopExplains(ps *os.ProcessState) bool {
	if ps == nil {
		return true
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return true
	}
	switch ws.Signal() {
	case syscall.SIGTERM:
		return true
	case syscall.SIGKILL:
		return e.killed.Load()
	}
	return false
}

// Exited returns a channel closed when the child has exited, been reaped, its process group is
// gone and its output has been read to the end.
func (e *Engine) Exited() <-chan struct{} { return e.exited }

// Err reports how the child ended. It is nil before Exited is closed, and nil after if the exit
// followed a call to Stop; otherwise it is an *ExitError.
func (e *Engine) Err() error {
	select {
	case <-e.exited:
		if e.stopped {
			return nil
		}
		return e.exitErr
	default:
		return nil
	}
}

// LastLines returns a copy of the last output lines (both streams, in order of arrival).
func (e *Engine) LastLines() []string { return e.lines.Lines() }

// PID returns the child's process id, which is also its process group id.
func (e *Engine) PID() int { return e.cmd.Process.Pid }

// Phase returns the start-up phase read from the engine's output ("starting", "downloading",
// "loading_weights", "compiling"), or "ready" once WaitReady saw /health answer 200, and when
// that phase began. It is a hint for humans and metrics, not a readiness signal.
func (e *Engine) Phase() (phase string, since time.Time) { return e.phase.Get() }

// waitExit owns the end of the child: it reaps the leader, clears what is left of its process
// group, lets the relays read the output to the end, then publishes the exit.
func (e *Engine) waitExit(relays *sync.WaitGroup, outR, errR *os.File) {
	waitErr := e.cmd.Wait() // safe while the relays read: the pipes are ours, not os/exec's
	// Whether the exit was asked for is read now, before the output drains
	// below; and a stop explains only the exits it can cause.
	stopped := e.stopping.Load() && e.stopExplains(e.cmd.ProcessState)
	e.clearGroup()

	drained := make(chan struct{})
	go func() { relays.Wait(); close(drained) }() // ends when both relays return
	select {
	case <-drained:
	case <-time.After(relayDrain):
		// Someone outside the group (a daemon that called setsid) still holds the pipes.
		e.log.Warn().Msg("engine output still open after its process group exited; closing it")
		closeAll(outR, errR) // unblocks the relays' reads
		<-drained
	}
	e.client.CloseIdleConnections()

	e.exitErr = newExitError(e.cmd.ProcessState, waitErr, e.lines.Lines())
	e.stopped = stopped
	ev := e.log.Warn()
	if e.stopped {
		ev = e.log.Info()
	}
	ev.Int("pid", e.PID()).Str("status", e.exitErr.Status).Msg("engine exited")
	close(e.exited)
}
