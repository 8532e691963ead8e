package main

import (
	"io"
	"time"

	"github.com/rs/zerolog"
)

// logTimeFormat stamps JSON log lines to the millisecond: request and job
// timings are read from them, and whole seconds hide what took 900 ms.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

func init() { zerolog.TimeFieldFormat = logTimeFormat }

// newLogger returns the worker's logger: JSON lines, or readable console lines.
func newLogger(format, level string, w io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
