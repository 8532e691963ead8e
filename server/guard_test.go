package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawConn dials the worker and writes raw bytes, for requests no http.Client
// would send: bodies that stall, clients that never read.
func rawConn(t *testing.T, h *harness) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAnswer reads one HTTP answer from c, and whether the worker then closed
// the connection.
func readAnswer(t *testing.T, c net.Conn, within time.Duration) (resp *http.Response, body string, closed bool) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", within, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, err = br.ReadByte()
	return resp, string(b), err == io.EOF
}

func TestReadTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := newHarness(t, okEngine, func(d *Deps) { d.RequestReadTimeout = timeout })

	t.Run("a body that stops is cut with 408", func(t *testing.T) {
		c := rawConn(t, h)
		start := time.Now()
		fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
		resp, body, closed := readAnswer(t, c, 5*time.Second)
		checkError(t, resp, body, http.StatusRequestTimeout)
		if d := time.Since(start); d < timeout || d > timeout+2*time.Second {
			t.Errorf("answered after %v; want about %v", d, timeout)
		}
		if !closed {
			t.Error("the connection stayed open after the 408")
		}
	})

	t.Run("a body trickled a byte at a time is cut", func(t *testing.T) {
		c := rawConn(t, h)
		fmt.Fprintf(c, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
		stop := make(chan struct{})
		defer close(stop)
		go func() { // one byte every 50 ms: progress by read, none by the 1 KiB rule
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
		resp, body, _ := readAnswer(t, c, 5*time.Second)
		checkError(t, resp, body, http.StatusRequestTimeout)
	})

	t.Run("a large body that keeps arriving is never cut", func(t *testing.T) {
		// 64 KiB in 4 KiB pieces, one every 100 ms: 1.6 s in all, five timeouts.
		pr, pw := io.Pipe()
		go func() {
			_, _ = io.WriteString(pw, `{"model":"m","prompt":"`)
			for range 16 {
				_, _ = io.WriteString(pw, strings.Repeat("y", 4<<10))
				time.Sleep(100 * time.Millisecond)
			}
			_, _ = io.WriteString(pw, `"}`)
			pw.Close()
		}()
		resp, err := h.srv.Client().Post(h.srv.URL+"/v1/completions", "application/json", pr)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("got %d %s; want the engine's 200", resp.StatusCode, body)
		}
	})

}

func TestKeyCheckedBeforeBody(t *testing.T) {
	h := newHarness(t, okEngine, func(d *Deps) { d.APIKey, d.RequestReadTimeout = "k", time.Minute })
	c := rawConn(t, h)
	start := time.Now()
	fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
	resp, body, closed := readAnswer(t, c, 5*time.Second)
	checkError(t, resp, body, http.StatusUnauthorized)
	if d := time.Since(start); d > time.Second {
		t.Errorf("401 after %v; want it at once, before the body", d)
	}
	if !closed {
		t.Error("the connection stayed open with an unread body")
	}
}

func TestWriteTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	engineGone := make(chan struct{})
	chunk := "data: {\"choices\":[{\"text\":\"" + strings.Repeat("z", 16<<10) + "\"}]}\n\n"
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		defer close(engineGone)
		for { // an endless stream of 16 KiB events, as fast as they are taken
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
			if http.NewResponseController(w).Flush() != nil {
				return
			}
			if r.Context().Err() != nil {
				return
			}
		}
	}, func(d *Deps) { d.ClientWriteTimeout, d.MaxConcurrency = timeout, 1 })

	c := rawConn(t, h)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10) // a small window: the worker's writes block soon
	}
	fmt.Fprintf(c, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		len(streamBody), streamBody)
	// The client reads nothing. The worker must drop it and abort the engine request.
	select {
	case <-engineGone:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine request was not aborted while the client read nothing")
	}
	// The slot (MaxConcurrency 1) is free again.
	h.engine.setHandler(okEngine)
	resp, body := h.do(t, http.MethodPost, "/v1/chat/completions", chatBody)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after the dropped client: %d %s; want 200 (the slot was freed)", resp.StatusCode, body)
	}
}
