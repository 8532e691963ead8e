package runpod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/metrics"
	"github.com/vllm-worker/vllm-worker/relay"
)

// Runner runs jobs against the engine. It is safe for concurrent use.
type Runner struct {
	Engine *engine.Client
	Models *engine.Models
	// Batch is the default dynamic batch-size policy; jobs may override it.
	Batch batching.Policy
	// RawOpenAI makes streamed OpenAI items strings of whole SSE events
	// (RAW_OPENAI_OUTPUT=1) instead of lists of parsed chunks.
	RawOpenAI bool
	// IdleTimeout fails a job whose engine stream sent nothing for this long (a
	// gap, not a total; STREAM_IDLE_TIMEOUT_SECONDS), aborting its engine
	// request; zero means none.
	IdleTimeout time.Duration
	// Metrics records the size of every streamed item and the streams ended by
	// IdleTimeout; nil records nothing.
	Metrics *metrics.Metrics
}

// Emit receives the job's output items in order, as they are produced. The item
// belongs to the callee. An error stops the job.
type Emit func(item json.RawMessage) error

// Run executes one job: it sends in to the engine, calls emit for every output
// item and returns them all (the job's aggregated output). A cancelled ctx aborts
// the engine request.
func (r *Runner) Run(ctx context.Context, requestID string, in *Input, emit Emit) ([]json.RawMessage, error) {
	policy, err := r.Batch.Override(in.MaxBatchSize, in.MinBatchSize, in.GrowthFactor)
	if err != nil {
		var fe *batching.FieldError
		if errors.As(err, &fe) {
			return nil, &InputError{Field: fe.Field, Message: fe.Reason}
		}
		return nil, &InputError{Message: err.Error()}
	}
	if in.Kind == KindNative {
		return r.runNative(ctx, requestID, in, policy, emit)
	}
	return r.runOpenAI(ctx, requestID, in, policy, emit)
}

// collector gathers the items of one job and forwards them to emit.
type collector struct {
	emit Emit
	out  []json.RawMessage
}

func (c *collector) add(item json.RawMessage) error {
	c.out = append(c.out, item)
	if c.emit == nil {
		return nil
	}
	return c.emit(item)
}

// send makes the engine request. A failure, and an error status, is an
// *engine.Error (or ctx's error when the job was cancelled).
func (r *Runner) send(ctx context.Context, requestID, method, path string, body []byte) (*http.Response, error) {
	resp, err := r.Engine.Do(ctx, method, path, body, requestID)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, engine.ReadError(resp)
	}
	return resp, nil
}

// relay reads one engine stream of a job (see relay.Run) and returns the job's
// error for how it ended: nil when done, the engine's error (an error event, a
// cut, a stream quiet past IdleTimeout, ...), the consumer's, or ctx's.
func (r *Runner) relay(ctx context.Context, body io.ReadCloser, o relay.Options) error {
	o.IdleTimeout = r.IdleTimeout
	res := relay.Run(ctx, body, o)
	if res.End == relay.Idle {
		r.Metrics.Aborted(metrics.AbortIdleTimeout)
	}
	return streamError(ctx, res)
}

// streamError is the job's error for how its stream ended.
func streamError(ctx context.Context, res relay.Result) error {
	switch {
	case res.End == relay.Done:
		return nil
	case res.End == relay.Cancelled || ctx.Err() != nil:
		return ctx.Err()
	}
	return res.Err
}

// withModel marshals body, giving it the served model name when it has none.
func (r *Runner) withModel(body map[string]json.RawMessage) ([]byte, error) {
	if _, ok := body["model"]; !ok {
		if m := r.Models.First(); m != "" {
			body["model"] = jsonString(m)
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode engine request: %w", err)
	}
	return b, nil
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// runOpenAI runs openai_route and route jobs: one engine request, its answer
// relayed as items. Streams become items of whole SSE events.
func (r *Runner) runOpenAI(ctx context.Context, requestID string, in *Input, policy batching.Policy, emit Emit) ([]json.RawMessage, error) {
	var body []byte
	if in.Body != nil {
		var err error
		if body, err = r.withModel(in.Body); err != nil {
			return nil, err
		}
	}
	resp, err := r.send(ctx, requestID, in.Method, in.Path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	c := &collector{emit: emit}
	if relay.IsEventStream(resp) {
		err := r.relay(ctx, resp.Body, relay.Options{
			Policy:       policy,
			DoneExpected: relay.DoneExpected(in.Path),
			Flush:        r.eventItems(c),
		})
		return c.out, err
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, engine.Broken("the engine's answer was cut", err)
	}
	item := json.RawMessage(raw)
	if !json.Valid(raw) {
		item = jsonString(string(raw)) // e.g. a plain-text answer of a LoRA route
	}
	err = c.add(item)
	return c.out, err
}

// eventItems makes items of whole SSE events: with RAW_OPENAI_OUTPUT, one string
// of the events as the engine sent them; without, a list of their data (the
// chunk objects), [DONE] left out.
func (r *Runner) eventItems(c *collector) batching.FlushFunc {
	return func(units []batching.Unit) error {
		r.Metrics.Batch("job_sse", len(units))
		if r.RawOpenAI {
			var sb strings.Builder
			for _, u := range units {
				sb.Write(u.Data)
			}
			return c.add(jsonString(sb.String()))
		}
		chunks := make([]json.RawMessage, 0, len(units))
		for _, u := range units {
			if u.Tag == relay.TagDone || len(u.Payload) == 0 {
				continue
			}
			if json.Valid(u.Payload) {
				chunks = append(chunks, json.RawMessage(u.Payload))
			} else {
				chunks = append(chunks, jsonString(string(u.Payload)))
			}
		}
		if len(chunks) == 0 {
			return nil
		}
		item, err := json.Marshal(chunks)
		if err != nil {
			return fmt.Errorf("encode item: %w", err)
		}
		return c.add(item)
	}
}
