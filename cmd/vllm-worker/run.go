package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vllm-worker/vllm-worker/config"
)

const usage = `usage: vllm-worker [serve | sim | config [--json] | check URL | version | help]
       vllm-worker --test_input '<job json>' | @file.json   (bare: ./test_input.json)

  serve        (default) start the engine and serve the OpenAI and RunPod APIs;
               with RUNPOD_WEBHOOK_GET_JOB set, also RunPod's serverless job loop
  sim          run the simulated vLLM engine alone (--host, --port, --model, ...)
  config       print the effective configuration and the engine command line
               (its --port is a free loopback port, chosen at each start)
  check        exercise a running worker or RunPod endpoint (check URL), or vet an
               OpenAI-compatible engine (check --engine URL); exit 1 on a failed check
  --test_input run one job locally against the engine, print its items and result

Configuration comes from the environment; see docs/configuration.md.`

// version is the worker's version, set at link time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code; its message has already been printed.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// run is the whole program; main only wires the process to it, and tests call it.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if value, ok := testInputArg(args); ok {
		return runTestInput(ctx, value, environ, stdout, stderr)
	}
	cmd := "serve"
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help"):
		cmd = "help"
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, environ, stderr)
	case "sim":
		return runSim(ctx, args, environ, stderr)
	case "config":
		return runConfig(args, environ, stdout, stderr)
	case "check":
		return runCheck(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "vllm-worker", version)
		return nil
	case "help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return &exitError{code: 2, msg: fmt.Sprintf("unknown command %q", cmd)}
	}
}

// loadConfig loads the configuration, printing one line per bad variable.
func loadConfig(environ []string, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Load(environ)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, "invalid configuration:")
			for _, p := range ce.Problems {
				fmt.Fprintln(stderr, "  "+p)
			}
			return nil, &exitError{code: 2, msg: fmt.Sprintf("%d invalid configuration variable(s)", len(ce.Problems))}
		}
		return nil, &exitError{code: 2, msg: err.Error()}
	}
	return cfg, nil
}
