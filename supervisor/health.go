package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// probeTimeout bounds one health request; a booting vLLM refuses connections at once, a wedged
// one may accept and never answer.
const probeTimeout = 2 * time.Second

// errGone tells pollHealth's caller that the process it waited for has exited.
var errGone = errors.New("engine exited")

// newProbeClient returns a client that keeps no idle connection (none outlives a probe) and
// ignores proxy settings, which must not apply to the loopback engine.
func newProbeClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// WaitReady polls the health URL until it answers 200, then sets the phase to "ready". It
// returns the *ExitError if the child exits first, an error wrapping ErrStartupTimeout (with
// the last output lines in its message) once StartupTimeout has passed since Start, or
// ctx.Err(). It does not stop the engine on failure; the caller decides.
func (e *Engine) WaitReady(ctx context.Context) error {
	select {
	case <-e.ready:
		return nil
	default:
	}
	var deadline <-chan time.Time
	if t := e.opts.StartupTimeout; t > 0 {
		timer := time.NewTimer(time.Until(e.started.Add(t)))
		defer timer.Stop()
		deadline = timer.C
	}
	last, err := pollHealth(ctx, e.client, e.opts.HealthURL, e.opts.PollInterval, deadline, e.exited)
	switch {
	case err == nil:
		e.markReady()
		return nil
	case errors.Is(err, errGone):
		return e.exitErr // set before exited was closed
	case errors.Is(err, ErrStartupTimeout):
		phase, since := e.Phase()
		return fmt.Errorf("%w after %v (phase %s for %v, last health check: %v)%s",
			ErrStartupTimeout, e.opts.StartupTimeout, phase, time.Since(since).Round(time.Second), last, tail(e.LastLines()))
	default:
		return err
	}
}

func (e *Engine) markReady() {
	e.readyOnce.Do(func() {
		e.phase.SetReady()
		close(e.ready)
		e.log.Info().Dur("took", time.Since(e.started)).Msg("engine ready")
	})
}

// WaitHealthy polls url every interval (DefaultPollInterval if not positive) until it answers
// 200. It is for an engine that is not our child (ENGINE_URL). A nil client means a private
// one. A positive timeout ends the wait with an error wrapping ErrStartupTimeout.
func WaitHealthy(ctx context.Context, client *http.Client, url string, interval, timeout time.Duration) error {
	if client == nil {
		client = newProbeClient()
		defer client.CloseIdleConnections()
	}
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		deadline = timer.C
	}
	last, err := pollHealth(ctx, client, url, interval, deadline, nil)
	if errors.Is(err, ErrStartupTimeout) {
		return fmt.Errorf("%w: %s not healthy after %v (last health check: %v)", ErrStartupTimeout, url, timeout, last)
	}
	return err
}

// pollHealth probes url at once and then every interval until it answers 200 (nil), ctx ends
// (ctx.Err()), deadline fires (ErrStartupTimeout) or gone is closed (errGone). last is the
// last probe's failure.
func pollHealth(ctx context.Context, client *http.Client, url string, interval time.Duration,
	deadline <-chan time.Time, gone <-chan struct{}) (last, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("health URL: %w", err)
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if last = probe(ctx, client, req); last == nil {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-gone:
			return last, errGone
		case <-deadline:
			return last, ErrStartupTimeout
		case <-ticker.C:
		}
	}
}

// probe reports nil if req answers 200 within probeTimeout.
func probe(ctx context.Context, client *http.Client, req *http.Request) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // best effort; the status is the answer
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Watch checks a serving engine's health URL every interval until ctx ends or
// gone is closed (the process exited), with the same probe as WaitReady. It
// calls report(false, err) once the engine has failed failures checks in a row,
// and report(true, nil) on the first good check after that: vLLM's /health turns
// 503 as soon as its engine core dies, seconds before its process exits, and an
// external engine (ENGINE_URL) has no process to watch at all.
func Watch(ctx context.Context, url string, interval time.Duration, failures int, gone <-chan struct{}, report func(healthy bool, err error)) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		report(false, fmt.Errorf("health URL: %w", err))
		return
	}
	client := newProbeClient()
	defer client.CloseIdleConnections()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	fails, down := 0, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-gone:
			return
		case <-tick.C:
		}
		err := probe(ctx, client, req)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && down:
			fails, down = 0, false
			report(true, nil)
		case err == nil:
			fails = 0
		case !down:
			if fails++; fails >= failures {
				down = true
				report(false, fmt.Errorf("the engine's /health is failing: %w", err))
			}
		}
	}
}
