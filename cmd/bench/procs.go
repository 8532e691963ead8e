package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a child gets between SIGTERM and SIGKILL.
const stopGrace = 3 * time.Second

// proc is one child process of the bench (an engine, a worker, nginx), run in its
// own process group so that stopping it also stops anything it started.
type proc struct {
	name string
	port int // the port it listens on, when the bench chose one
	cmd  *exec.Cmd
	out  *tail
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid once done is closed
}

// startProc starts argv with exactly env (nothing inherited) and keeps the last
// lines of its output for error messages.
func startProc(name string, argv, env []string) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	out := &tail{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the process is still running.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after stopGrace.
func (p *proc) stop() {
	if !p.alive() {
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// failure describes an unexpected exit or a failed wait, with the output's tail.
func (p *proc) failure(what string) error {
	msg := fmt.Sprintf("%s: %s", p.name, what)
	if !p.alive() {
		msg += fmt.Sprintf(" (exited: %v)", p.err)
	}
	if t := strings.TrimSpace(p.out.String()); t != "" {
		msg += "\n  last output: " + strings.ReplaceAll(t, "\n", "\n  ")
	}
	return errors.New(msg)
}

// tail is an io.Writer that keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitTCP polls addr with TCP connects every 100 µs until one succeeds, p exits,
// or limit passes. It returns when the connect succeeded.
func waitTCP(ctx context.Context, p *proc, addr string, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	d := net.Dialer{Timeout: 100 * time.Millisecond}
	for time.Now().Before(deadline) {
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			at := time.Now()
			c.Close()
			return at, nil
		}
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		if !p.alive() {
			return time.Time{}, p.failure("exited before listening on " + addr)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return time.Time{}, p.failure(fmt.Sprintf("not listening on %s after %v", addr, limit))
}

// waitOK polls url with GET every 2 ms until it answers 200, p exits, or limit passes.
func waitOK(ctx context.Context, p *proc, url string, limit time.Duration) (time.Time, error) {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return time.Time{}, err
		}
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		if !p.alive() {
			return time.Time{}, p.failure("exited before " + url + " answered 200")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}, p.failure(fmt.Sprintf("%s did not answer 200 within %v", url, limit))
}

// procKB reads one "Field:  N kB" line of /proc/<pid>/status (VmRSS, VmHWM) in bytes.
func procKB(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// childPIDs lists the direct children of pid (nginx's worker under its master).
func childPIDs(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU is the user plus system CPU time of pid, all threads; 0 if unknown.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * clockTick
}
