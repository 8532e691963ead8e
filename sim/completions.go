package sim

// addTokenID adds one token id to p.
func (p *prompt) addTokenID(id uint64) {
	p.hash = (p.hash ^ id) * fnvPrime
	p.tokens++
}

// textCompletion is vLLM's non-streaming completions response
// (CompletionResponse in vLLM's vllm/entrypoints/openai/protocol.py).
type textCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []textChoice `json:"choices"`
	ServiceTier       null         `json:"service_tier"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Usage             usage        `json:"usage"`
	KVTransferParams  null         `json:"kv_transfer_params"`
	ECTransferParams  null         `json:"ec_transfer_params"`
	Metrics           null         `json:"metrics"`
}

type textChoice struct {
	Index          int     `json:"index"`
	Text           string  `json:"text"`
	Logprobs       null    `json:"logprobs"`
	FinishReason   string  `json:"finish_reason"`
	StopReason     *string `json:"stop_reason"`
	TokenIDs       null    `json:"token_ids"`
	PromptLogprobs null    `json:"prompt_logprobs"`
	PromptTokenIDs null    `json:"prompt_token_ids"`
	RoutedExperts  null    `json:"routed_experts"`
}

// completionBody generates every choice of g and renders the text_completion object.
func (s *Server) completionBody(g *generation) []byte {
	resp := textCompletion{ID: g.id, Object: "text_completion", Created: g.created, Model: s.o.Model,
		SystemFingerprint: s.fingerprint, Choices: make([]textChoice, len(g.seqs))}
	for i := range g.seqs {
		sq := &g.seqs[i]
		resp.Choices[i] = textChoice{Index: sq.index, Text: sq.text(s.vocab), FinishReason: sq.reason, StopReason: stopReason(sq)}
	}
	resp.Usage = newUsage(g.tokens, g.completionTokens())
	return marshal(resp)
}
