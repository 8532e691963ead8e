package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
)

func goClient(baseURL string) *goopenai.Client {
	cfg := goopenai.DefaultConfig("unused")
	cfg.BaseURL = baseURL
	return goopenai.NewClientWithConfig(cfg)
}

var chatMessages = []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Why is the sky blue?"}}

// TestOpenAIGoClient drives the worker with the go-openai client, at /openai/v1,
// /v1 and under /v2/{endpoint_id}/openai/v1.
func TestOpenAIGoClient(t *testing.T) {
	w := startWorker(t)
	ctx := context.Background()
	for _, prefix := range []string{"/openai/v1", "/v1", "/v2/my-endpoint/openai/v1"} {
		t.Run(strings.ReplaceAll(prefix, "/", "_"), func(t *testing.T) {
			c := goClient(w.URL + prefix)

			models, err := c.ListModels(ctx)
			if err != nil {
				t.Fatalf("ListModels: %v", err)
			}
			if len(models.Models) != 1 || models.Models[0].ID != testModel {
				t.Errorf("models = %+v; want one %q", models.Models, testModel)
			}

			chat, err := c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: testModel, Messages: chatMessages, MaxCompletionTokens: 12})
			if err != nil {
				t.Fatalf("chat: %v", err)
			}
			if len(chat.Choices) != 1 || chat.Choices[0].Message.Content == "" || chat.Choices[0].FinishReason != "length" {
				t.Errorf("chat = %+v", chat)
			}
			if chat.Usage.CompletionTokens != 12 || chat.Usage.PromptTokens != 5 || chat.Usage.TotalTokens != 17 {
				t.Errorf("chat usage = %+v; want 5 + 12", chat.Usage)
			}

			stream, err := c.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{
				Model: testModel, Messages: chatMessages, MaxCompletionTokens: 12, N: 2, Stream: true,
				StreamOptions: &goopenai.StreamOptions{IncludeUsage: true},
			})
			if err != nil {
				t.Fatalf("chat stream: %v", err)
			}
			texts := map[int]string{}
			finish := map[int]goopenai.FinishReason{}
			var usage *goopenai.Usage
			for {
				chunk, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("chat stream recv: %v", err)
				}
				if chunk.Usage != nil {
					usage = chunk.Usage
				}
				for _, ch := range chunk.Choices {
					texts[ch.Index] += ch.Delta.Content
					if ch.FinishReason != "" {
						finish[ch.Index] = ch.FinishReason
					}
				}
			}
			stream.Close()
			if len(texts) != 2 || texts[0] == "" || texts[1] == "" || texts[0] == texts[1] {
				t.Errorf("n=2 texts = %v; want two different non-empty texts", texts)
			}
			if finish[0] != "length" || finish[1] != "length" {
				t.Errorf("finish reasons = %v", finish)
			}
			if usage == nil || usage.CompletionTokens != 24 {
				t.Errorf("stream usage = %+v; want 24 completion tokens", usage)
			}

			// Completions: the stream's text equals the non-streamed text.
			comp, err := c.CreateCompletion(ctx, goopenai.CompletionRequest{Model: testModel, Prompt: "Runpod is the best platform because", MaxTokens: 10})
			if err != nil {
				t.Fatalf("completion: %v", err)
			}
			cs, err := c.CreateCompletionStream(ctx, goopenai.CompletionRequest{Model: testModel, Prompt: "Runpod is the best platform because", MaxTokens: 10, Stream: true})
			if err != nil {
				t.Fatalf("completion stream: %v", err)
			}
			var streamed string
			for {
				chunk, err := cs.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("completion stream recv: %v", err)
				}
				if len(chunk.Choices) > 0 {
					streamed += chunk.Choices[0].Text
				}
			}
			cs.Close()
			if streamed == "" || streamed != comp.Choices[0].Text {
				t.Errorf("streamed %q; non-streamed %q", streamed, comp.Choices[0].Text)
			}
		})
	}
}

// TestSSEFramingRaw reads a relayed stream as raw bytes: every event whole
// ("data: <JSON>\n\n"), one id throughout, [DONE] last and only once; with the
// default dynamic batching as well as with every event flushed.
func TestSSEFramingRaw(t *testing.T) {
	for _, env := range [][]string{nil, {"DEFAULT_BATCH_SIZE=1"}, {"BATCH_MAX_WAIT_MS=0"}} {
		t.Run(strings.Join(env, ","), func(t *testing.T) {
			w := startWorker(t, env...)
			body := `{"model":"test-model","messages":[{"role":"user","content":"hi there"}],"max_tokens":40,"n":2,"stream":true,"stream_options":{"include_usage":true}}`
			resp, err := http.Post(w.URL+"/openai/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("status %d, content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id echoed")
			}
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			events := checkSSE(t, raw)
			// 2 role chunks + 2×40 tokens + 1 usage chunk + [DONE]
			if len(events) != 2+80+1+1 {
				t.Errorf("got %d events; want %d", len(events), 84)
			}
		})
	}
}

// checkSSE verifies SSE framing on raw bytes and returns the event payloads.
func checkSSE(t *testing.T, raw []byte) []string {
	t.Helper()
	if !bytes.HasSuffix(raw, []byte("data: [DONE]\n\n")) {
		t.Fatalf("stream does not end with [DONE]: ...%q", raw[max(0, len(raw)-80):])
	}
	parts := strings.Split(strings.TrimSuffix(string(raw), "\n\n"), "\n\n")
	ids := map[string]bool{}
	for i, p := range parts {
		if !strings.HasPrefix(p, "data: ") || strings.Contains(p, "\n") {
			t.Fatalf("event %d is not one data line: %q", i, p)
		}
		data := strings.TrimPrefix(p, "data: ")
		if data == "[DONE]" {
			if i != len(parts)-1 {
				t.Fatalf("[DONE] at event %d of %d", i, len(parts))
			}
			continue
		}
		var chunk struct {
			ID    string          `json:"id"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatalf("event %d is not valid JSON: %v: %q", i, err, data)
		}
		if chunk.Error != nil {
			t.Fatalf("error event: %s", data)
		}
		ids[chunk.ID] = true
		parts[i] = data
	}
	if len(ids) != 1 {
		t.Errorf("ids = %v; want one id per stream", ids)
	}
	return parts
}

// TestBadInput: malformed requests get the right status and the OpenAI envelope,
// and the worker keeps serving.
func TestBadInput(t *testing.T) {
	w := startWorker(t)
	tests := []struct {
		name, method, path, contentType, body string
		status                                int
		param                                 string
	}{
		{"invalid JSON", "POST", "/openai/v1/chat/completions", "application/json", `{"model":`, 400, ""},
		{"not an object", "POST", "/openai/v1/chat/completions", "application/json", `[1]`, 400, ""},
		{"wrong content type", "POST", "/openai/v1/chat/completions", "text/plain", `{"model":"test-model"}`, 400, ""},
		{"unknown model", "POST", "/openai/v1/chat/completions", "application/json", `{"model":"gpt-4","messages":[{"role":"user","content":"x"}]}`, 404, "model"},
		{"unknown model, completions", "POST", "/v1/completions", "application/json", `{"model":"gpt-4","prompt":"x"}`, 404, "model"},
		{"stream not a bool", "POST", "/v1/chat/completions", "application/json", `{"model":"test-model","stream":"yes"}`, 400, "stream"},
		{"engine validation error", "POST", "/v1/chat/completions", "application/json", `{"model":"test-model"}`, 400, ""},
		{"unknown route", "GET", "/nope", "", "", 404, ""},
		{"unknown v1 route reaches the engine", "POST", "/v1/nope", "application/json", `{}`, 404, ""},
		{"wrong method", "GET", "/openai/v1/chat/completions", "", "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, w.URL+tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    int     `json:"code"`
				} `json:"error"`
			}
			raw, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(raw, &env); err != nil || env.Error.Message == "" || env.Error.Type == "" {
				t.Fatalf("body %q is not the OpenAI error envelope (%v)", raw, err)
			}
			if resp.StatusCode != tt.status || env.Error.Code != tt.status {
				t.Errorf("status %d, code %d; want %d: %s", resp.StatusCode, env.Error.Code, tt.status, raw)
			}
			if tt.param != "" && (env.Error.Param == nil || *env.Error.Param != tt.param) {
				t.Errorf("param = %v; want %q", env.Error.Param, tt.param)
			}
		})
	}
	// Still serving.
	_, err := goClient(w.URL+"/v1").CreateCompletion(context.Background(), goopenai.CompletionRequest{Model: testModel, Prompt: "still there", MaxTokens: 3})
	if err != nil {
		t.Fatalf("worker stopped serving after bad input: %v", err)
	}
}
