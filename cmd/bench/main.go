// Command bench measures what vllm-worker adds in front of an engine. In one run
// it starts the simulated engine (zero latency, and paced at 20 ms a token), the
// worker with ENGINE_URL pointing at it, and nginx as the reference reverse
// proxy, and drives all three paths (direct, worker, nginx) with one in-process
// load generator (and, for throughput, wrk as a second one): non-streaming
// latency at concurrency 1, throughput and the proxy's CPU time per request at 64,
// paced streams (time to first token, per-event gap, concurrent streams held),
// the worker's start-up time and its RSS; and handler mode against a fake
// RunPod queue whose POSTs are slow, streamed jobs against plain ones. It prints one markdown table and can
// write it into docs/benchmarks.md.
//
// It sends traffic only to 127.0.0.1, bounds every loop in count and time, and
// stops every process it started. It is a tool, not a test: nothing here runs
// under go test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == floorArg {
		if len(os.Args) != 4 {
			fmt.Fprintf(os.Stderr, "usage: bench %s <host:port> <engine URL>\n", floorArg)
			os.Exit(2)
		}
		if err := serveFloor(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "bench: Go floor:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	out          string        // markdown file to update; "" = print only
	bin          string        // the worker binary (make build)
	nginx        string        // nginx binary; "" = look it up (and install it)
	wrk          string        // wrk binary; "" = look it up (and install it)
	installTools bool          // apt-get install nginx and wrk when they are missing
	perf         string        // perf.data path: record the worker during c=64
	quick        bool          // a short run, for trying the harness
	budget       time.Duration // the whole run's time limit
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.out, "out", "", "markdown file whose bench block is replaced by the results (e.g. docs/benchmarks.md)")
	fs.StringVar(&o.bin, "bin", "bin/vllm-worker", "the worker binary, built by make build")
	fs.StringVar(&o.nginx, "nginx", "", "nginx binary (default: from PATH or /usr/sbin, installed with apt-get when missing)")
	fs.StringVar(&o.wrk, "wrk", "", "wrk binary (default: from PATH, installed with apt-get when missing)")
	fs.BoolVar(&o.installTools, "install-tools", true, "apt-get install nginx-light and wrk when they are missing (needs root)")
	fs.StringVar(&o.perf, "perf", "", "write a perf.data of the worker during its first c=64 round (builds an unstripped worker; needs perf)")
	fs.BoolVar(&o.quick, "quick", false, "fewer and shorter rounds: for trying the harness, not for the doc")
	fs.DurationVar(&o.budget, "timeout", 4*time.Minute+30*time.Second, "time limit of the whole run")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

// plan is how much of each measurement to take.
type plan struct {
	latRounds, latN    int           // c=1: rounds, requests per path per round
	rpsRounds, rpsConc int           // c=64: rounds, concurrency
	rpsDur             time.Duration // c=64: measured time per path per round
	streamRounds       int           // paced streams: rounds
	streamConc         int           // paced streams: concurrent clients
	streamPer          int           // paced streams: streams per client per round
	heldSteps          []int         // concurrent streams, step by step
	heldRamp           time.Duration // the spread of a step's stream starts
	starts             int           // worker start-ups timed
	handlerRounds      int           // handler mode: rounds per RunPod latency
	warmN              int           // c=1 warm-up requests per path per round
	warmDur            time.Duration // c=64 warm-up per path per round
}

func newPlan(quick bool) plan {
	p := plan{
		latRounds: 6, latN: 3000, warmN: 200,
		rpsRounds: 3, rpsConc: 64, rpsDur: 2 * time.Second, warmDur: 300 * time.Millisecond,
		streamRounds: 3, streamConc: 48, streamPer: 3,
		heldSteps: []int{128, 256, 512, 1000}, heldRamp: time.Second,
		starts: 10, handlerRounds: 3,
	}
	if quick {
		p.latRounds, p.latN = 2, 500
		p.rpsRounds, p.rpsDur = 1, time.Second
		p.streamRounds, p.streamPer = 1, 1
		p.heldSteps = []int{128, 1000}
		p.starts = 3
		p.handlerRounds = 1
	}
	return p
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.budget)
	defer cancel()
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return fmt.Errorf("no worker binary at %s: run make build first", bin)
	}
	dir, err := os.MkdirTemp("", "vllm-worker-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	b := &bench{
		o: o, p: newPlan(o.quick), bin: bin, dir: dir, log: stderr,
		env: []string{"PATH=" + envValue(environ, "PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"), "HOME=" + dir},
		res: newResults(),
	}
	b.res.command = commandLine(args)
	b.res.machine = readMachine()
	b.res.machine.busy = cpuBusy(time.Second)
	defer b.stopAll()

	began := time.Now()
	if err := b.measure(ctx); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w (the run's -timeout is %v)", err, o.budget)
		}
		return err
	}
	b.res.took = time.Since(began)
	block := b.res.markdown()
	fmt.Fprintln(stdout, block)
	if o.out != "" {
		if err := writeBlock(o.out, block); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "bench: wrote", o.out)
	}
	if o.perf != "" {
		fmt.Fprintf(stderr, "bench: perf profile of the worker at c=%d in %s; read it with:\n  perf report -i %s --no-children --sort symbol\n",
			b.p.rpsConc, o.perf, o.perf)
	}
	return nil
}

// commandLine is how this run was invoked, for the report.
func commandLine(args []string) string {
	s := "go run ./cmd/bench"
	for _, a := range args {
		if strings.ContainsAny(a, " '\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		s += " " + a
	}
	return s
}

func envValue(environ []string, key, def string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key && v != "" {
			return v
		}
	}
	return def
}
