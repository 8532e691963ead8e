// Package engine is the worker's HTTP client for the inference engine (vLLM, the
// simulated engine, or any OpenAI-compatible server given by ENGINE_URL): a transport
// tuned for one loopback upstream, request building, the served-model list, and the
// translation of transport failures into API errors.
//
// It never interprets or re-encodes request bodies; callers hand it bytes.
package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vllm-worker/vllm-worker/openai"
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

// Client talks to one engine. It is safe for concurrent use.
type Client struct {
	base   string
	http   *http.Client  // for https engines
	direct *directClient // for plain-HTTP engines: all of them in practice

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
	t := &http.Transport{
		Proxy:                 nil, // loopback: never through HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   2048,
		IdleConnTimeout:       o.IdleConnTimeout,
		ResponseHeaderTimeout: o.FirstByteTimeout,
		DisableCompression:    true, // relay bytes as the engine wrote them
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       4 << 10,
		ReadBufferSize:        4 << 10,
	}
	var tag [3]byte
	_, _ = rand.Read(tag[:])
	c := &Client{base: strings.TrimSuffix(o.BaseURL, "/"), http: &http.Client{Transport: t}, idTag: hex.EncodeToString(tag[:])}
	if u, err := url.Parse(c.base); err == nil && u.Scheme == "http" && u.Host != "" && u.RawQuery == "" {
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
		c.direct = &directClient{
			addr: addr, host: u.Host, prefix: strings.TrimSuffix(u.EscapedPath(), "/"),
			dialer:    net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
			firstByte: o.FirstByteTimeout, idleFor: o.IdleConnTimeout, bufSize: 4 << 10,
		}
	}
	return c
}

// BaseURL is the engine's root URL.
func (c *Client) BaseURL() string { return c.base }

// Do sends one request to the engine. path starts with "/" and may carry a query.
// body may be nil. The request ends when ctx ends, which aborts the generation.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, requestID string) (*http.Response, error) {
	return c.DoContent(ctx, method, path, "application/json", body, requestID)
}

// DoContent is Do with the body's content type, for requests relayed as they
// came (a multipart audio upload, say).
func (c *Client) DoContent(ctx context.Context, method, path, contentType string, body []byte, requestID string) (*http.Response, error) {
	if requestID != "" {
		requestID = c.engineID(requestID)
	}
	if c.direct != nil {
		return c.direct.do(ctx, method, path, contentType, body, requestID)
	}
	var req *http.Request
	var err error
	if body != nil {
		// bytes.Reader gives the request a GetBody, so the transport resends it on a
		// fresh connection when a reused one failed before any byte was written.
		// Nothing else is retried: a request the engine may have received could
		// be generating already. The idle timeout below uvicorn's keep-alive keeps
		// the worker off connections the engine is about to close.
		req, err = http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	} else {
		req, err = http.NewRequestWithContext(ctx, method, c.base+path, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("build engine request: %w", err)
	}
	if body != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// engineID is the X-Request-Id the engine sees: the caller's id (a client's
// X-Request-Id, or a job id) and a suffix of this Client's own, unique to the
// request. vLLM makes the header its request id, so two clients that send the
// same id must not reach it as one, where an abort could hit the wrong request.
func (c *Client) engineID(id string) string {
	b := make([]byte, 0, len(id)+len(c.idTag)+12)
	b = append(append(append(b, id...), '-'), c.idTag...)
	return string(strconv.AppendUint(b, c.seq.Add(1), 36))
}

// CloseIdle closes idle upstream connections (after the engine restarted).
func (c *Client) CloseIdle() {
	c.http.CloseIdleConnections()
	if c.direct != nil {
		c.direct.closeIdle()
	}
}

// AsAPIError translates a failure to reach the engine into the error a client sees:
// 504 when the engine did not answer in time, 502 otherwise. It returns nil for a
// cancelled context (the client left; there is nobody to answer).
func AsAPIError(ctx context.Context, err error) *openai.Error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return openai.NewError(http.StatusGatewayTimeout, "the engine did not answer in time")
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return openai.NewError(http.StatusBadGateway, "the engine is unreachable")
	}
	return openai.NewError(http.StatusBadGateway, "the engine closed the connection without answering")
}

// maxErrorBody bounds how much of an engine error body is read.
const maxErrorBody = 1 << 20

// ErrorBody reads an engine error answer (status >= 400) and returns it as the
// OpenAI envelope with the engine's status: vLLM's own envelope unchanged, its
// classic flat form, FastAPI's {"detail":...} and plain text wrapped.
func ErrorBody(resp *http.Response) []byte {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return openai.NormalizeError(resp.StatusCode, raw)
}
