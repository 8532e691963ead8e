package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// buildSymbolized builds the worker without -s -w into dir, so perf can name its
// functions (bin/vllm-worker is stripped). The code is the same as make build's.
func buildSymbolized(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "vllm-worker-perf")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/vllm-worker")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the worker for perf: %w: %s", err, b)
	}
	return out, nil
}

// perfRecord attaches `perf record` (call graphs by frame pointer, which Go
// keeps) to pid, writing to out. stop ends the recording and waits for perf.
func perfRecord(pid int, out string) (stop func() error, err error) {
	bin, err := exec.LookPath("perf")
	if err != nil {
		return nil, fmt.Errorf("perf is not installed: %w", err)
	}
	cmd := exec.Command(bin, "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", out)
	var tl tail
	tl.max = 2 << 10
	cmd.Stdout, cmd.Stderr = &tl, &tl
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start perf: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// perf needs a moment to attach; samples before that are lost, not wrong.
	time.Sleep(200 * time.Millisecond)
	return func() error {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			// perf exits by the signal; what counts is the file it wrote.
			if st, serr := os.Stat(out); serr != nil || st.Size() == 0 {
				return fmt.Errorf("perf record wrote nothing (%v): %s", err, lastLine(tl.String()))
			}
			return nil
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			return fmt.Errorf("perf record did not stop")
		}
	}, nil
}
