package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/vllm-worker/vllm-worker/internal/fakerunpod"
)

// The handler-mode case: RunPod's job queue (the fake RunPod server, its stream
// and done POSTs slowed to a latency) hands out handlerJobs streamed and as many
// plain native jobs of handlerTokens tokens at handlerITL a token, all at once,
// to one worker in handler mode with its default batch settings. A streamed job
// posts its items to job-stream as it goes; a plain one posts its one item and
// its result. Take to done, the streamed job must not fall behind the plain one
// by more than two POSTs, whatever the latency.
const (
	handlerJobs   = 3
	handlerTokens = 400
	handlerITL    = 5 * time.Millisecond
)

// handlerLatencies are the RunPod POST latencies measured: a worker near
// RunPod's API, and one far from it.
var handlerLatencies = []time.Duration{20 * time.Millisecond, 80 * time.Millisecond}

// handlerResult is one latency's figures: take-to-done means, one per round.
type handlerResult struct {
	latency         time.Duration
	streamed, plain []time.Duration
	items           int // stream items of one streamed job, in the last round
}

// handlerPhase runs the handler-mode case at each latency, with a worker of its
// own in front of an engine paced at handlerITL.
func (b *bench) handlerPhase(ctx context.Context) error {
	engineURL, err := b.startEngine(ctx, "engine (handler mode)", handlerITL)
	if err != nil {
		return err
	}
	for _, latency := range handlerLatencies {
		r, err := b.handlerRounds(ctx, engineURL, latency)
		if err != nil {
			return fmt.Errorf("at %v per POST: %w", latency, err)
		}
		b.res.handler = append(b.res.handler, r)
		s, p := median(r.streamed), median(r.plain)
		b.logf("   %v per POST: streamed %v, plain %v (x%.2f), %d items per streamed job", latency,
			s.Round(time.Millisecond), p.Round(time.Millisecond), float64(s)/float64(p), r.items)
	}
	return nil
}

// handlerRounds measures b.p.handlerRounds rounds at one latency.
func (b *bench) handlerRounds(ctx context.Context, engineURL string, latency time.Duration) (handlerResult, error) {
	r := handlerResult{latency: latency}
	fake := fakerunpod.Start(fakerunpod.Options{LongPoll: 100 * time.Millisecond, PostLatency: latency})
	defer fake.Close()
	port, err := freePort()
	if err != nil {
		return r, err
	}
	env := append(slices.Clone(b.env), "ENGINE_URL="+engineURL, "MODEL_NAME="+model,
		"HOST=127.0.0.1", "PORT="+strconv.Itoa(port), "LOG_LEVEL=warn", "BASE_PATH="+b.dir)
	p, err := startProc(fmt.Sprintf("worker (handler mode, %v per POST)", latency), []string{b.bin}, append(env, fake.Env()...))
	if err != nil {
		return r, err
	}
	defer p.stop()
	if _, err := waitOK(ctx, p, "http://"+loopback(port)+"/ping", 10*time.Second); err != nil {
		return r, err
	}
	for round := range b.p.handlerRounds {
		var streamed, plain []string
		for i := range handlerJobs {
			for _, stream := range []bool{true, false} {
				id := fmt.Sprintf("r%d-%s-%d", round, map[bool]string{true: "streamed", false: "plain"}[stream], i)
				fake.Enqueue(id, json.RawMessage(fmt.Sprintf(
					`{"prompt":"story %d","sampling_params":{"max_tokens":%d},"stream":%v}`, i, handlerTokens, stream)))
				if stream {
					streamed = append(streamed, id)
				} else {
					plain = append(plain, id)
				}
			}
		}
		wait, cancel := context.WithTimeout(ctx, time.Minute)
		err := fake.Wait(wait, func() bool {
			for _, id := range append(slices.Clone(streamed), plain...) {
				if len(fake.Dones(id)) == 0 {
					return false
				}
			}
			return true
		})
		cancel()
		if err != nil {
			return r, fmt.Errorf("round %d: the jobs did not finish: %w (%s)", round+1, err, p.failure("worker"))
		}
		for _, id := range append(slices.Clone(streamed), plain...) {
			if d := fake.Dones(id); d[0].Error != "" {
				return r, fmt.Errorf("job %s failed: %s", id, d[0].Error)
			}
		}
		r.streamed = append(r.streamed, meanTakeToDone(fake, streamed))
		r.plain = append(r.plain, meanTakeToDone(fake, plain))
		r.items = len(fake.Stream(streamed[0]))
	}
	return r, nil
}

// meanTakeToDone is the mean time from job-take to job-done of the jobs ids.
func meanTakeToDone(fake *fakerunpod.Server, ids []string) time.Duration {
	var sum time.Duration
	for _, id := range ids {
		t := fake.Times(id)
		sum += t.Done.Sub(t.Taken)
	}
	return sum / time.Duration(len(ids))
}
