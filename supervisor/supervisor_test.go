package supervisor

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestReadyAndStopEndsWholeGroup(t *testing.T) {
	t.Parallel()
	e, _ := startFake(t, fake{mode: "ok", grandchild: true})
	gc := grandchildPID(t, e)

	if err := e.WaitReady(context.Background()); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if phase, _ := e.Phase(); phase != PhaseReady {
		t.Errorf("Phase() = %q; want %q", phase, PhaseReady)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-e.Exited():
	default:
		t.Fatal("Exited not closed after Stop returned")
	}
	if err := e.Err(); err != nil {
		t.Errorf("Err() after Stop = %v; want nil", err)
	}
	for _, pid := range []int{e.PID(), gc, -e.PID()} {
		if alive(pid) {
			t.Errorf("pid %d still exists after Stop", pid)
		}
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestRelayKeepsLinesAndProgressBars(t *testing.T) {
	t.Parallel()
	e, logs := startFake(t, fake{mode: "ok"})
	if err := e.WaitReady(context.Background()); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	eventually(t, "the startup line", func() bool {
		return strings.Contains(strings.Join(e.LastLines(), "\n"), "Application startup complete")
	})
	lines := e.LastLines()
	var bar []string
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			t.Errorf("kept line %q holds a line break", l)
		}
		if strings.Contains(l, "checkpoint shards") {
			bar = append(bar, l)
		}
	}
	// The first redraw is shown at once, the rest only as the final state.
	if len(bar) != 2 || !strings.Contains(bar[0], "0/4") || !strings.Contains(bar[1], "100%") {
		t.Errorf("progress bar lines = %q; want its first and final state", bar)
	}
	if !strings.Contains(logs.String(), `"component":"engine","stream":"stderr","message":"INFO Loading weights took`) {
		t.Errorf("engine line not relayed with component and stream:\n%s", logs.String())
	}
}

func TestPhasesFromOutput(t *testing.T) {
	t.Parallel()
	e, logs := startFake(t, fake{mode: "slow-start"})
	eventually(t, "phase compiling", func() bool {
		p, _ := e.Phase()
		return p == PhaseCompiling
	})
	for _, p := range []string{PhaseDownloading, PhaseLoadingWeights, PhaseCompiling} {
		if !strings.Contains(logs.String(), `"phase":"`+p+`"`) {
			t.Errorf("phase %q never logged", p)
		}
	}
}

func TestDieDuringStart(t *testing.T) {
	t.Parallel()
	e, _ := startFake(t, fake{mode: "die-during-start", grandchild: true})
	err := e.WaitReady(context.Background())
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("WaitReady = %v; want *ExitError", err)
	}
	if ee.Code != 3 || ee.Status != "exit status 3" {
		t.Errorf("exit = %q (code %d); want exit status 3", ee.Status, ee.Code)
	}
	for _, want := range []string{"exit status 3", "Engine core initialization failed", "Capturing CUDA graphs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if got := e.Err(); got != error(ee) {
		t.Errorf("Err() = %v; want the same *ExitError", got)
	}
	// The orphaned grandchild was stopped with the group.
	if gc := grandchildPID(t, e); alive(gc) {
		t.Errorf("grandchild %d outlived its parent", gc)
	}
}

func TestKilledAfterReady(t *testing.T) {
	t.Parallel()
	e, _ := startFake(t, fake{mode: "ok", grandchild: true})
	gc := grandchildPID(t, e)
	if err := e.WaitReady(context.Background()); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if err := syscall.Kill(e.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExited(t, e)
	var ee *ExitError
	if err := e.Err(); !errors.As(err, &ee) || ee.Status != "signal: killed" || ee.Code != -1 {
		t.Fatalf("Err() = %#v; want *ExitError signal: killed", err)
	}
	if alive(gc) || alive(-e.PID()) {
		t.Errorf("processes of the group survive the engine's death")
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	e, logs := startFake(t, fake{mode: "ignore-sigterm", grandchild: true, opts: func(o *Options) { o.StopGrace = grace }})
	gc := grandchildPID(t, e)
	if err := e.WaitReady(context.Background()); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	start := time.Now()
	if err := e.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(start); took < grace {
		t.Errorf("Stop took %v; want at least the grace %v", took, grace)
	}
	if !strings.Contains(logs.String(), "ignored SIGTERM") {
		t.Error("no SIGKILL escalation logged")
	}
	if alive(e.PID()) || alive(gc) || alive(-e.PID()) {
		t.Error("processes survive Stop")
	}
	if err := e.Err(); err != nil {
		t.Errorf("Err() after Stop = %v; want nil", err)
	}
}

func TestStopDuringStartup(t *testing.T) {
	t.Parallel()
	e, _ := startFake(t, fake{mode: "slow-start", grandchild: true})
	gc := grandchildPID(t, e)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if alive(e.PID()) || alive(gc) {
		t.Error("processes survive Stop")
	}
	var ee *ExitError
	if err := e.WaitReady(context.Background()); !errors.As(err, &ee) {
		t.Errorf("WaitReady after Stop = %v; want *ExitError", err)
	}
}

func TestStartupTimeout(t *testing.T) {
	t.Parallel()
	e, _ := startFake(t, fake{mode: "slow-start", opts: func(o *Options) { o.StartupTimeout = 500 * time.Millisecond }})
	err := e.WaitReady(context.Background())
	if !errors.Is(err, ErrStartupTimeout) {
		t.Fatalf("WaitReady = %v; want ErrStartupTimeout", err)
	}
	if !strings.Contains(err.Error(), "Loading weights took") {
		t.Errorf("error %q lacks the last output", err)
	}
}

func TestWaitReadyCancelled(t *testing.T) {
	t.Parallel()
	e, _ := startFake(t, fake{mode: "slow-start"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.WaitReady(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitReady = %v; want context.Canceled", err)
	}
}

func TestStallWarning(t *testing.T) {
	t.Parallel()
	_, logs := startFake(t, fake{mode: "slow-start", opts: func(o *Options) { o.StallTimeout = 200 * time.Millisecond }})
	eventually(t, "a stall warning", func() bool { return strings.Contains(logs.String(), "may be stuck") })
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"no argv", Options{HealthURL: "http://127.0.0.1:1/health"}},
		{"no health URL", Options{Argv: []string{"true"}}},
		{"not found", Options{Argv: []string{"no-such-engine-binary"}, Env: []string{"PATH=/nonexistent"}, HealthURL: "http://127.0.0.1:1/health"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if e, err := Start(context.Background(), tc.o); err == nil {
				e.Stop(context.Background())
				t.Error("Start succeeded; want an error")
			}
		})
	}
}

func TestLookPathUsesChildPATH(t *testing.T) {
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep in PATH")
	}
	dir := sleep[:strings.LastIndex(sleep, "/")]
	if got, err := lookPath("sleep", []string{"PATH=relative:" + dir}); err != nil || got != dir+"/sleep" {
		t.Errorf("lookPath = %q, %v; want %q", got, err, dir+"/sleep")
	}
	if _, err := lookPath("sleep", []string{"PATH=/nonexistent"}); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("lookPath with a PATH lacking it = %v; want ErrNotFound", err)
	}
}

// TestWatch: the engine counts as down after the given number of failed checks in
// a row, and as up again on the first good one; the watch ends with its context.
func TestWatch(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	reports := make(chan bool, 8)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, srv.URL, 10*time.Millisecond, 2, nil, func(up bool, err error) {
			if up != (err == nil) {
				t.Errorf("report(%v, %v): healthy and err disagree", up, err)
			}
			reports <- up
		})
	}()
	healthy.Store(false)
	if up := <-reports; up {
		t.Fatal("first report says up; want down")
	}
	healthy.Store(true)
	if up := <-reports; !up {
		t.Fatal("second report says down; want up")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not end with its context")
	}
	if len(reports) != 0 {
		t.Errorf("%d more reports; want none (down and up are reported once each)", len(reports))
	}
}
