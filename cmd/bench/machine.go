package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine describes where the run happened.
type machine struct {
	cpu, kernel, goVersion, nginx string
	cores                         int
	load                          string  // /proc/loadavg's 1-minute figure when the run began
	busy                          float64 // share of all cores busy in the second before the run
}

func readMachine() machine {
	m := machine{cpu: "unknown CPU", cores: runtime.NumCPU(), goVersion: runtime.Version(), nginx: "nginx: none"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.load = f[0]
		}
	}
	return m
}

// loadNote says how busy the machine was with other work when the run began.
func (m machine) loadNote() string {
	return fmt.Sprintf("other work took %.0f%% of the cores in the second before the run, load average %s", 100*m.busy, m.load)
}

// cpuBusy samples /proc/stat over d and returns the share of all cores that was
// busy; 0 if unknown.
func cpuBusy(d time.Duration) float64 {
	b0, t0 := cpuTimes()
	time.Sleep(d)
	b1, t1 := cpuTimes()
	if t1 <= t0 {
		return 0
	}
	return float64(b1-b0) / float64(t1-t0)
}

// cpuTimes reads the "cpu" line of /proc/stat: busy and total jiffies of all
// cores together.
func cpuTimes() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0
	}
	// user nice system idle iowait irq softirq steal; guest is inside user. Busy
	// leaves out irq and softirq, which no process's utime+stime holds either.
	for i, v := range f[1:min(len(f), 9)] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		switch i {
		case 0, 1, 2, 7:
			busy += n
		}
	}
	return busy, total
}
