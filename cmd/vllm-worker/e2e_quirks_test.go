package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/vllm-worker/vllm-worker/internal/fakerunpod"
	"github.com/vllm-worker/vllm-worker/sim"
)

// TestWorkerUnderEachQuirk runs the worker's faces (the go-openai client, HTTP
// streams, /runsync jobs, handler mode) on the sim with each SIM_QUIRKS
// behaviour of other OpenAI servers, and on the plain sim. The worker's answers
// stay correct whatever the engine: an engine error mid-stream is exactly one
// error event in the nested envelope with the engine's message, then [DONE]; an
// error before the stream is the nested envelope with the engine's status;
// usage is never wrong; n is never invented (an engine that ignores it gives
// one choice, and a native job's second choice stays empty). The official Node
// SDK runs under each quirk too
// (TestOpenAINodeSDK).
func TestWorkerUnderEachQuirk(t *testing.T) {
	quirks := []string{""}
	for _, q := range sim.Quirks() {
		quirks = append(quirks, string(q))
	}
	for _, q := range quirks {
		name := "SIM_QUIRKS=" + q
		if q == "" {
			name = "no quirk"
		}
		t.Run(name, func(t *testing.T) {
			fake := fakerunpod.New(t, fakerunpod.Options{LongPoll: 100 * time.Millisecond})
			enqueueQuirkJobs(fake)
			w := startWorker(t, append(fake.Env(), "SIM_QUIRKS="+q, "BATCH_MAX_WAIT_MS=0")...)
			choices := 2
			if q == string(sim.QuirkNoN) {
				choices = 1
			}
			t.Run("go-openai", func(t *testing.T) { quirkGoClient(t, w, choices) })
			t.Run("HTTP errors", func(t *testing.T) { quirkHTTPErrors(t, w) })
			t.Run("jobs", func(t *testing.T) { quirkJobs(t, w, choices) })
			t.Run("handler mode", func(t *testing.T) { quirkHandler(t, w, fake) })
		})
	}
}

// quirkGoClient: a chat with n=2, whole and streamed with usage: the choices
// the engine made (never more), and usage that counts the tokens sent.
func quirkGoClient(t *testing.T, w *testWorker, choices int) {
	ctx := context.Background()
	c := goClient(w.URL + "/openai/v1")
	chat, err := c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: testModel, Messages: chatMessages, MaxCompletionTokens: 6, N: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(chat.Choices) != choices || chat.Usage.CompletionTokens != 6*choices {
		t.Errorf("n=2: %d choices, usage %+v; want %d choices of 6 tokens", len(chat.Choices), chat.Usage, choices)
	}
	stream, err := c.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{
		Model: testModel, Messages: chatMessages, MaxCompletionTokens: 6, N: 2, Stream: true,
		StreamOptions: &goopenai.StreamOptions{IncludeUsage: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	deltas, seen := 0, map[int]bool{}
	var usage *goopenai.Usage
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Usage != nil && len(chunk.Choices) == 0 {
			usage = chunk.Usage
		}
		for _, ch := range chunk.Choices {
			seen[ch.Index] = true
			if ch.Delta.Content != "" {
				deltas++
			}
		}
	}
	if len(seen) != choices {
		t.Errorf("stream with n=2: choices %v; want %d", seen, choices)
	}
	if usage == nil || usage.CompletionTokens != deltas || usage.PromptTokens != 5 {
		t.Errorf("stream usage %+v; want %d completion tokens (the deltas sent) and 5 prompt tokens", usage, deltas)
	}
}

// quirkHTTPErrors: errors before and inside a stream, as a client sees them.
func quirkHTTPErrors(t *testing.T, w *testWorker) {
	c := &http.Client{Timeout: 30 * time.Second}
	for _, path := range []string{"/v1/chat/completions", "/openai/v1/completions"} {
		body := chatBody(`"max_tokens":10,"stream":true,"sim_fault":"error_mid_stream"`)
		if strings.HasSuffix(path, "/completions") && !strings.Contains(path, "chat") {
			body = `{"model":"test-model","prompt":"x","max_tokens":10,"stream":true,"sim_fault":"error_mid_stream"}`
		}
		resp, raw := post(t, c, w.URL+path, body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
		}
		if e, _ := checkErrorEnd(t, raw, http.StatusInternalServerError); !strings.Contains(e.Message, "sim_fault=error_mid_stream") {
			t.Errorf("%s: error event %+v; want the engine's message", path, e)
		}
	}
	// An in-band refusal of vLLM's own (more logprobs than it allows).
	resp, raw := post(t, c, w.URL+"/v1/chat/completions", chatBody(`"max_tokens":5,"stream":true,"logprobs":true,"top_logprobs":25`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("top_logprobs 25: %d %s", resp.StatusCode, raw)
	}
	if e, _ := checkErrorEnd(t, raw, http.StatusBadRequest); !strings.Contains(e.Message, "greater than max allowed: 20") {
		t.Errorf("top_logprobs 25: error event %+v; want vLLM's message", e)
	}
	for _, tt := range []struct {
		body   string
		status int
		msg    string
	}{
		{`{"model":"nope","messages":[{"role":"user","content":"x"}],"stream":true}`, http.StatusNotFound, "does not exist"},
		{chatBody(`"temperature":3`), http.StatusBadRequest, "temperature"},
	} {
		resp, raw := post(t, c, w.URL+"/v1/chat/completions", tt.body)
		if e := checkEnvelope(t, raw, resp.StatusCode); resp.StatusCode != tt.status || !strings.Contains(e.Message, tt.msg) {
			t.Errorf("%s: %d %+v; want %d naming %q", tt.body, resp.StatusCode, e, tt.status, tt.msg)
		}
	}
}

// quirkJobs: /runsync native jobs report true usage and the choices the engine
// made; an engine error mid-stream fails the job with the engine's message.
func quirkJobs(t *testing.T, w *testWorker, choices int) {
	for _, stream := range []bool{true, false} {
		res := runSync(t, w, fmt.Sprintf(`{"prompt":"four words of prompt","sampling_params":{"max_tokens":13,"n":2},"stream":%v}`, stream))
		items := nativeItems(t, res)
		for i, raw := range res.Output {
			var u struct {
				Usage map[string]int64 `json:"usage"`
			}
			if err := json.Unmarshal(raw, &u); err != nil {
				t.Fatal(err)
			}
			if in, ok := u.Usage["input"]; ok && in != 4 {
				t.Errorf("stream=%v item %d: usage %v; the prompt has 4 tokens", stream, i, u.Usage)
			}
			if i == len(res.Output)-1 && (u.Usage["input"] != 4 || u.Usage["output"] != int64(13*choices)) {
				t.Errorf("stream=%v: last usage %v; want input 4, output %d", stream, u.Usage, 13*choices)
			}
		}
		// Native items keep worker-vllm's shape, one entry per n in every item;
		// a choice the engine did not make stays empty, never filled.
		for c := range 2 {
			if got := text(items, c); (c < choices) != (got != "") {
				t.Errorf("stream=%v: choice %d says %q; the engine made %d choices", stream, c, got, choices)
			}
		}
	}
	res := runSync(t, w, `{"openai_route":"/v1/chat/completions","openai_input":{"messages":[{"role":"user","content":"x"}],"max_tokens":10,"stream":true,"sim_fault":"error_mid_stream"}}`)
	if res.Status != "FAILED" || !strings.Contains(res.Error, "engine error (500 InternalServerError): simulated engine error mid-stream") {
		t.Errorf("a job whose engine stream fails: %s %q", res.Status, res.Error)
	}
}

// enqueueQuirkJobs queues quirkHandler's jobs before the worker starts.
func enqueueQuirkJobs(fake *fakerunpod.Server) {
	fake.Enqueue("ok", json.RawMessage(`{"prompt":"x y","sampling_params":{"max_tokens":13},"stream":true}`))
	fake.Enqueue("fails", json.RawMessage(`{"openai_route":"/v1/completions","openai_input":{"prompt":"x","max_tokens":10,"stream":true,"sim_fault":"error_mid_stream"}}`))
}

// quirkHandler: handler mode delivers a streamed job whole and fails a job
// whose engine stream fails, with the engine's message.
func quirkHandler(t *testing.T, w *testWorker, fake *fakerunpod.Server) {
	waitFake(t, 20*time.Second, "both results", func(ctx context.Context) error {
		return fake.Wait(ctx, func() bool { return len(fake.Dones("ok")) == 1 && len(fake.Dones("fails")) == 1 })
	})
	ok := fake.Dones("ok")[0]
	var want jobResult
	postJSON(t, w.URL+"/runsync", `{"input":{"prompt":"x y","sampling_params":{"max_tokens":13},"stream":true}}`, &want)
	if ok.Error != "" || fold(t, ok.Output) != fold(t, want.Output) || normalise(fake.Stream("ok")) != normalise(ok.Output) {
		t.Errorf("streamed job: %+v; want /runsync's output, streamed whole", ok)
	}
	if d := fake.Dones("fails")[0]; !strings.Contains(d.Error, "simulated engine error mid-stream") || !d.IsStream {
		t.Errorf("failing job: %+v; want the engine's message", d)
	}
}
