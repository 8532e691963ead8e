package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/runpod"
	"github.com/vllm-worker/vllm-worker/runpod/serverless"
)

// testInputArg finds RunPod's --test_input flag: `--test_input '<json>'`,
// `--test_input=<json>`, `--test_input @file.json`, or a bare `--test_input`,
// which reads ./test_input.json as runpod-python does.
func testInputArg(args []string) (value string, found bool) {
	for i, a := range args {
		name, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "test_input" {
			continue
		}
		if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			v = args[i+1]
		}
		return v, true
	}
	return "", false
}

// readTestInput resolves the flag's value to the job's JSON.
func readTestInput(value string) ([]byte, error) {
	switch {
	case value == "":
		value = "@test_input.json"
	case !strings.HasPrefix(value, "@"):
		return []byte(value), nil
	}
	b, err := os.ReadFile(value[1:])
	if err != nil {
		return nil, fmt.Errorf("read test input: %w", err)
	}
	return b, nil
}

// runTestInput is the local test mode: it starts the engine, really runs one
// job (streamed items too), prints each item and the result as JSON lines, stops
// the engine, and fails when the job failed.
func runTestInput(ctx context.Context, value string, environ []string, stdout, stderr io.Writer) error {
	job, err := readTestInput(value)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	cfg, err := loadConfig(environ, stderr)
	if err != nil {
		return err
	}
	w := &worker{cfg: cfg, environ: environ, log: newLogger(cfg.Worker.LogFormat, cfg.Worker.LogLevel, stderr)}
	engineURL, enginePort, err := w.engineURL()
	if err != nil {
		return err
	}
	client := engine.New(engine.Options{BaseURL: engineURL})
	models := engine.NewModels(client, cfg.ServedModelNames())
	runner := &runpod.Runner{Engine: client, Models: models, Batch: w.batchPolicy(), RawOpenAI: cfg.OpenAI.RawOutput}

	ready := make(chan struct{})
	mgr := newEngineManager(cfg, environ, enginePort, engineURL, w.log)
	mgr.onStarting = func(func() (string, time.Time)) {}
	var readyOnce sync.Once // onReady runs again when the engine's /health recovers
	mgr.onReady = func() { readyOnce.Do(func() { close(ready) }) }
	mgr.onDown = func(error) {}
	engineDone := make(chan error, 1)
	go func() { engineDone <- mgr.run(ctx) }()
	defer func() {
		mgr.stop()
		<-engineDone
	}()
	select {
	case <-ready:
	case err := <-engineDone:
		engineDone <- err // for the deferred wait
		if err == nil {
			err = errors.New("interrupted")
		}
		return fmt.Errorf("engine: %w", err)
	}
	if _, err := models.Refresh(ctx); err != nil {
		w.log.Warn().Err(err).Msg("could not list the engine's models")
	}
	if err := serverless.RunLocal(ctx, runner, job, stdout); err != nil {
		return &exitError{code: 1, msg: "test job failed: " + err.Error()}
	}
	return nil
}
