package sim

import (
	"encoding/json"
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// parseMessages validates the chat messages and passes add the text of every
// message's content, which is a string, null, or a list of parts whose "text"
// counts (image and audio parts count nothing).
func parseMessages(v gjson.Result, add func(text string)) *openai.Error {
	bad := func(msg string) *openai.Error {
		return openai.NewError(http.StatusBadRequest, "messages: "+msg).WithParam("messages")
	}
	if !v.IsArray() {
		return bad("Input should be a valid list")
	}
	n := 0
	var e *openai.Error
	v.ForEach(func(_, m gjson.Result) bool {
		n++
		if !m.IsObject() || m.Get("role").Type != gjson.String {
			e = bad("each message must be an object with a string 'role'")
			return false
		}
		switch c := m.Get("content"); {
		case c.Type == gjson.String:
			add(c.Str)
		case c.Type == gjson.Null: // absent or null: an assistant turn with tool calls
		case c.IsArray():
			c.ForEach(func(_, part gjson.Result) bool {
				if !part.IsObject() {
					e = bad("each content part must be an object")
					return false
				}
				if t := part.Get("text"); t.Type == gjson.String {
					add(t.Str)
				}
				return true
			})
		default:
			e = bad("'content' must be a string or a list of content parts")
		}
		return e == nil
	})
	if e == nil && n == 0 {
		e = bad("List should have at least 1 item")
	}
	return e
}

// chatCompletion is vLLM's non-streaming chat response (specs/vllm.md 1.6).
type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	ServiceTier       null         `json:"service_tier"`
	SystemFingerprint null         `json:"system_fingerprint"`
	Usage             usage        `json:"usage"`
	PromptLogprobs    null         `json:"prompt_logprobs"`
	PromptTokenIDs    null         `json:"prompt_token_ids"`
	KVTransferParams  null         `json:"kv_transfer_params"`
}

type chatChoice struct {
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
	Logprobs     null        `json:"logprobs"`
	FinishReason string      `json:"finish_reason"`
	StopReason   *string     `json:"stop_reason"`
	TokenIDs     null        `json:"token_ids"`
}

type chatMessage struct {
	Role         string `json:"role"`
	Content      string `json:"content"`
	Refusal      null   `json:"refusal"`
	Annotations  null   `json:"annotations"`
	Audio        null   `json:"audio"`
	FunctionCall null   `json:"function_call"`
	Reasoning    null   `json:"reasoning"`
}

// chatBody generates every choice of g and renders the chat.completion object.
func (s *Server) chatBody(g *generation) []byte {
	resp := chatCompletion{ID: g.id, Object: "chat.completion", Created: g.created, Model: s.o.Model,
		Choices: make([]chatChoice, len(g.seqs))}
	for i := range g.seqs {
		sq := &g.seqs[i]
		resp.Choices[i] = chatChoice{
			Index:        sq.index,
			Message:      chatMessage{Role: "assistant", Content: sq.text(s.vocab)},
			FinishReason: sq.reason,
			StopReason:   stopReason(sq),
		}
	}
	resp.Usage = newUsage(g.tokens, g.completionTokens())
	b, _ := json.Marshal(resp) // cannot fail: strings and ints only
	return b
}
