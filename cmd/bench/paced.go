package main

import (
	"context"
	"fmt"
	"time"
)

// pacedPhase measures time to first token and the per-event gap of paced streams
// on every path: streamConc concurrent clients with staggered starts, in
// interleaved rounds, each path warmed up with short streams first.
func (b *bench) pacedPhase(ctx context.Context) error {
	body, warmBody := streamBody(model, deltas), streamBody(model, 2)
	ttft := map[string][]time.Duration{}
	jitter := map[string][]time.Duration{}
	for r := range b.p.streamRounds {
		for _, t := range rotate(b.paced, r) {
			all, err := quiet(b, fmt.Sprintf("stream round %d %s", r+1, t.name), func() ([]streamStats, error) {
				if _, err := pacedRound(ctx, b.client, t.url, warmBody, 2, b.p.streamConc, 2); err != nil {
					return nil, fmt.Errorf("warm-up: %w", err)
				}
				return pacedRound(ctx, b.client, t.url, body, deltas, b.p.streamConc, b.p.streamPer)
			})
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			var rt, rj []time.Duration
			for _, st := range all {
				rt = append(rt, st.ttft)
				for _, g := range st.gaps {
					rj = append(rj, (g - pace).Abs())
				}
			}
			ttft[t.name] = append(ttft[t.name], rt...)
			jitter[t.name] = append(jitter[t.name], rj...)
			dt, dj := newDist(rt), newDist(rj)
			b.logf("   round %d %-6s TTFT p50 %-8v p99 %-8v |gap-%v| p50 %-8v p99 %-8v (%d streams)", r+1, t.name,
				dt.pct(50), dt.pct(99), pace, dj.pct(50), dj.pct(99), len(all))
		}
	}
	for name := range ttft {
		b.res.ttft[name] = newDist(ttft[name])
		b.res.jitter[name] = newDist(jitter[name])
	}
	return nil
}

// heldPhase steps the number of concurrent paced streams up on every path until
// one stalls or fails, then reads the peak RSS of the worker and of nginx's
// worker process. Before each step, n short streams at once open the n client
// connections and the proxy's n upstream ones, so that the step measures
// holding streams, not a storm of TCP handshakes.
func (b *bench) heldPhase(ctx context.Context) error {
	body, warmBody := streamBody(model, deltas), streamBody(model, 2)
	stopped := map[string]bool{}
	for i, n := range b.p.heldSteps {
		for _, t := range rotate(b.paced, i) {
			if stopped[t.name] {
				continue
			}
			h, err := quiet(b, fmt.Sprintf("%d streams %s", n, t.name), func() (heldStep, error) {
				if _, err := pacedRound(ctx, b.client, t.url, warmBody, 2, n, 1); err != nil {
					return heldStep{}, fmt.Errorf("%s warm-up: %w", t.name, err)
				}
				pid := b.proxyPID(t.name)
				cpu0 := procCPU(pid)
				h := holdStreams(ctx, b.client, t.url, body, n, b.p.heldRamp)
				if pid != 0 {
					h.cpu = procCPU(pid) - cpu0
				}
				return h, ctx.Err()
			})
			if err != nil {
				return err
			}
			b.res.held[t.name] = append(b.res.held[t.name], h)
			msg := fmt.Sprintf("   %4d streams %-6s longest gap %-12v (before event %d) stalled %d (%d before the first event), failed %d, proxy CPU %v",
				n, t.name, h.worst, h.worstAt, h.stalled, h.stalledFirst, h.failed, h.cpu)
			if h.firstErr != nil {
				msg += fmt.Sprintf(" (first error: %v)", h.firstErr)
			}
			b.logf("%s", msg)
			stopped[t.name] = !h.held()
			time.Sleep(200 * time.Millisecond) // let the last streams' connections settle
		}
	}
	if rss, err := procKB(b.pacedWorker.pid(), "VmHWM"); err == nil {
		b.res.peakRSS[pathWorker] = rss
	}
	if b.nginx != nil {
		for _, pid := range childPIDs(b.nginx.pid()) {
			if rss, err := procKB(pid, "VmHWM"); err == nil {
				b.res.peakRSS[pathNginx] = max(b.res.peakRSS[pathNginx], rss)
			}
		}
	}
	return nil
}

// proxyPID is the process that does a path's proxying work: the paced worker,
// or nginx's worker process; 0 for direct.
func (b *bench) proxyPID(path string) int {
	switch {
	case path == pathWorker:
		return b.pacedWorker.pid()
	case path == pathNginx && b.nginx != nil:
		if kids := childPIDs(b.nginx.pid()); len(kids) > 0 {
			return kids[0]
		}
	}
	return 0
}
