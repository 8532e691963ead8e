// Package engine is the worker's HTTP client for the inference engine (vLLM, the
// simulated engine, or any OpenAI-compatible server given by ENGINE_URL): one
// http.Client over a transport tuned for one loopback upstream, the one gate of
// engine paths (CleanPath), the served-model list, and the one error type of the
// engine (Error), which every failure to reach it or to read it becomes.
//
// It never interprets or re-encodes request bodies; callers hand it bytes.
package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Options configure a Client. The zero value of every field but BaseURL is usable.
type Options struct {
	// BaseURL is the engine's root, e.g. http://127.0.0.1:41234 (no trailing /v1).
	BaseURL string
	// FirstByteTimeout bounds the wait for the engine's response headers, which for
	// vLLM includes queueing and, for non-streamed requests, the whole generation.
	// Zero means 30 minutes: long prefills and long generations must never be cut;
	// a negative value means no limit.
	FirstByteTimeout time.Duration
	// IdleConnTimeout closes idle upstream connections. Zero means 4 s, below
	// uvicorn's 5 s keep-alive, so the worker never reuses a connection the engine
	// is about to close.
	IdleConnTimeout time.Duration
}

// userAgent names the worker to the engine.
const userAgent = "vllm-worker"

// Client talks to one engine. It is safe for concurrent use.
type Client struct {
	base   string // scheme://host[/prefix], no trailing slash
	scheme string
	host   string
	prefix string // the base URL's path, usually ""
	// rt sends every request: the direct transport on Linux, else std. It is
	// called as it is, not through an http.Client, which would copy every
	// request's headers and URL only to follow no redirects (an engine's
	// redirect, FastAPI's trailing-slash 307 say, is relayed as it is).
	rt       http.RoundTripper
	rewinds  bool   // rt rewinds a *bytesBody itself: no GetBody needed
	closeIdl func() // the transport's CloseIdleConnections

	idTag string        // random, per Client: "-<tag><n>" ends every engine request id
	seq   atomic.Uint64 // n
}

// New returns a Client for o.BaseURL.
func New(o Options) *Client {
	switch {
	case o.FirstByteTimeout == 0:
		o.FirstByteTimeout = 30 * time.Minute
	case o.FirstByteTimeout < 0:
		o.FirstByteTimeout = 0 // the transport's "no limit"
	}
	if o.IdleConnTimeout == 0 {
		o.IdleConnTimeout = 4 * time.Second
	}
	std := &http.Transport{
		Proxy:                 nil, // loopback: never through HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdleConns,
		IdleConnTimeout:       o.IdleConnTimeout,
		ResponseHeaderTimeout: o.FirstByteTimeout,
		DisableCompression:    true, // relay bytes as the engine wrote them
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       4 << 10,
		ReadBufferSize:        4 << 10,
	}
	var tag [3]byte
	_, _ = rand.Read(tag[:])
	c := &Client{base: strings.TrimSuffix(o.BaseURL, "/"), idTag: hex.EncodeToString(tag[:])}
	if u, err := url.Parse(c.base); err == nil {
		c.scheme, c.host, c.prefix = u.Scheme, u.Host, strings.TrimSuffix(u.EscapedPath(), "/")
	}
	rt := platformTransport(o, std) // the direct transport on Linux, std elsewhere
	c.closeIdl = std.CloseIdleConnections
	if ci, ok := rt.(interface{ CloseIdleConnections() }); ok && rt != http.RoundTripper(std) {
		c.closeIdl = func() { ci.CloseIdleConnections(); std.CloseIdleConnections() }
	}
	c.rt = rt
	c.rewinds = rewindsBody(rt)
	return c
}

// maxIdleConns bounds the idle connections kept to the engine.
const maxIdleConns = 4096

// BaseURL is the engine's root URL.
func (c *Client) BaseURL() string { return c.base }

// Do sends one request to the engine. path is an engine path (CleanPath's
// output: escaped, may carry a query). body may be nil. The request ends when
// ctx ends, which aborts the generation. A failure is an *Error, or ctx's error
// when ctx ended (nobody is left to answer).
func (c *Client) Do(ctx context.Context, method, path string, body []byte, requestID string) (*http.Response, error) {
	return c.DoContent(ctx, method, path, "application/json", body, requestID)
}

// DoContent is Do with the body's content type, for requests relayed as they
// came (a multipart audio upload, say).
func (c *Client) DoContent(ctx context.Context, method, path, contentType string, body []byte, requestID string) (*http.Response, error) {
	r := http.Request{
		Method:     method,
		URL:        &url.URL{Scheme: c.scheme, Host: c.host, Opaque: c.prefix + path},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 4),
		Host:       c.host,
	}
	// One set of header checks for any transport: a value from outside (a job
	// id, a client's content type) that could inject a header is not sent. The
	// fixed values are shared slices: no transport changes a request's headers.
	r.Header["User-Agent"] = userAgentValue
	r.Header["Accept"] = acceptValue
	if requestID != "" {
		if id := c.engineID(requestID); validHeaderValue(id) {
			r.Header["X-Request-Id"] = []string{id}
		}
	}
	if body != nil {
		switch {
		case contentType == "application/json":
			r.Header["Content-Type"] = jsonValue
		case validHeaderValue(contentType):
			r.Header["Content-Type"] = []string{contentType}
		}
		r.ContentLength = int64(len(body))
		switch {
		case len(body) == 0:
			r.Body = http.NoBody
		default:
			rb := &bytesBody{}
			rb.Reset(body)
			r.Body = rb
			// A transport may send the request again on a fresh connection when
			// a reused one failed before any of it was written; nothing else is
			// sent twice, as a request the engine received may be generating
			// already. The direct transport rewinds the body itself.
			if !c.rewinds {
				r.GetBody = func() (io.ReadCloser, error) { rb.Reset(body); return rb, nil }
			}
		}
	}
	resp, err := c.rt.RoundTrip(r.WithContext(ctx))
	if err != nil {
		return nil, transportError(ctx, err)
	}
	return resp, nil
}

// The values of the headers every engine request carries.
var (
	userAgentValue = []string{userAgent}
	acceptValue    = []string{"application/json, text/event-stream"}
	jsonValue      = []string{"application/json"}
)

// bytesBody is an engine request's body: the bytes the caller handed over, read
// again from the start when a transport sends the request again.
type bytesBody struct{ bytes.Reader }

func (*bytesBody) Close() error { return nil }

// rewind makes the body whole again for a second send.
func (b *bytesBody) rewind() { _, _ = b.Seek(0, io.SeekStart) }

// engineID is the X-Request-Id the engine sees: the caller's id (a client's
// X-Request-Id, or a job id) and a suffix of this Client's own, unique to the
// request. vLLM makes the header its request id, so two clients that send the
// same id must not reach it as one, where an abort could hit the wrong request.
func (c *Client) engineID(id string) string {
	var n [13]byte // a uint64 in base 36
	seq := strconv.AppendUint(n[:0], c.seq.Add(1), 36)
	var b strings.Builder // one allocation: String does not copy
	b.Grow(len(id) + 1 + len(c.idTag) + len(seq))
	b.WriteString(id)
	b.WriteByte('-')
	b.WriteString(c.idTag)
	b.Write(seq)
	return b.String()
}

// CloseIdle closes idle upstream connections (after the engine restarted).
func (c *Client) CloseIdle() { c.closeIdl() }

// validHeaderValue reports whether v can be sent as a header value as it is:
// no control characters, so that an id from outside (a RunPod job id) cannot
// inject a header.
func validHeaderValue(v string) bool {
	if v == "" || len(v) > 256 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
