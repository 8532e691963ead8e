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

// nativeUsage is an item's token counts. Input is left out until the engine
// has said how many tokens the prompt has (vLLM says it on every chunk, with the
// continuous usage the worker asks for; another server may say it only at the
// end): an item never reports a count that is not true.
type nativeUsage struct {
	Input  *int64 `json:"input,omitempty"`
	Output int64  `json:"output"`
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
	var counts tokenCounts
	whole := make([]strings.Builder, n)
	flush := func(units []batching.Unit) error {
		item := nativeItem{Choices: make([]nativeChoice, n)}
		for i := range item.Choices {
			item.Choices[i].Tokens = []string{}
		}
		tokens := 0
		for _, u := range units {
			if u.Tag < n { // not the usage unit
				item.Choices[u.Tag].Tokens = append(item.Choices[u.Tag].Tokens, string(u.Data))
				tokens++
			}
		}
		r.Metrics.Batch("tokens", tokens)
		item.Usage = counts.flushed(int64(tokens))
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
			final := len(chunk.Choices) == 0
			counts.engineSaid(chunk.Usage.PromptTokens, chunk.Usage.CompletionTokens, final)
			if final && in.Stream && !counts.settled() {
				// The last item must carry the engine's final usage. A unit of
				// no token (tag n, "usage") takes it there: it joins the tokens
				// still waiting, or, when they were all flushed with an older
				// usage, makes an item of its own.
				if err := add(n, nil, nil); err != nil {
					return relay.Gone(err)
				}
			}
		}
		for _, ch := range chunk.Choices {
			text := ch.Delta.Content + ch.Text
			if text == "" || ch.Index < 0 || ch.Index >= n {
				continue
			}
			if !in.Stream {
				whole[ch.Index].WriteString(text)
				counts.seen.Add(1)
				continue
			}
			if err := add(ch.Index, []byte(text), nil); err != nil {
				return relay.Gone(err)
			}
		}
		return nil
	}
	if err := r.relay(ctx, resp.Body, relay.Options{Policy: policy, DoneExpected: true, Units: units, Flush: flush}); err != nil || in.Stream {
		return c.out, err
	}
	item := nativeItem{Choices: make([]nativeChoice, n), Usage: counts.flushed(counts.seen.Load())}
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

// tokenCounts follows a native job's token counts, as the engine says them and
// as the worker counts them. The engine's reader writes it and the batch
// flushes (on the reader's goroutine or the time cap's) read it.
type tokenCounts struct {
	prompt    atomic.Int64 // the prompt's tokens; 0 until the engine said it
	final     atomic.Int64 // the engine's final completion_tokens (the usage chunk of a stream); 0 until then
	seen      atomic.Int64 // token deltas seen, for a job that is not streamed
	delivered int64        // token deltas in the items so far; flushes only
	// What the last item said, for settled.
	saidInput, saidOutput atomic.Int64
}

// settled reports whether the last item already said what the engine's final
// usage says, so that no item need follow to say it.
func (t *tokenCounts) settled() bool {
	return t.saidInput.Load() == t.prompt.Load() && t.saidOutput.Load() >= t.final.Load()
}

// engineSaid records a usage object of the engine: of one chunk (continuous
// usage), or the stream's final one (choices empty).
func (t *tokenCounts) engineSaid(prompt, completion int64, final bool) {
	if prompt > 0 {
		t.prompt.Store(prompt)
	}
	if final {
		t.final.Store(completion)
	}
}

// flushed counts units more tokens into the items and returns the usage of the
// item that holds them: the prompt's count once the engine has said it, and the
// tokens so far, or the engine's final count once it has said it (it counts
// tokens whose text is empty, which make no delta).
func (t *tokenCounts) flushed(units int64) nativeUsage {
	t.delivered += units
	u := nativeUsage{Output: max(t.delivered, t.final.Load())}
	p := t.prompt.Load()
	if p > 0 {
		u.Input = &p
	}
	t.saidInput.Store(p)
	t.saidOutput.Store(u.Output)
	return u
}
