package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// The test binary doubles as a fake engine: Start runs it again with these variables set.
const (
	childModeEnv   = "SUPERVISOR_TEST_CHILD"      // ok, die-during-start, ignore-sigterm, slow-start
	childPortEnv   = "SUPERVISOR_TEST_PORT"       // where to answer /health
	grandchildEnv  = "SUPERVISOR_TEST_GRANDCHILD" // "1": start `sleep 300` in the same group
	grandchildNote = "grandchild pid="
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(fakeEngine(mode))
	}
	goleak.VerifyTestMain(m)
}

// fakeEngine prints what vLLM prints while it starts, then behaves as mode says.
func fakeEngine(mode string) int {
	if mode == "ignore-sigterm" {
		signal.Ignore(syscall.SIGTERM) // inherited by the grandchild too
	}
	if os.Getenv(grandchildEnv) == "1" {
		gc := exec.Command("sleep", "300")
		gc.Stdout, gc.Stderr = os.Stdout, os.Stderr // like EngineCore, it holds our pipes
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "grandchild:", err)
			return 1
		}
		fmt.Printf("%s%d\n", grandchildNote, gc.Process.Pid)
	}
	fmt.Fprintln(os.Stderr, "INFO api_server.py:1 vLLM API server version 0.0.test")
	fmt.Fprintln(os.Stderr, "INFO Downloading model.safetensors from the hub")
	// A tqdm bar: one terminal line redrawn with '\r'.
	fmt.Fprint(os.Stderr, "\rLoading safetensors checkpoint shards:   0% Completed | 0/4")
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(os.Stderr, "\rLoading safetensors checkpoint shards: %3d%% Completed | %d/4", i*25, i)
	}
	fmt.Fprintln(os.Stderr)
	fmt.Fprintln(os.Stderr, "INFO Loading weights took 0.10 GB and 0.5 seconds")
	fmt.Fprintln(os.Stderr, "INFO Capturing CUDA graphs (mixed prefill-decode): 100%")

	switch mode {
	case "die-during-start":
		fmt.Fprintln(os.Stderr, "Traceback (most recent call last):")
		fmt.Fprintln(os.Stderr, "RuntimeError: Engine core initialization failed. See root cause above.")
		return 3
	case "slow-start":
		time.Sleep(time.Hour) // never ready; the test stops us
		return 0
	case "ok", "ignore-sigterm":
		time.Sleep(100 * time.Millisecond) // connection refused for a while, as while vLLM loads
		ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv(childPortEnv))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "INFO:     Application startup complete.")
		mux := http.NewServeMux()
		mux.HandleFunc("GET /health", func(http.ResponseWriter, *http.Request) {})
		return exitCode(http.Serve(ln, mux))
	}
	fmt.Fprintln(os.Stderr, "unknown mode", mode)
	return 2
}

func exitCode(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// fake describes one fake engine for a test.
type fake struct {
	mode       string
	grandchild bool
	opts       func(*Options) // adjusts the defaults below
}

// startFake starts the fake engine and stops it when the test ends.
func startFake(t *testing.T, f fake) (*Engine, *syncBuffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	logs := &syncBuffer{}
	o := Options{
		Argv: []string{exe},
		Env: []string{
			childModeEnv + "=" + f.mode,
			childPortEnv + "=" + strconv.Itoa(port),
			grandchildEnv + "=" + map[bool]string{true: "1", false: "0"}[f.grandchild],
			"PATH=" + os.Getenv("PATH"),
		},
		HealthURL:      fmt.Sprintf("http://127.0.0.1:%d/health", port),
		StartupTimeout: 30 * time.Second,
		StopGrace:      5 * time.Second,
		PollInterval:   20 * time.Millisecond,
		Logger:         zerolog.New(logs),
	}
	if f.opts != nil {
		f.opts(&o)
	}
	e, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Errorf("cleanup Stop: %v", err)
		}
		if t.Failed() {
			t.Logf("supervisor log:\n%s", logs.String())
		}
	})
	return e, logs
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// grandchildPID waits for the fake engine to announce its grandchild.
func grandchildPID(t *testing.T, e *Engine) int {
	t.Helper()
	pid := 0
	eventually(t, "the grandchild's pid", func() bool {
		for _, l := range e.LastLines() {
			if s, ok := strings.CutPrefix(l, grandchildNote); ok {
				pid, _ = strconv.Atoi(s)
				return pid > 0
			}
		}
		return false
	})
	return pid
}

// alive reports whether pid (negative: a process group) still exists, zombies included.
func alive(pid int) bool {
	return syscall.Kill(pid, 0) != syscall.ESRCH
}

// waitExited waits for e's child to be gone.
func waitExited(t *testing.T, e *Engine) {
	t.Helper()
	select {
	case <-e.Exited():
	case <-time.After(20 * time.Second):
		t.Fatal("engine did not exit")
	}
}

// syncBuffer is a log sink safe for the relays' concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
