package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sashabaranov/go-openai"
)

// The default time limits.
const (
	DefaultTimeout      = 60 * time.Second
	DefaultTotalTimeout = 10 * time.Minute
)

// maxBody bounds a JSON answer a check reads.
const maxBody = 32 << 20

// Options configure a run. The zero value of every field is usable.
type Options struct {
	// APIKey is sent as "Authorization: Bearer <APIKey>". Empty sends none.
	APIKey string
	// Model is the model the generation checks ask for. Empty means the first
	// one of /models.
	Model string
	// Timeout bounds each check. Zero means DefaultTimeout.
	Timeout time.Duration
	// TotalTimeout bounds the whole run. Zero means DefaultTotalTimeout.
	TotalTimeout time.Duration
	// Transport carries every request. Nil means a new http.Transport whose
	// idle connections are closed when the run ends.
	Transport http.RoundTripper
}

func (o *Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

func (o *Options) totalTimeout() time.Duration {
	if o.TotalTimeout > 0 {
		return o.TotalTimeout
	}
	return DefaultTotalTimeout
}

// Run runs the checks of t (the worker's, or the engine's for KindEngine) and
// reports them. First it makes sure t answers at all: if it does not, the
// report has one failed "connect" check and Unreachable set.
func Run(ctx context.Context, t Target, o Options) *Report {
	ctx, cancel := context.WithTimeout(ctx, o.totalTimeout())
	defer cancel()
	transport := o.Transport
	if transport == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		transport = tr
	}
	r := &Report{Target: t.Base, Kind: t.Kind}
	s := &session{target: t, opts: &o, transport: transport, model: o.Model}
	if res := s.reach(ctx); res != nil {
		r.Unreachable = true
		r.Checks = []Result{*res}
		return r
	}
	checks := workerChecks()
	if t.Kind == KindEngine {
		checks = engineChecks()
	}
	for _, c := range checks {
		r.Checks = append(r.Checks, s.run(ctx, c))
	}
	r.Model = s.model
	r.OK = true
	for _, c := range r.Checks {
		r.OK = r.OK && c.OK
	}
	return r
}

// checkDef is one check: a name and what it does. run returns nil when the
// check passes; its error says what was expected and what was seen.
type checkDef struct {
	name string
	run  func(p *probe) error
}

// session is what the checks of one run share.
type session struct {
	target    Target
	opts      *Options
	transport http.RoundTripper
	// model is the model the generation checks ask for: Options.Model, else
	// the first of /models once the models check has read it.
	model string
	// maxModelLen is the model's context length when /models says it (vLLM
	// does), else 0.
	maxModelLen int
}

// reach makes one request to see that the target answers at all. It returns
// a failed "connect" result when it does not.
func (s *session) reach(ctx context.Context) *Result {
	res := s.run(ctx, checkDef{name: "connect", run: func(p *probe) error {
		resp, err := p.do(http.MethodGet, p.target.URL("/health"), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}})
	if res.OK {
		return nil
	}
	res.Error = "cannot reach " + s.target.Base + ": " + res.Error
	return &res
}

// run runs one check under its time limit.
func (s *session) run(ctx context.Context, c checkDef) (res Result) {
	res.Name = c.name
	if err := ctx.Err(); err != nil {
		res.Error = "not run: " + s.limitReached(ctx, err)
		return res
	}
	timeout := s.opts.timeout()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rec := &recorder{next: s.transport}
	p := &probe{ctx: cctx, session: s, rec: rec, client: &http.Client{
		Transport: rec,
		// A redirect is shown as it is: RunPod's API and the worker never
		// redirect, and a login page is not an answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	p.start = time.Now()
	err := p.safeRun(c.run)
	res.Latency = time.Since(p.start)
	res.TTFT = p.ttft
	res.Detail = p.detail
	if err == nil {
		res.OK = true
		return res
	}
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("%s: %w", s.limitReached(ctx, ctx.Err()), err)
	case cctx.Err() != nil:
		err = fmt.Errorf("timed out after %v (--timeout): %w", timeout, err)
	}
	res.Error = describe(err)
	res.Request = p.blame
	if res.Request == nil {
		res.Request = rec.lastRequest()
	}
	return res
}

func (s *session) limitReached(ctx context.Context, err error) string {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Sprintf("the total time limit of %v (--total-timeout) was reached", s.opts.totalTimeout())
	}
	return "interrupted"
}

// describe turns a transport error into something a user can act on.
func describe(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return err.Error() + " (is the host name right?)"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return err.Error() + " (is it running, and is the URL right?)"
	}
	return err.Error()
}

// probe is one check in progress.
type probe struct {
	*session
	ctx    context.Context
	rec    *recorder
	client *http.Client
	start  time.Time
	ttft   time.Duration // 0 until the first token
	detail string        // what a passing check saw worth showing
	blame  *Request      // the request that showed the failure, when not the last one
}

// safeRun runs f, turning a panic into a failure of this check alone.
func (p *probe) safeRun(f func(*probe) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("internal error in the check: %v", v)
		}
	}()
	return f(p)
}

// firstToken records the time to the first token, from the check's start.
func (p *probe) firstToken() {
	if p.ttft == 0 {
		p.ttft = max(time.Since(p.start), time.Microsecond)
	}
}

// pin makes the last request the one shown if the check fails (rather than
// whatever request the check made after it).
func (p *probe) pin() { p.blame = p.rec.lastRequest() }

// openai is a go-openai client over the check's transport.
func (p *probe) openai() *openai.Client {
	cfg := openai.DefaultConfig(p.opts.APIKey)
	cfg.BaseURL = p.target.OpenAIBase()
	cfg.HTTPClient = p.client
	return openai.NewClientWithConfig(cfg)
}

// do sends one request; body is nil, a string, []byte or a value to encode as
// JSON. A stream request (a body with "stream":true) asks for SSE.
func (p *probe) do(method, url string, body any) (*http.Response, error) {
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	var rd io.Reader
	if b != nil {
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(p.ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if b != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bytes.Contains(b, []byte(`"stream":true`)) {
		req.Header.Set("Accept", "text/event-stream")
	}
	if p.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.APIKey)
	}
	return p.client.Do(req)
}

// call sends one request and reads the whole answer. It fails unless the
// status is want; out, if not nil, receives the decoded body. A request that
// fails is the one shown with the check's failure.
func (p *probe) call(method, url string, body any, want int, out any) (raw []byte, err error) {
	defer func() {
		if err != nil {
			p.pin()
		}
	}()
	resp, err := p.do(method, url, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return raw, fmt.Errorf("%s %s: reading the answer: %w", method, pathOf(url), err)
	}
	if resp.StatusCode != want {
		return raw, fmt.Errorf("%s %s: status %d, want %d: %s", method, pathOf(url), resp.StatusCode, want, quote(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("%s %s: the answer is not the JSON expected (%v): %s", method, pathOf(url), err, quote(raw))
		}
	}
	return raw, nil
}

// pathOf is the path of url after the target's base, for messages.
func pathOf(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		if j := strings.IndexByte(url[i+3:], '/'); j >= 0 {
			return url[i+3+j:]
		}
	}
	return url
}
