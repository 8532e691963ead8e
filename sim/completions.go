package sim

import (
	"encoding/json"
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// parsePrompts reads a completions "prompt": a string, a list of strings, a list of
// token ids, or a list of lists of token ids. Each string or id list is one prompt
// and gets its own n choices, as in vLLM.
func parsePrompts(v gjson.Result) ([]prompt, *openai.Error) {
	bad := openai.NewError(http.StatusBadRequest,
		"prompt: must be a string, a list of strings or a list of token ids").WithParam("prompt")
	if v.Type == gjson.String {
		p := prompt{hash: fnvOffset}
		p.addText(v.Str)
		return []prompt{p}, nil
	}
	if !v.IsArray() {
		return nil, bad
	}
	var prompts []prompt
	var ids *prompt // the prompt being built from a flat list of token ids
	ok := true
	v.ForEach(func(_, item gjson.Result) bool {
		switch {
		case item.Type == gjson.String && ids == nil:
			p := prompt{hash: fnvOffset}
			p.addText(item.Str)
			prompts = append(prompts, p)
		case item.Type == gjson.Number && len(prompts) == 0:
			if ids == nil {
				ids = &prompt{hash: fnvOffset}
			}
			ok = ids.addTokenID(item)
		case item.IsArray() && ids == nil:
			p := prompt{hash: fnvOffset}
			item.ForEach(func(_, id gjson.Result) bool {
				ok = id.Type == gjson.Number && p.addTokenID(id)
				return ok
			})
			prompts = append(prompts, p)
		default:
			ok = false
		}
		return ok
	})
	if ids != nil {
		prompts = append(prompts, *ids)
	}
	if !ok || len(prompts) == 0 {
		return nil, bad
	}
	return prompts, nil
}

// addTokenID adds one token id (a non-negative integer) to p.
func (p *prompt) addTokenID(id gjson.Result) bool {
	if id.Num != float64(int64(id.Num)) || id.Num < 0 {
		return false
	}
	p.hash = (p.hash ^ uint64(id.Num)) * fnvPrime
	p.tokens++
	return true
}

// textCompletion is vLLM's non-streaming completions response (specs/vllm.md 1.6).
type textCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []textChoice `json:"choices"`
	ServiceTier       null         `json:"service_tier"`
	SystemFingerprint null         `json:"system_fingerprint"`
	Usage             usage        `json:"usage"`
	KVTransferParams  null         `json:"kv_transfer_params"`
}

type textChoice struct {
	Index          int     `json:"index"`
	Text           string  `json:"text"`
	Logprobs       null    `json:"logprobs"`
	FinishReason   string  `json:"finish_reason"`
	StopReason     *string `json:"stop_reason"`
	PromptLogprobs null    `json:"prompt_logprobs"`
}

// completionBody generates every choice of g and renders the text_completion object.
func (s *Server) completionBody(g *generation) []byte {
	resp := textCompletion{ID: g.id, Object: "text_completion", Created: g.created, Model: s.o.Model,
		Choices: make([]textChoice, len(g.seqs))}
	for i := range g.seqs {
		sq := &g.seqs[i]
		resp.Choices[i] = textChoice{Index: sq.index, Text: sq.text(s.vocab), FinishReason: sq.reason, StopReason: stopReason(sq)}
	}
	resp.Usage = newUsage(g.tokens, g.completionTokens())
	b, _ := json.Marshal(resp) // cannot fail: strings and ints only
	return b
}
