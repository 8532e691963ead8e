package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/sashabaranov/go-openai"
)

// genTokens is the max_tokens of the short generations.
const genTokens = 16

const (
	chatPrompt       = "Why is the sky blue?"
	completionPrompt = "The sky is blue because"
	unknownModel     = "vllm-worker-check-no-such-model"
)

// workerChecks are the checks of a worker or a RunPod endpoint, in order.
func workerChecks() []checkDef {
	return []checkDef{
		{"health", checkHealth},
		{"models", checkModels},
		{"chat", checkChat},
		{"chat_stream", checkChatStream},
		{"completions", checkCompletions},
		{"completions_stream", checkCompletionsStream},
		{"unknown_model", checkUnknownModel},
		{"invalid_request", checkInvalidRequest},
		{"stream_error", checkStreamError},
		{"runsync_prompt", func(p *probe) error { return checkRunsyncNative(p, false, false) }},
		{"runsync_prompt_stream", func(p *probe) error { return checkRunsyncNative(p, false, true) }},
		{"runsync_messages", func(p *probe) error { return checkRunsyncNative(p, true, false) }},
		{"runsync_messages_stream", func(p *probe) error { return checkRunsyncNative(p, true, true) }},
		{"openai_route", func(p *probe) error { return checkOpenAIRoute(p, false) }},
		{"openai_route_stream", func(p *probe) error { return checkOpenAIRoute(p, true) }},
		{"run_stream_status", checkRunStreamStatus},
		{"cancel", checkCancel},
	}
}

// checkHealth: /health answers 200 with RunPod's endpoint-health counts (jobs
// and workers); a worker's own /health also says "status": "ready".
func checkHealth(p *probe) error {
	url := p.target.URL("/health")
	resp, err := p.do(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("GET /health: reading the answer: %w", err)
	}
	var h struct {
		Status  *string            `json:"status"`
		Phase   string             `json:"phase"`
		Detail  string             `json:"detail"`
		Jobs    map[string]float64 `json:"jobs"`
		Workers map[string]float64 `json:"workers"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("GET /health: status %d, not a JSON object (%v): %s", resp.StatusCode, err, quote(raw))
	}
	if h.Status != nil && *h.Status != "ready" {
		what := *h.Status
		if h.Phase != "" {
			what += " (" + h.Phase + ")"
		}
		if h.Detail != "" {
			what += ": " + h.Detail
		}
		return fmt.Errorf("GET /health: status %d, the worker is %s, not ready", resp.StatusCode, what)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /health: status %d, want 200: %s", resp.StatusCode, quote(raw))
	}
	var missing []string
	for _, k := range []string{"completed", "failed", "inProgress", "inQueue"} {
		if _, ok := h.Jobs[k]; !ok {
			missing = append(missing, "jobs."+k)
		}
	}
	for _, k := range []string{"idle", "running"} {
		if _, ok := h.Workers[k]; !ok {
			missing = append(missing, "workers."+k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("GET /health: no %s (RunPod's endpoint-health counts): %s", strings.Join(missing, ", "), quote(raw))
	}
	w := h.Workers
	p.detail = fmt.Sprintf("workers: %g ready, %g idle, %g running; jobs: %g in queue, %g in progress",
		w["ready"], w["idle"], w["running"], h.Jobs["inQueue"], h.Jobs["inProgress"])
	if h.Status != nil {
		p.detail = "ready; " + p.detail
	}
	return nil
}

// checkModels: /openai/v1/models lists the model asked for (--model), or at
// least one, whose first the other checks then use.
func checkModels(p *probe) error {
	list, err := p.openai().ListModels(p.ctx)
	if err != nil {
		return sdkError("GET /openai/v1/models", err)
	}
	raw, _ := p.rec.lastBody()
	p.maxModelLen = maxModelLen(raw)
	ids := make([]string, 0, len(list.Models))
	for _, m := range list.Models {
		ids = append(ids, m.ID)
	}
	return p.pickModel(ids)
}

// sdkError says what go-openai saw: the status and the error's message and
// type, or the status and the body when it is not the OpenAI envelope.
func sdkError(what string, err error) error {
	var api *openai.APIError
	var req *openai.RequestError
	switch {
	case errors.As(err, &api) && api.HTTPStatusCode > 0:
		return fmt.Errorf("%s: status %d, %s: %s", what, api.HTTPStatusCode, api.Type, api.Message)
	case errors.As(err, &req):
		return fmt.Errorf("%s: status %d: %s", what, req.HTTPStatusCode, quote(req.Body))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// pickModel checks the served ids against --model, or takes the first.
func (p *probe) pickModel(ids []string) error {
	if len(ids) == 0 || ids[0] == "" {
		return errors.New("the model list is empty")
	}
	if p.opts.Model != "" && !slices.Contains(ids, p.opts.Model) {
		return fmt.Errorf("model %q (--model) is not served; the list has %s", p.opts.Model, strings.Join(ids, ", "))
	}
	if p.model == "" {
		p.model = ids[0]
	}
	p.detail = strings.Join(ids, ", ")
	return nil
}

// maxModelLen reads vLLM's max_model_len of the first model from a model list.
func maxModelLen(raw []byte) int {
	var l struct {
		Data []struct {
			MaxModelLen int `json:"max_model_len"`
		} `json:"data"`
	}
	if json.Unmarshal(raw, &l) != nil || len(l.Data) == 0 {
		return 0
	}
	return l.Data[0].MaxModelLen
}

func chatMessages() []openai.ChatCompletionMessage {
	return []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: chatPrompt}}
}

// checkUsage checks a non-streamed answer's usage.
func checkUsage(u openai.Usage, maxTokens int) error {
	if u.PromptTokens < 1 || u.CompletionTokens < 1 || u.CompletionTokens > maxTokens ||
		u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		return fmt.Errorf("usage %+v: want prompt_tokens > 0, completion_tokens from 1 to %d, total_tokens their sum",
			usageString(u), maxTokens)
	}
	return nil
}

func usageString(u openai.Usage) string {
	return fmt.Sprintf("{prompt_tokens:%d completion_tokens:%d total_tokens:%d}", u.PromptTokens, u.CompletionTokens, u.TotalTokens)
}

// checkChat: a chat completion, not streamed.
func checkChat(p *probe) error {
	resp, err := p.openai().CreateChatCompletion(p.ctx, openai.ChatCompletionRequest{
		Model: p.model, Messages: chatMessages(), MaxCompletionTokens: genTokens,
	})
	if err != nil {
		return sdkError("POST /openai/v1/chat/completions", err)
	}
	if len(resp.Choices) != 1 {
		return fmt.Errorf("%d choices, want 1", len(resp.Choices))
	}
	c := resp.Choices[0]
	if c.Message.Role != openai.ChatMessageRoleAssistant || c.Message.Content == "" && c.Message.ReasoningContent == "" {
		return fmt.Errorf("message %+v: want the assistant's text", c.Message)
	}
	if c.FinishReason == "" {
		return errors.New("no finish_reason")
	}
	if err := checkUsage(resp.Usage, genTokens); err != nil {
		return err
	}
	p.detail = fmt.Sprintf("%d tokens, finish_reason %s", resp.Usage.CompletionTokens, c.FinishReason)
	return nil
}

// checkCompletions: a text completion, not streamed.
func checkCompletions(p *probe) error {
	resp, err := p.openai().CreateCompletion(p.ctx, openai.CompletionRequest{
		Model: p.model, Prompt: completionPrompt, MaxTokens: genTokens,
	})
	if err != nil {
		return sdkError("POST /openai/v1/completions", err)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Text == "" {
		return fmt.Errorf("choices %+v: want one with text", resp.Choices)
	}
	if resp.Choices[0].FinishReason == "" {
		return errors.New("no finish_reason")
	}
	if resp.Usage == nil {
		return errors.New("no usage")
	}
	if err := checkUsage(*resp.Usage, genTokens); err != nil {
		return err
	}
	p.detail = fmt.Sprintf("%d tokens, finish_reason %s", resp.Usage.CompletionTokens, resp.Choices[0].FinishReason)
	return nil
}

// streamSeen is what a check saw of a stream read with go-openai.
type streamSeen struct {
	chunks  int
	text    int    // chunks with text
	finish  string // the last finish_reason
	usage   *openai.Usage
	usageAt int // the index of the chunk that carried usage
}

// see takes one chunk.
func (s *streamSeen) see(p *probe, choices int, text bool, finish string, usage *openai.Usage) error {
	if s.usage != nil {
		return fmt.Errorf("chunk %d follows the usage chunk: with include_usage the usage chunk is the last before [DONE]", s.chunks+1)
	}
	s.chunks++
	if text {
		p.firstToken()
		s.text++
	}
	if finish != "" {
		s.finish = finish
	}
	if usage != nil && choices == 0 {
		s.usage, s.usageAt = usage, s.chunks
	}
	return nil
}

// end checks a whole stream: text came, the usage chunk closed it, and on the
// wire every event was framed as the worker's clients expect, [DONE] last.
func (s *streamSeen) end(p *probe) error {
	if s.text == 0 {
		return fmt.Errorf("%d chunks and no text", s.chunks)
	}
	if s.finish == "" {
		return errors.New("no chunk had a finish_reason")
	}
	if s.usage == nil {
		return errors.New(`stream_options.include_usage: no final chunk with "choices": [] and usage`)
	}
	if err := checkUsage(*s.usage, genTokens); err != nil {
		return fmt.Errorf("the usage chunk: %w", err)
	}
	p.rec.drain()
	raw, complete := p.rec.lastBody()
	if !complete {
		return nil // too long to hold: the framing was seen by go-openai only
	}
	if _, err := readStream(bytes.NewReader(raw), nil); err != nil {
		return fmt.Errorf("on the wire: %w", err)
	}
	p.detail = fmt.Sprintf("%d chunks, usage %d tokens, [DONE]", s.chunks, s.usage.CompletionTokens)
	return nil
}

// checkChatStream: a streamed chat completion with include_usage.
func checkChatStream(p *probe) error {
	st, err := p.openai().CreateChatCompletionStream(p.ctx, openai.ChatCompletionRequest{
		Model: p.model, Messages: chatMessages(), MaxCompletionTokens: genTokens, Stream: true,
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
	})
	if err != nil {
		return sdkError("POST /openai/v1/chat/completions (stream)", err)
	}
	defer st.Close()
	return readSDKStream(p, st.Recv, func(c openai.ChatCompletionStreamResponse) (int, bool, string, *openai.Usage) {
		text, finish := false, ""
		for _, ch := range c.Choices {
			text = text || ch.Delta.Content != "" || ch.Delta.ReasoningContent != ""
			if ch.FinishReason != "" {
				finish = string(ch.FinishReason)
			}
		}
		return len(c.Choices), text, finish, c.Usage
	})
}

// checkCompletionsStream: a streamed text completion with include_usage.
func checkCompletionsStream(p *probe) error {
	st, err := p.openai().CreateCompletionStream(p.ctx, openai.CompletionRequest{
		Model: p.model, Prompt: completionPrompt, MaxTokens: genTokens, Stream: true,
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
	})
	if err != nil {
		return sdkError("POST /openai/v1/completions (stream)", err)
	}
	defer st.Close()
	return readSDKStream(p, st.Recv, func(c openai.CompletionResponse) (int, bool, string, *openai.Usage) {
		text, finish := false, ""
		for _, ch := range c.Choices {
			text = text || ch.Text != ""
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
		}
		return len(c.Choices), text, finish, c.Usage
	})
}

// readSDKStream reads a go-openai stream to its end, each chunk summed up by
// sum (its choices, whether it carries text, its finish reason, its usage) and
// checked by streamSeen.
func readSDKStream[C any](p *probe, recv func() (C, error), sum func(C) (int, bool, string, *openai.Usage)) error {
	var seen streamSeen
	for {
		c, err := recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d chunks: %w", seen.chunks, err)
		}
		choices, text, finish, usage := sum(c)
		if err := seen.see(p, choices, text, finish, usage); err != nil {
			return err
		}
	}
	return seen.end(p)
}

// checkUnknownModel: a model nobody serves is 404 in the OpenAI envelope.
func checkUnknownModel(p *probe) error {
	return checkErrorAnswer(p, map[string]any{"model": unknownModel}, http.StatusNotFound)
}

// checkInvalidRequest: a parameter out of range (the engine's refusal, passed
// on) is 400 in the OpenAI envelope, whatever shape the engine wrote it in.
func checkInvalidRequest(p *probe) error {
	return checkErrorAnswer(p, map[string]any{"temperature": 3}, http.StatusBadRequest)
}

// checkErrorAnswer sends a chat request with extra fields and wants status in
// the OpenAI envelope.
func checkErrorAnswer(p *probe, extra map[string]any, status int) error {
	body := map[string]any{"max_tokens": 1, "messages": []map[string]string{{"role": "user", "content": chatPrompt}}}
	if p.model != "" {
		body["model"] = p.model
	}
	for k, v := range extra {
		body[k] = v
	}
	raw, err := p.call(http.MethodPost, p.target.OpenAIBase()+"/chat/completions", body, status, nil)
	if err != nil {
		return err
	}
	e, err := checkEnvelope(raw)
	if err != nil {
		return err
	}
	p.detail = fmt.Sprintf("%d %s: %s", status, e.Type, e.Message)
	return nil
}

// checkStreamError: a stream the engine refuses once it runs it (vLLM reports
// too many logprobs in-band) ends with one error event in the OpenAI
// envelope, then data: [DONE]. A refusal before the stream (400) is right too.
func checkStreamError(p *probe) error {
	body := map[string]any{"max_tokens": genTokens, "stream": true, "logprobs": true, "top_logprobs": 21,
		"messages": []map[string]string{{"role": "user", "content": chatPrompt}}}
	if p.model != "" {
		body["model"] = p.model
	}
	resp, err := p.do(http.MethodPost, p.target.OpenAIBase()+"/chat/completions", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusBadRequest {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if _, err := checkEnvelope(raw); err != nil {
			return err
		}
		p.detail = "refused before the stream: 400 in the envelope"
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		return fmt.Errorf("status %d, want 200 with an error event (or 400): %s", resp.StatusCode, quote(raw))
	}
	st, err := readStream(resp.Body, nil)
	if err != nil {
		return err
	}
	if len(st.chunks) == 0 || !isErrorEvent(st.raw[len(st.raw)-1]) {
		p.detail = "not seen: the engine accepted top_logprobs 21 (--max-logprobs above 20?)"
		return nil
	}
	last := st.raw[len(st.raw)-1]
	if _, err := checkEnvelope(last); err != nil {
		return fmt.Errorf("the error event: %w", err)
	}
	p.detail = "one error event in the envelope, then data: [DONE]"
	return nil
}
