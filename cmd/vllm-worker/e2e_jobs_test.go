package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
)

// jobResult is /runsync's and /status's answer.
type jobResult struct {
	ID     string            `json:"id"`
	Status string            `json:"status"`
	Output []json.RawMessage `json:"output"`
	Error  string            `json:"error"`
}

type nativeItem struct {
	Choices []struct {
		Tokens []string `json:"tokens"`
	} `json:"choices"`
	Usage struct {
		Input  int `json:"input"`
		Output int `json:"output"`
	} `json:"usage"`
}

func postJSON(t *testing.T, url, body string, out any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: status %d: %s", url, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("POST %s: %v: %s", url, err, raw)
	}
}

func runSync(t *testing.T, w *testWorker, input string) jobResult {
	t.Helper()
	var res jobResult
	postJSON(t, w.URL+"/runsync", `{"input":`+input+`}`, &res)
	return res
}

func nativeItems(t *testing.T, res jobResult) []nativeItem {
	t.Helper()
	if res.Status != "COMPLETED" {
		t.Fatalf("job %s: %s", res.Status, res.Error)
	}
	items := make([]nativeItem, len(res.Output))
	for i, raw := range res.Output {
		if err := json.Unmarshal(raw, &items[i]); err != nil {
			t.Fatalf("item %d: %v: %s", i, err, raw)
		}
	}
	return items
}

// text joins the tokens of one choice over all items.
func text(items []nativeItem, choice int) string {
	var sb strings.Builder
	for _, it := range items {
		for _, tok := range it.Choices[choice].Tokens {
			sb.WriteString(tok)
		}
	}
	return sb.String()
}

// TestJobsNative covers the native input: dynamic batch sizes, usage, routing of
// prompts and messages, n, and the seed README's examples.
func TestJobsNative(t *testing.T) {
	w := startWorker(t, "BATCH_MAX_WAIT_MS=0")
	ctx := context.Background()
	c := goClient(w.URL + "/v1")

	t.Run("stream grows 1,3,9,27,50 then the rest", func(t *testing.T) {
		items := nativeItems(t, runSync(t, w, `{"prompt":"Why is the sky blue?","sampling_params":{"max_tokens":100},"stream":true}`))
		var sizes, outputs []int
		for _, it := range items {
			sizes = append(sizes, len(it.Choices[0].Tokens))
			outputs = append(outputs, it.Usage.Output)
			if it.Usage.Input != 5 {
				t.Errorf("usage.input = %d; want 5", it.Usage.Input)
			}
		}
		if fmt.Sprint(sizes) != "[1 3 9 27 50 10]" || fmt.Sprint(outputs) != "[1 4 13 40 90 100]" {
			t.Errorf("sizes %v, usage.output %v; want [1 3 9 27 50 10] and [1 4 13 40 90 100]", sizes, outputs)
		}
	})

	t.Run("per-request batch overrides", func(t *testing.T) {
		items := nativeItems(t, runSync(t, w, `{"prompt":"a b","sampling_params":{"max_tokens":14},"stream":true,"max_batch_size":5}`))
		var sizes []int
		for _, it := range items {
			sizes = append(sizes, len(it.Choices[0].Tokens))
		}
		if fmt.Sprint(sizes) != "[1 3 5 5]" {
			t.Errorf("sizes %v; want [1 3 5 5]", sizes)
		}
		items = nativeItems(t, runSync(t, w, `{"prompt":"a b","sampling_params":{"max_tokens":7},"stream":true,"max_batch_size":3,"batch_size_growth_factor":1}`))
		sizes = sizes[:0]
		for _, it := range items {
			sizes = append(sizes, len(it.Choices[0].Tokens))
		}
		if fmt.Sprint(sizes) != "[3 3 1]" {
			t.Errorf("growth 1: sizes %v; want [3 3 1]", sizes)
		}
	})

	t.Run("plain prompt goes to completions", func(t *testing.T) {
		items := nativeItems(t, runSync(t, w, `{"prompt":"Runpod is the best platform because","sampling_params":{"max_tokens":9,"temperature":0}}`))
		if len(items) != 1 || len(items[0].Choices[0].Tokens) != 1 {
			t.Fatalf("non-stream job: %d items; want one item with the whole text", len(items))
		}
		want, err := c.CreateCompletion(ctx, goopenai.CompletionRequest{Model: testModel, Prompt: "Runpod is the best platform because", MaxTokens: 9})
		if err != nil {
			t.Fatal(err)
		}
		if got := text(items, 0); got != want.Choices[0].Text {
			t.Errorf("job text %q; completions text %q", got, want.Choices[0].Text)
		}
		if items[0].Usage.Output != 9 || items[0].Usage.Input != 6 {
			t.Errorf("usage %+v; want input 6, output 9", items[0].Usage)
		}
	})

	t.Run("messages and apply_chat_template go to chat", func(t *testing.T) {
		want, err := c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: testModel, MaxCompletionTokens: 7,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Tell me a joke"}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, input := range []string{
			`{"messages":[{"role":"user","content":"Tell me a joke"}],"sampling_params":{"max_tokens":7}}`,
			`{"messages":[{"role":"user","content":"Tell me a joke"}],"sampling_params":{"max_tokens":7},"stream":true}`,
			`{"prompt":"Tell me a joke","apply_chat_template":true,"sampling_params":{"max_tokens":7}}`,
		} {
			if got := text(nativeItems(t, runSync(t, w, input)), 0); got != want.Choices[0].Message.Content {
				t.Errorf("%s: text %q; chat text %q", input, got, want.Choices[0].Message.Content)
			}
		}
	})

	t.Run("n=2 gives two choices", func(t *testing.T) {
		items := nativeItems(t, runSync(t, w, `{"prompt":"a b c","sampling_params":{"max_tokens":6,"n":2},"stream":true}`))
		for _, it := range items {
			if len(it.Choices) != 2 {
				t.Fatalf("item has %d choices; want 2", len(it.Choices))
			}
		}
		a, b := text(items, 0), text(items, 1)
		if a == "" || b == "" || a == b {
			t.Errorf("choices %q and %q; want two different texts", a, b)
		}
		if last := items[len(items)-1]; last.Usage.Output != 12 {
			t.Errorf("final usage.output = %d; want 12", last.Usage.Output)
		}
	})
}

// TestJobsOpenAIRoute covers openai_route input, with RAW_OPENAI_OUTPUT 1 and 0.
func TestJobsOpenAIRoute(t *testing.T) {
	const streamInput = `{"openai_route":"/v1/chat/completions","openai_input":{"messages":[{"role":"user","content":"hi"}],"max_tokens":20,"stream":true}}`
	t.Run("raw output", func(t *testing.T) {
		w := startWorker(t, "BATCH_MAX_WAIT_MS=0")
		res := runSync(t, w, streamInput)
		if res.Status != "COMPLETED" {
			t.Fatalf("%s: %s", res.Status, res.Error)
		}
		var whole strings.Builder
		var sizes []int
		for _, raw := range res.Output {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatalf("item is not a string: %s", raw)
			}
			if !strings.HasSuffix(s, "\n\n") {
				t.Errorf("item splits an event: %q", s)
			}
			sizes = append(sizes, strings.Count(s, "data: "))
			whole.WriteString(s)
		}
		// the role chunk (riding with the first token) + 20 tokens + [DONE]:
		// 22 events in items of 1, 3, 9, 9 counted units
		if fmt.Sprint(sizes) != "[2 3 9 8]" {
			t.Errorf("events per item %v; want [2 3 9 8]", sizes)
		}
		checkSSE(t, []byte(whole.String()))

		// Non-stream: one item, the engine's JSON; models through openai_route.
		res = runSync(t, w, `{"openai_route":"/v1/completions","openai_input":{"prompt":"x y","max_tokens":3}}`)
		var comp goopenai.CompletionResponse
		if res.Status != "COMPLETED" || len(res.Output) != 1 || json.Unmarshal(res.Output[0], &comp) != nil || comp.Usage.CompletionTokens != 3 {
			t.Errorf("non-stream completion job = %+v", res)
		}
		res = runSync(t, w, `{"openai_route":"/v1/models"}`)
		var models goopenai.ModelsList
		if res.Status != "COMPLETED" || len(res.Output) != 1 || json.Unmarshal(res.Output[0], &models) != nil ||
			len(models.Models) != 1 || models.Models[0].ID != testModel {
			t.Errorf("models job = %+v", res)
		}
		// Any other engine route through route/body.
		res = runSync(t, w, `{"route":"/tokenize","body":{"prompt":"one two three"}}`)
		var tok struct{ Count int }
		if res.Status != "COMPLETED" || len(res.Output) != 1 || json.Unmarshal(res.Output[0], &tok) != nil || tok.Count != 3 {
			t.Errorf("tokenize job = %+v", res)
		}
	})
	t.Run("parsed output", func(t *testing.T) {
		w := startWorker(t, "BATCH_MAX_WAIT_MS=0", "RAW_OPENAI_OUTPUT=0")
		res := runSync(t, w, streamInput)
		if res.Status != "COMPLETED" {
			t.Fatalf("%s: %s", res.Status, res.Error)
		}
		var content strings.Builder
		var sizes []int
		for _, raw := range res.Output {
			var chunks []goopenai.ChatCompletionStreamResponse
			if err := json.Unmarshal(raw, &chunks); err != nil {
				t.Fatalf("item is not a list of chunks: %s", raw)
			}
			sizes = append(sizes, len(chunks))
			for _, ch := range chunks {
				content.WriteString(ch.Choices[0].Delta.Content)
			}
		}
		if fmt.Sprint(sizes) != "[2 3 9 7]" { // the role chunk rides with the first token; [DONE] is not a chunk
			t.Errorf("chunks per item %v; want [2 3 9 7]", sizes)
		}
		if strings.Count(content.String(), " ") != 20 {
			t.Errorf("content %q; want 20 tokens", content.String())
		}
	})
}

// TestJobsRunStreamCancel covers /run, /stream polling, /status, /cancel and the
// time cap on held tokens, against a slow engine.
func TestJobsRunStreamCancel(t *testing.T) {
	w := startWorker(t, "SIM_ITL_MS=60", "BATCH_MAX_WAIT_MS=20")

	t.Run("stream polling yields every item once, in order", func(t *testing.T) {
		var run struct{ ID, Status string }
		postJSON(t, w.URL+"/run", `{"input":{"prompt":"count with me","sampling_params":{"max_tokens":12},"stream":true}}`, &run)
		if run.Status != "IN_QUEUE" || run.ID == "" {
			t.Fatalf("/run = %+v", run)
		}
		var streamed []json.RawMessage
		for deadline := time.Now().Add(30 * time.Second); ; {
			var s struct {
				Status string
				Stream []struct{ Output json.RawMessage }
			}
			postJSON(t, w.URL+"/stream/"+run.ID, ``, &s)
			for _, it := range s.Stream {
				streamed = append(streamed, it.Output)
			}
			if s.Status == "COMPLETED" {
				break
			}
			if s.Status != "IN_PROGRESS" && s.Status != "IN_QUEUE" || time.Now().After(deadline) {
				t.Fatalf("status %s", s.Status)
			}
		}
		var final jobResult
		postJSON(t, w.URL+"/status/"+run.ID, ``, &final)
		if final.Status != "COMPLETED" || len(final.Output) != len(streamed) {
			t.Fatalf("status %s with %d items; streamed %d", final.Status, len(final.Output), len(streamed))
		}
		tokens := 0
		for i := range streamed {
			if string(streamed[i]) != string(final.Output[i]) {
				t.Errorf("item %d: streamed %s; final %s", i, streamed[i], final.Output[i])
			}
			var it nativeItem
			_ = json.Unmarshal(streamed[i], &it)
			tokens += len(it.Choices[0].Tokens)
			// The time cap (20 ms) flushes each token long before the next (60 ms).
			if len(it.Choices[0].Tokens) != 1 {
				t.Errorf("item %d holds %d tokens; the time cap should flush each one alone", i, len(it.Choices[0].Tokens))
			}
		}
		if tokens != 12 {
			t.Errorf("streamed %d tokens; want 12", tokens)
		}
	})

	t.Run("cancel aborts the engine request", func(t *testing.T) {
		before := engineAborts(t, w)
		var run struct{ ID string }
		postJSON(t, w.URL+"/run", `{"input":{"prompt":"a long story","sampling_params":{"max_tokens":2000},"stream":true}}`, &run)
		// Wait for the first item: the engine is generating.
		var first struct{ Stream []json.RawMessage }
		for deadline := time.Now().Add(10 * time.Second); len(first.Stream) == 0; {
			postJSON(t, w.URL+"/stream/"+run.ID, ``, &first)
			if time.Now().After(deadline) {
				t.Fatal("no item streamed")
			}
		}
		var c jobResult
		postJSON(t, w.URL+"/cancel/"+run.ID, ``, &c)
		if c.Status != "CANCELLED" {
			t.Fatalf("cancel answered %s", c.Status)
		}
		deadline := time.Now().Add(10 * time.Second)
		for engineAborts(t, w) <= before {
			if time.Now().After(deadline) {
				t.Fatal("the engine never counted the abort")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// engineAborts reads the simulated engine's abort counter from its /metrics.
func engineAborts(t *testing.T, w *testWorker) int {
	t.Helper()
	var h struct{ Engine struct{ URL string } }
	resp, err := http.Get(w.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	resp, err = http.Get(h.Engine.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "vllm:request_success_total{") && strings.Contains(line, `finished_reason="abort"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return int(v)
		}
	}
	return 0
}

// TestJobsBadInput: invalid inputs fail with a message naming the field, and the
// worker keeps serving.
func TestJobsBadInput(t *testing.T) {
	w := startWorker(t)
	for _, tt := range []struct{ input, want string }{
		{`{}`, "prompt, messages, openai_route"},
		{`{"prompt":42}`, "prompt"},
		{`{"messages":"hello"}`, "messages"},
		{`{"prompt":"x","sampling_params":{"n":0}}`, "sampling_params.n"},
		{`{"prompt":"x","stream":true,"max_batch_size":-5}`, "max_batch_size"},
		{`{"prompt":"x","batch_size_growth_factor":"fast"}`, "batch_size_growth_factor"},
		{`{"openai_route":"/v1/bogus","openai_input":{}}`, "openai_route"},
		{`{"route":"no-slash"}`, "route"},
		{`{"openai_input":{"model":"gpt-4","messages":[{"role":"user","content":"x"}]}}`, "does not exist"},
		{`{"prompt":"x","sampling_params":{"max_tokens":4096}}`, "maximum context length"},
	} {
		res := runSync(t, w, tt.input)
		if res.Status != "FAILED" || !strings.Contains(res.Error, tt.want) {
			t.Errorf("input %s: %s %q; want FAILED naming %q", tt.input, res.Status, res.Error, tt.want)
		}
	}
	for _, body := range []string{`{"input":`, `{"webhook":"x"}`, `[1]`} {
		resp, err := http.Post(w.URL+"/run", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("/run %s: status %d; want 400", body, resp.StatusCode)
		}
	}
	if items := nativeItems(t, runSync(t, w, `{"prompt":"still here"}`)); len(items) != 1 {
		t.Errorf("worker stopped serving jobs after bad input")
	}
	resp, err := http.Get(w.URL + "/v2/abc/health")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Jobs struct{ Completed, Failed int }
	}
	_ = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h.Jobs.Failed != 10 || h.Jobs.Completed != 1 {
		t.Errorf("health jobs = %+v; want 10 failed, 1 completed", h.Jobs)
	}
}

// TestJobsEngineErrorEvent: an engine error event ends every kind of job FAILED
// with the engine's own message, whether or not the engine follows it with
// [DONE] (vLLM does; other servers just end the stream).
func TestJobsEngineErrorEvent(t *testing.T) {
	w := startWorker(t, "BATCH_MAX_WAIT_MS=0")
	for _, fault := range []string{"error_mid_stream", "error_no_done"} {
		for name, input := range map[string]string{
			"openai_route stream":     `{"openai_route":"/v1/chat/completions","openai_input":{"messages":[{"role":"user","content":"hi"}],"max_tokens":10,"stream":true,"sim_fault":"` + fault + `"}}`,
			"openai_route completion": `{"openai_route":"/v1/completions","openai_input":{"prompt":"x","max_tokens":10,"stream":true,"sim_fault":"` + fault + `"}}`,
			"native stream":           `{"prompt":"x","sampling_params":{"max_tokens":10,"sim_fault":"` + fault + `"},"stream":true}`,
			"native":                  `{"prompt":"x","sampling_params":{"max_tokens":10,"sim_fault":"` + fault + `"}}`,
			"native chat stream":      `{"messages":[{"role":"user","content":"hi"}],"sampling_params":{"max_tokens":10,"sim_fault":"` + fault + `"},"stream":true}`,
		} {
			t.Run(fault+"/"+name, func(t *testing.T) {
				res := runSync(t, w, input)
				if res.Status != "FAILED" || !strings.Contains(res.Error, "sim_fault="+fault) {
					t.Errorf("job %s %q; want FAILED with the engine's message (sim_fault=%s)", res.Status, res.Error, fault)
				}
			})
		}
	}
}
