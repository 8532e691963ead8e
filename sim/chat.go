package sim

// chatCompletion is vLLM's non-streaming chat response (notes/vllm-validation.md 8).
type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	ServiceTier       null         `json:"service_tier"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Usage             usage        `json:"usage"`
	PromptLogprobs    null         `json:"prompt_logprobs"`
	PromptTokenIDs    null         `json:"prompt_token_ids"`
	PromptText        null         `json:"prompt_text"`
	KVTransferParams  null         `json:"kv_transfer_params"`
	ECTransferParams  null         `json:"ec_transfer_params"`
	Metrics           null         `json:"metrics"`
}

type chatChoice struct {
	Index         int     `json:"index"`
	Message       chatMsg `json:"message"`
	Logprobs      null    `json:"logprobs"`
	FinishReason  string  `json:"finish_reason"`
	StopReason    *string `json:"stop_reason"`
	TokenIDs      null    `json:"token_ids"`
	RoutedExperts null    `json:"routed_experts"`
}

type chatMsg struct {
	Role         string         `json:"role"`
	Content      *string        `json:"content"`
	Refusal      null           `json:"refusal"`
	Annotations  null           `json:"annotations"`
	Audio        null           `json:"audio"`
	FunctionCall null           `json:"function_call"`
	ToolCalls    []toolCallJSON `json:"tool_calls,omitempty"` // vLLM drops an empty list
	Reasoning    null           `json:"reasoning"`
}

type toolCallJSON struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function functionJSON `json:"function"`
}

type functionJSON struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// chatMessageOf generates all of sq and returns its message: text, or a tool
// call. A call cut short by max_tokens is what vLLM's parsers make of a partial
// output: hermes ("auto") and "required" cannot parse it and return the raw text
// as content; a named choice returns the partial arguments.
func (s *Server) chatMessageOf(sq *sequence) chatMsg {
	m := chatMsg{Role: "assistant"}
	if sq.tool == nil {
		text := sq.text(s.vocab)
		m.Content = &text
		return m
	}
	sq.k = sq.total
	c := sq.tool
	empty := ""
	switch {
	case sq.toolWhole() || c.mode == toolNamed:
		if c.mode != toolAuto {
			m.Content = &empty // required and named answer "", not null
		}
		m.ToolCalls = []toolCallJSON{{ID: c.id, Type: "function",
			Function: functionJSON{Name: c.name, Arguments: c.partialArgs(sq.total)}}}
	default:
		raw := c.rawText(sq.total)
		m.Content = &raw
	}
	return m
}

// chatBody generates every choice of g and renders the chat.completion object.
func (s *Server) chatBody(g *generation) []byte {
	resp := chatCompletion{ID: g.id, Object: "chat.completion", Created: g.created, Model: s.o.Model,
		SystemFingerprint: s.fingerprint, Choices: make([]chatChoice, len(g.seqs))}
	for i := range g.seqs {
		sq := &g.seqs[i]
		resp.Choices[i] = chatChoice{
			Index:        sq.index,
			Message:      s.chatMessageOf(sq),
			FinishReason: sq.finishReason(false),
			StopReason:   stopReason(sq),
		}
	}
	resp.Usage = newUsage(g.tokens, g.completionTokens())
	return marshal(resp)
}
