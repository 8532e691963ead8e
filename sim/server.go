package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vllm-worker/vllm-worker/openai"
)

// Options configure the simulated engine. The caller reads them from flags or the
// environment; the zero value of every field is usable.
type Options struct {
	// Model is the served model name: the id in /v1/models and the only model
	// requests may name. Empty means "sim-model".
	Model string
	// Root is the model path reported as "root" in /v1/models. Empty means Model.
	Root string
	// MaxModelLen is the context length: prompt tokens + max_tokens may not exceed
	// it. Zero means 4096.
	MaxModelLen int
	// TTFT is the delay between admission and the first token; zero means none.
	TTFT time.Duration
	// ITL is the delay between two tokens of a request; zero means none.
	ITL time.Duration
	// StartupDelay is how long Serve waits before it even listens, so connections
	// are refused meanwhile, as with vLLM loading a model. New ignores it.
	StartupDelay time.Duration
	// MaxNumSeqs bounds the requests generating at once (each request holds one
	// slot whatever its n); the others wait in FIFO order and count in
	// vllm:num_requests_waiting. Zero means no bound.
	MaxNumSeqs int
	// ShutdownTimeout is how long Serve lets in-flight requests finish after its
	// context is done before it cuts them. Zero cuts them at once, like vLLM's
	// default --shutdown-timeout 0.
	ShutdownTimeout time.Duration
	// SlowFirstByte is the wait of the "slow_first_byte" fault. Zero means 2s.
	SlowFirstByte time.Duration
	// Exit is called by the "exit" fault; the caller sets it to os.Exit. Nil means
	// no exit: the request's connection is just dropped.
	Exit func(code int)
	// Log receives at most one line per request. Nil means no logging.
	Log io.Writer
	// Quirks make the simulator behave like other OpenAI-compatible servers in
	// the ways each Quirk names. Nil means none: vLLM's behaviour. New panics on
	// a name that is not a Quirk constant (ParseQuirks checks user input).
	Quirks []Quirk
}

// Stats are the simulated engine's counters, for in-process tests.
type Stats struct {
	Requests int64 // generation requests accepted (past validation)
	Running  int64 // requests generating now
	Waiting  int64 // requests waiting for a MaxNumSeqs slot
	Aborts   int64 // requests ended early because the client left
	Faults   int64 // requests ended by an injected fault
}

// Server is the simulated engine's HTTP handler. Make one with New.
type Server struct {
	o           Options
	quirks      quirkSet
	fingerprint string // system_fingerprint: vllm-<version>-<hash of the model>
	models      requestModels
	vocab       vocab
	metrics     *metrics
	slots       chan struct{} // nil when MaxNumSeqs is zero

	requests, running, waiting, aborts, faults atomic.Int64

	inflight inflight // handlers running, so Serve can wait for them
	logMu    sync.Mutex
}

// New returns a simulated engine with o's defaults filled in.
func New(o Options) *Server {
	if o.Model == "" {
		o.Model = "sim-model"
	}
	if o.Root == "" {
		o.Root = o.Model
	}
	if o.MaxModelLen <= 0 {
		o.MaxModelLen = 4096
	}
	if o.SlowFirstByte <= 0 {
		o.SlowFirstByte = 2 * time.Second
	}
	quirks, err := newQuirkSet(o.Quirks)
	if err != nil {
		panic("sim: " + err.Error())
	}
	h := uint64(fnvOffset)
	for i := 0; i < len(o.Model); i++ {
		h = (h ^ uint64(o.Model[i])) * fnvPrime
	}
	s := &Server{o: o, quirks: quirks, vocab: newVocab(), models: newRequestModels(),
		fingerprint: "vllm-" + simVersion + "-" + strconv.FormatUint(h>>32|1<<32, 16)[1:]}
	if o.MaxNumSeqs > 0 {
		s.slots = make(chan struct{}, o.MaxNumSeqs)
	}
	s.metrics = newMetrics(o.Model, s)
	return s
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests: s.requests.Load(),
		Running:  s.running.Load(),
		Waiting:  s.waiting.Load(),
		Aborts:   s.aborts.Load(),
		Faults:   s.faults.Load(),
	}
}

// simVersion is what /version reports, and the version in system_fingerprint.
const simVersion = "0.0.0-sim"

// ServeHTTP routes a request the way vLLM's FastAPI app does: unknown paths get
// {"detail":"Not Found"}, known paths with the wrong method {"detail":"Method Not Allowed"}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inflight.add()
	defer s.inflight.done()
	var allow string
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/responses/"); ok && id != "" {
		// The response store is off (vLLM's default), so no id is ever found.
		id, cancel := strings.CutSuffix(id, "/cancel")
		switch allow = http.MethodGet; {
		case strings.Contains(id, "/"):
			allow = ""
		case cancel:
			allow = http.MethodPost
		}
		if allow != "" && r.Method == allow {
			s.reject(w, r, &openai.Error{Status: http.StatusNotFound, Type: "invalid_request_error",
				Param: "response_id", Message: "Response with id '" + id + "' not found."})
			return
		}
	}
	switch r.URL.Path {
	case "/health":
		if allow = http.MethodGet; r.Method == allow {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return
		}
	case "/ping":
		if allow = "GET, POST"; r.Method == http.MethodGet || r.Method == http.MethodPost {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return
		}
	case "/version":
		if allow = http.MethodGet; r.Method == allow {
			writeJSON(w, http.StatusOK, []byte(`{"version":"`+simVersion+`"}`))
			return
		}
	case "/v1/models":
		if allow = http.MethodGet; r.Method == allow {
			s.handleModels(w)
			return
		}
	case "/metrics":
		if allow = http.MethodGet; r.Method == allow {
			s.metrics.serve(w)
			return
		}
	case "/tokenize":
		if allow = http.MethodPost; r.Method == allow {
			s.handleTokenize(w, r)
			return
		}
	case "/v1/chat/completions":
		if allow = http.MethodPost; r.Method == allow {
			s.handleGenerate(w, r, kindChat)
			return
		}
	case "/v1/completions":
		if allow = http.MethodPost; r.Method == allow {
			s.handleGenerate(w, r, kindCompletion)
			return
		}
	case "/v1/responses":
		if allow = http.MethodPost; r.Method == allow {
			s.handleResponses(w, r)
			return
		}
	}
	if allow == "" {
		writeJSON(w, http.StatusNotFound, []byte(`{"detail":"Not Found"}`))
		return
	}
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, []byte(`{"detail":"Method Not Allowed"}`))
}

// writeJSON writes a complete JSON response.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// logf writes one log line, whole, when logging is on.
func (s *Server) logf(format string, args ...any) {
	if s.o.Log == nil {
		return
	}
	line := fmt.Appendf(nil, "sim: "+format+"\n", args...)
	s.logMu.Lock()
	defer s.logMu.Unlock()
	_, _ = s.o.Log.Write(line)
}

// Serve waits o.StartupDelay (refusing connections, as vLLM does while it loads),
// then listens on addr, calls ready with the bound address (useful with port 0),
// and serves New(o) until ctx is done. It then stops accepting, gives in-flight
// requests o.ShutdownTimeout, cuts the rest and returns once every handler has
// returned. A ctx done during the startup delay returns nil without listening.
func Serve(ctx context.Context, addr string, o Options, ready func(net.Addr)) error {
	if _, err := newQuirkSet(o.Quirks); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if o.StartupDelay > 0 {
		t := time.NewTimer(o.StartupDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sim: listen: %w", err)
	}
	s := New(o)
	// No WriteTimeout: streams last as long as generation does.
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc: // the listener failed; nothing to drain
		s.inflight.wait()
		return fmt.Errorf("sim: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close() // cuts the streams still running; their handlers see ctx done
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("sim: serve: %w", err)
	}
	s.inflight.wait()
	return nil
}

// inflight counts running handlers. Unlike a sync.WaitGroup it may be incremented
// from zero while someone waits: a connection accepted just before shutdown may
// still start its handler.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to zero; nil when nobody waits
}

func (f *inflight) add() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

// wait returns once no handler is running.
func (f *inflight) wait() {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	<-idle
}
