package main

import (
	"context"
	"fmt"
	"time"
)

// chatBody is the non-streaming request: a short chat answered at once by the
// zero-latency engine (16 tokens, about 700 bytes of chat.completion JSON).
func chatBody() []byte {
	return fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":16}`, model)
}

// latencyPhase measures every path at concurrency 1, in interleaved rounds
// (the order rotates each round), each round warmed up first. The samples of
// all rounds are pooled per path.
func (b *bench) latencyPhase(ctx context.Context) error {
	body := chatBody()
	samples := map[string][]time.Duration{}
	for r := range b.p.latRounds {
		for _, t := range rotate(b.zero, r) {
			warm := b.p.warmN
			if r == 0 {
				warm *= 5 // the first round also fills caches and grows heaps
			}
			lat, err := quiet(b, fmt.Sprintf("c=1 round %d %s", r+1, t.name), func() ([]time.Duration, error) {
				if _, err := sequential(ctx, b.client, t.url, body, warm, 5*time.Second); err != nil {
					return nil, fmt.Errorf("warm-up: %w", err)
				}
				return sequential(ctx, b.client, t.url, body, b.p.latN, 10*time.Second)
			})
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			samples[t.name] = append(samples[t.name], lat...)
			d := newDist(lat)
			b.logf("   round %d %-6s p50 %-8v p90 %-8v p99 %-8v (%d requests)", r+1, t.name,
				d.pct(50), d.pct(90), d.pct(99), len(d))
		}
	}
	for name, s := range samples {
		b.res.lat[name] = newDist(s)
	}
	return nil
}

// throughputPhase measures requests/s of every path with rpsConc closed-loop
// clients, in interleaved rounds; the report takes each path's median round.
// With -perf, the worker's first round is recorded by perf.
func (b *bench) throughputPhase(ctx context.Context) error {
	body := chatBody()
	warm := func(t target) error {
		_, err := throughput(ctx, b.client, t.url, body, b.p.rpsConc, b.p.warmDur)
		return err
	}
	return b.c64Rounds("", b.res.rps, b.res.cpuReq, warm, func(r int, t target) (float64, int64, error) {
		if b.o.perf != "" && r == 0 && t.name == pathWorker {
			stop, err := perfRecord(b.zeroWorker.pid(), b.o.perf)
			if err != nil {
				b.logf("   no perf profile: %v", err)
			} else {
				defer func() {
					if err := stop(); err != nil {
						b.logf("   perf: %v", err)
					}
				}()
			}
		}
		return throughputN(ctx, b.client, t.url, body, b.p.rpsConc, b.p.rpsDur)
	})
}

// c64Rounds runs b.p.rpsRounds interleaved rounds on every path to the
// zero-latency engine: warm, then measure (which returns requests/s and the
// requests it completed); it appends each round's requests/s to rps and the
// proxy's CPU time per measured request to cpu. generator names the load
// generator in the log ("" for the bench's own).
func (b *bench) c64Rounds(generator string, rps map[string][]float64, cpu map[string][]time.Duration,
	warm func(t target) error, measure func(round int, t target) (float64, int64, error)) error {
	label := fmt.Sprintf("c=%d", b.p.rpsConc)
	if generator != "" {
		label = generator + " " + label
	}
	for r := range b.p.rpsRounds {
		for _, t := range rotate(b.zero, r) {
			var perReq time.Duration
			got, err := quiet(b, fmt.Sprintf("%s round %d %s", label, r+1, t.name), func() (float64, error) {
				if err := warm(t); err != nil {
					return 0, fmt.Errorf("warm-up: %w", err)
				}
				mark := b.zeroCPU(t.name)
				got, n, err := measure(r, t)
				if err == nil {
					perReq = mark.per(n)
				}
				return got, err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			rps[t.name] = append(rps[t.name], got)
			if perReq > 0 {
				cpu[t.name] = append(cpu[t.name], perReq)
			}
			b.logf("   round %d %-6s %.0f requests/s at %s, proxy CPU %v per request", r+1, t.name, got, label, perReq)
		}
	}
	return nil
}

// cpuMark is a proxy's CPU time at the start of a measurement.
type cpuMark struct {
	pid   int
	start time.Duration
}

// zeroCPU marks the CPU time of the proxy of a path to the zero-latency engine:
// the worker in front of it, the Go floor, or nginx's worker process; none for
// direct.
func (b *bench) zeroCPU(path string) cpuMark {
	pid := 0
	switch {
	case path == pathWorker:
		pid = b.zeroWorker.pid()
	case path == pathFloor && b.floor != nil:
		pid = b.floor.pid()
	case path == pathNginx && b.nginx != nil:
		if kids := childPIDs(b.nginx.pid()); len(kids) > 0 {
			pid = kids[0]
		}
	}
	return cpuMark{pid: pid, start: procCPU(pid)}
}

// per is the CPU time the proxy spent since the mark, per one of n requests;
// 0 without a proxy.
func (m cpuMark) per(n int64) time.Duration {
	if m.pid == 0 || n <= 0 {
		return 0
	}
	return (procCPU(m.pid) - m.start) / time.Duration(n)
}
