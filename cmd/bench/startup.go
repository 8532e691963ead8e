package main

import (
	"context"
	"fmt"
	"time"
)

// startupResult is the worker's start-up, over several fresh processes.
type startupResult struct {
	listen  []time.Duration // process start to the first accepted TCP connect
	ready   []time.Duration // process start to /ping answering 200
	idleRSS []int64         // VmRSS, bytes, once ready and settled
}

// settle is how long a ready worker is left alone before its idle RSS is read.
const settle = 300 * time.Millisecond

// measureStartup starts the worker n times against a running engine and times
// each start: fork/exec to listening, to ready; then reads its idle RSS.
func measureStartup(ctx context.Context, bin string, env func(port int) []string, n int) (startupResult, error) {
	var r startupResult
	for i := 0; i < n && ctx.Err() == nil; i++ {
		port, err := freePort()
		if err != nil {
			return r, err
		}
		t0 := time.Now()
		p, err := startProc(fmt.Sprintf("worker (start-up %d)", i+1), []string{bin}, env(port))
		if err != nil {
			return r, err
		}
		listening, err := waitTCP(ctx, p, loopback(port), 5*time.Second)
		if err != nil {
			p.stop()
			return r, err
		}
		ready, err := waitOK(ctx, p, "http://"+loopback(port)+"/ping", 5*time.Second)
		if err != nil {
			p.stop()
			return r, err
		}
		time.Sleep(settle)
		rss, err := procKB(p.pid(), "VmRSS")
		p.stop()
		if err != nil {
			return r, err
		}
		r.listen = append(r.listen, listening.Sub(t0))
		r.ready = append(r.ready, ready.Sub(t0))
		r.idleRSS = append(r.idleRSS, rss)
	}
	return r, ctx.Err()
}

// startupPhase times fresh worker processes against the zero-latency engine.
func (b *bench) startupPhase(ctx context.Context) error {
	env := func(port int) []string { return b.workerEnv(b.zeroEngineURL, port) }
	r, err := measureStartup(ctx, b.bin, env, b.p.starts)
	if err != nil {
		return err
	}
	b.res.startup = r
	b.logf("   listening after %v (median of %d), ready after %v, idle RSS %s",
		median(r.listen), len(r.listen), median(r.ready), fmtMB(median(r.idleRSS)))
	return nil
}
