package check

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
)

// maxShownBody bounds the request body kept to show with a failure.
const maxShownBody = 8 << 10

// maxKeptResponse bounds the response body a recorder keeps for the checks
// that read the wire under go-openai (a stream's framing and [DONE]).
const maxKeptResponse = 4 << 20

// Request is a request a check made, enough to repeat it by hand.
type Request struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Body   string `json:"body,omitempty"`
	// Curl is the same request as a curl command line; the API key, if any,
	// is left as $API_KEY.
	Curl string `json:"curl"`
}

// recorder is the RoundTripper of one check: it remembers the check's last
// request, to show with a failure, and keeps the start of its response body.
type recorder struct {
	next http.RoundTripper

	mu   sync.Mutex
	last *Request
	resp *capped
	body *teeBody // the last response's body
}

func (rec *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r := &Request{Method: req.Method, URL: req.URL.String()}
	if req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(io.LimitReader(body, maxShownBody+1))
			body.Close()
			r.Body = string(b)
			if len(b) > maxShownBody {
				r.Body = string(b[:maxShownBody]) + "..."
			}
		}
	}
	r.Curl = curlLine(req, r.Body)
	kept := &capped{limit: maxKeptResponse}
	rec.mu.Lock()
	rec.last, rec.resp = r, kept
	rec.mu.Unlock()
	resp, err := rec.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body := &teeBody{ReadCloser: resp.Body, w: kept}
	rec.mu.Lock()
	rec.body = body
	rec.mu.Unlock()
	resp.Body = body
	return resp, nil
}

// drain reads what is left of the last response's body (at most maxKeptResponse
// bytes), so that lastBody has all of it: go-openai stops reading a stream at
// its [DONE] line.
func (rec *recorder) drain() {
	rec.mu.Lock()
	body := rec.body
	rec.mu.Unlock()
	if body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(body, maxKeptResponse))
	}
}

// lastRequest is the last request made, or nil.
func (rec *recorder) lastRequest() *Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.last
}

// lastBody is what has been read of the last response's body (its first
// maxKeptResponse bytes), and whether that is all of it.
func (rec *recorder) lastBody() ([]byte, bool) {
	rec.mu.Lock()
	resp := rec.resp
	rec.mu.Unlock()
	if resp == nil {
		return nil, true
	}
	resp.mu.Lock()
	defer resp.mu.Unlock()
	return bytes.Clone(resp.buf.Bytes()), !resp.over
}

// capped is a buffer that keeps the first limit bytes written to it.
type capped struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
	over  bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.limit - c.buf.Len(); len(p) > room {
		c.over = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}

// teeBody copies what is read of a body into w.
type teeBody struct {
	io.ReadCloser
	w io.Writer
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if n > 0 {
		_, _ = t.w.Write(p[:n])
	}
	return n, err
}

// curlLine writes req as a curl command line. The API key is left as $API_KEY,
// so that the line can be shown in a CI log and pasted where the key is set.
func curlLine(req *http.Request, body string) string {
	var b strings.Builder
	b.WriteString("curl -sS")
	if strings.Contains(req.Header.Get("Accept"), "text/event-stream") {
		b.WriteString("N")
	}
	if req.Method != http.MethodGet || body != "" {
		b.WriteString(" -X " + req.Method)
	}
	b.WriteString(" " + shellQuote(req.URL.String()))
	if req.Header.Get("Authorization") != "" {
		b.WriteString(` -H "Authorization: Bearer $API_KEY"`)
	}
	if body != "" {
		b.WriteString(" -H 'Content-Type: application/json' -d " + shellQuote(body))
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
