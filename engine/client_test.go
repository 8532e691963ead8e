package engine

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestNoReplayAfterSend: when the engine closes a kept-alive connection after
// reading a request, without answering, the request is not sent again (the
// engine may be generating it already): the caller gets an error to map to 502.
func TestNoReplayAfterSend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var requests atomic.Int32
	go func() {
		for conn := 0; ; conn++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn, conn int) {
				defer c.Close()
				br := bufio.NewReader(c)
				for served := 0; ; served++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					requests.Add(1)
					if conn == 0 && served == 1 {
						return // the second request on the first connection: read, then dropped
					}
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
				}
			}(c, conn)
		}
	}()
	c := New(Options{BaseURL: "http://" + ln.Addr().String()})
	resp, err := c.Do(context.Background(), http.MethodPost, "/v1/completions", []byte(`{"prompt":"x"}`), "id")
	if err != nil {
		t.Fatalf("first request: %v", err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	_, err = c.Do(context.Background(), http.MethodPost, "/v1/completions", []byte(`{"prompt":"x"}`), "id")
	if err == nil {
		t.Fatal("a request the engine dropped after reading it succeeded; it must have been replayed")
	}
	if e := asError(err); e == nil || e.Status != http.StatusBadGateway || e.Kind != KindUnreachable {
		t.Errorf("dropped request gives %v; want a 502", err)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("engine saw %d requests; want 2 (no replay)", got)
	}
}

// asError is err as an *Error, or nil.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// TestTransportErrors: a failure to reach the engine is an *Error with the status
// a client sees (502 refused, 504 silent); a cancelled request is the context's
// error, as nobody is left to answer.
func TestTransportErrors(t *testing.T) {
	c := New(Options{BaseURL: "http://127.0.0.1:1", FirstByteTimeout: 50 * time.Millisecond})
	_, err := c.Do(context.Background(), http.MethodGet, "/health", nil, "")
	if e := asError(err); e == nil || e.Status != http.StatusBadGateway || e.Message != "the engine is unreachable" {
		t.Errorf("refused: %v; want 502 unreachable", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() { // accepts, never answers
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	c = New(Options{BaseURL: "http://" + ln.Addr().String(), FirstByteTimeout: 50 * time.Millisecond})
	_, err = c.Do(context.Background(), http.MethodGet, "/health", nil, "")
	if e := asError(err); e == nil || e.Status != http.StatusGatewayTimeout || e.Kind != KindTimeout {
		t.Errorf("silent engine: %v; want 504", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Do(ctx, http.MethodGet, "/health", nil, "")
	if !errors.Is(err, context.Canceled) || asError(err) != nil {
		t.Errorf("cancelled: %v; want context.Canceled", err)
	}
}
