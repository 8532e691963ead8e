package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/config"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/metrics"
	"github.com/vllm-worker/vllm-worker/runpod"
	"github.com/vllm-worker/vllm-worker/runpod/jobstore"
	"github.com/vllm-worker/vllm-worker/runpod/serverless"
	"github.com/vllm-worker/vllm-worker/server"
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

// engineURL picks the engine's address: ENGINE_URL, or a free loopback port.
func (w *worker) engineURL() (string, int, error) {
	if w.cfg.Engine.URL != "" {
		return w.cfg.Engine.URL, 0, nil
	}
	p, err := freePort()
	if err != nil {
		return "", 0, fmt.Errorf("choose engine port: %w", err)
	}
	return "http://127.0.0.1:" + strconv.Itoa(p), p, nil
}

func (w *worker) batchPolicy() batching.Policy {
	s := w.cfg.Streaming
	return batching.Policy{Max: s.BatchSize, Min: s.MinBatchSize, Growth: s.GrowthFactor, MaxWait: s.MaxWait}
}

func (w *worker) serve(ctx context.Context) error {
	cfg := w.cfg
	engineURL, enginePort, err := w.engineURL()
	if err != nil {
		return err
	}
	firstByte := cfg.Worker.FirstByteTimeout
	if firstByte == 0 {
		firstByte = -1 // FIRST_BYTE_TIMEOUT_SECONDS=0: no limit
	}
	client := engine.New(engine.Options{BaseURL: engineURL, FirstByteTimeout: firstByte})
	models := engine.NewModels(client, cfg.ServedModelNames())
	life := newLifecycle(engineURL)
	m := metrics.New()
	runner := &runpod.Runner{Engine: client, Models: models, Batch: w.batchPolicy(), RawOpenAI: cfg.OpenAI.RawOutput, Metrics: m}
	engineReady := make(chan struct{})
	webhook := jobstore.NewWebhook(cfg.Worker.WebhookAllowPrivate)
	jobs := jobstore.NewStore(jobstore.StoreOptions{
		Runner:         runner,
		MaxConcurrency: cfg.Worker.MaxConcurrency,
		Ready:          engineReady,
		MaxBytes:       cfg.Worker.JobStoreMaxBytes,
		Webhook:        webhook.Deliver,
		CheckWebhook:   webhook.Check,
		Metrics:        m,
		Log:            w.log,
	})
	mgr := newEngineManager(cfg, w.environ, enginePort, engineURL, w.log)
	var handler *serverless.Handler
	if cfg.RunPod.WebhookGetJob != "" {
		jobRunner := &deathAwareRunner{Runner: runner, engine: mgr}
		if handler, err = w.newHandler(jobRunner); err != nil {
			return err
		}
		jobRunner.abort = handler.Abort
		m.WatchHandler(func() metrics.HandlerCounters {
			st := handler.Stats()
			return metrics.HandlerCounters{Completed: st.Completed, Failed: st.Failed, Cancelled: st.Cancelled,
				DeliveryRetries: st.DeliveryRetries, DeliveryFailures: st.DeliveryFailures}
		})
	}
	deps := server.Deps{
		Engine:             client,
		Models:             models,
		Status:             life,
		Jobs:               jobCounts{Store: jobs, handler: handler},
		Log:                w.log,
		Batch:              w.batchPolicy(),
		MaxRequestBytes:    cfg.Worker.MaxRequestBytes,
		APIKey:             cfg.Worker.APIKey,
		MaxConcurrency:     cfg.Worker.MaxConcurrency,
		MaxQueue:           cfg.Worker.MaxQueue,
		StreamIdleTimeout:  cfg.Worker.StreamIdleTimeout,
		RequestReadTimeout: cfg.Worker.RequestReadTimeout,
		ClientWriteTimeout: cfg.Worker.ClientWriteTimeout,
		Metrics:            m,
	}
	api := server.New(deps)
	servers, serveErr, err := w.listen(deps, api)
	if err != nil {
		return err
	}
	// stopHTTP drains: the listeners stay open (so /health and /ping answer 503
	// "draining", /status and /stream still answer, new work gets 503), the
	// requests and /run jobs in flight finish within grace, then the listeners
	// close and what is left is cut.
	stopHTTP := func(grace time.Duration) {
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		for _, s := range servers {
			s.SetKeepAlivesEnabled(false) // each answer now closes its connection
		}
		var wg sync.WaitGroup
		wg.Go(func() { jobs.Close(sctx) })
		wg.Go(func() { _ = api.Idle(sctx) })
		wg.Wait()
		for _, s := range servers {
			if err := s.Shutdown(sctx); err != nil {
				_ = s.Close() // the grace ran out: cut what is left
			}
		}
	}

	// Handler mode starts taking jobs once the engine first serves, and runs until
	// the drain: its context is not the signal's, so that SIGTERM drains it first.
	handlerCtx, stopHandler := context.WithCancel(context.Background())
	defer stopHandler()
	handlerDone := make(chan error, 1)
	var readyOnce sync.Once
	mgr.onStarting = func(phase func() (string, time.Time)) {
		life.setPhaseSource(phase)
		life.set(server.StateStarting, "")
	}
	mgr.onReady = func() {
		if life.Status().State == server.StateDraining {
			return // a /health that recovers during the drain changes nothing
		}
		client.CloseIdle() // connections to a previous engine are dead
		if _, err := models.Refresh(ctx); err != nil {
			w.log.Warn().Err(err).Msg("could not list the engine's models; using the configured names")
		}
		life.set(server.StateReady, "")
		m.EngineUp(true)
		readyOnce.Do(func() {
			close(engineReady)
			if handler != nil {
				go func() { handlerDone <- handler.Run(handlerCtx) }()
			}
		})
		w.log.Info().Strs("models", models.IDs()).Str("engine", engineURL).Msg("ready")
	}
	mgr.onDown = func(err error) {
		m.EngineUp(false)
		if life.Status().State != server.StateDraining {
			life.set(server.StateUnhealthy, "the engine is down")
		}
		w.log.Error().Err(err).Msg("engine down")
	}
	mgr.onRestart = m.EngineRestarted
	engineDone := make(chan error, 1)
	go func() { engineDone <- mgr.run(ctx) }()

	select {
	case err := <-handlerDone: // aborted: a CUDA error, or the engine died under a job
		if err == nil {
			err = errors.New("handler mode stopped unexpectedly")
		}
		w.log.Error().Err(err).Msg("handler mode aborted; exiting so the platform replaces this worker")
		life.set(server.StateUnhealthy, "aborted")
		stopHTTP(2 * time.Second)
		mgr.stop()
		<-engineDone
		return err
	case <-ctx.Done():
		life.set(server.StateDraining, "shutting down")
		w.log.Info().Dur("grace", cfg.Worker.ShutdownGrace).Msg("shutting down: draining requests in flight")
		drainEnd := time.Now().Add(cfg.Worker.ShutdownGrace) // one grace for jobs and requests alike
		if handler != nil {
			stopHandler() // stop taking jobs; those in flight finish and are delivered
			if started(engineReady) {
				if err := <-handlerDone; err != nil {
					w.log.Error().Err(err).Msg("handler mode")
				}
			}
		}
		stopHTTP(time.Until(drainEnd))
		mgr.stop()
		if err := <-engineDone; err != nil {
			w.log.Error().Err(err).Msg("the engine died during the drain")
			return err
		}
		w.log.Info().Msg("stopped")
		return nil
	case err := <-engineDone:
		if err == nil { // the start-up was interrupted by a signal
			stopHTTP(2 * time.Second)
			return nil
		}
		w.log.Error().Err(err).Msg("engine died; exiting so the platform replaces this worker")
		if handler != nil && started(engineReady) {
			handler.Abort(err) // running jobs fail with stopPod; results delivered
			<-handlerDone
		}
		stopHTTP(2 * time.Second)
		mgr.stop()
		return err
	case err := <-serveErr:
		life.set(server.StateUnhealthy, "the HTTP server failed")
		stopHTTP(2 * time.Second)
		mgr.stop()
		<-engineDone
		return fmt.Errorf("http server: %w", err)
	}
}

// listen starts the API listener (and the PORT_HEALTH one when it differs).
func (w *worker) listen(deps server.Deps, api http.Handler) ([]*http.Server, <-chan error, error) {
	cfg := w.cfg
	type target struct {
		port    int
		handler http.Handler
		name    string
	}
	targets := []target{{cfg.Worker.Port, api, "api"}}
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
			Handler: t.handler,
			// Headers must arrive within REQUEST_READ_TIMEOUT_SECONDS; the body's
			// progress deadline is the server package's (guard.go).
			ReadHeaderTimeout: cfg.Worker.RequestReadTimeout,
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

// started reports whether a once-closed channel is closed.
func started(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// newHandler builds RunPod's serverless job loop from the RUNPOD_* variables.
func (w *worker) newHandler(runner *deathAwareRunner) (*serverless.Handler, error) {
	rp := w.cfg.RunPod
	h, err := serverless.NewHandler(serverless.HandlerOptions{
		Runner:         runner,
		TakeURL:        rp.WebhookGetJob,
		DoneURL:        rp.WebhookPostOutput,
		StreamURL:      rp.WebhookPostStream,
		PingURL:        rp.WebhookPing,
		APIKey:         rp.APIKey,
		WorkerID:       rp.PodID,
		PingInterval:   rp.PingInterval,
		MaxConcurrency: w.cfg.Worker.MaxConcurrency,
		DrainTimeout:   w.cfg.Worker.ShutdownGrace,
		Version:        version,
		Log:            w.log,
	})
	if err != nil {
		return nil, &exitError{code: 2, msg: "handler mode: " + err.Error()}
	}
	return h, nil
}

// jobCounts reports /health's job counters: the local job store's and, in
// handler mode, the serverless loop's.
type jobCounts struct {
	*jobstore.Store
	handler *serverless.Handler
}

func (j jobCounts) Counts() runpod.Counts {
	c := j.Store.Counts()
	if j.handler != nil {
		h := j.handler.Counts()
		c.Completed += h.Completed
		c.Failed += h.Failed
		c.InProgress += h.InProgress
		c.InQueue += h.InQueue
		c.Retried += h.Retried
	}
	return c
}
