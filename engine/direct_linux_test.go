package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// direct is c's direct transport, or nil.
func direct(c *Client) *directTransport {
	d, _ := c.rt.(*directTransport)
	return d
}

// countingServer counts the TCP connections it accepted.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestDirectKeepAliveAndHeaders(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Request-Id")+" "+r.Header.Get("Content-Type")+" "+string(body))
	})
	c := New(Options{BaseURL: srv.URL})
	if direct(c) == nil {
		t.Fatal("a plain-HTTP engine does not use the direct transport")
	}
	for i := range 5 {
		resp, err := c.Do(context.Background(), http.MethodPost, "/v1/completions?x=1", []byte(`{"a":1}`), "rid")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The id gets a suffix unique to the request: rid-<tag><n>.
		want := fmt.Sprintf(`POST /v1/completions?x=1 rid-%s%d application/json {"a":1}`, c.idTag, i+1)
		if string(got) != want {
			t.Fatalf("request %d: engine saw %q; want %q", i, got, want)
		}
	}
	resp, err := c.Do(context.Background(), http.MethodGet, "/v1/models", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "GET /v1/models   " { // no request id, content type or body
		t.Errorf("GET: engine saw %q", got)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 6 sequential requests; want 1 (keep-alive)", n)
	}
}

// A body closed before its end (the client left mid-stream) closes the
// connection, which is how the engine learns to abort; it is never reused.
func TestDirectEarlyCloseDropsConnection(t *testing.T) {
	gone := make(chan struct{})
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			for {
				if _, err := io.WriteString(w, "data: {}\n\n"); err != nil {
					close(gone)
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					close(gone)
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
		io.WriteString(w, "ok")
	})
	c := New(Options{BaseURL: srv.URL})
	resp, err := c.Do(context.Background(), http.MethodGet, "/stream", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the engine never saw the stream's client leave")
	}
	resp, err = c.Do(context.Background(), http.MethodGet, "/other", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections; want 2 (the cut one is not reused)", n)
	}
}

// Cancelling the context mid-request closes the connection at once.
func TestDirectCancel(t *testing.T) {
	started, gone := make(chan struct{}), make(chan struct{})
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // net/http notices a closed connection once the body is read
		close(started)
		<-r.Context().Done()
		close(gone)
	})
	c := New(Options{BaseURL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, http.MethodPost, "/slow", []byte(`{}`), "")
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want context.Canceled", err)
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the engine did not see the cancelled request end")
	}
}

// An idle connection the engine closed is noticed before use and replaced.
func TestDirectSkipsConnectionClosedByEngine(t *testing.T) {
	var mu sync.Mutex
	var server []net.Conn
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			server = append(server, c)
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	c := New(Options{BaseURL: srv.URL})
	get := func() {
		t.Helper()
		resp, err := c.Do(context.Background(), http.MethodGet, "/", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	get()
	mu.Lock()
	server[0].Close() // the engine's keep-alive ran out
	mu.Unlock()
	direct(c).mu.Lock()
	cn := direct(c).idle[0]
	direct(c).mu.Unlock()
	for deadline := time.Now().Add(2 * time.Second); cn.alive(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("alive() never noticed the engine closed the connection")
		}
	}
	get() // on a new connection, not the dead one
	mu.Lock()
	defer mu.Unlock()
	if len(server) != 2 {
		t.Errorf("%d connections; want 2", len(server))
	}
}

func TestDirectFirstByteTimeout(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})
	c := New(Options{BaseURL: srv.URL, FirstByteTimeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := c.Do(context.Background(), http.MethodPost, "/", []byte(`{}`), "")
	if e := asError(err); e == nil || e.Status != http.StatusGatewayTimeout {
		t.Fatalf("err %v maps to %v; want 504", err, e)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v; want about 100ms", d)
	}
	if !strings.Contains(err.Error(), "timeout") {
		t.Logf("error text: %v", err)
	}
}

// An interim 103 answer is skipped: the caller gets the real one, and the next
// request on the connection gets its own answer, not the previous one's.
func TestDirectSkipsInterimAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for i := 1; ; i++ {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			body := fmt.Sprintf("answer-%d", i)
			fmt.Fprintf(c, "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	}()
	c := New(Options{BaseURL: "http://" + ln.Addr().String()})
	defer c.CloseIdle() // ends the fake engine's connection goroutine
	for i := 1; i <= 2; i++ {
		resp, err := c.Do(context.Background(), http.MethodGet, "/", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("answer-%d", i); resp.StatusCode != 200 || string(got) != want {
			t.Errorf("request %d: %d %q; want 200 %q", i, resp.StatusCode, got, want)
		}
	}
}

// Idle connections are closed once unused for IdleConnTimeout, even when no
// request comes to notice.
func TestDirectReapsIdleConnections(t *testing.T) {
	closed := make(chan struct{}, 8)
	// Each request is answered once all three arrived, so that they hold three
	// connections at once rather than take turns on one.
	var arrived sync.WaitGroup
	arrived.Add(3)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		arrived.Wait()
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	defer srv.Close()
	c := New(Options{BaseURL: srv.URL, IdleConnTimeout: 50 * time.Millisecond})
	var wg sync.WaitGroup
	for range 3 { // three connections at once
		wg.Go(func() {
			resp, err := c.Do(context.Background(), http.MethodGet, "/", nil, "")
			if err == nil {
				io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for i := range 3 {
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of 3 idle connections were closed", i)
		}
	}
	direct(c).mu.Lock()
	defer direct(c).mu.Unlock()
	if len(direct(c).idle) != 0 || direct(c).reaper != nil {
		t.Errorf("pool still holds %d connections (reaper armed: %v)", len(direct(c).idle), direct(c).reaper != nil)
	}
}

// A request id with control characters is not sent: it could inject a header.
func TestDirectDropsUnsafeRequestID(t *testing.T) {
	seen := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	}))
	defer srv.Close()
	c := New(Options{BaseURL: srv.URL})
	resp, err := c.Do(context.Background(), http.MethodGet, "/", nil, "job1\r\nX-Evil: 1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-seen
	if h.Get("X-Evil") != "" || h.Get("X-Request-Id") != "" {
		t.Errorf("unsafe id reached the engine: %v", h)
	}
}
