package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// model is the served model name of the simulated engines.
const model = "m"

// bench is one run: the processes it started, the paths to measure, the results.
type bench struct {
	o   options
	p   plan
	bin string   // the worker binary under test
	dir string   // scratch directory (nginx config, BASE_PATH)
	env []string // the base environment of every child: PATH and HOME only
	log io.Writer
	res *results

	procs  []*proc
	client *http.Client

	zeroEngineURL string   // the zero-latency engine's root URL
	zero          []target // paths to the zero-latency engine
	paced         []target // paths to the paced engine
	zeroWorker    *proc    // the worker under c=1 and c=64 load
	wrk           string   // the wrk binary; "" when there is none
	pacedWorker   *proc    // the worker under the paced streams
	nginx         *proc
	floor         *proc // the Go floor in front of the zero-latency engine
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// stopAll stops every child, the last started first.
func (b *bench) stopAll() {
	for _, p := range slices.Backward(b.procs) {
		p.stop()
	}
}

// measure runs every phase, on a quiet machine first (start-up), then under load.
func (b *bench) measure(ctx context.Context) error {
	if err := b.setUp(ctx); err != nil {
		return err
	}
	phases := []struct {
		name string
		run  func(context.Context) error
	}{
		{"start-up", b.startupPhase},
		{"non-streaming, c=1", b.latencyPhase},
		{"non-streaming, c=64", b.throughputPhase},
		{"non-streaming, c=64, wrk", b.wrkPhase},
		{"paced streams", b.pacedPhase},
		{"streams held", b.heldPhase},
		{"handler mode", b.handlerPhase},
	}
	for _, ph := range phases {
		began := time.Now()
		b.logf("== %s", ph.name)
		if err := ph.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", ph.name, err)
		}
		if err := b.checkAlive(); err != nil {
			return fmt.Errorf("%s: %w", ph.name, err)
		}
		b.logf("   %s took %v", ph.name, time.Since(began).Round(100*time.Millisecond))
	}
	return nil
}

// checkAlive fails when a child died: a figure measured on a dead path is void.
func (b *bench) checkAlive() error {
	for _, p := range b.procs {
		if !p.alive() {
			return p.failure("exited during the run")
		}
	}
	return nil
}

// setUp starts the two engines, nginx in front of both (when there is one), one
// worker in front of each engine and the Go floor in front of the zero-latency one.
func (b *bench) setUp(ctx context.Context) error {
	b.client = newClient(2 * b.p.heldSteps[len(b.p.heldSteps)-1])
	zeroURL, err := b.startEngine(ctx, "engine (zero latency)", 0)
	if err != nil {
		return err
	}
	pacedURL, err := b.startEngine(ctx, "engine (paced)", pace)
	if err != nil {
		return err
	}
	b.zeroEngineURL = zeroURL
	b.zero = []target{{pathDirect, zeroURL + "/v1/chat/completions"}}
	b.paced = []target{{pathDirect, pacedURL + "/v1/chat/completions"}}

	zeroBin := b.bin
	if b.o.perf != "" {
		b.logf("building an unstripped worker for perf")
		if zeroBin, err = buildSymbolized(ctx, b.dir); err != nil {
			return err
		}
	}
	b.zeroWorker, err = b.startWorker(ctx, "worker (zero latency)", zeroBin, zeroURL)
	if err != nil {
		return err
	}
	b.pacedWorker, err = b.startWorker(ctx, "worker (paced)", b.bin, pacedURL)
	if err != nil {
		return err
	}
	b.zero = append(b.zero, target{pathWorker, workerURL(b.zeroWorker)})
	b.paced = append(b.paced, target{pathWorker, workerURL(b.pacedWorker)})

	if err := b.startFloor(ctx, zeroURL); err != nil {
		b.res.floorNote = "the Go floor failed to start: " + err.Error()
		b.logf("running without the Go floor: %v", err)
	}

	b.wrk, b.res.wrkNote = findTool(ctx, "wrk", b.o.wrk, b.o.installTools, []string{"wrk"}, lookWrk, b.log)
	if b.wrk == "" {
		b.logf("running without wrk: %s", b.res.wrkNote)
	}
	nginxBin, note := findNginx(ctx, b.o.nginx, b.o.installTools, b.log)
	if nginxBin == "" {
		b.res.nginxNote = note
		b.logf("running without nginx: %s", note)
		return nil
	}
	b.res.machine.nginx = nginxVersion(nginxBin)
	if err := b.startNginx(ctx, nginxBin, zeroURL, pacedURL); err != nil {
		b.res.nginxNote = "nginx failed to start: " + err.Error()
		b.logf("running without nginx: %v", err)
	}
	return nil
}

// startEngine runs `vllm-worker sim` with no admission bound and waits for /health.
func (b *bench) startEngine(ctx context.Context, name string, itl time.Duration) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	argv := []string{b.bin, "sim", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--model", model,
		"--ttft", "0", "--itl", itl.String(), "--max-num-seqs", "0"}
	p, err := startProc(name, argv, b.env)
	if err != nil {
		return "", err
	}
	b.procs = append(b.procs, p)
	url := "http://" + loopback(port)
	if _, err := waitOK(ctx, p, url+"/health", 10*time.Second); err != nil {
		return "", err
	}
	return url, nil
}

// workerEnv is the worker's whole environment in front of engineURL: quiet
// access log, every SSE event flushed on its own (DEFAULT_BATCH_SIZE=1), and
// MAX_CONCURRENCY above the largest stream step: its default of 100 is an
// overload limit that would queue streams 101 and up by design.
func (b *bench) workerEnv(engineURL string, port int) []string {
	return append(slices.Clone(b.env),
		"ENGINE_URL="+engineURL, "MODEL_NAME="+model,
		"HOST=127.0.0.1", "PORT="+strconv.Itoa(port),
		"LOG_LEVEL=warn", "DEFAULT_BATCH_SIZE=1", "BASE_PATH="+b.dir,
		"MAX_CONCURRENCY="+strconv.Itoa(2*b.p.heldSteps[len(b.p.heldSteps)-1]))
}

// workerURL is the chat completions URL of a worker started by startWorker.
func workerURL(p *proc) string {
	return "http://" + loopback(p.port) + "/v1/chat/completions"
}

// startWorker runs the worker in front of engineURL and waits until /ping is 200.
func (b *bench) startWorker(ctx context.Context, name, bin, engineURL string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := startProc(name, []string{bin}, b.workerEnv(engineURL, port))
	if err != nil {
		return nil, err
	}
	p.port = port
	b.procs = append(b.procs, p)
	if _, err := waitOK(ctx, p, "http://"+loopback(port)+"/ping", 10*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// startNginx puts nginx in front of both engines.
func (b *bench) startNginx(ctx context.Context, bin, zeroURL, pacedURL string) error {
	zp, err := freePort()
	if err != nil {
		return err
	}
	pp, err := freePort()
	if err != nil {
		return err
	}
	hostport := func(url string) string { return url[len("http://"):] }
	sites := []nginxSite{
		{Name: "zero", Listen: loopback(zp), Upstream: hostport(zeroURL)},
		{Name: "paced", Listen: loopback(pp), Upstream: hostport(pacedURL)},
	}
	p, err := startNginx(ctx, bin, b.dir, sites, b.env)
	if err != nil {
		return err
	}
	b.procs = append(b.procs, p)
	b.nginx = p
	b.zero = append(b.zero, target{pathNginx, "http://" + loopback(zp) + "/v1/chat/completions"})
	b.paced = append(b.paced, target{pathNginx, "http://" + loopback(pp) + "/v1/chat/completions"})
	return nil
}
