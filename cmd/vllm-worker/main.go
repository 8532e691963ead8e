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
	"runtime/debug"
	"syscall"
)

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vllm-worker:", err)
	}
	os.Exit(exitCode(err))
}

// The worker's garbage collector trades memory for CPU: on a GPU box it shares
// the cores with vLLM's API server, which is CPU-bound, while a few tens of MB
// more are nothing next to the engine's. GOGC=400 collects a quarter as often
// as Go's default (measured: about 6% less CPU per relayed request), and a
// soft limit of 64 MiB makes the collector work harder as the heap nears it,
// so that a burst of garbage (huge refused bodies, 1,000 streams) costs no
// more memory than with Go's default. Go's own
// GOGC and GOMEMLIMIT variables, when set, win.
const (
	defaultGOGC     = 400
	defaultMemLimit = 64 << 20
)

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemLimit)
	}
}
