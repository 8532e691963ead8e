package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vllm-worker/vllm-worker/config"
	"github.com/vllm-worker/vllm-worker/sim"
)

// runSim serves the simulated engine alone until ctx ends. Knobs come from flags,
// with the SIM_* environment as defaults.
func runSim(ctx context.Context, args, environ []string, stderr io.Writer) error {
	defaults, err := config.LoadSim(environ)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return &exitError{code: 2, msg: "invalid simulated-engine configuration"}
	}
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "listen host")
	port := fs.Int("port", 8000, "listen port")
	model := fs.String("model", "sim-model", "served model name")
	ttft := fs.Duration("ttft", defaults.TTFT, "time to first token (SIM_TTFT_MS)")
	itl := fs.Duration("itl", defaults.ITL, "inter-token latency (SIM_ITL_MS)")
	startup := fs.Duration("startup", defaults.StartupDelay, "refuse connections this long (SIM_STARTUP_MS)")
	maxSeqs := fs.Int("max-num-seqs", defaults.MaxNumSeqs, "concurrent sequences (SIM_MAX_NUM_SEQS)")
	maxLen := fs.Int("max-model-len", defaults.MaxModelLen, "context window (SIM_MAX_MODEL_LEN)")
	quirkList := fs.String("quirks", defaults.Quirks, "behave like other OpenAI-compatible servers: comma-separated "+
		strings.Join(config.SimQuirks(), ", ")+" (SIM_QUIRKS)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	quirks, err := sim.ParseQuirks(*quirkList)
	if err != nil {
		fmt.Fprintln(stderr, "sim: --quirks:", err)
		return &exitError{code: 2, msg: "invalid --quirks"}
	}
	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	fmt.Fprintf(stderr, "sim: simulated vLLM engine for model %q, starting (startup delay %v)\n", *model, *startup)
	if len(quirks) > 0 {
		fmt.Fprintf(stderr, "sim: quirks %v: behaving unlike vLLM on purpose\n", quirks)
	}
	if code := defaults.StartupExit; code != 0 {
		// Fault injection: fail the way vLLM fails to start (e.g. out of memory).
		fmt.Fprintf(stderr, "sim: Loading weights for %q\n", *model)
		fmt.Fprintf(stderr, "sim: RuntimeError: Engine core initialization failed (SIM_STARTUP_EXIT=%d)\n", code)
		return &exitError{code: code, msg: "simulated start-up failure"}
	}
	err = sim.Serve(ctx, addr, sim.Options{
		Model:        *model,
		MaxModelLen:  *maxLen,
		TTFT:         *ttft,
		ITL:          *itl,
		StartupDelay: *startup,
		MaxNumSeqs:   *maxSeqs,
		Quirks:       quirks,
		Exit:         os.Exit,
	}, func(a net.Addr) {
		fmt.Fprintf(stderr, "sim: Application startup complete. Listening on http://%s\n", a)
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("sim: %w", err)
	}
	fmt.Fprintf(stderr, "sim: shut down at %s\n", time.Now().Format(time.RFC3339))
	return nil
}
