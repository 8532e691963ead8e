package runpod

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/openai"
	"github.com/vllm-worker/vllm-worker/relay"
)

// defaultMaxTokens is the native input's max_tokens when sampling_params has none.
const defaultMaxTokens = 16

// nativeItem is one output item of a native job.
type nativeItem struct {
	Choices []nativeChoice `json:"choices"`
	Usage   nativeUsage    `json:"usage"`
}

type nativeChoice struct {
	Tokens []string `json:"tokens"`
}

type nativeUsage struct {
	Input  int64 `json:"input"`
	Output int64 `json:"output"`
}

// nativeRequest builds the engine request of a native job: messages (or a
// templated prompt) go to the chat route, a plain prompt to completions. The
// engine always streams, with usage on every chunk, so items carry usage as they go.
func (r *Runner) nativeRequest(in *Input) (path string, body []byte, n int, err error) {
	req := make(map[string]json.RawMessage, len(in.SamplingParams)+5)
	for k, v := range in.SamplingParams {
		req[k] = v
	}
	if _, ok := req["max_tokens"]; !ok {
		req["max_tokens"] = json.RawMessage(strconv.Itoa(defaultMaxTokens))
	}
	n = 1
	if v, ok := req["n"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &n); err != nil {
			return "", nil, 0, &InputError{Field: "sampling_params.n", Message: "must be an integer"}
		}
	}
	switch {
	case in.Messages != nil:
		path = "/v1/chat/completions"
		req["messages"] = in.Messages
	case in.ApplyChatTemplate:
		path = "/v1/chat/completions"
		msgs, _ := json.Marshal([]map[string]string{{"role": "user", "content": in.Prompt}})
		req["messages"] = msgs
	default:
		path = "/v1/completions"
		req["prompt"] = jsonString(in.Prompt)
	}
	req["stream"] = json.RawMessage("true")
	req["stream_options"] = json.RawMessage(`{"include_usage":true,"continuous_usage_stats":true}`)
	body, err = r.withModel(req)
	return path, body, n, err
}

// streamChunk is the part of a chat or completion chunk a native job reads.
type streamChunk struct {
	Choices []struct {
		Index int    `json:"index"`
		Text  string `json:"text"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	} `json:"usage"`
}

// runNative runs a prompt or messages job and produces worker-vllm's native items:
// {"choices":[{"tokens":[...]}, ...],"usage":{"input":P,"output":tokens so far}}.
// A streamed job's unit is one token delta of one choice.
func (r *Runner) runNative(ctx context.Context, requestID string, in *Input, policy batching.Policy, emit Emit) ([]json.RawMessage, error) {
	path, body, n, err := r.nativeRequest(in)
	if err != nil {
		return nil, err
	}
	resp, err := r.send(ctx, requestID, http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	c := &collector{emit: emit}
	var promptTokens atomic.Int64 // written by the reader, read by flushes
	var output int64              // tokens flushed so far; touched only by flush
	var completion int64
	whole := make([]strings.Builder, n)
	flush := func(units []batching.Unit) error {
		item := nativeItem{Choices: make([]nativeChoice, n)}
		for i := range item.Choices {
			item.Choices[i].Tokens = []string{}
		}
		for _, u := range units {
			if u.Tag < n {
				item.Choices[u.Tag].Tokens = append(item.Choices[u.Tag].Tokens, string(u.Data))
			}
		}
		output += int64(len(units))
		r.Metrics.Batch("tokens", len(units))
		item.Usage = nativeUsage{Input: promptTokens.Load(), Output: output}
		b, err := json.Marshal(item)
		if err != nil {
			return fmt.Errorf("encode item: %w", err)
		}
		return c.add(b)
	}
	// Each chunk becomes its token deltas, one unit per choice's delta; a job
	// that is not streamed gathers them into one text per choice instead.
	units := func(ev openai.Event, add relay.AddFunc) error {
		var chunk streamChunk
		if err := json.Unmarshal(ev.Data, &chunk); err != nil {
			return fmt.Errorf("a chunk that is not JSON: %w", err)
		}
		if chunk.Usage != nil {
			promptTokens.Store(chunk.Usage.PromptTokens)
			completion = chunk.Usage.CompletionTokens
		}
		for _, ch := range chunk.Choices {
			text := ch.Delta.Content + ch.Text
			if text == "" || ch.Index < 0 || ch.Index >= n {
				continue
			}
			if !in.Stream {
				whole[ch.Index].WriteString(text)
				continue
			}
			if err := add(ch.Index, []byte(text), nil); err != nil {
				return relay.Gone(err)
			}
		}
		return nil
	}
	res := relay.Run(ctx, resp.Body, relay.Options{Policy: policy, DoneExpected: true, Units: units, Flush: flush})
	if err := streamError(ctx, res); err != nil || in.Stream {
		return c.out, err
	}
	item := nativeItem{Choices: make([]nativeChoice, n), Usage: nativeUsage{Input: promptTokens.Load(), Output: completion}}
	for i := range whole {
		item.Choices[i].Tokens = []string{whole[i].String()}
	}
	b, err := json.Marshal(item)
	if err != nil {
		return nil, fmt.Errorf("encode item: %w", err)
	}
	err = c.add(b)
	return c.out, err
}
