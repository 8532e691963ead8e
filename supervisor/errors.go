package supervisor

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrStartupTimeout is wrapped by WaitReady and WaitHealthy when the engine did not answer
// 200 on its health URL within the startup timeout.
var ErrStartupTimeout = errors.New("engine startup timed out")

// errorTailLines is how many of the last output lines an error message quotes.
const errorTailLines = 20

// ExitError says how the engine ended and what it printed last.
type ExitError struct {
	Status    string   // e.g. "exit status 3" or "signal: killed"
	Code      int      // the exit code, or -1 when a signal ended it
	LastLines []string // the last output lines, oldest first
}

// Error gives the status and the last errorTailLines lines of output.
func (e *ExitError) Error() string {
	return fmt.Sprintf("engine exited (%s)%s", e.Status, tail(e.LastLines))
}

func newExitError(ps *os.ProcessState, waitErr error, lines []string) *ExitError {
	e := &ExitError{Status: "unknown", Code: -1, LastLines: lines}
	switch {
	case ps != nil:
		e.Status, e.Code = ps.String(), ps.ExitCode()
	case waitErr != nil:
		e.Status = waitErr.Error()
	}
	return e
}

// tail formats the last errorTailLines of lines for an error message.
func tail(lines []string) string {
	if len(lines) == 0 {
		return " with no output"
	}
	if len(lines) > errorTailLines {
		lines = lines[len(lines)-errorTailLines:]
	}
	return "; last output:\n" + strings.Join(lines, "\n")
}
