package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrk is the second load generator of the c=64 round (Debian's wrk, a C event
// loop with one thread): requests/s must not depend on who measures, and the
// bench's own Go generator shares the two cores with what it measures in its
// own way.

func lookWrk() string {
	if p, err := exec.LookPath("wrk"); err == nil {
		return p
	}
	return ""
}

// wrkScript makes wrk POST the chat body with its content type.
func wrkScript(dir string, body []byte) (string, error) {
	path := filepath.Join(dir, "chat.lua")
	script := fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", body)
	return path, os.WriteFile(path, []byte(script), 0o644)
}

var (
	wrkRate     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`([0-9]+) requests in`)
	wrkErrors   = regexp.MustCompile(`Non-2xx or 3xx responses: ([0-9]+)|Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
)

// runWrk drives url with conc connections on one thread for dur and returns
// its requests/s and the requests it completed; any error answer fails the round.
func runWrk(ctx context.Context, bin, script, url string, conc int, dur time.Duration) (float64, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, dur+20*time.Second)
	defer cancel()
	secs := strconv.Itoa(max(1, int(dur.Round(time.Second)/time.Second)))
	out, err := exec.CommandContext(ctx, bin, "-t1", "-c"+strconv.Itoa(conc), "-d"+secs+"s", "--timeout", "10s", "-s", script, url).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %v: %s", err, lastLine(string(out)))
	}
	if m := wrkErrors.FindString(string(out)); m != "" {
		return 0, 0, fmt.Errorf("wrk saw errors: %s", m)
	}
	rate, n := wrkRate.FindStringSubmatch(string(out)), wrkRequests.FindStringSubmatch(string(out))
	if rate == nil || n == nil {
		return 0, 0, fmt.Errorf("wrk printed no rate: %s", strings.TrimSpace(string(out)))
	}
	rps, err1 := strconv.ParseFloat(rate[1], 64)
	count, err2 := strconv.ParseInt(n[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("wrk output: %s", strings.TrimSpace(string(out)))
	}
	return rps, count, nil
}

// wrkPhase measures requests/s at c=64 with wrk on every path, in interleaved
// rounds as the Go generator's, and the proxy's CPU time per request.
func (b *bench) wrkPhase(ctx context.Context) error {
	if b.wrk == "" {
		return nil
	}
	script, err := wrkScript(b.dir, chatBody())
	if err != nil {
		return err
	}
	warm := func(t target) error {
		_, _, err := runWrk(ctx, b.wrk, script, t.url, b.p.rpsConc, time.Second)
		return err
	}
	return b.c64Rounds("wrk", b.res.wrkRPS, b.res.wrkCPU, warm, func(_ int, t target) (float64, int64, error) {
		return runWrk(ctx, b.wrk, script, t.url, b.p.rpsConc, b.p.rpsDur)
	})
}
