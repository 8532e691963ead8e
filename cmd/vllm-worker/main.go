// Command vllm-worker turns a GPU box into an OpenAI-compatible LLM endpoint: it
// supervises vLLM's OpenAI server as a child process on loopback and serves the
// OpenAI API, RunPod's endpoint API and RunPod's serverless handler mode over it.
//
// Sub-commands: serve (the default), sim (the simulated engine alone), config
// (print the effective configuration and the engine command line), check
// (exercise a running worker or RunPod endpoint as its users do, or vet an
// OpenAI-compatible engine for what the worker relies on).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vllm-worker:", err)
	}
	os.Exit(exitCode(err))
}
