package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/vllm-worker/vllm-worker/engine"
)

// The Go floor is a fourth path to the zero-latency engine: the least a Go
// proxy built like the worker can cost. It is net/http's server relaying each
// POST through the worker's own engine client (package engine, the same
// direct HTTP/1.1 transport and connection pool), and nothing else: no router,
// no validation, no limits, no metrics, no access log, no request id. The
// worker's cost above it is what its own code adds; its cost above nginx's is
// what any server on net/http's goroutine-per-connection model pays on this
// machine. The bench runs it as a child process of its own (the bench binary
// started again with floorArg), so its CPU time is measured like the others'.

// floorArg, as the first argument, makes the bench binary serve the floor:
// floorArg <listen address> <engine URL>.
const floorArg = "-serve-go-floor"

// serveFloor serves the floor proxy until the process is killed.
func serveFloor(listen, engineURL string) error {
	srv := &http.Server{Addr: listen, Handler: floorHandler(engineURL), ReadHeaderTimeout: 10 * time.Second}
	err := srv.ListenAndServe()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// floorHandler is the floor proxy: GET /ping answers 200, POST
// /v1/chat/completions is relayed to the engine. It is as lean as the worker's
// own relay of a plain answer (an exact-size body read, the answer's length
// passed on, one pooled copy buffer), so that the worker's cost above it is its
// own code's and nothing else.
func floorHandler(engineURL string) http.Handler {
	c := engine.New(engine.Options{BaseURL: engineURL})
	bufs := sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ping" {
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" ||
			r.ContentLength <= 0 || r.ContentLength > 1<<20 {
			http.Error(w, "the Go floor relays POST /v1/chat/completions with a Content-Length only", http.StatusBadRequest)
			return
		}
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := c.DoContent(r.Context(), http.MethodPost, r.URL.Path, "application/json", body, "floor")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		h := w.Header()
		h.Set("Content-Type", resp.Header.Get("Content-Type"))
		if resp.ContentLength >= 0 {
			h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
		}
		w.WriteHeader(resp.StatusCode)
		buf := bufs.Get().(*[]byte)
		_, _ = io.CopyBuffer(onlyWriter{w}, resp.Body, *buf)
		bufs.Put(buf)
	})
}

// onlyWriter hides the response's ReadFrom, so that io.CopyBuffer uses the
// pooled buffer as the worker's copy does.
type onlyWriter struct{ io.Writer }

// startFloor runs the floor proxy in front of engineURL and adds it to the
// zero-latency paths; without it the run goes on and the floor table says why.
func (b *bench) startFloor(ctx context.Context, engineURL string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("the bench's own binary: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	p, err := startProc("Go floor", []string{exe, floorArg, loopback(port), engineURL}, b.env)
	if err != nil {
		return err
	}
	p.port = port
	b.procs = append(b.procs, p)
	if _, err := waitOK(ctx, p, "http://"+loopback(port)+"/ping", 10*time.Second); err != nil {
		return err
	}
	b.floor = p
	b.zero = append(b.zero, target{pathFloor, "http://" + loopback(port) + "/v1/chat/completions"})
	return nil
}
