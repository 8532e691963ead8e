package runpod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/metrics"
	"github.com/vllm-worker/vllm-worker/openai"
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
	// Metrics records the size of every streamed item; nil records nothing.
	Metrics *metrics.Metrics
}

// Emit receives the job's output items in order, as they are produced. The item
// belongs to the callee. An error stops the job.
type Emit func(item json.RawMessage) error

// EngineError is an error the engine answered with, or a failure to reach it.
type EngineError struct {
	Status  int
	Message string
}

func (e *EngineError) Error() string {
	return fmt.Sprintf("engine error (%d %s): %s", e.Status, openai.TypeFor(e.Status), e.Message)
}

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

// send makes the engine request and turns an error status into *EngineError.
func (r *Runner) send(ctx context.Context, requestID, method, path string, body []byte) (*http.Response, error) {
	resp, err := r.Engine.Do(ctx, method, path, body, requestID)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		apiErr := engine.AsAPIError(ctx, err)
		return nil, &EngineError{Status: apiErr.Status, Message: apiErr.Message}
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, &EngineError{Status: resp.StatusCode, Message: errorMessage(resp.StatusCode, engine.ErrorBody(resp))}
	}
	return resp, nil
}

// errorMessage extracts the message of an engine error envelope.
func errorMessage(status int, envelope []byte) string {
	var env struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(envelope, &env) == nil && env.Error.Message != "" {
		return env.Error.Message
	}
	return http.StatusText(status)
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
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// OpenAI streams end with [DONE]; others (the Responses API) just end.
		expectDone := in.Path == "/v1/chat/completions" || in.Path == "/v1/completions"
		err := r.relayEvents(ctx, resp.Body, policy, c, expectDone)
		return c.out, err
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &EngineError{Status: http.StatusBadGateway, Message: "the engine's answer was cut: " + err.Error()}
	}
	item := json.RawMessage(raw)
	if !json.Valid(raw) {
		item = jsonString(string(raw)) // e.g. a plain-text answer of a LoRA route
	}
	err = c.add(item)
	return c.out, err
}

// relayEvents turns an engine SSE stream into items of whole events.
func (r *Runner) relayEvents(ctx context.Context, body io.Reader, policy batching.Policy, c *collector, expectDone bool) error {
	flush := func(units []batching.Unit) error {
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
			if data := eventData(u.Data); data != nil && !openai.IsDone(data) {
				chunks = append(chunks, data)
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
	batch := batching.New(policy, flush)
	events := openai.NewEventReader(body)
	var streamErr error
	for {
		ev, err := events.Next()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				streamErr = ctx.Err()
			case err == io.EOF && !expectDone: // a clean end of a stream without [DONE]
			default:
				streamErr = &EngineError{Status: http.StatusBadGateway, Message: "the engine stream ended before [DONE]"}
			}
			break
		}
		if err := batch.Add(0, ev.Raw); err != nil {
			streamErr = err
			break
		}
		if ev.Done() {
			break
		}
		if msg, ok := inBandError(ev.Data); ok {
			streamErr = &EngineError{Status: http.StatusInternalServerError, Message: msg}
			// vLLM follows the error event with [DONE]; keep relaying to the end.
		}
	}
	if err := batch.Close(); err != nil && streamErr == nil {
		streamErr = err
	}
	return streamErr
}

// eventData returns the JSON payload of one raw event ("data: {...}\n\n"), or nil.
func eventData(raw []byte) json.RawMessage {
	s := strings.TrimRight(string(raw), "\r\n")
	var data []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if v, ok := strings.CutPrefix(line, "data:"); ok {
			data = append(data, strings.TrimPrefix(v, " "))
		}
	}
	if len(data) == 0 {
		return nil
	}
	joined := strings.Join(data, "\n")
	if joined == "[DONE]" {
		return json.RawMessage(joined)
	}
	if !json.Valid([]byte(joined)) {
		return jsonString(joined)
	}
	return json.RawMessage(joined)
}

// inBandError reports the message of an error event {"error": {...}}.
func inBandError(data []byte) (string, bool) {
	if len(data) == 0 || data[0] != '{' || !strings.Contains(string(data), `"error"`) {
		return "", false
	}
	var ev struct {
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &ev) != nil || ev.Error == nil {
		return "", false
	}
	if ev.Error.Message == "" {
		return "the engine reported an error", true
	}
	return ev.Error.Message, true
}
