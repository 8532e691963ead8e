package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vllm-worker/vllm-worker/openai"
)

// TestSoak holds SOAK_STREAMS (1,000) concurrent streams against a worker for
// SOAK_SECONDS (60), each stream a chat completion of 50 tokens at 20 ms, and
// wants zero errors and the worker's memory back near its baseline afterwards.
// The worker runs as a real process (this test binary with
// VLLM_WORKER_TEST_MAIN=1) so that its RSS can be read from /proc. It is slow:
// it runs only with VLLM_WORKER_SOAK=1 and not in -short mode (make soak).
func TestSoak(t *testing.T) {
	if testing.Short() || os.Getenv("VLLM_WORKER_SOAK") != "1" {
		t.Skip("the soak test runs with VLLM_WORKER_SOAK=1 (make soak)")
	}
	streams := soakSetting(t, "SOAK_STREAMS", 1000)
	duration := time.Duration(soakSetting(t, "SOAK_SECONDS", 60)) * time.Second
	const tokens = 50

	// gctrace: the runtime prints the live heap after each collection, which tells
	// a leak from memory the runtime has not yet returned.
	proc, url := startProcess(t, baseEnv("SIM_ITL_MS=20", "MAX_CONCURRENCY=2000", "MAX_QUEUE=2000", "LOG_LEVEL=info", "GODEBUG=gctrace=1"))
	log, pid := proc.Log, proc.cmd.Process.Pid
	waitReady(t, url, 30*time.Second, log)

	tr := &http.Transport{MaxIdleConnsPerHost: streams, DisableCompression: true}
	client := &http.Client{Transport: tr}
	body := `{"model":"test-model","messages":[{"role":"user","content":"soak"}],"max_tokens":` + strconv.Itoa(tokens) + `,"stream":true}`
	// Warm up (pools, buffers, the engine's connection pool), then let the
	// worker settle and take its baseline.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 5 {
				_ = soakStream(context.Background(), client, url, body, tokens)
			}
		})
	}
	wg.Wait()
	tr.CloseIdleConnections()
	time.Sleep(5 * time.Second) // settling before the baseline; nothing to wait on
	base := procMem(t, pid)
	t.Logf("baseline: RSS %s, fds %d, threads %d", mib(base.rss), base.fds, base.threads)

	// The load: every client runs streams back to back until the deadline.
	var requests, failures, inflight atomic.Int64
	var firstErrs []string
	var errMu sync.Mutex
	deadline := time.Now().Add(duration)
	var peakRSS atomic.Int64
	var peakInflight atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // sample the worker's RSS and the streams in flight each second
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				if m, err := readProcMem(pid); err == nil && m.rss > peakRSS.Load() {
					peakRSS.Store(m.rss)
				}
				if n := inflight.Load(); n > peakInflight.Load() {
					peakInflight.Store(n)
				}
			}
		}
	}()
	start := time.Now()
	for i := range streams {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * time.Millisecond) // a one-second ramp, not a synchronisation
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				inflight.Add(1)
				err := soakStream(ctx, client, url, body, tokens)
				inflight.Add(-1)
				cancel()
				requests.Add(1)
				if err != nil {
					failures.Add(1)
					errMu.Lock()
					if len(firstErrs) < 10 {
						firstErrs = append(firstErrs, err.Error())
					}
					errMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(stopSampling)
	<-sampled
	loaded := procMem(t, pid)
	tr.CloseIdleConnections()

	// Afterwards: the worker should give its memory back. An idle Go process is
	// collected only every two minutes, and buffers parked in sync.Pools survive
	// one more collection, so allow up to five minutes.
	limit := base.rss + max(base.rss/2, 32<<20)
	after := loaded
	var settled time.Duration
	for quiet := time.Now(); ; time.Sleep(time.Second) {
		after = procMem(t, pid)
		settled = time.Since(quiet)
		if (after.rss <= limit && after.fds <= base.fds+10) || settled > 5*time.Minute {
			break
		}
	}
	t.Logf("soak: %d streams for %v: %d requests (%.0f/s), %d errors, peak %d in flight",
		streams, took.Round(time.Second), requests.Load(), float64(requests.Load())/took.Seconds(), failures.Load(), peakInflight.Load())
	t.Logf("worker RSS: baseline %s, peak %s (VmHWM %s), at the end of the load %s, after %v idle %s (limit %s)",
		mib(base.rss), mib(max(peakRSS.Load(), loaded.rss)), mib(after.hwm), mib(loaded.rss), settled.Round(time.Second), mib(after.rss), mib(limit))
	t.Logf("worker fds: baseline %d, end of load %d, after %d; threads: %d, %d, %d",
		base.fds, loaded.fds, after.fds, base.threads, loaded.threads, after.threads)
	t.Logf("worker live heap after each collection (MB): %s", liveHeaps(log.String()))
	if failures.Load() != 0 {
		t.Errorf("%d of %d streams failed; first errors:\n%s", failures.Load(), requests.Load(), strings.Join(firstErrs, "\n"))
	}
	if after.rss > limit {
		t.Errorf("worker RSS %s after %v idle; want it back near the baseline %s (at most %s)", mib(after.rss), settled.Round(time.Second), mib(base.rss), mib(limit))
	}
	if after.fds > base.fds+10 {
		t.Errorf("worker holds %d fds after the load; %d before: connections leak", after.fds, base.fds)
	}

	// The worker still serves, then stops cleanly on SIGTERM.
	if err := soakStream(context.Background(), client, url, body, tokens); err != nil {
		t.Errorf("a stream after the soak: %v", err)
	}
	if err := proc.terminate(t, 30*time.Second); err != nil {
		t.Errorf("worker exited with %v after the soak", err)
	}
}

// soakStream runs one streaming chat completion and checks it: 200, the wanted
// number of content events, no error event, [DONE] last.
func soakStream(ctx context.Context, c *http.Client, url, body string, tokens int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	events := openai.NewEventReader(resp.Body)
	content := 0
	for {
		ev, err := events.Next()
		if err != nil {
			return fmt.Errorf("after %d content events: %w", content, err)
		}
		if ev.Done() {
			break
		}
		if strings.HasPrefix(string(ev.Data), `{"error"`) {
			return errors.New("error event: " + string(ev.Data))
		}
		if strings.Contains(string(ev.Data), `"content":"`) && !strings.Contains(string(ev.Data), `"content":""`) {
			content++
		}
	}
	if content != tokens {
		return fmt.Errorf("%d content events; want %d", content, tokens)
	}
	return nil
}

// liveHeaps lists the live heap after each collection from gctrace lines
// ("gc 9 @147s 0%: ..., 136->136->110 MB, ...").
func liveHeaps(log string) string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "gc ") {
			continue
		}
		for _, f := range strings.Split(line, ", ") {
			if strings.HasSuffix(f, " MB") && strings.Count(f, "->") == 2 {
				at := strings.Fields(line)[2] // @147.207s
				out = append(out, f[strings.LastIndex(f, "->")+2:]+" "+at)
			}
		}
	}
	return strings.Join(out, " ")
}

func soakSetting(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// procMemory is a process's memory and resources from /proc.
type procMemory struct {
	rss, hwm int64 // bytes
	threads  int
	fds      int
}

func readProcMem(pid int) (procMemory, error) {
	var m procMemory
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.rss = n << 10
		case "VmHWM:":
			m.hwm = n << 10
		case "Threads:":
			m.threads = int(n)
		}
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return m, err
	}
	m.fds = len(fds)
	return m, nil
}

func procMem(t *testing.T, pid int) procMemory {
	t.Helper()
	m, err := readProcMem(pid)
	if err != nil {
		t.Fatalf("reading /proc/%d: %v", pid, err)
	}
	return m
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
