package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/vllm-worker/vllm-worker/metrics"
)

// errReadTimeout is a request body that made no progress for the read timeout.
var errReadTimeout = errors.New("the request body made no progress")

// progressBytes is what counts as progress of a request body: the read timeout
// starts again each time this many more bytes have arrived (or the body ends).
// A large upload that keeps arriving is never cut, while a body trickled a byte
// at a time, which would hold a connection for ever under a per-read timeout,
// is.
const progressBytes = 1 << 10

// guard bounds how long a client may stall the worker (contract section 8): a
// request body that makes no progress for d.RequestReadTimeout gets 408, and a
// write that a client does not take within d.ClientWriteTimeout fails, which
// drops the connection and ends the handler (so its engine request is aborted
// and its slot freed). Each write is a gap of its own: a long stream that the
// client keeps reading is never cut. An answer written before the request body
// was read to its end (401, 413, 503, ...) closes the connection, so that net/http
// never waits for the rest of a body nobody wants.
func guard(d *Deps) func(http.Handler) http.Handler {
	read, write := d.RequestReadTimeout, d.ClientWriteTimeout
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g := &guardWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: write, d: d, r: r}
			if r.Body != nil && r.Body != http.NoBody {
				g.body = &guardBody{ReadCloser: r.Body, rc: g.rc, timeout: read}
				r.Body = g.body
			}
			next.ServeHTTP(g, r)
			// net/http flushes what is left of the answer after the handler: the
			// deadline of the last write bounds it too, as arm leaves every write
			// at least seven eighths of the timeout.
			if !g.header && g.timeout > 0 {
				g.arm(true) // nothing was written: the whole answer is net/http's
			}
			if g.body != nil && !g.body.eof {
				// net/http reads up to 256 KiB of an unread body when it closes it,
				// even after "Connection: close": that read must not wait.
				_ = g.rc.SetReadDeadline(time.Now())
			}
		})
	}
}

// guardWriter puts a deadline on every write to the client. It keeps Flush and
// Unwrap so that http.ResponseController reaches the real writer.
type guardWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController // on the wrapped writer
	timeout time.Duration            // zero: no deadline
	d       *Deps
	r       *http.Request
	body    *guardBody // nil when the request has no body
	armedAt time.Time
	header  bool // WriteHeader has run
	cut     bool // a write timed out (counted and logged once)
}

// arm moves the write deadline to timeout from now. To keep it off the hot
// path it does so only when the last move is more than an eighth of the
// timeout ago, so each write has at least seven eighths of it.
func (g *guardWriter) arm(force bool) {
	if g.timeout <= 0 {
		return
	}
	now := time.Now()
	if !force && now.Sub(g.armedAt) < g.timeout/8 {
		return
	}
	g.armedAt = now
	_ = g.rc.SetWriteDeadline(now.Add(g.timeout))
}

func (g *guardWriter) WriteHeader(code int) {
	if !g.header {
		g.header = true
		if g.r.ContentLength != 0 && (g.body == nil || !g.body.eof) {
			// The body was not read to its end: close the connection rather
			// than let net/http read what is left of it first.
			g.Header().Set("Connection", "close")
		}
		g.arm(false)
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *guardWriter) Write(p []byte) (int, error) {
	if !g.header {
		g.WriteHeader(http.StatusOK)
	}
	g.arm(false)
	n, err := g.ResponseWriter.Write(p)
	if err != nil {
		g.failed(err)
	}
	return n, err
}

// FlushError flushes with the write deadline; http.ResponseController uses it.
func (g *guardWriter) FlushError() error {
	if !g.header {
		g.WriteHeader(http.StatusOK)
	}
	g.arm(false)
	err := g.rc.Flush()
	if err != nil {
		g.failed(err)
	}
	return err
}

func (g *guardWriter) Flush() { _ = g.FlushError() }

func (g *guardWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// failed counts and logs a write the client did not take in time, once.
func (g *guardWriter) failed(err error) {
	if g.cut || !errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	g.cut = true
	g.d.Metrics.LimitHit(metrics.LimitWriteTimeout)
	g.d.noteAbort(g.r, metrics.AbortWriteTimeout)
	g.d.Log.Warn().Str("request_id", RequestID(g.r.Context())).Str("path", g.r.URL.Path).
		Dur("timeout", g.timeout).Msg("the client read nothing of its answer for CLIENT_WRITE_TIMEOUT_SECONDS; connection dropped")
}

// guardBody puts a progress deadline on reading the request body.
type guardBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration // zero: no deadline
	since   int           // bytes since the deadline last moved
	armed   bool          // a read deadline is set
	eof     bool
}

func (b *guardBody) Read(p []byte) (int, error) {
	if b.timeout > 0 && !b.armed {
		b.armed = true
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.ReadCloser.Read(p)
	b.since += n
	switch {
	case err == io.EOF:
		b.eof = true
		if b.armed {
			// net/http reads on in the background to see the client leave; that
			// read must have no deadline.
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return n, errReadTimeout // answered 408, counted and logged by writeError
	case b.armed && b.since >= progressBytes:
		b.since = 0
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
	return n, err
}
