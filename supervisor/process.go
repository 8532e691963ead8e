package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

const (
	// killWait bounds how long we wait for the group to vanish after SIGKILL; only a process
	// stuck in the kernel (a wedged GPU driver) takes longer.
	killWait = 10 * time.Second
	// relayDrain bounds how long the output may stay open once the process group is gone.
	relayDrain = 2 * time.Second
	// groupPoll is the period of the "is anyone of the group left" check.
	groupPoll = 20 * time.Millisecond
)

// sysProcAttr puts the child in a process group of its own, so that one signal reaches vLLM's
// EngineCore and GPU worker processes too, and kills it if we die first. Pdeathsig fires when
// the OS thread that forked exits; the Go runtime does not end threads of goroutines that did
// not lock one, so in practice this means "when this process dies".
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// becomeSubreaper makes this process the parent of the engine's orphans (EngineCore, workers)
// when the engine dies before them, so that clearGroup can reap them: otherwise they are
// reparented to PID 1, which in containers often never reaps, and a zombie keeps the process
// group alive. It is process-wide and idempotent.
func becomeSubreaper(log zerolog.Logger) {
	const prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER, linux/prctl.h
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		log.Warn().Err(errno).Msg("cannot become child subreaper; orphaned engine processes may linger as zombies")
	}
}

// lookPath finds name like a shell would with the PATH of env, falling back to our own PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathEnv, ok := "", false
	for _, kv := range env {
		if v, found := strings.CutPrefix(kv, "PATH="); found {
			pathEnv, ok = v, true // the last one wins, as with os/exec
		}
	}
	if !ok {
		return exec.LookPath(name)
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // a relative PATH entry would depend on our working directory
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// signalGroup sends sig to every process of the engine's group.
func (e *Engine) signalGroup(sig syscall.Signal) {
	if err := syscall.Kill(-e.pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		e.log.Warn().Err(err).Int("pgid", e.pgid).Str("signal", sig.String()).Msg("cannot signal engine process group")
	}
}

// groupGone reaps the group's zombies that are ours and reports whether no process of the
// group is left. Call it only after the leader has been reaped: before that, wait4 on the
// group could steal the leader's exit status from os/exec.
func (e *Engine) groupGone() bool {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-e.pgid, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			break
		}
	}
	return errors.Is(syscall.Kill(-e.pgid, 0), syscall.ESRCH)
}

// waitGroupGone polls groupGone for up to d.
func (e *Engine) waitGroupGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !e.groupGone() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(groupPoll) // polling a kernel state: there is nothing to wait on
	}
	return true
}

// clearGroup runs after the leader was reaped and ends whatever is left of its process group:
// vLLM's children hold GPU memory until they die, and nothing else will stop them now.
func (e *Engine) clearGroup() {
	if e.groupGone() {
		return
	}
	e.log.Warn().Int("pgid", e.pgid).Msg("engine exited but processes of its group remain; stopping them")
	e.signalGroup(syscall.SIGTERM)
	if e.waitGroupGone(e.opts.StopGrace) {
		return
	}
	e.signalGroup(syscall.SIGKILL)
	if !e.waitGroupGone(killWait) {
		e.log.Error().Int("pgid", e.pgid).Msg("processes of the engine's group survive SIGKILL")
	}
}

// Stop stops the engine: SIGTERM to its process group, SIGKILL to the group after StopGrace
// (or at once when ctx ends), and returns when the child has been reaped and no process of the
// group is left. It may be called many times and concurrently, also during start-up and after
// the child exited. The first call runs the sequence to its end (its ctx only hastens SIGKILL)
// and the others return its result, or their ctx.Err() if their ctx ends first.
func (e *Engine) Stop(ctx context.Context) error {
	if e.stopOnce.CompareAndSwap(false, true) {
		e.stopErr = e.stop(ctx)
		close(e.stopDone)
		return e.stopErr
	}
	select {
	case <-e.stopDone:
		return e.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Engine) stop(ctx context.Context) error {
	select {
	case <-e.exited:
		return e.checkGroupGone() // already gone; waitExit cleared the group
	default:
	}
	e.stopping.Store(true) // before the signal, so that waitExit sees it
	e.log.Info().Int("pid", e.PID()).Dur("grace", e.opts.StopGrace).Msg("stopping engine")
	e.signalGroup(syscall.SIGTERM)

	grace := time.NewTimer(e.opts.StopGrace)
	defer grace.Stop()
	select {
	case <-e.exited:
		return e.checkGroupGone()
	case <-grace.C:
		e.log.Warn().Int("pid", e.PID()).Msg("engine ignored SIGTERM; killing its process group")
	case <-ctx.Done():
		e.log.Warn().Int("pid", e.PID()).Msg("stop cancelled; killing the engine's process group")
	}
	e.killed.Store(true) // before the signal, so that waitExit sees it
	e.signalGroup(syscall.SIGKILL)

	kill := time.NewTimer(killWait + relayDrain)
	defer kill.Stop()
	select {
	case <-e.exited:
		return e.checkGroupGone()
	case <-kill.C:
		return fmt.Errorf("stop engine: pid %d did not exit %v after SIGKILL", e.PID(), killWait+relayDrain)
	}
}

// checkGroupGone is Stop's last word once the child has been reaped.
func (e *Engine) checkGroupGone() error {
	if !e.groupGone() {
		return fmt.Errorf("stop engine: processes of group %d survive SIGKILL", e.pgid)
	}
	return nil
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		f.Close() // only fds we own; a second close of a read end is harmless
	}
}
