// Package httpretry talks to a peer that may be slow, overloaded or briefly
// gone: RunPod's job API, and the receivers of /run webhooks. Post sends a body
// with bounded retries and exponential backoff on network errors, 429 and 5xx,
// honouring Retry-After; Poll makes one long-poll GET and says how long the peer
// asked to be left alone. It is the one retry policy of the worker's outgoing
// requests; it never logs (the caller's OnRetry does) and knows nothing of what
// it sends.
package httpretry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Client sends requests with retries. Its zero value (but HTTP) is usable.
type Client struct {
	// HTTP makes the requests. Required.
	HTTP *http.Client
	// Prepare sets the headers every request carries (an API key, a User-Agent).
	Prepare func(*http.Request)
	// Attempts bounds the tries of one Post; zero means 6.
	Attempts int
	// MaxElapsed bounds the time one Post spends retrying; zero means 1 minute.
	MaxElapsed time.Duration
	// MinWait is the first wait between tries, doubling (with jitter) up to
	// MaxWait; zero means 250 ms and 10 s.
	MinWait, MaxWait time.Duration
	// AttemptTimeout bounds one try; zero means 1 minute.
	AttemptTimeout time.Duration
	// RetryAfterMax caps a peer's Retry-After; zero means 1 minute.
	RetryAfterMax time.Duration
	// Permanent, if set, marks errors of the transport that no retry can help
	// (an address a webhook must not reach, say).
	Permanent func(error) bool
	// OnRetry, if set, hears of each failed try that will be tried again.
	OnRetry func(err error, wait time.Duration)
}

func (c *Client) attempts() int { return cmpOr(c.Attempts, 6) }

func (c *Client) maxElapsed() time.Duration { return cmpOr(c.MaxElapsed, time.Minute) }

func (c *Client) retryAfterMax() time.Duration { return cmpOr(c.RetryAfterMax, time.Minute) }

func cmpOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// StatusError is an answer outside 2xx.
type StatusError struct {
	Method string
	URL    string // shown as is: callers pass a URL fit for logs
	Status int
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: status %d", e.Method, e.URL, e.Status)
	if e.Status >= 300 && e.Status < 400 {
		msg += " (a redirect, which is not followed)"
	}
	return msg
}

// Post sends body to u (with header, on top of Prepare's), tried again on
// network errors, 429 and 5xx, honouring Retry-After, until it succeeds, ctx
// ends, Attempts are spent or MaxElapsed has passed. 3xx (never followed) and
// other 4xx answers are final. shown is u as errors may show it.
func (c *Client) Post(ctx context.Context, u, shown string, body []byte, header http.Header) error {
	b := &backoff.ExponentialBackOff{
		InitialInterval: cmpOr(c.MinWait, 250*time.Millisecond), RandomizationFactor: 0.5, Multiplier: 2,
		MaxInterval: cmpOr(c.MaxWait, 10*time.Second),
	}
	opts := []backoff.RetryOption{
		backoff.WithBackOff(b),
		backoff.WithMaxTries(uint(c.attempts())),
		backoff.WithMaxElapsedTime(c.maxElapsed()),
	}
	if c.OnRetry != nil {
		opts = append(opts, backoff.WithNotify(c.OnRetry))
	}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, c.postOnce(ctx, u, shown, body, header)
	}, opts...)
	var perm *backoff.PermanentError
	if errors.As(err, &perm) {
		return perm.Err
	}
	return err
}

func (c *Client) postOnce(ctx context.Context, u, shown string, body []byte, header http.Header) error {
	ctx, cancel := context.WithTimeout(ctx, cmpOr(c.AttemptTimeout, time.Minute))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return backoff.Permanent(fmt.Errorf("POST %s: %w", shown, errors.Unwrap(err)))
	}
	if c.Prepare != nil {
		c.Prepare(req)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the whole URL
		}
		err = fmt.Errorf("POST %s: %w", shown, err)
		if c.Permanent != nil && c.Permanent(err) {
			return backoff.Permanent(err)
		}
		return err // a network error: worth a retry
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	return c.statusError("POST", shown, resp)
}

// statusError is nil for 2xx, a retryable error (with the Retry-After wait,
// capped) for 429 and 5xx, and a permanent one otherwise.
func (c *Client) statusError(method, shown string, resp *http.Response) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err := &StatusError{Method: method, URL: shown, Status: code}
	if code != http.StatusTooManyRequests && code < 500 {
		return backoff.Permanent(err)
	}
	// A Retry-After longer than the retry budget would end the retries at once.
	if d, ok := RetryAfter(resp.Header, time.Now(), min(c.retryAfterMax(), c.maxElapsed()/2)); ok {
		return fmt.Errorf("%w (%w)", err, &backoff.RetryAfterError{Duration: d})
	}
	return err
}

// Answer is one long-poll answer.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
	// Pause is how long the peer asked to be left alone: its Retry-After on a
	// 429 (capped), or TooMany without one. Zero otherwise.
	Pause time.Duration
}

// Poll makes one GET of u that may wait for as long as timeout (a long poll)
// and reads at most limit bytes of the answer. A poll that ran out is no error:
// an empty Answer of status 0. 429 is an Answer with its Pause; any other
// status outside 2xx, 204 and 400 (which RunPod answers when it has nothing) is
// a *StatusError.
func (c *Client) Poll(ctx context.Context, u, shown string, timeout time.Duration, limit int64, tooMany time.Duration) (Answer, error) {
	pollCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pollCtx, http.MethodGet, u, nil)
	if err != nil {
		return Answer{}, fmt.Errorf("GET %s: %w", shown, errors.Unwrap(err))
	}
	if c.Prepare != nil {
		c.Prepare(req)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return Answer{}, nil // the long poll ran out: ask again
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Answer{}, fmt.Errorf("GET %s: %w", shown, err)
	}
	defer resp.Body.Close()
	a := Answer{Status: resp.StatusCode, Header: resp.Header}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		if d, ok := RetryAfter(resp.Header, time.Now(), c.retryAfterMax()); ok {
			a.Pause = d
		} else {
			a.Pause = tooMany
		}
		return a, nil
	case resp.StatusCode == http.StatusNoContent, resp.StatusCode == http.StatusBadRequest:
		return a, nil
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		return a, &StatusError{Method: "GET", URL: shown, Status: resp.StatusCode}
	}
	if a.Body, err = io.ReadAll(io.LimitReader(resp.Body, limit)); err != nil {
		return a, fmt.Errorf("GET %s: read: %w", shown, err)
	}
	return a, nil
}

// Get makes one GET with the client's headers, bounded by timeout, and returns
// nil for a 2xx answer (a heartbeat, say).
func (c *Client) Get(ctx context.Context, u, shown string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", shown, errors.Unwrap(err))
	}
	if c.Prepare != nil {
		c.Prepare(req)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %w", shown, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return &StatusError{Method: "GET", URL: shown, Status: resp.StatusCode}
	}
	return nil
}

// RetryAfter reads a Retry-After header (seconds, fractional accepted, or an
// HTTP date), capped at limit.
func RetryAfter(hdr http.Header, now time.Time, limit time.Duration) (time.Duration, bool) {
	v := hdr.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || math.IsNaN(secs) {
			return 0, false
		}
		d = time.Duration(min(secs, limit.Seconds()) * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	} else {
		return 0, false
	}
	return min(d, limit), true
}
