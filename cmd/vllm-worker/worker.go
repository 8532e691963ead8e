package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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

// worker is the composition root: every part of the worker, made from the
// configuration once and wired here. Its life cycle is in lifecycle.go.
type worker struct {
	cfg     *config.Config
	environ []string
	log     zerolog.Logger

	status  *status
	metrics *metrics.Metrics
	client  *engine.Client
	models  *engine.Models
	runner  *runpod.Runner
	mgr     *engineManager

	// Serving parts; nil in the --test_input mode, which serves nothing.
	jobs    *jobstore.Store
	handler *serverless.Handler // nil unless handler mode (RUNPOD_WEBHOOK_GET_JOB)
	api     *server.Server
	servers []*http.Server
	lns     []net.Listener
	tls     *tls.Config // the API listener's, from TLS_CERT_FILE; nil: plain HTTP

	// ready is closed the first time the engine serves: queued jobs and handler
	// mode wait for it.
	ready     chan struct{}
	readyOnce sync.Once
}

// parts says which parts a worker has.
type parts int

const (
	serving    parts = iota // the HTTP API, the job store and (when configured) handler mode
	engineOnly              // only the engine and the job runner: --test_input
)

// newWorker builds a worker: the engine client, the runner and the engine
// manager always; the servers, the job store and handler mode when serving.
func newWorker(cfg *config.Config, environ []string, logger zerolog.Logger, p parts) (*worker, error) {
	w := &worker{cfg: cfg, environ: environ, log: logger, ready: make(chan struct{})}
	if p == serving && cfg.Worker.TLSCertFile != "" {
		// First, so that a bad certificate fails the start (status 2) before
		// anything is built or started.
		c, err := w.loadTLS()
		if err != nil {
			return nil, err
		}
		w.tls = c
	}
	engineURL, enginePort := cfg.Engine.URL, 0
	if engineURL == "" {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("choose engine port: %w", err)
		}
		engineURL, enginePort = "http://127.0.0.1:"+strconv.Itoa(port), port
	}
	w.status = newStatus(engineURL)
	if p == serving {
		w.metrics = metrics.New()
	}
	firstByte := cfg.Worker.FirstByteTimeout
	if firstByte == 0 {
		firstByte = -1 // FIRST_BYTE_TIMEOUT_SECONDS=0: no limit
	}
	w.client = engine.New(engine.Options{BaseURL: engineURL, FirstByteTimeout: firstByte})
	w.models = engine.NewModels(w.client, cfg.ServedModelNames())
	w.runner = &runpod.Runner{Engine: w.client, Models: w.models, Batch: w.batchPolicy(), RawOpenAI: cfg.OpenAI.RawOutput,
		IdleTimeout: cfg.Worker.StreamIdleTimeout, Metrics: w.metrics}
	w.mgr = newEngineManager(cfg, environ, enginePort, engineURL, logger, w)
	if p == engineOnly {
		return w, nil
	}

	webhook := jobstore.NewWebhook(cfg.Worker.WebhookAllowPrivate)
	w.jobs = jobstore.NewStore(jobstore.StoreOptions{
		Runner:         w.runner,
		MaxConcurrency: cfg.Worker.MaxConcurrency,
		MaxBytes:       cfg.Worker.JobStoreMaxBytes,
		Ready:          w.ready,
		Webhook:        webhook.Deliver,
		CheckWebhook:   webhook.Check,
		Metrics:        w.metrics,
		Log:            logger,
	})
	if cfg.RunPod.WebhookGetJob != "" {
		if err := w.newHandler(); err != nil {
			return nil, err
		}
	}
	deps := server.Deps{
		Engine:             w.client,
		Models:             w.models,
		Status:             w.status,
		Jobs:               jobCounts{Store: w.jobs, handler: w.handler},
		Log:                logger,
		Batch:              w.batchPolicy(),
		MaxRequestBytes:    cfg.Worker.MaxRequestBytes,
		APIKey:             cfg.Worker.APIKey,
		MaxConcurrency:     cfg.Worker.MaxConcurrency,
		MaxQueue:           cfg.Worker.MaxQueue,
		StreamIdleTimeout:  cfg.Worker.StreamIdleTimeout,
		RequestReadTimeout: cfg.Worker.RequestReadTimeout,
		ClientWriteTimeout: cfg.Worker.ClientWriteTimeout,
		CORSAllowedOrigins: cfg.Worker.CORSAllowedOrigins,
		Metrics:            w.metrics,
	}
	w.api = server.New(deps)
	if err := w.listen(deps); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *worker) batchPolicy() batching.Policy {
	s := w.cfg.Streaming
	return batching.Policy{Max: s.BatchSize, Min: s.MinBatchSize, Growth: s.GrowthFactor, MaxWait: s.MaxWait}
}

// newHandler builds RunPod's serverless job loop from the RUNPOD_* variables.
func (w *worker) newHandler() error {
	rp := w.cfg.RunPod
	h, err := serverless.NewHandler(serverless.HandlerOptions{
		Runner:         w.runner,
		TakeURL:        rp.WebhookGetJob,
		DoneURL:        rp.WebhookPostOutput,
		StreamURL:      rp.WebhookPostStream,
		PingURL:        rp.WebhookPing,
		APIKey:         rp.APIKey,
		WorkerID:       rp.PodID,
		PingInterval:   rp.PingInterval,
		MaxConcurrency: w.cfg.Worker.MaxConcurrency,
		DrainTimeout:   w.cfg.Worker.ShutdownGrace,
		EngineGone:     w.mgr.exitedWithin,
		Metrics:        w.metrics,
		Version:        version,
		Log:            w.log,
	})
	if err != nil {
		return &exitError{code: 2, msg: "handler mode: " + err.Error()}
	}
	w.handler = h
	w.metrics.WatchHandler(func() metrics.HandlerCounters {
		st := h.Stats()
		return metrics.HandlerCounters{Completed: st.Completed, Failed: st.Failed, Cancelled: st.Cancelled, Cut: st.Cut,
			DeliveryRetries: st.DeliveryRetries, DeliveryFailures: st.DeliveryFailures}
	})
	return nil
}

// listen opens the API listener (and the PORT_HEALTH one when it differs), so
// that a port in use fails the start at once. With TLS_CERT_FILE the API
// listener serves HTTPS (w.tls); the PORT_HEALTH listener is always plain HTTP,
// for load balancers that probe without TLS.
func (w *worker) listen(deps server.Deps) error {
	cfg := w.cfg.Worker
	type target struct {
		port    int
		handler http.Handler
		name    string
		tls     *tls.Config // nil: plain HTTP
	}
	targets := []target{{cfg.Port, w.api, "api", w.tls}}
	if cfg.PortHealth != 0 && cfg.PortHealth != cfg.Port {
		targets = append(targets, target{cfg.PortHealth, server.NewHealth(deps), "health", nil})
	}
	for _, t := range targets {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(t.port)))
		if err != nil {
			for _, l := range w.lns {
				_ = l.Close()
			}
			return fmt.Errorf("listen on port %d: %w", t.port, err)
		}
		w.lns = append(w.lns, ln)
		w.servers = append(w.servers, &http.Server{
			Handler: t.handler,
			// Headers (and, with TLS, the handshake before them) must arrive within
			// REQUEST_READ_TIMEOUT_SECONDS; the body's progress deadline is the
			// server package's (guard.go).
			ReadHeaderTimeout: cfg.RequestReadTimeout,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          log.New(w.log, "", 0),
			TLSConfig:         t.tls,
			// No WriteTimeout: streams may run for many minutes.
		})
		scheme := "http"
		if t.tls != nil {
			scheme = "https"
		}
		w.log.Info().Str("addr", ln.Addr().String()).Str("scheme", scheme).Str("listener", t.name).Msg("listening")
	}
	return nil
}

// serveHTTP serves every listener until the servers are shut down; an error is
// a listener that failed.
func (w *worker) serveHTTP() error {
	errs := make(chan error, len(w.servers))
	for i, srv := range w.servers {
		go func() { // returns when the server is shut down
			if srv.TLSConfig != nil {
				errs <- srv.ServeTLS(w.lns[i], "", "") // the certificate is in TLSConfig
				return
			}
			errs <- srv.Serve(w.lns[i])
		}()
	}
	var first error
	for range w.servers {
		if err := <-errs; err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = fmt.Errorf("http server: %w", err)
		}
	}
	return first
}

// The worker's answers to the engine manager (engineEvents).

func (w *worker) EngineStarting(phase func() (string, time.Time)) {
	w.status.setPhaseSource(phase)
	w.status.set(server.StateStarting, "")
}

func (w *worker) EngineReady() {
	if w.status.state() == server.StateDraining {
		return // a /health that recovers during the drain changes nothing
	}
	w.client.CloseIdle() // connections to a previous engine are dead
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.models.Refresh(ctx); err != nil {
		w.log.Warn().Err(err).Msg("could not list the engine's models; using the configured names")
	}
	w.status.set(server.StateReady, "")
	w.metrics.EngineUp(true)
	w.readyOnce.Do(func() { close(w.ready) })
	w.log.Info().Strs("models", w.models.IDs()).Str("engine", w.client.BaseURL()).Msg("ready")
}

func (w *worker) EngineDown(err error) {
	w.metrics.EngineUp(false)
	if w.status.state() != server.StateDraining {
		w.status.set(server.StateUnhealthy, "the engine is down")
	}
	w.log.Error().Err(err).Msg("engine down")
}

func (w *worker) EngineRestarting() { w.metrics.EngineRestarted() }

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

// freePort asks the kernel for a free loopback port for the engine.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
