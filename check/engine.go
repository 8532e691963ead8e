package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// engineTokens is the max_tokens of the engine checks' short generations.
const engineTokens = 8

// abortTokens is the length of the stream the abort check leaves: long enough
// to be generating still when the client goes.
const abortTokens = 2000

// abortWait bounds the wait for the engine to abort a stream its client left.
const abortWait = 10 * time.Second

// engineChecks are the checks of what the worker relies on in an engine, in
// order.
func engineChecks() []checkDef {
	return []checkDef{
		{"health", engineHealth},
		{"models", engineModels},
		{"chat_stream", func(p *probe) error { return engineStream(p, "/chat/completions", "chat.completion.chunk") }},
		{"completions_stream", func(p *probe) error { return engineStream(p, "/completions", "text_completion") }},
		{"include_usage", engineIncludeUsage},
		{"continuous_usage", engineContinuousUsage},
		{"n", engineN},
		{"error_shape", engineErrorShape},
		{"stream_error_done", engineStreamErrorDone},
		{"abort_on_disconnect", engineAbort},
	}
}

// engineHealth: GET /health answers 200; the worker waits for it to start and
// watches it every second.
func engineHealth(p *probe) error {
	if _, err := p.call(http.MethodGet, p.target.URL("/health"), nil, http.StatusOK, nil); err != nil {
		return fmt.Errorf("%w (the worker polls /health for readiness)", err)
	}
	p.detail = "200"
	return nil
}

// engineModels: GET /v1/models is {"object":"list","data":[{"id",
// "object":"model"},...]}; the worker answers unknown models from it.
func engineModels(p *probe) error {
	var l struct {
		Object string `json:"object"`
		Data   []struct {
			ID     string `json:"id"`
			Object string `json:"object"`
		} `json:"data"`
	}
	raw, err := p.call(http.MethodGet, p.target.OpenAIBase()+"/models", nil, http.StatusOK, &l)
	if err != nil {
		return err
	}
	if l.Object != "list" {
		return fmt.Errorf(`"object" is %q, want "list": %s`, l.Object, quote(raw))
	}
	ids := make([]string, 0, len(l.Data))
	for _, m := range l.Data {
		if m.ID == "" || m.Object != "model" {
			return fmt.Errorf(`a model without "id" or with "object" other than "model": %s`, quote(raw))
		}
		ids = append(ids, m.ID)
	}
	p.maxModelLen = maxModelLen(raw)
	return p.pickModel(ids)
}

// chatBody is a chat request to the engine; extra fields are merged in.
func (p *probe) chatBody(extra map[string]any) map[string]any {
	b := map[string]any{"max_tokens": engineTokens, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": chatPrompt}}}
	if p.model != "" {
		b["model"] = p.model
	}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// openStream posts a stream request under ctx and returns the answer once it
// is a 200 SSE stream. Any other answer is an error with its status and
// body; err is then an *statusError.
func (p *probe) openStream(ctx context.Context, path string, body map[string]any) (*http.Response, error) {
	q := *p
	q.ctx = ctx
	resp, err := q.do(http.MethodPost, p.target.OpenAIBase()+path, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		return nil, &statusError{path: "/v1" + path, status: resp.StatusCode, body: raw}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("POST /v1%s: Content-Type %q, want text/event-stream", path, ct)
	}
	return resp, nil
}

// statusError is a request answered with an unexpected status.
type statusError struct {
	path   string
	status int
	body   []byte
}

func (e *statusError) Error() string {
	return fmt.Sprintf("POST %s: status %d, want 200: %s", e.path, e.status, quote(e.body))
}

// readEngineStream posts a stream request and reads the whole stream strictly.
func (p *probe) readEngineStream(path string, body map[string]any) (*stream, error) {
	resp, err := p.openStream(p.ctx, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readStream(resp.Body, p.firstToken)
}

// engineStream: a stream is text/event-stream, every event one "data: " line
// and a blank line, each a JSON chunk of its object, data: [DONE] last.
func engineStream(p *probe, path, object string) error {
	body := p.chatBody(nil)
	if path == "/completions" {
		delete(body, "messages")
		body["prompt"] = completionPrompt
	}
	st, err := p.readEngineStream(path, body)
	if err != nil {
		return err
	}
	text := 0
	for i, c := range st.chunks {
		if c.Object != object {
			return fmt.Errorf(`chunk %d: "object" is %q, want %q: %s`, i+1, c.Object, object, quote(st.raw[i]))
		}
		if c.hasText() {
			text++
		}
	}
	if text == 0 {
		return fmt.Errorf("%d chunks and no text", len(st.chunks))
	}
	p.detail = fmt.Sprintf("%d events of data: and a blank line, JSON chunks, data: [DONE] last", len(st.chunks)+1)
	return nil
}

// engineIncludeUsage: with stream_options.include_usage the last chunk before
// [DONE] has "choices": [] and usage; the worker reads a job's final token
// counts there.
func engineIncludeUsage(p *probe) error {
	st, err := p.readEngineStream("/chat/completions",
		p.chatBody(map[string]any{"stream_options": map[string]any{"include_usage": true}}))
	if err != nil {
		return err
	}
	n := len(st.chunks)
	if n == 0 || len(st.chunks[n-1].Choices) != 0 || !st.chunks[n-1].hasUsage() {
		return errors.New(`stream_options.include_usage: no final chunk with "choices": [] and usage ` +
			"(the worker reads a job's final token counts there)")
	}
	var u struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
	if err := json.Unmarshal(st.chunks[n-1].Usage, &u); err != nil || u.PromptTokens < 1 || u.CompletionTokens < 1 ||
		u.CompletionTokens > engineTokens || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		return fmt.Errorf("the usage chunk's usage is not {prompt_tokens, completion_tokens (1 to %d), total_tokens}: %s",
			engineTokens, quote(st.raw[n-1]))
	}
	p.detail = fmt.Sprintf(`last chunk "choices": [] with usage (%d+%d tokens)`, u.PromptTokens, u.CompletionTokens)
	return nil
}

// engineContinuousUsage: with continuous_usage_stats (vLLM's extension) every
// chunk carries usage; the worker asks for it so that native job items carry
// token counts as they go.
func engineContinuousUsage(p *probe) error {
	st, err := p.readEngineStream("/chat/completions", p.chatBody(map[string]any{
		"stream_options": map[string]any{"include_usage": true, "continuous_usage_stats": true}}))
	if err != nil {
		return err
	}
	with := 0
	for i, c := range st.chunks {
		if len(c.Choices) == 0 {
			continue
		}
		if !c.hasUsage() {
			return fmt.Errorf("chunk %d of %d has no usage: the server ignores stream_options.continuous_usage_stats "+
				"(vLLM's extension; the worker asks for it so that native job items carry token counts as they go, "+
				"and without it leaves usage.input out of every item but the last): %s", i+1, len(st.chunks), quote(st.raw[i]))
		}
		with++
	}
	if with == 0 {
		return errors.New("no chunk with choices")
	}
	p.detail = fmt.Sprintf("usage on all %d chunks", with)
	return nil
}

// engineN: n: 2 streams two choices, each to its finish_reason; native jobs
// return one choice per n.
func engineN(p *probe) error {
	st, err := p.readEngineStream("/chat/completions", p.chatBody(map[string]any{"n": 2, "temperature": 0.8}))
	if err != nil {
		return err
	}
	var seen, finished []int
	for _, c := range st.chunks {
		for _, ch := range c.Choices {
			if !slices.Contains(seen, ch.Index) {
				seen = append(seen, ch.Index)
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" && !slices.Contains(finished, ch.Index) {
				finished = append(finished, ch.Index)
			}
		}
	}
	slices.Sort(seen)
	slices.Sort(finished)
	if !slices.Equal(seen, []int{0, 1}) {
		return fmt.Errorf("asked for n=2, the stream has choices of index %v: the server ignores n "+
			"(the worker's native jobs give one choice per n)", seen)
	}
	if !slices.Equal(finished, []int{0, 1}) {
		return fmt.Errorf("asked for n=2, only choices %v got a finish_reason", finished)
	}
	p.detail = "choices 0 and 1, each with its finish_reason"
	return nil
}

// errNoErrorEvent says that a request meant to fail in-band did not.
var errNoErrorEvent = errors.New("no in-band error event")

// inBandError is a chat stream request that vLLM refuses only once the engine
// runs it, so in-band: sample logprobs above its --max-logprobs (20).
func (p *probe) inBandError() map[string]any {
	return p.chatBody(map[string]any{"logprobs": true, "top_logprobs": 21})
}

// engineErrorShape: errors come in the envelope {"error":{"message","type",
// "param","code"}} with their status: an unknown model (404), an invalid
// parameter (400), and an error event in a stream.
func engineErrorShape(p *probe) error {
	var seen []string
	for _, c := range []struct {
		what   string
		body   map[string]any
		status int
	}{
		{"an unknown model", map[string]any{"model": unknownModel}, http.StatusNotFound},
		{"temperature 3", map[string]any{"temperature": 3}, http.StatusBadRequest},
	} {
		body := p.chatBody(c.body)
		delete(body, "stream")
		raw, err := p.call(http.MethodPost, p.target.OpenAIBase()+"/chat/completions", body, c.status, nil)
		p.pin()
		if err != nil {
			return fmt.Errorf("%s: %w", c.what, err)
		}
		e, err := checkEnvelope(raw)
		if err != nil {
			return fmt.Errorf("%s (%d): %w", c.what, c.status, err)
		}
		seen = append(seen, fmt.Sprintf("%d %s", c.status, e.Type))
	}
	payload, err := p.firstErrorEvent()
	switch {
	case errors.Is(err, errNoErrorEvent):
		seen = append(seen, "no in-band error to see (top_logprobs 21 accepted or refused before the stream)")
	case err != nil:
		return fmt.Errorf("top_logprobs 21 (streamed): %w", err)
	default:
		if _, err := checkEnvelope(payload); err != nil {
			return fmt.Errorf("the in-band error event of a stream (top_logprobs 21): %w", err)
		}
		seen = append(seen, "the in-band event")
	}
	p.detail = "envelope in " + strings.Join(seen, ", ")
	return nil
}

// firstErrorEvent streams inBandError and returns its error event's payload,
// or errNoErrorEvent when the server refuses it before the stream or runs it.
func (p *probe) firstErrorEvent() ([]byte, error) {
	resp, err := p.openStream(p.ctx, "/chat/completions", p.inBandError())
	p.pin()
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusBadRequest {
		return nil, errNoErrorEvent
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	fr := newFrameReader(resp.Body)
	for {
		payload, err := fr.next()
		if err == io.EOF {
			return nil, errNoErrorEvent
		}
		if err != nil {
			return nil, err
		}
		if isErrorEvent(payload) {
			return payload, nil
		}
	}
}

// engineStreamErrorDone: a stream that fails in-band sends its error event,
// then data: [DONE], as vLLM does.
func engineStreamErrorDone(p *probe) error {
	resp, err := p.openStream(p.ctx, "/chat/completions", p.inBandError())
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusBadRequest {
		p.detail = "not seen: the server refused top_logprobs 21 with 400 before the stream"
		return nil
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fr := newFrameReader(resp.Body)
	var errEvent []byte
	for {
		payload, err := fr.next()
		switch {
		case err == io.EOF && errEvent == nil:
			p.detail = "not seen: the server accepted top_logprobs 21 (--max-logprobs above 20?)"
			return nil
		case err == io.EOF:
			p.detail = "error event, then data: [DONE]"
			return nil
		case err != nil && errEvent != nil && isFraming(err):
			return fmt.Errorf("after the in-band error event %s: %w (vLLM ends such a stream with data: [DONE]; "+
				"the worker adds it when an engine does not)", quote(errEvent), err)
		case err != nil:
			return err
		case errEvent != nil && string(payload) != "[DONE]":
			return fmt.Errorf("the in-band error event %s is followed by %s, not data: [DONE]", quote(errEvent), quote(payload))
		case errEvent == nil && isErrorEvent(payload):
			errEvent = payload
		}
	}
}

// engineMetrics is what the abort check reads of the engine's /metrics.
type engineMetrics struct {
	running  float64 // vllm:num_requests_running
	aborted  float64 // vllm:request_success_total{finished_reason="abort"}
	finished float64 // the same, finished_reason stop or length
}

func (p *probe) engineMetrics(ctx context.Context) (engineMetrics, error) {
	q := *p
	q.ctx = ctx
	raw, err := q.call(http.MethodGet, p.target.URL("/metrics"), nil, http.StatusOK, nil)
	if err != nil {
		return engineMetrics{}, fmt.Errorf("%w (the abort is seen in vLLM's metrics)", err)
	}
	var m engineMetrics
	var ok bool
	if m.running, ok = promSum(raw, "vllm:num_requests_running"); !ok {
		return m, errors.New("GET /metrics: no vllm:num_requests_running series")
	}
	m.aborted, _ = promSum(raw, "vllm:request_success_total", `finished_reason="abort"`)
	stop, _ := promSum(raw, "vllm:request_success_total", `finished_reason="stop"`)
	length, _ := promSum(raw, "vllm:request_success_total", `finished_reason="length"`)
	m.finished = stop + length
	return m, nil
}

// engineAbort: a client that leaves a stream makes the engine abort the
// generation (the worker passes its clients' disconnects, /cancel and
// job-stop on this way): seen in /metrics as vllm:num_requests_running back
// where it was, with vllm:request_success_total{finished_reason="abort"}
// risen (or the request seen running before), never as the request finishing.
// It reads the engine's counters, so the engine must have no other traffic.
func engineAbort(p *probe) error {
	n := abortTokens
	if p.maxModelLen > 0 {
		n = min(n, p.maxModelLen/2)
	}
	before, err := p.engineMetrics(p.ctx)
	if err != nil {
		return err
	}
	body := map[string]any{"prompt": completionPrompt, "max_tokens": n, "ignore_eos": true, "stream": true}
	if p.model != "" {
		body["model"] = p.model
	}
	sctx, cut := context.WithCancel(p.ctx)
	defer cut()
	resp, err := p.openStream(sctx, "/completions", body)
	if err != nil {
		return err
	}
	p.pin()
	fr := newFrameReader(resp.Body)
	for p.ttft == 0 {
		payload, err := fr.next()
		if err != nil {
			resp.Body.Close()
			return fmt.Errorf("before the first token: %w", err)
		}
		var c chunk
		if json.Unmarshal(payload, &c) == nil && c.hasText() {
			p.firstToken()
		}
	}
	during, err := p.engineMetrics(p.ctx)
	if err != nil {
		resp.Body.Close()
		return err
	}
	cut() // the client leaves: its connection is closed
	resp.Body.Close()
	left := time.Now()
	wait, cancel := context.WithTimeout(p.ctx, abortWait)
	defer cancel()
	last := during
	for {
		m, err := p.engineMetrics(wait)
		if err == nil {
			last = m
			switch {
			case m.finished > before.finished:
				return fmt.Errorf("the engine finished the %d-token request instead of aborting it when its client left "+
					"(vllm:request_success_total of stop and length rose)", n)
			case m.running > before.running:
				// still running
			case m.aborted > before.aborted:
				p.detail = fmt.Sprintf(`vllm:request_success_total{finished_reason="abort"} rose %s after the client left`,
					duration(time.Since(left)))
				return nil
			case during.running > before.running:
				p.detail = fmt.Sprintf("vllm:num_requests_running back to %g %s after the client left",
					m.running, duration(time.Since(left)))
				return nil
			}
		}
		if sleep(wait, 50*time.Millisecond) != nil {
			return fmt.Errorf("%s after its client left, the engine has neither aborted nor finished the request "+
				"(vllm:num_requests_running %g, %g before it; no finished_reason=\"abort\" counted): "+
				"it does not abort on disconnect", duration(time.Since(left)), last.running, before.running)
		}
	}
}
