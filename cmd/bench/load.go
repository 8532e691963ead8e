package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// target is one way to reach an engine: direct, through the worker, through nginx.
type target struct {
	name string // pathDirect, pathWorker, pathNginx, pathFloor
	url  string // the chat completions URL
}

const (
	pathDirect = "direct"
	pathWorker = "worker"
	pathNginx  = "nginx"
	pathFloor  = "floor" // the Go floor (floor.go)
)

// newClient is the one load generator for every path: keep-alive, no proxy, no
// compression, HTTP/1.1, and an idle pool of conns per host so that a warmed
// path never re-dials.
func newClient(conns int) *http.Client {
	t := &http.Transport{
		Proxy:                 nil, // loopback only, never through HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       2 * time.Minute,
		ResponseHeaderTimeout: 10 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// post sends one non-streaming request and reads the whole answer.
func post(ctx context.Context, c *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: status %d", url, resp.StatusCode)
	}
	return err
}

// sequential sends up to n requests one after another (concurrency 1), for at
// most limit, and returns each one's latency: request built to body read.
func sequential(ctx context.Context, c *http.Client, url string, body []byte, n int, limit time.Duration) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	deadline := time.Now().Add(limit)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		start := time.Now()
		if err := post(ctx, c, url, body); err != nil {
			return lat, err
		}
		end := time.Now()
		lat = append(lat, end.Sub(start))
		if end.After(deadline) {
			break
		}
	}
	return lat, ctx.Err()
}

// throughput runs conc closed-loop clients for dur and returns completed
// requests per second. More than maxErrors failures end the round with an error.
func throughput(ctx context.Context, c *http.Client, url string, body []byte, conc int, dur time.Duration) (float64, error) {
	rps, _, err := throughputN(ctx, c, url, body, conc, dur)
	return rps, err
}

// throughputN is throughput that also returns how many requests completed.
func throughputN(ctx context.Context, c *http.Client, url string, body []byte, conc int, dur time.Duration) (float64, int64, error) {
	const maxErrors = 100
	ctx, cancel := context.WithTimeout(ctx, dur+10*time.Second)
	defer cancel()
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(dur)
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := post(ctx, c, url, body); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					if failed.Add(1) > maxErrors {
						cancel()
					}
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := failed.Load(); n > 0 {
		return 0, 0, fmt.Errorf("%d of %d requests failed, first: %v", n, n+ok.Load(), firstErr)
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	return float64(ok.Load()) / elapsed.Seconds(), ok.Load(), nil
}
