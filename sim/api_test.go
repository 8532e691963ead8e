package sim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"
)

func TestModels(t *testing.T) {
	_, ts := newTest(t, Options{Root: "/models/sim", MaxModelLen: 2048})
	list, err := client(ts).ListModels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != 1 || list.Models[0].ID != testModel || list.Models[0].OwnedBy != "vllm" {
		t.Fatalf("models = %+v; want one %q owned by vllm", list.Models, testModel)
	}
	resp, err := http.Get(ts.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	card := gjson.GetBytes(body, "data.0")
	if gjson.GetBytes(body, "object").Str != "list" || card.Get("object").Str != "model" ||
		card.Get("root").Str != "/models/sim" || card.Get("max_model_len").Int() != 2048 ||
		card.Get("parent").Type != gjson.Null || card.Get("created").Int() == 0 {
		t.Errorf("models body = %s", body)
	}
	perm := card.Get("permission.0")
	if !strings.HasPrefix(perm.Get("id").Str, "modelperm-") || perm.Get("object").Str != "model_permission" ||
		!perm.Get("allow_sampling").Bool() || perm.Get("organization").Str != "*" {
		t.Errorf("permission = %s", perm.Raw)
	}
}

func TestChatNonStream(t *testing.T) {
	_, ts := newTest(t, Options{})
	resp, err := client(ts).CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{
		Model:               testModel,
		Messages:            []goopenai.ChatCompletionMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello there world"}},
		MaxCompletionTokens: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.ID, "chatcmpl-") || resp.Object != "chat.completion" || resp.Model != testModel {
		t.Errorf("id/object/model = %q %q %q", resp.ID, resp.Object, resp.Model)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].FinishReason != "length" || resp.Choices[0].Message.Role != "assistant" {
		t.Fatalf("choices = %+v", resp.Choices)
	}
	if got := len(strings.Fields(resp.Choices[0].Message.Content)); got != 5 {
		t.Errorf("content %q has %d words; want 5", resp.Choices[0].Message.Content, got)
	}
	want := goopenai.Usage{PromptTokens: 5, CompletionTokens: 5, TotalTokens: 10}
	if resp.Usage.PromptTokens != want.PromptTokens || resp.Usage.CompletionTokens != want.CompletionTokens || resp.Usage.TotalTokens != want.TotalTokens {
		t.Errorf("usage = %+v; want %+v", resp.Usage, want)
	}
}

func TestCompletionNonStream(t *testing.T) {
	_, ts := newTest(t, Options{})
	resp, err := client(ts).CreateCompletion(context.Background(), goopenai.CompletionRequest{
		Model: testModel, Prompt: "once upon a time", N: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.ID, "cmpl-") || resp.Object != "text_completion" || len(resp.Choices) != 2 {
		t.Fatalf("resp = %+v", resp)
	}
	for i, c := range resp.Choices {
		if c.Index != i || c.FinishReason != "length" || len(strings.Fields(c.Text)) != 16 {
			t.Errorf("choice %d = %+v; want index %d, 16 words, length", i, c, i)
		}
	}
	if resp.Choices[0].Text == resp.Choices[1].Text {
		t.Errorf("both choices generated %q", resp.Choices[0].Text)
	}
	if resp.Usage.PromptTokens != 4 || resp.Usage.CompletionTokens != 32 || resp.Usage.TotalTokens != 36 {
		t.Errorf("usage = %+v; want 4+32", resp.Usage)
	}
}

func TestChatStreamClient(t *testing.T) {
	_, ts := newTest(t, Options{})
	stream, err := client(ts).CreateChatCompletionStream(context.Background(), goopenai.ChatCompletionRequest{
		Messages:            []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
		MaxCompletionTokens: 4,
		Stream:              true,
		StreamOptions:       &goopenai.StreamOptions{IncludeUsage: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var text strings.Builder
	var roles, finishes int
	var usage *goopenai.Usage
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
		for _, c := range chunk.Choices {
			if c.Delta.Role == "assistant" {
				roles++
			}
			if c.FinishReason != "" {
				finishes++
			}
			text.WriteString(c.Delta.Content)
		}
	}
	if roles != 1 || finishes != 1 || len(strings.Fields(text.String())) != 4 {
		t.Errorf("roles %d finishes %d text %q; want 1, 1, 4 words", roles, finishes, text.String())
	}
	if usage == nil || usage.PromptTokens != 1 || usage.CompletionTokens != 4 || usage.TotalTokens != 5 {
		t.Errorf("usage = %+v; want 1+4", usage)
	}
}

func TestCompletionStreamClient(t *testing.T) {
	_, ts := newTest(t, Options{})
	stream, err := client(ts).CreateCompletionStream(context.Background(), goopenai.CompletionRequest{
		Model: testModel, Prompt: "a b c", MaxTokens: 6, Stream: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var text strings.Builder
	var finish string
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chunk.Choices {
			text.WriteString(c.Text)
			if c.FinishReason != "" {
				finish = c.FinishReason
			}
		}
	}
	if len(strings.Fields(text.String())) != 6 || finish != "length" {
		t.Errorf("text %q finish %q; want 6 words, length", text.String(), finish)
	}
	// Streamed and non-streamed text are the same for the same prompt.
	resp, err := client(ts).CreateCompletion(context.Background(), goopenai.CompletionRequest{Model: testModel, Prompt: "a b c", MaxTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Text != text.String() {
		t.Errorf("non-stream %q != stream %q", resp.Choices[0].Text, text.String())
	}
}
