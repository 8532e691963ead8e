package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

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
// the engine, and fails when the job failed. It is the same worker as serve's,
// with only the engine and the runner.
func runTestInput(ctx context.Context, value string, environ []string, stdout, stderr io.Writer) error {
	job, err := readTestInput(value)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	cfg, err := loadConfig(environ, stderr)
	if err != nil {
		return err
	}
	w, err := newWorker(cfg, environ, newLogger(cfg.Worker.LogFormat, cfg.Worker.LogLevel, stderr), engineOnly)
	if err != nil {
		return err
	}
	err = w.run(ctx, func(ctx context.Context) error {
		if err := serverless.RunLocal(ctx, w.runner, job, stdout); err != nil {
			return &exitError{code: 1, msg: "test job failed: " + err.Error()}
		}
		return nil
	})
	if err == nil && ctx.Err() != nil {
		return errors.New("interrupted before the job ran")
	}
	return err
}
