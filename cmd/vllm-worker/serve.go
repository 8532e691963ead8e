package main

import (
	"context"
	"fmt"
	"io"
)

// runServe is the main job: listen, start the engine, serve the OpenAI and
// RunPod APIs (and handler mode) until a signal or a failure, then shut down.
func runServe(ctx context.Context, args, environ []string, stderr io.Writer) error {
	if len(args) > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("serve takes no arguments (got %q); configure with environment variables", args)}
	}
	cfg, err := loadConfig(environ, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Worker.LogFormat, cfg.Worker.LogLevel, stderr)
	for _, w := range cfg.Warnings {
		logger.Warn().Msg(w)
	}
	w, err := newWorker(cfg, environ, logger, serving)
	if err != nil {
		return err
	}
	return w.run(ctx, nil)
}
