package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/server"
)

// abortGrace is how long requests in flight may finish when the worker stops on
// a failure (the engine died, handler mode aborted): it is going down anyway.
const abortGrace = 2 * time.Second

// stopMode is what made the worker stop.
type stopMode int

const (
	stopSignal  stopMode = iota // SIGTERM or SIGINT: drain, then stop
	stopFailure                 // a part failed: fail what runs, stop at once
	stopJobDone                 // --test_input's job ended: stop the engine
)

// run runs the worker's parts, each a goroutine of one errgroup: the engine
// manager, the HTTP servers, handler mode once the engine serves, and job once
// the engine serves (for --test_input). It returns after one shutdown, which
// runs once whatever triggered it: ctx ending (a signal: drain, then stop), a
// part failing (stop at once), or job returning. The error is the failure, the
// job's error, or an engine that died during the drain; nil after a clean stop.
func (w *worker) run(ctx context.Context, job func(ctx context.Context) error) error {
	g, failed := errgroup.WithContext(context.Background())
	takeCtx, stopTaking := context.WithCancel(context.Background()) // handler mode takes jobs until the shutdown
	defer stopTaking()
	handlerDone := make(chan struct{})

	g.Go(func() error { return w.mgr.run(ctx) })
	if w.servers != nil {
		g.Go(w.serveHTTP)
	}
	if w.handler != nil {
		g.Go(func() error {
			defer close(handlerDone)
			select {
			case <-w.ready:
				return w.handler.Run(takeCtx)
			case <-takeCtx.Done():
				return nil // stopped before the engine ever served
			}
		})
	} else {
		close(handlerDone)
	}
	jobDone := make(chan error, 1)
	if job != nil {
		g.Go(func() error {
			select {
			case <-w.ready:
				jobDone <- job(ctx)
			case <-takeCtx.Done():
			}
			return nil
		})
	}

	mode, cause := stopSignal, error(nil)
	select {
	case <-ctx.Done():
	case <-failed.Done():
		mode, cause = stopFailure, context.Cause(failed)
	case err := <-jobDone:
		mode, cause = stopJobDone, err
	}
	w.shutdown(mode, cause, stopTaking, handlerDone)
	err := g.Wait()
	switch {
	case mode == stopSignal && err != nil:
		w.log.Error().Err(err).Msg("the engine died during the drain")
		return err
	case mode != stopSignal:
		return cause
	}
	w.log.Info().Msg("stopped")
	return nil
}

// shutdown stops the worker, once: on a signal it drains (the listeners stay
// open, /health says draining, handler mode delivers what runs, requests and
// /run jobs in flight finish) for up to SHUTDOWN_GRACE_SECONDS, cut short by a
// second signal; on a failure it fails what runs at once. Then it stops the
// engine.
func (w *worker) shutdown(mode stopMode, cause error, stopTaking func(), handlerDone <-chan struct{}) {
	switch mode {
	case stopSignal:
		grace := w.cfg.Worker.ShutdownGrace
		w.status.set(server.StateDraining, "shutting down")
		w.log.Info().Dur("grace", grace).Msg("shutting down: draining requests in flight")
		drain, cut := context.WithTimeout(context.Background(), grace)
		defer cut()
		w.cutOnSecondSignal(drain, cut)
		stopTaking() // handler mode stops taking jobs and drains those in flight
		<-handlerDone
		w.stopServing(drain)
	case stopFailure:
		reason := "a part of the worker failed"
		var fatal *engine.FatalError
		if errors.As(cause, &fatal) {
			reason = fatal.Reason
		}
		w.status.set(server.StateUnhealthy, reason)
		w.log.Error().Err(cause).Msg(reason + ": exiting so the platform replaces this worker")
		if w.handler != nil {
			w.handler.Abort(cause) // running jobs fail with stopPod; their results are delivered
		}
		stopTaking()
		<-handlerDone
		ctx, cancel := context.WithTimeout(context.Background(), abortGrace)
		defer cancel()
		w.stopServing(ctx)
	case stopJobDone:
		stopTaking()
	}
	w.mgr.stop()
}

// cutOnSecondSignal ends the drain at once when a second SIGTERM or SIGINT
// comes: whoever sends it twice wants the worker gone now. Its goroutine ends
// with the drain.
func (w *worker) cutOnSecondSignal(drain context.Context, cut context.CancelFunc) {
	second := make(chan os.Signal, 1)
	signal.Notify(second, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		defer signal.Stop(second)
		select {
		case <-second:
			w.log.Warn().Msg("a second signal: cutting the drain short")
			cut()
			if w.handler != nil {
				w.handler.CutDrain()
			}
		case <-drain.Done():
		}
	}()
}

// stopServing lets the requests and /run jobs in flight finish until ctx ends,
// with the listeners open (each answer closes its connection; /health answers
// 503), then closes the listeners and cuts what is left.
func (w *worker) stopServing(ctx context.Context) {
	if w.servers == nil {
		return
	}
	for _, s := range w.servers {
		s.SetKeepAlivesEnabled(false)
	}
	var wg sync.WaitGroup
	wg.Go(func() { w.jobs.Close(ctx) })
	wg.Go(func() { _ = w.api.Idle(ctx) })
	wg.Wait()
	for _, s := range w.servers {
		if err := s.Shutdown(ctx); err != nil {
			w.api.Cut()   // what is cut now counts as aborted by the shutdown
			_ = s.Close() // the grace ran out: cut what is left
		}
	}
}
