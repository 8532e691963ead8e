package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain lets the test binary stand in for the vllm-worker binary: with
// VLLM_WORKER_TEST_MAIN=1 it runs main, so the worker under test can start
// "<test binary> sim ..." as its engine child, and tests can run a whole worker
// as a real process.
func TestMain(m *testing.M) {
	if os.Getenv("VLLM_WORKER_TEST_MAIN") == "1" {
		main()
		return
	}
	code := m.Run()
	if code == 0 {
		// Every worker the tests ran through run() has stopped: none of its
		// goroutines may be left. The tests' own HTTP clients may keep idle
		// connections; close them first.
		http.DefaultClient.CloseIdleConnections()
		if err := goleak.Find(goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop")); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// logSink collects a worker's log output and lets tests wait for a line.
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitLine returns the first JSON log line for which match is true.
func (s *logSink) waitLine(t *testing.T, timeout time.Duration, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		text, changed := s.buf.String(), s.changed
		s.mu.Unlock()
		sc := bufio.NewScanner(strings.NewReader(text))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && match(line) {
				return line
			}
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no matching log line within %v; log:\n%s", timeout, text)
		}
	}
}

// testWorker is a worker started through run, with the simulated engine as a real
// child process.
type testWorker struct {
	URL    string // http://127.0.0.1:PORT
	Log    *logSink
	cancel context.CancelFunc
	done   chan error
}

const testModel = "test-model"

// baseEnv is the environment of every test worker.
func baseEnv(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"VLLM_WORKER_TEST_MAIN=1",
		"MODEL_NAME=" + testModel,
		"ENGINE=sim",
		"HOST=127.0.0.1",
		"PORT=0",
		"LOG_FORMAT=json",
		"LOG_LEVEL=debug",
		"BASE_PATH=" + os.TempDir(),
	}
	return append(env, extra...)
}

// startWorker runs a worker in-process and waits until it is ready.
func startWorker(t *testing.T, extraEnv ...string) *testWorker {
	t.Helper()
	w := startWorkerAsync(t, extraEnv...)
	waitReady(t, w.URL, 30*time.Second, w.Log)
	return w
}

// startWorkerAsync runs a worker in-process and returns once it listens.
func startWorkerAsync(t *testing.T, extraEnv ...string) *testWorker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &testWorker{Log: newLogSink(), cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- run(ctx, nil, baseEnv(extraEnv...), w.Log, w.Log) }()
	t.Cleanup(func() { w.stop(t) })
	line := w.Log.waitLine(t, 20*time.Second, func(l map[string]any) bool {
		return l["message"] == "listening" && l["listener"] == "api"
	})
	w.URL = listenURL(line)
	return w
}

// listenURL is the URL of a "listening" log line: https with TLS_CERT_FILE.
func listenURL(line map[string]any) string {
	return line["scheme"].(string) + "://" + line["addr"].(string)
}

// wait waits for the worker to exit by itself and returns run's error.
func (w *testWorker) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-w.done:
		w.cancel()
		w.cancel = nil // stopped: nothing left for the cleanup to check
		return err
	case <-time.After(timeout):
		t.Fatalf("worker did not exit within %v; log:\n%s", timeout, w.Log)
		return nil
	}
}

// stop cancels the worker and checks that it shut down cleanly.
func (w *testWorker) stop(t *testing.T) {
	t.Helper()
	if w.cancel == nil {
		return
	}
	w.cancel()
	w.cancel = nil
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("worker exited with %v; log:\n%s", err, w.Log)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("worker did not stop within 30s; log:\n%s", w.Log)
	}
}

func waitReady(t *testing.T, url string, timeout time.Duration, log interface{ String() string }) {
	t.Helper()
	waitReadyWith(t, http.DefaultClient, url, timeout, log)
}

// waitReadyWith polls url's /health with client until it answers 200.
func waitReadyWith(t *testing.T, client *http.Client, url string, timeout time.Duration, log interface{ String() string }) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker not ready within %v (last: %v); log:\n%s", timeout, err, log.String())
		}
		time.Sleep(20 * time.Millisecond) // polling for readiness, not synchronising
	}
}

// workerProcess is a worker run as a real process: the test binary as main.
type workerProcess struct {
	cmd *exec.Cmd
	Log *logSink
}

// startProcess starts a worker process with env and returns once it listens.
// It is killed when the test ends, if it still runs.
func startProcess(t *testing.T, env []string) (*workerProcess, string) {
	t.Helper()
	p := &workerProcess{cmd: exec.Command(os.Args[0]), Log: newLogSink()}
	p.cmd.Env = env
	p.cmd.Stderr = p.Log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	line := p.Log.waitLine(t, 20*time.Second, func(l map[string]any) bool { return l["message"] == "listening" })
	return p, listenURL(line)
}

// terminate sends SIGTERM and returns the process's exit error.
func (p *workerProcess) terminate(t *testing.T, timeout time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		t.Fatalf("worker did not exit within %v of SIGTERM; log:\n%s", timeout, p.Log)
		return nil
	}
}

// plainBinary builds the worker once per test run without the race detector,
// for tests that measure its memory: a race-instrumented process uses several
// times as much.
var plainBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "vllm-worker-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vllm-worker")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// startPlainProcess runs the plainBinary worker with env (its engine is the
// same binary's sim) and returns once it is ready.
func startPlainProcess(t *testing.T, env []string) (*workerProcess, string) {
	t.Helper()
	bin, err := plainBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := &workerProcess{cmd: exec.Command(bin), Log: newLogSink()}
	p.cmd.Env = env
	p.cmd.Stderr = p.Log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	})
	line := p.Log.waitLine(t, 20*time.Second, func(l map[string]any) bool { return l["message"] == "listening" })
	url := listenURL(line)
	waitReady(t, url, 30*time.Second, p.Log)
	return p, url
}

// rssMB is a process's resident set size in MB (from /proc).
func rssMB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return float64(kb) / 1024
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
