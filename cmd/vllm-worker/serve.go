package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/config"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/runpod"
	"github.com/vllm-worker/vllm-worker/server"
	"github.com/vllm-worker/vllm-worker/supervisor"
)

// runServe is the main job: listen, start the engine, serve until a signal or the
// engine's death, then drain and stop the engine.
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
	w := &worker{cfg: cfg, environ: environ, log: logger}
	return w.serve(ctx)
}

type worker struct {
	cfg     *config.Config
	environ []string
	log     zerolog.Logger
}

func (w *worker) serve(ctx context.Context) error {
	cfg := w.cfg
	engineURL, enginePort := cfg.Engine.URL, 0
	if engineURL == "" {
		p, err := freePort()
		if err != nil {
			return fmt.Errorf("choose engine port: %w", err)
		}
		enginePort, engineURL = p, "http://127.0.0.1:"+strconv.Itoa(p)
	}
	client := engine.New(engine.Options{BaseURL: engineURL})
	models := engine.NewModels(client, cfg.ServedModelNames())
	life := newLifecycle(engineURL)
	batch := batching.Policy{
		Max:     cfg.Streaming.BatchSize,
		Min:     cfg.Streaming.MinBatchSize,
		Growth:  cfg.Streaming.GrowthFactor,
		MaxWait: cfg.Streaming.MaxWait,
	}
	engineReady := make(chan struct{})
	jobs := runpod.NewStore(runpod.StoreOptions{
		Runner:         &runpod.Runner{Engine: client, Models: models, Batch: batch, RawOpenAI: cfg.OpenAI.RawOutput},
		MaxConcurrency: cfg.Worker.MaxConcurrency,
		Ready:          engineReady,
		Webhook:        runpod.Webhook(&http.Client{}),
		Log:            w.log,
	})
	deps := server.Deps{
		Engine:          client,
		Models:          models,
		Status:          life,
		Jobs:            jobs,
		Log:             w.log,
		Batch:           batch,
		MaxRequestBytes: cfg.Worker.MaxRequestBytes,
		APIKey:          cfg.Worker.APIKey,
	}

	servers, serveErr, err := w.listen(deps)
	if err != nil {
		return err
	}
	// stopHTTP stops taking requests, lets those in flight (and running jobs)
	// finish within grace, then cuts what is left.
	stopHTTP := func(grace time.Duration) {
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		done := make(chan struct{})
		go func() { jobs.Close(sctx); close(done) }()
		for _, s := range servers {
			if err := s.Shutdown(sctx); err != nil {
				_ = s.Close() // the grace ran out: cut what is left
			}
		}
		<-done
	}

	eng, err := w.startEngine(ctx, enginePort, engineURL, life)
	if err != nil {
		stopHTTP(2 * time.Second)
		if eng != nil {
			_ = eng.Stop(context.Background())
		}
		if ctx.Err() != nil {
			w.log.Info().Msg("stopped during engine start-up")
			return nil
		}
		w.log.Error().Err(err).Msg("engine failed to start")
		return err
	}
	if _, err := models.Refresh(ctx); err != nil {
		w.log.Warn().Err(err).Msg("could not list the engine's models; using the configured names")
	}
	life.set(server.StateReady, "")
	close(engineReady)
	w.log.Info().Strs("models", models.IDs()).Str("engine", engineURL).Msg("ready")

	var exited <-chan struct{}
	if eng != nil {
		exited = eng.Exited()
	}
	select {
	case <-ctx.Done():
		life.set(server.StateDraining, "shutting down")
		w.log.Info().Dur("grace", cfg.Worker.ShutdownGrace).Msg("shutting down: draining requests in flight")
		stopHTTP(cfg.Worker.ShutdownGrace)
		if eng != nil {
			if err := eng.Stop(context.Background()); err != nil {
				w.log.Warn().Err(err).Msg("engine stop")
			}
		}
		w.log.Info().Msg("stopped")
		return nil
	case <-exited:
		err := eng.Err()
		life.set(server.StateUnhealthy, "the engine exited")
		w.log.Error().Err(err).Msg("engine died; exiting so the platform replaces this worker")
		stopHTTP(2 * time.Second)
		_ = eng.Stop(context.Background())
		return fmt.Errorf("engine died: %w", err)
	case err := <-serveErr:
		life.set(server.StateUnhealthy, "the HTTP server failed")
		stopHTTP(2 * time.Second)
		if eng != nil {
			_ = eng.Stop(context.Background())
		}
		return fmt.Errorf("http server: %w", err)
	}
}

// listen starts the API listener (and the PORT_HEALTH one when it differs).
func (w *worker) listen(deps server.Deps) ([]*http.Server, <-chan error, error) {
	cfg := w.cfg
	type target struct {
		port    int
		handler http.Handler
		name    string
	}
	targets := []target{{cfg.Worker.Port, server.New(deps), "api"}}
	if cfg.Worker.PortHealth != 0 && cfg.Worker.PortHealth != cfg.Worker.Port {
		targets = append(targets, target{cfg.Worker.PortHealth, server.NewHealth(deps), "health"})
	}
	errs := make(chan error, len(targets))
	var servers []*http.Server
	for _, t := range targets {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Worker.Host, strconv.Itoa(t.port)))
		if err != nil {
			for _, s := range servers {
				_ = s.Close()
			}
			return nil, nil, fmt.Errorf("listen on port %d: %w", t.port, err)
		}
		srv := &http.Server{
			Handler:           t.handler,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          log.New(w.log, "", 0),
			// No WriteTimeout: streams may run for many minutes.
		}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
		w.log.Info().Str("addr", ln.Addr().String()).Str("listener", t.name).Msg("listening")
	}
	return servers, errs, nil
}

// startEngine starts the engine child (or waits for an external engine) and
// returns once it answers /health with 200.
func (w *worker) startEngine(ctx context.Context, port int, engineURL string, life *lifecycle) (*supervisor.Engine, error) {
	cfg := w.cfg
	if cfg.Engine.URL != "" {
		w.log.Info().Str("engine", engineURL).Msg("waiting for the external engine")
		return nil, supervisor.WaitHealthy(ctx, &http.Client{Timeout: 5 * time.Second}, engineURL+"/health",
			500*time.Millisecond, cfg.Engine.StartupTimeout)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	argv := cfg.EngineArgv(port, self)
	w.log.Info().Strs("argv", argv).Msg("starting engine")
	stopGrace := 10 * time.Second
	if cfg.Engine.ShutdownTimeout > 0 {
		stopGrace = cfg.Engine.ShutdownTimeout + 5*time.Second
	}
	eng, err := supervisor.Start(ctx, supervisor.Options{
		Argv:           argv,
		Env:            cfg.EngineEnv(w.environ),
		HealthURL:      engineURL + "/health",
		StartupTimeout: cfg.Engine.StartupTimeout,
		StopGrace:      stopGrace,
		Logger:         w.log.With().Str("component", "engine").Logger(),
	})
	if err != nil {
		return nil, fmt.Errorf("start engine: %w", err)
	}
	life.setPhaseSource(eng.Phase)
	if err := eng.WaitReady(ctx); err != nil {
		return eng, fmt.Errorf("engine start-up: %w", err)
	}
	return eng, nil
}
