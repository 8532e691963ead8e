package engine

import (
	"testing"

	"go.uber.org/goleak"
)

// The pool starts no goroutine of its own: every test must leave none behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
