package main

import (
	"os"
	"time"
)

// Another session's tests or builds on the same two cores can halve a path's
// figures for a round. The bench attributes the machine's CPU time (from
// /proc/stat) to its own processes or to other work, and measures a round again
// when other work took more than maxOther of the cores during it.
const (
	maxOther   = 0.25 // half a core of the two
	maxRetries = 2    // per round; the last attempt is kept whatever it saw
	// retryUntil: past this much of the run, rounds are no longer measured
	// again, so that retries never push the run past its budget.
	retryUntil = 150 * time.Second
	// maxQuietWait bounds the wait for other work to calm down before a round.
	maxQuietWait = 10 * time.Second
)

// cpuSample is the machine's CPU time and the bench's own, at one instant.
type cpuSample struct {
	busy, total int64         // jiffies of all cores, from /proc/stat
	ours        time.Duration // the bench process and every child it runs
}

func (b *bench) cpuSample() cpuSample {
	var s cpuSample
	s.busy, s.total = cpuTimes()
	s.ours = procCPU(os.Getpid())
	for _, p := range b.procs {
		if p.alive() {
			s.ours += procCPU(p.pid())
		}
	}
	if b.nginx != nil {
		for _, pid := range childPIDs(b.nginx.pid()) {
			s.ours += procCPU(pid)
		}
	}
	return s
}

// otherShare is the share of all cores that other work used between a and z.
func otherShare(a, z cpuSample) float64 {
	total := z.total - a.total
	if total <= 0 {
		return 0
	}
	other := z.busy - a.busy - int64((z.ours-a.ours)/clockTick)
	return max(0, float64(other)/float64(total))
}

// quiet runs one measurement, and again (up to maxRetries times) while other
// work took more than maxOther of the cores during it. It returns the kept
// attempt's result and records how busy other work was during it.
func quiet[T any](b *bench, label string, measure func() (T, error)) (T, error) {
	for try := 0; ; try++ {
		b.waitQuiet()
		a := b.cpuSample()
		v, err := measure()
		if err != nil {
			return v, err
		}
		other := otherShare(a, b.cpuSample())
		if other <= maxOther || try == maxRetries || time.Since(b.res.began) > retryUntil {
			b.res.other = append(b.res.other, other)
			return v, nil
		}
		b.res.retried++
		b.logf("   %s: other work took %.0f%% of the cores; measuring it again", label, 100*other)
	}
}

// waitQuiet waits, in 250 ms looks and for at most maxQuietWait, until other
// work takes no more than maxOther of the cores. Past retryUntil it does not wait.
func (b *bench) waitQuiet() {
	deadline := time.Now().Add(maxQuietWait)
	for time.Since(b.res.began) < retryUntil && time.Now().Before(deadline) {
		a := b.cpuSample()
		time.Sleep(250 * time.Millisecond)
		if otherShare(a, b.cpuSample()) <= maxOther {
			return
		}
		b.res.waited += 250 * time.Millisecond
	}
}
