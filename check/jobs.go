package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vllm-worker/vllm-worker/batching"
)

// jobPolicy is the batch policy the streamed job checks ask for, whatever the
// worker's defaults, so that their item sizes are known: 1, 2, 4, 4, ...
var jobPolicy = batching.Policy{Min: 1, Growth: 2, Max: 4}

// cancelTokens is the length of the job the cancel check cancels: long enough
// to be running still when /cancel comes (ignore_eos keeps a model from
// ending it early).
const cancelTokens = 1000

// jobStatus is a RunPod job status as /run, /runsync, /status and /stream
// answer it.
type jobStatus struct {
	ID     string            `json:"id"`
	Status string            `json:"status"`
	Output []json.RawMessage `json:"output"`
	Error  json.RawMessage   `json:"error"`
	Stream []struct {
		Output json.RawMessage `json:"output"`
	} `json:"stream"`
}

func terminal(status string) bool {
	switch status {
	case "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT":
		return true
	}
	return false
}

// completed fails unless the job completed.
func (js *jobStatus) completed() error {
	if js.Status == "COMPLETED" {
		return nil
	}
	msg := strings.Trim(string(js.Error), `"`)
	if msg == "" || msg == "null" {
		msg = "no error given"
	}
	return fmt.Errorf("job %s ended %s: %s", js.ID, js.Status, msg)
}

// withPolicy adds jobPolicy's per-request fields to a job input.
func withPolicy(input map[string]any) map[string]any {
	input["min_batch_size"] = jobPolicy.Min
	input["batch_size_growth_factor"] = jobPolicy.Growth
	input["max_batch_size"] = jobPolicy.Max
	return input
}

// waitMS is the ?wait= of /runsync: what is left of the check's time, within
// RunPod's bounds.
func (p *probe) waitMS() int {
	left := 90 * time.Second
	if d, ok := p.ctx.Deadline(); ok {
		left = time.Until(d) - time.Second
	}
	return int(min(max(left, time.Second), 300*time.Second).Milliseconds())
}

// submit sends a job to /run or /runsync.
func (p *probe) submit(route string, input map[string]any) (*jobStatus, error) {
	url := p.target.URL(route)
	if route == "/runsync" {
		url += "?wait=" + strconv.Itoa(p.waitMS())
	}
	var js jobStatus
	if _, err := p.call(http.MethodPost, url, map[string]any{"input": input}, http.StatusOK, &js); err != nil {
		return nil, err
	}
	p.pin()
	if js.ID == "" || js.Status == "" {
		return nil, fmt.Errorf("POST %s: no job id or status", route)
	}
	return &js, nil
}

// runsync runs a job with /runsync and, if it is still running when /runsync
// answers, follows it with /status.
func (p *probe) runsync(input map[string]any) (*jobStatus, error) {
	js, err := p.submit("/runsync", input)
	if err != nil {
		return nil, err
	}
	if !terminal(js.Status) {
		if js, err = p.waitJob(js.ID); err != nil {
			return nil, err
		}
	}
	return js, js.completed()
}

// status reads a job's status.
func (p *probe) status(id string) (*jobStatus, error) {
	var js jobStatus
	if _, err := p.call(http.MethodGet, p.target.URL("/status/"+id), nil, http.StatusOK, &js); err != nil {
		return nil, err
	}
	return &js, nil
}

// waitJob polls a job's status until it ends.
func (p *probe) waitJob(id string) (*jobStatus, error) {
	for {
		js, err := p.status(id)
		if err != nil {
			return nil, err
		}
		if terminal(js.Status) {
			return js, nil
		}
		if err := sleep(p.ctx, 200*time.Millisecond); err != nil {
			return nil, fmt.Errorf("job %s still %s: %w", id, js.Status, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// nativeInput is a native job: a prompt, or messages.
func nativeInput(messages, stream bool, maxTokens int) map[string]any {
	input := map[string]any{"sampling_params": map[string]any{"max_tokens": maxTokens}}
	if messages {
		input["messages"] = []map[string]string{{"role": "user", "content": chatPrompt}}
	} else {
		input["prompt"] = chatPrompt
	}
	if stream {
		input["stream"] = true
		withPolicy(input)
	}
	return input
}

// checkRunsyncNative: a native job through /runsync, its items as the batch
// policy makes them.
func checkRunsyncNative(p *probe, messages, stream bool) error {
	js, err := p.runsync(nativeInput(messages, stream, genTokens))
	if err != nil {
		return err
	}
	d, err := checkNativeItems(js.Output, stream, p.target.Kind != KindRunPod)
	p.detail = d
	return err
}

// nativeItem is one item of a native job.
type nativeItem struct {
	Choices []struct {
		Tokens []string `json:"tokens"`
	} `json:"choices"`
	Usage *struct {
		Input  *int `json:"input"`
		Output *int `json:"output"`
	} `json:"usage"`
}

// checkNativeItems checks a native job's output (n = 1). Not streamed: one
// item with the whole text. Streamed: the first item holds jobPolicy.Min
// tokens; with strict sizes every item holds at most what the policy allows
// at its place (a worker's items; behind RunPod, items produced while one is
// being posted merge); only the last may hold none, to carry the final usage;
// the last usage counts every token.
func checkNativeItems(raw []json.RawMessage, stream, strict bool) (string, error) {
	items := make([]nativeItem, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &items[i]); err != nil || len(items[i].Choices) != 1 {
			return "", fmt.Errorf(`item %d is not {"choices":[{"tokens":[...]}],"usage":{...}} with one choice: %s`, i+1, quote(r))
		}
	}
	if len(items) == 0 {
		return "", errors.New("the job's output has no item")
	}
	last := items[len(items)-1]
	if last.Usage == nil || last.Usage.Input == nil || last.Usage.Output == nil || *last.Usage.Input < 1 {
		return "", fmt.Errorf(`the last item has no usage {"input": >0, "output": ...}: %s`, quote(raw[len(raw)-1]))
	}
	if !stream {
		tokens := items[0].Choices[0].Tokens
		if len(items) != 1 || len(tokens) != 1 || tokens[0] == "" {
			return "", fmt.Errorf("not streamed: want one item with the whole text as one token string; got %d items, the first %s",
				len(items), quote(raw[0]))
		}
		out := *last.Usage.Output
		if out < 1 || out > genTokens {
			return "", fmt.Errorf("usage.output %d, want 1 to %d", out, genTokens)
		}
		return fmt.Sprintf("1 item, %d tokens", out), nil
	}
	sizes := make([]int, len(items))
	total := 0
	for i, it := range items {
		sizes[i] = len(it.Choices[0].Tokens)
		total += sizes[i]
	}
	limits := policyLimits(jobPolicy, len(items))
	for i, n := range sizes {
		switch {
		case n == 0 && i < len(items)-1:
			return "", fmt.Errorf("item %d of %d holds no token (sizes %s)", i+1, len(items), sizesString(sizes))
		case i == 0 && n != jobPolicy.Min:
			return "", fmt.Errorf("the first item holds %d tokens, want min_batch_size %d (sizes %s)", n, jobPolicy.Min, sizesString(sizes))
		case strict && n > limits[i]:
			return "", fmt.Errorf("item %d holds %d tokens, more than the batch policy allows there (%d; sizes %s, policy %s)",
				i+1, n, limits[i], sizesString(sizes), policyString())
		}
	}
	if *last.Usage.Output != total || total < 1 || total > genTokens {
		return "", fmt.Errorf("the items hold %d tokens and the last usage.output says %d; want the same, 1 to %d",
			total, *last.Usage.Output, genTokens)
	}
	return fmt.Sprintf("items of %s tokens (%s)", sizesString(sizes), policyString()), nil
}

// policyLimits is the most units each of the first n items may hold under p.
func policyLimits(p batching.Policy, n int) []int {
	// With this many units every one of the first n items is full.
	return batching.Sizes(p, (n+1)*p.Max)[:n]
}

func policyString() string {
	return fmt.Sprintf("min %d, growth %g, max %d", jobPolicy.Min, jobPolicy.Growth, jobPolicy.Max)
}

func sizesString(sizes []int) string {
	s := make([]string, len(sizes))
	for i, n := range sizes {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, "+")
}

// checkOpenAIRoute: an OpenAI job (openai_route) through /runsync.
func checkOpenAIRoute(p *probe, stream bool) error {
	body := map[string]any{"max_tokens": genTokens,
		"messages": []map[string]string{{"role": "user", "content": chatPrompt}}}
	if p.model != "" {
		body["model"] = p.model
	}
	input := map[string]any{"openai_route": "/v1/chat/completions", "openai_input": body}
	if stream {
		body["stream"] = true
		body["stream_options"] = map[string]any{"include_usage": true}
		withPolicy(input)
	}
	js, err := p.runsync(input)
	if err != nil {
		return err
	}
	if !stream {
		if len(js.Output) != 1 {
			return fmt.Errorf("%d items, want 1: the engine's JSON answer", len(js.Output))
		}
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Message struct {
					Content string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
			Usage struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(js.Output[0], &c); err != nil || c.Object != "chat.completion" ||
			len(c.Choices) != 1 || c.Usage.CompletionTokens < 1 {
			return fmt.Errorf("the item is not a chat.completion with one choice and usage: %s", quote(js.Output[0]))
		}
		p.detail = fmt.Sprintf("a chat.completion of %d tokens", c.Usage.CompletionTokens)
		return nil
	}
	d, err := checkOpenAIItems(js.Output, p.target.Kind != KindRunPod)
	p.detail = d
	return err
}

// checkOpenAIItems checks a streamed OpenAI job's items: each one string of
// whole SSE events (RAW_OPENAI_OUTPUT=1), or each a list of chunk objects
// (RAW_OPENAI_OUTPUT=0); in events, the first item holds one (besides the chat
// stream's opening role chunks, which ride with it) and, with strict sizes, each
// at most what the batch policy allows at its place.
func checkOpenAIItems(raw []json.RawMessage, strict bool) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("the job's output has no item")
	}
	sizes := make([]int, len(raw))
	var all bytes.Buffer // the events, as one stream
	lists := raw[0][0] == '['
	for i, r := range raw {
		if lists {
			var chunks []json.RawMessage
			if err := json.Unmarshal(r, &chunks); err != nil {
				return "", fmt.Errorf("item %d is not a list of chunks like item 1: %s", i+1, quote(r))
			}
			for _, c := range chunks {
				all.WriteString("data: " + string(bytes.TrimSpace(c)) + "\n\n")
			}
			sizes[i] = len(chunks)
			continue
		}
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return "", fmt.Errorf("item %d is neither a string of SSE events nor a list of chunks: %s", i+1, quote(r))
		}
		if !strings.HasPrefix(s, "data: ") || !strings.HasSuffix(s, "\n\n") {
			return "", fmt.Errorf(`item %d is not whole SSE events ("data: ...\n\n"): %s`, i+1, quote([]byte(s)))
		}
		sizes[i] = strings.Count(s, "\n\n")
		all.WriteString(s)
	}
	if lists {
		all.WriteString("data: [DONE]\n\n") // left out of the lists
	}
	st, err := readStream(&all, nil)
	if err != nil {
		return "", fmt.Errorf("the items as one stream: %w", err)
	}
	if n := len(st.chunks); n == 0 || !st.chunks[n-1].hasUsage() || len(st.chunks[n-1].Choices) != 0 {
		return "", errors.New(`stream_options.include_usage: the last chunk is not "choices": [] with usage`)
	}
	// The worker sends a chat stream's opening role chunks with the first
	// token: they ride along and do not count toward the first item's size.
	riders := 0
	for riders < len(st.chunks) && st.chunks[riders].isRoleChunk() {
		riders++
	}
	sizes[0] -= min(riders, sizes[0]-1)
	limits := policyLimits(jobPolicy, len(sizes))
	for i, n := range sizes {
		switch {
		case i == 0 && n != jobPolicy.Min:
			return "", fmt.Errorf("the first item holds %d events, want min_batch_size %d (sizes %s)", n, jobPolicy.Min, sizesString(sizes))
		case strict && n > limits[i]:
			return "", fmt.Errorf("item %d holds %d events, more than the batch policy allows there (%d; sizes %s, policy %s)",
				i+1, n, limits[i], sizesString(sizes), policyString())
		}
	}
	form := "strings of SSE events"
	if lists {
		form = "lists of chunks"
	}
	return fmt.Sprintf("items of %s events, %s, [DONE] last", sizesString(sizes), form), nil
}

// checkRunStreamStatus: a streamed job sent with /run, read with /stream as it
// runs, then the same items in /status.
func checkRunStreamStatus(p *probe) error {
	js, err := p.submit("/run", nativeInput(false, true, genTokens))
	if err != nil {
		return err
	}
	if js.Status == "FAILED" {
		return js.completed()
	}
	id := js.ID
	var streamed []json.RawMessage
	calls := 0
	for {
		var st jobStatus
		if _, err := p.call(http.MethodGet, p.target.URL("/stream/"+id), nil, http.StatusOK, &st); err != nil {
			return err
		}
		calls++
		for _, it := range st.Stream {
			streamed = append(streamed, it.Output)
			p.firstToken()
		}
		if terminal(st.Status) {
			if err := st.completed(); err != nil {
				return err
			}
			break
		}
		if len(st.Stream) == 0 {
			if err := sleep(p.ctx, 250*time.Millisecond); err != nil {
				return fmt.Errorf("job %s still %s after %d /stream calls: %w", id, st.Status, calls, err)
			}
		}
	}
	final, err := p.waitJob(id)
	if err != nil {
		return err
	}
	if err := final.completed(); err != nil {
		return err
	}
	if !sameItems(streamed, final.Output) {
		return fmt.Errorf("/stream gave %d items, /status has %d, not the same: streamed %s, final %s",
			len(streamed), len(final.Output), quote(joinRaw(streamed)), quote(joinRaw(final.Output)))
	}
	d, err := checkNativeItems(final.Output, true, p.target.Kind != KindRunPod)
	if err != nil {
		return err
	}
	p.detail = fmt.Sprintf("%d /stream calls; %s; the same in /status", calls, d)
	return nil
}

// sameItems reports whether two lists of items are the same JSON.
func sameItems(a, b []json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		var x, y bytes.Buffer
		if json.Compact(&x, a[i]) != nil || json.Compact(&y, b[i]) != nil || !bytes.Equal(x.Bytes(), y.Bytes()) {
			return false
		}
	}
	return true
}

func joinRaw(items []json.RawMessage) []byte {
	parts := make([][]byte, len(items))
	for i, it := range items {
		parts[i] = it
	}
	return append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
}

// checkCancel: a long job sent with /run is cancelled while it runs, and stays
// cancelled.
func checkCancel(p *probe) error {
	n := cancelTokens
	if p.maxModelLen > 0 {
		n = min(n, p.maxModelLen/2)
	}
	input := nativeInput(false, true, n)
	input["sampling_params"].(map[string]any)["ignore_eos"] = true
	submitted := time.Now()
	js, err := p.submit("/run", input)
	if err != nil {
		return err
	}
	id, cancelled := js.ID, false
	defer func() {
		if !cancelled { // never leave a long job running behind a failed check
			ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 5*time.Second)
			defer cancel()
			q := *p
			q.ctx = ctx
			_, _ = q.call(http.MethodPost, p.target.URL("/cancel/"+id), nil, http.StatusOK, nil)
		}
	}()
	// Cancel it once it runs; a job still queued (a cold RunPod endpoint) is
	// cancelled in the queue when half the check's time has passed.
	patience := p.opts.timeout() / 2
	for js.Status == "IN_QUEUE" && time.Since(submitted) < patience {
		if err := sleep(p.ctx, 50*time.Millisecond); err != nil {
			return err
		}
		if js, err = p.status(id); err != nil {
			return err
		}
	}
	if terminal(js.Status) {
		return fmt.Errorf("job %s (%d tokens) ended %s before /cancel", id, n, js.Status)
	}
	before := js.Status
	var c jobStatus
	if _, err := p.call(http.MethodPost, p.target.URL("/cancel/"+id), nil, http.StatusOK, &c); err != nil {
		return err
	}
	p.pin()
	cancelled = true
	if c.Status != "CANCELLED" {
		return fmt.Errorf("POST /cancel/%s answered status %q, want CANCELLED", id, c.Status)
	}
	final, err := p.waitJob(id)
	if err != nil {
		return err
	}
	if final.Status != "CANCELLED" {
		return fmt.Errorf("after /cancel, /status says %s, want CANCELLED", final.Status)
	}
	p.detail = fmt.Sprintf("cancelled while %s, %s after /run", before, duration(time.Since(submitted)))
	return nil
}
