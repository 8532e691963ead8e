package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// The paced stream: the engine runs with ITL pace, so a chat stream is the role
// chunk, deltas content chunks pace apart (the last carries finish_reason), the
// usage chunk and [DONE].
const (
	pace   = 20 * time.Millisecond
	deltas = 64
	// eventsPerStream: role, deltas, usage, [DONE].
	eventsPerStream = deltas + 3
	// stallGap is a stall: any wait between two events (or from the request to
	// the first event) longer than ten paces.
	stallGap = 10 * pace
)

// streamBody asks for n tokens, streamed, with the usage chunk.
func streamBody(model string, n int) []byte {
	return fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":%d,"stream":true,"stream_options":{"include_usage":true}}`, model, n)
}

// streamStats is what the client observed of one stream.
type streamStats struct {
	ttft   time.Duration   // request start to the first content delta
	maxGap time.Duration   // the longest wait between events, request start included
	maxAt  int             // the event that ended that wait: 0 is the first event
	gaps   []time.Duration // between consecutive content deltas
}

// readStream sends one streaming request and times every SSE event as it
// completes. It fails unless it sees exactly want content deltas and [DONE].
func readStream(ctx context.Context, c *http.Client, url string, body []byte, want int) (streamStats, error) {
	var st streamStats
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return st, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("POST %s: status %d", url, resp.StatusCode)
	}
	st.gaps = make([]time.Duration, 0, want)
	br := bufio.NewReaderSize(resp.Body, 4<<10)
	last, prevDelta := start, time.Time{}
	n, events, done, inEvent, isDelta, isDone, partial := 0, 0, false, false, false, false, false
	for !done {
		line, err := br.ReadSlice('\n')
		cont := partial // line is the rest of a line longer than the buffer
		partial = errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !partial {
			if errors.Is(err, io.EOF) {
				break
			}
			return st, err
		}
		if cont {
			continue
		}
		if len(bytes.TrimRight(line, "\r\n")) > 0 {
			if !inEvent && bytes.HasPrefix(line, []byte("data: ")) {
				isDelta = bytes.Contains(line, []byte(`"delta":{"content":`))
				isDone = bytes.HasPrefix(line, []byte("data: [DONE]"))
			}
			inEvent = true
			continue
		}
		if !inEvent {
			continue
		}
		now := time.Now() // the event is complete: its blank line has arrived
		if g := now.Sub(last); g > st.maxGap {
			st.maxGap, st.maxAt = g, events
		}
		last = now
		events++
		switch {
		case isDelta && n == 0:
			st.ttft = now.Sub(start)
		case isDelta:
			st.gaps = append(st.gaps, now.Sub(prevDelta))
		case isDone:
			done = true
		}
		if isDelta {
			n++
			prevDelta = now
		}
		inEvent, isDelta, isDone = false, false, false
	}
	// Drain the end of the chunked body so the connection goes back to the pool.
	_, _ = io.Copy(io.Discard, io.LimitReader(br, 64<<10))
	if !done || n != want {
		return st, fmt.Errorf("stream from %s: %d content deltas, [DONE] %v; want %d and [DONE]", url, n, done, want)
	}
	return st, nil
}

// pacedRound runs conc clients, each reading perClient streams of want deltas one
// after the other; client k starts k*pace/conc late so the streams' ticks interleave.
func pacedRound(ctx context.Context, c *http.Client, url string, body []byte, want, conc, perClient int) ([]streamStats, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(perClient)*(deltas*pace+10*time.Second))
	defer cancel()
	var mu sync.Mutex
	var all []streamStats
	var firstErr error
	var wg sync.WaitGroup
	for k := range conc {
		wg.Go(func() {
			time.Sleep(time.Duration(k) * pace / time.Duration(conc))
			for range perClient {
				st, err := readStream(ctx, c, url, body, want)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					all = append(all, st)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return all, firstErr
}

// heldStep is one step of concurrent paced streams on one path.
type heldStep struct {
	n, failed, stalled int
	stalledFirst       int // stalled streams whose longest wait was for the first event
	worst              time.Duration
	worstAt            int           // the event that ended the worst gap: 0 is the first
	cpu                time.Duration // the proxy's CPU time during the step; 0 for direct
	firstErr           error
}

func (h heldStep) held() bool { return h.failed == 0 && h.stalled == 0 }

// holdStreams opens n paced streams, their starts spread evenly over ramp, and
// counts those that failed or stalled; worst is the longest wait seen.
func holdStreams(ctx context.Context, c *http.Client, url string, body []byte, n int, ramp time.Duration) heldStep {
	ctx, cancel := context.WithTimeout(ctx, ramp+deltas*pace+20*time.Second)
	defer cancel()
	h := heldStep{n: n}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			time.Sleep(time.Until(start.Add(ramp * time.Duration(i) / time.Duration(n))))
			st, err := readStream(ctx, c, url, body, deltas)
			mu.Lock()
			defer mu.Unlock()
			if st.maxGap > h.worst {
				h.worst, h.worstAt = st.maxGap, st.maxAt
			}
			switch {
			case err != nil:
				h.failed++
				if h.firstErr == nil {
					h.firstErr = err
				}
			case st.maxGap > stallGap:
				h.stalled++
				if st.maxAt == 0 {
					h.stalledFirst++
				}
			}
		})
	}
	wg.Wait()
	return h
}
