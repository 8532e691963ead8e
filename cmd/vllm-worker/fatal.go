package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/runpod"
)

// deathAwareRunner runs handler-mode jobs and tells a job's failure from the
// engine's: when a job fails on an engine error and the engine process died (or
// reported a CUDA error, after which it cannot be trusted), the whole handler is
// aborted, so running jobs fail with "stopPod" and the worker exits non-zero for
// the platform to replace it, as worker-vllm does.
type deathAwareRunner struct {
	*runpod.Runner
	engine *engineManager
	abort  func(error)
}

// engineExitGrace is how long a failed job waits for the engine's exit to be
// seen: the broken stream and the process exit race.
const engineExitGrace = 2 * time.Second

func (r deathAwareRunner) Run(ctx context.Context, requestID string, in *runpod.Input, emit runpod.Emit) ([]json.RawMessage, error) {
	items, err := r.Runner.Run(ctx, requestID, in, emit)
	var ee *engine.Error
	if err == nil || ctx.Err() != nil || !errors.As(err, &ee) || ee.Status < 500 {
		return items, err
	}
	if ee.Fatal() {
		r.abort(fmt.Errorf("the engine reported a CUDA error: %s", ee.Message))
	} else if dead := r.engine.exitedWithin(engineExitGrace); dead != nil {
		r.abort(fmt.Errorf("engine died: %w", dead))
	}
	return items, err
}
