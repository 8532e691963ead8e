package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// enginePID reads the engine child's pid from the worker's log.
func enginePID(t *testing.T, log *logSink) int {
	t.Helper()
	line := log.waitLine(t, 10*time.Second, func(l map[string]any) bool { return l["message"] == "engine started" })
	return int(line["pid"].(float64))
}

// gone reports whether no process with pid exists any more.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !gone(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("engine process %d is still there", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEngineDiesDuringStartup: a child that exits before it is ready makes the
// worker exit non-zero with the child's exit status and last log lines.
func TestEngineDiesDuringStartup(t *testing.T) {
	w := startWorkerAsync(t, "SIM_STARTUP_EXIT=3")
	err := w.wait(t, 30*time.Second)
	if err == nil || exitCode(err) == 0 {
		t.Fatalf("run returned %v; want a non-zero exit", err)
	}
	for _, want := range []string{"exit status 3", "Engine core initialization failed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestEngineKilledAfterReady: the worker notices the engine's death, reports it
// and exits non-zero so the platform replaces it; a stream in flight ends with an
// in-band error and [DONE], never a silent cut.
func TestEngineKilledAfterReady(t *testing.T) {
	w := startWorker(t, "SIM_ITL_MS=20")
	pid := enginePID(t, w.Log)
	resp, err := http.Post(w.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x","max_tokens":500,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if first, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(first, "data: ") {
		t.Fatalf("first event: %q %v", first, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), `data: {"error":`) || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("stream in flight when the engine died ended with ...%q; want an error event and [DONE]", rest[max(0, len(rest)-200):])
	}
	err = w.wait(t, 30*time.Second)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "engine died") {
		t.Fatalf("run returned %v (exit %d); want engine died, exit 1", err, exitCode(err))
	}
	w.Log.waitLine(t, time.Second, func(l map[string]any) bool {
		return l["level"] == "error" && strings.Contains(l["message"].(string), "engine died")
	})
}

// TestStartupHealthAndPingPort: while the engine starts, /health is 503
// "starting" with a phase and /ping (on PORT_HEALTH) is 204; then 200 both.
func TestStartupHealthAndPingPort(t *testing.T) {
	healthPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	w := startWorkerAsync(t, "SIM_STARTUP_MS=1500", "PORT_HEALTH="+strconv.Itoa(healthPort))
	pingURL := "http://127.0.0.1:" + strconv.Itoa(healthPort) + "/ping"

	var ping *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ping, err = http.Get(pingURL); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health port never answered: %v", err)
		}
	}
	ping.Body.Close()
	resp, err := http.Get(w.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status  string
		Phase   string
		Elapsed *float64 `json:"elapsed_s"`
		Workers struct{ Initializing int }
	}
	_ = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if ping.StatusCode != http.StatusNoContent || resp.StatusCode != http.StatusServiceUnavailable ||
		h.Status != "starting" || h.Phase == "" || h.Elapsed == nil || h.Workers.Initializing != 1 {
		t.Fatalf("while starting: ping %d, health %d %+v; want 204 and 503 starting with a phase", ping.StatusCode, resp.StatusCode, h)
	}
	// A request while starting: 503 with Retry-After.
	resp, err = http.Post(w.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("request while starting: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	waitReady(t, w.URL, 30*time.Second, w.Log)
	if ping, err = http.Get(pingURL); err != nil || ping.StatusCode != http.StatusOK {
		t.Fatalf("ping after ready: %v %v; want 200", ping, err)
	}
	ping.Body.Close()
}

// TestSIGTERMDrainsAndStopsEverything runs the worker as a real process: a
// SIGTERM lets the stream in flight finish, stops the engine's whole process
// group and exits 0.
func TestSIGTERMDrainsAndStopsEverything(t *testing.T) {
	proc, url := startProcess(t, baseEnv("SIM_ITL_MS=20"))
	log := proc.Log
	waitReady(t, url, 30*time.Second, log)
	pid := enginePID(t, log)

	// A stream of 50 tokens at 20 ms: about a second, in flight during SIGTERM.
	resp, err := http.Post(url+"/v1/completions", "application/json",
		strings.NewReader(`{"prompt":"x","max_tokens":50,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "data: ") {
		t.Fatalf("first event: %q %v", first, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.terminate(t, 30*time.Second) }()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("the stream in flight was cut by SIGTERM (%v): ...%q", err, rest[max(0, len(rest)-60):])
	}
	if err := <-exited; err != nil {
		t.Errorf("worker exited with %v; want 0; log:\n%s", err, log)
	}
	waitGone(t, pid)
}

// TestEngineRestartOnFailure: with ENGINE_RESTART=on-failure a dead engine turns
// /health 503 at once, is restarted, and the worker serves again.
func TestEngineRestartOnFailure(t *testing.T) {
	w := startWorker(t, "ENGINE_RESTART=on-failure")
	pid := enginePID(t, w.Log)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w.Log.waitLine(t, 10*time.Second, func(l map[string]any) bool { return l["message"] == "engine down" })
	resp, err := http.Get(w.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("health right after the engine died: %d; want 503", resp.StatusCode)
	}
	w.Log.waitLine(t, 20*time.Second, func(l map[string]any) bool {
		return l["message"] == "starting engine" && l["attempt"] == float64(2)
	})
	waitReady(t, w.URL, 30*time.Second, w.Log)
	var res jobResult
	postJSON(t, w.URL+"/runsync", `{"input":{"prompt":"back again"}}`, &res)
	if res.Status != "COMPLETED" {
		t.Errorf("job after the restart: %s %s", res.Status, res.Error)
	}
}
