package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// platformTransport is, on Linux, the direct transport for a plain-HTTP engine,
// with std for anything else.
func platformTransport(o Options, std *http.Transport) http.RoundTripper {
	u, err := url.Parse(strings.TrimSuffix(o.BaseURL, "/"))
	if err != nil || u.Scheme != "http" || u.Host == "" || u.RawQuery != "" {
		return std
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &directTransport{
		addr: addr, host: u.Host, std: std,
		dialer:    net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		firstByte: o.FirstByteTimeout, idleFor: o.IdleConnTimeout, bufSize: 4 << 10,
	}
}

// rewindsBody reports whether rt sends a *bytesBody again by itself.
func rewindsBody(rt http.RoundTripper) bool { _, ok := rt.(*directTransport); return ok }

// directTransport is an http.RoundTripper that speaks HTTP/1.1 to one
// plain-HTTP engine over pooled keep-alive connections, doing a request's whole
// exchange on the caller's goroutine. Go's http.Transport hands every request to
// a writer and a reader goroutine of its connection; on a loaded two-core box
// those hand-offs are most of a proxy's added latency, and the engine is one
// loopback peer that needs none of the Transport's generality. Responses are
// parsed by net/http (http.ReadResponse). Requests for any other host go to std.
//
// It is Linux-only for the check of an idle connection before reuse (a
// non-blocking MSG_PEEK); elsewhere the engine client uses std.
type directTransport struct {
	addr      string // host:port
	host      string // the Host the engine is addressed as
	std       *http.Transport
	dialer    net.Dialer
	firstByte time.Duration // 0: none
	idleFor   time.Duration // idle connections older than this are closed, not reused
	bufSize   int

	mu     sync.Mutex
	idle   []*engineConn // least recently used first
	reaper *time.Timer   // closes expired idle connections; armed while any are idle
}

type engineConn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time

	// The alive check's parts, made once per connection so that the check
	// costs its syscall and no allocation.
	raw    syscall.RawConn // nil when c has no file descriptor
	peek   func(fd uintptr) bool
	peekOK bool
	peekB  [1]byte
}

// newEngineConn wraps a fresh connection.
func newEngineConn(c net.Conn, bufSize int) *engineConn {
	cn := &engineConn{c: c, br: bufio.NewReaderSize(c, bufSize), bw: bufio.NewWriterSize(c, bufSize)}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			cn.raw = raw
			cn.peek = func(fd uintptr) bool {
				n, _, err := syscall.Recvfrom(int(fd), cn.peekB[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
				cn.peekOK = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
				return true // never wait
			}
		}
	}
	return cn
}

func (d *directTransport) get(ctx context.Context) (cn *engineConn, reused bool, err error) {
	now := time.Now()
	d.mu.Lock()
	for len(d.idle) > 0 {
		cn = d.idle[len(d.idle)-1]
		d.idle = d.idle[:len(d.idle)-1]
		if now.Sub(cn.lastUsed) < d.idleFor {
			d.mu.Unlock()
			if cn.alive() {
				return cn, true, nil
			}
			cn.c.Close()
			d.mu.Lock()
			continue
		}
		cn.c.Close() // the engine may be about to close it
	}
	d.mu.Unlock()
	c, err := d.dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, false, err
	}
	return newEngineConn(c, d.bufSize), false, nil
}

// alive reports whether an idle connection is still open: nothing to read means
// yes; end of file (the engine closed it) or stray bytes mean no. It costs one
// non-blocking, non-consuming recv, and keeps a request off a connection the
// engine closed while it sat in the pool.
func (cn *engineConn) alive() bool {
	if cn.br.Buffered() > 0 {
		return false
	}
	if cn.raw == nil {
		return true
	}
	cn.peekOK = false
	return cn.raw.Read(cn.peek) == nil && cn.peekOK
}

func (d *directTransport) put(cn *engineConn) {
	cn.lastUsed = time.Now()
	d.mu.Lock()
	if len(d.idle) < maxIdleConns {
		d.idle = append(d.idle, cn)
		cn = nil
		if d.reaper == nil {
			d.reaper = time.AfterFunc(d.idleFor, d.reap)
		}
	}
	d.mu.Unlock()
	if cn != nil {
		cn.c.Close()
	}
}

// reap closes the idle connections unused for idleFor, so that a burst's
// connections do not hold file descriptors (and engine sockets) for ever. It
// runs on a timer, rearmed while connections stay idle.
func (d *directTransport) reap() {
	now := time.Now()
	d.mu.Lock()
	n := 0
	for n < len(d.idle) && now.Sub(d.idle[n].lastUsed) >= d.idleFor {
		n++
	}
	expired := make([]*engineConn, n)
	copy(expired, d.idle[:n])
	d.idle = append(d.idle[:0], d.idle[n:]...)
	if len(d.idle) > 0 {
		d.reaper.Reset(d.idleFor - now.Sub(d.idle[0].lastUsed))
	} else {
		d.reaper = nil
	}
	d.mu.Unlock()
	for _, cn := range expired {
		cn.c.Close()
	}
}

// CloseIdleConnections closes the idle connections.
func (d *directTransport) CloseIdleConnections() {
	d.mu.Lock()
	idle := d.idle
	d.idle = nil
	if d.reaper != nil {
		d.reaper.Stop()
		d.reaper = nil
	}
	d.mu.Unlock()
	for _, cn := range idle {
		cn.c.Close()
	}
}

// RoundTrip sends one request. A reused connection that fails while the
// request is written (the engine closed it first) is replaced once: nothing
// reached the engine. A failure after that is returned: the engine may be
// generating.
func (d *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || req.URL.Host != d.host {
		return d.std.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		cn, reused, err := d.get(ctx)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, sent, err := d.exchange(ctx, cn, req)
		if err == nil {
			return resp, nil
		}
		cn.c.Close()
		if ctx.Err() != nil {
			closeBody(req)
			return nil, ctx.Err()
		}
		if !reused || sent || attempt > 0 {
			closeBody(req)
			return nil, err
		}
		switch b := req.Body.(type) {
		case nil:
		case *bytesBody: // the engine client's: read again from the start
			b.rewind()
		default:
			if req.Body == http.NoBody {
				break
			}
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req = req.Clone(ctx)
			req.Body = body
		}
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// exchange writes the request and reads the response head on cn. sent reports
// whether the whole request was written.
func (d *directTransport) exchange(ctx context.Context, cn *engineConn, req *http.Request) (resp *http.Response, sent bool, err error) {
	// The request ends with ctx: closing the connection aborts the generation.
	stop := context.AfterFunc(ctx, func() { cn.c.Close() })
	bw := cn.bw
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(req.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(d.host)
	bw.WriteString("\r\n")
	for k, vs := range req.Header {
		for _, v := range vs { // the engine client checked the values
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if req.Body != nil && req.Body != http.NoBody || req.ContentLength > 0 {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	if req.Body != nil && req.Body != http.NoBody {
		n, err := io.Copy(bw, req.Body)
		req.Body.Close()
		if err == nil && n != req.ContentLength {
			err = fmt.Errorf("the request body had %d bytes, not its ContentLength %d", n, req.ContentLength)
		}
		if err != nil {
			stop()
			return nil, false, fmt.Errorf("write engine request: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		stop()
		return nil, false, fmt.Errorf("write engine request: %w", err)
	}
	if d.firstByte > 0 {
		_ = cn.c.SetReadDeadline(time.Now().Add(d.firstByte))
	}
	resp, err = http.ReadResponse(cn.br, req)
	// Interim answers (100 Continue, 103 Early Hints) precede the real one; a
	// 101 would switch protocols, which no engine route does.
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 {
		if resp.StatusCode == http.StatusSwitchingProtocols {
			err = errors.New("the engine switched protocols (101), which the worker does not relay")
			break
		}
		resp, err = http.ReadResponse(cn.br, req)
	}
	if err != nil {
		stop()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("the engine closed the connection before answering: %w", err)
		}
		return nil, true, err
	}
	if d.firstByte > 0 {
		_ = cn.c.SetReadDeadline(time.Time{})
	}
	resp.Body = &engineBody{rc: resp.Body, cn: cn, d: d, stop: stop, reuse: !resp.Close}
	return resp, true, nil
}

// engineBody returns its connection to the pool when the body was read to its
// end, and closes it otherwise (a client that left mid-stream: closing is what
// tells the engine to abort).
type engineBody struct {
	rc    io.ReadCloser
	cn    *engineConn
	d     *directTransport
	stop  func() bool
	reuse bool
	eof   atomic.Bool
	done  atomic.Bool
}

func (b *engineBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// Close may be called while a Read is under way (a relay that gives up on an
// engine gone quiet): closing the connection is what ends that Read.
func (b *engineBody) Close() error {
	if !b.done.CompareAndSwap(false, true) {
		return nil
	}
	watching := b.stop() // false: ctx already ended and the connection is closed
	if b.eof.Load() && b.reuse && watching {
		b.d.put(b.cn)
		return nil
	}
	return b.cn.c.Close()
}
