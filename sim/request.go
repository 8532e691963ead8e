package sim

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// defaultMaxTokens is completions' max_tokens default, and what the simulator
// generates for a chat that sets no limit (vLLM fills the context up to EOS; the
// simulated model "says" its end of sequence after 16 tokens).
const defaultMaxTokens = 16

// kind is the route a generation request came in on.
type kind int

const (
	kindChat kind = iota
	kindCompletion
	kindResponses
)

// genRequest is a validated generation request.
type genRequest struct {
	kind         kind
	chat         bool // kind == kindChat
	stream       bool
	includeUsage bool // stream_options.include_usage
	continuous   bool // and continuous_usage_stats (unless QuirkNoContinuousUsage)
	n            int
	prompts      []prompt // chat and responses: exactly one
	maxTokens    int      // tokens each choice may generate
	stops        []string
	tool         *toolPlan     // nil: text
	engineErr    *openai.Error // the engine's verify refused it: in-band for a stream
	fault        string
	faultAfter   int    // content chunks before a mid-stream fault
	baseID       string // vLLM's request id: X-Request-Id, else request_id, else random
	resp         *responsesFields
}

// checkModel answers an absent, null or empty model with the served one, and any
// other with vLLM's 404.
func (s *Server) checkModel(o *object) *openai.Error {
	m := o.get("model")
	if m.Type != gjson.String || m.Str == "" || m.Str == s.o.Model {
		return nil
	}
	return errModel(m.Str)
}

// parseSimFields reads the simulator's own fields, sim_fault and sim_fault_after,
// which vLLM would ignore. A bad value is a 400, so a typo in a test fails loudly.
func parseSimFields(o *object, req *genRequest) *openai.Error {
	var e *openai.Error
	if v, ok := o.vals["sim_fault"]; ok {
		if req.fault, e = parseFault(v); e != nil {
			return e
		}
	}
	if v, ok := o.vals["sim_fault_after"]; ok {
		if v.Type != gjson.Number || v.Num != float64(int32(v.Num)) || v.Num < 0 {
			return openai.NewError(http.StatusBadRequest, "'sim_fault_after' must be a non-negative integer").WithParam("sim_fault_after")
		}
		req.faultAfter = int(v.Num)
	}
	return nil
}

// parseGenerate validates a chat or completions request as vLLM does, in its
// order: the before-validators, pydantic's field checks, the model, the context
// length, SamplingParams; the engine's own checks last (req.engineErr).
func (s *Server) parseGenerate(r *http.Request, o *object, k kind) (*genRequest, *openai.Error) {
	req := &genRequest{kind: k, chat: k == kindChat, faultAfter: 2, n: 1}
	if e := parseSimFields(o, req); e != nil {
		return nil, e
	}
	if s.quirks.has(QuirkNoN) {
		o.del("n") // a server that knows no n
	}
	var e *openai.Error
	fields := s.models.completion
	if req.chat {
		e, fields = chatBefore(o), s.models.chat
	} else {
		e = completionBefore(o)
	}
	if e != nil {
		return nil, e
	}
	var c checker
	checkModel(&c, o, func() []byte { return pyDictRepr(nil, o) }, []any{"body"}, fields)
	if len(c.errs) > 0 {
		return nil, errValidation(c.errs)
	}
	if e := s.checkModel(o); e != nil {
		return nil, e
	}
	if req.chat {
		if truthy(o.get("chat_template")) || truthy(o.get("chat_template_kwargs").Get("chat_template")) {
			return nil, errValue("Chat template is passed with request, but --trust-request-chat-template is not set. Refused request with untrusted chat template.")
		}
		p := prompt{hash: fnvOffset}
		o.get("messages").ForEach(func(_, m gjson.Result) bool { messageText(m, p.addText); return true })
		req.prompts = []prompt{p}
		req.tool = planTool(o)
	} else {
		if req.prompts, e = completionPrompts(o); e != nil {
			return nil, e
		}
		if isNone(o.get("prompt")) && !isNone(o.get("prompt_embeds")) {
			return nil, errValue("You must set `--enable-prompt-embeds` to input `prompt_embeds`.")
		}
		if !isNone(o.get("suffix")) {
			return nil, errValue("suffix is not currently supported")
		}
	}
	if req.maxTokens, e = s.maxTokens(o, req); e != nil {
		return nil, e
	}
	echoOnly := !req.chat && req.maxTokens == 0 && truthy(o.get("echo"))
	spMax := req.maxTokens
	if echoOnly {
		spMax = 1 // vLLM samples one token it does not return
	}
	if e := checkSampling(o, spMax, scopeGenerate); e != nil {
		return nil, e
	}
	req.stream, _ = boolOf(o.get("stream"))
	if req.engineErr = checkEngine(o, k); req.engineErr != nil && !req.stream {
		return nil, req.engineErr
	}
	req.n = clampInt(intField(o, "n", 1))
	req.stops = stopStrings(o, scopeGenerate)
	if so := o.get("stream_options"); req.stream && so.IsObject() {
		opts := newObject(so)
		req.includeUsage, _ = boolOf(opts.get("include_usage"))
		cont, _ := boolOf(opts.get("continuous_usage_stats"))
		req.continuous = req.includeUsage && cont && !s.quirks.has(QuirkNoContinuousUsage)
	}
	req.baseID = requestID(r, o)
	return req, nil
}

// del is `del data[key]` (absent keys are fine).
func (o *object) del(key string) {
	if !o.has(key) {
		return
	}
	delete(o.vals, key)
	for i, k := range o.keys {
		if k == key {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			break
		}
	}
}

// requestID is vLLM's base request id: the X-Request-Id header, else the body's
// request_id, else 16 random hex digits.
func requestID(r *http.Request, o *object) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 256 {
		return id
	}
	if v := o.get("request_id"); v.Type == gjson.String && v.Str != "" {
		return v.Str
	}
	return randomHex()
}

// randomHex is 16 random lowercase hex digits, vLLM's random_uuid().
func randomHex() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// maxTokens applies vLLM's context-length checks (TokenizeParams) and returns the
// tokens each choice may generate: chat's max_completion_tokens, else max_tokens,
// else what the context leaves; completions' max_tokens (16 by default).
func (s *Server) maxTokens(o *object, req *genRequest) (int, *openai.Error) {
	limit := s.o.MaxModelLen
	param, requested := "max_tokens", o.get("max_tokens")
	if v := o.get("max_completion_tokens"); req.chat && !isNone(v) {
		param, requested = "max_completion_tokens", v
	}
	out := 0 // max_output_tokens: the request's value, or 0
	if !isNone(requested) {
		out = clampInt(intOf(requested))
	}
	if out > limit {
		v := strconv.Itoa(out)
		return 0, errVLLM(param+"="+v+" cannot be greater than max_model_len=max_total_tokens="+strconv.Itoa(limit)+
			". Please request fewer output tokens.", param, v)
	}
	for _, p := range req.prompts {
		if p.tokens+out > limit {
			n := strconv.Itoa(p.tokens)
			return 0, errVLLM("This model's maximum context length is "+strconv.Itoa(limit)+" tokens. However, you requested "+
				strconv.Itoa(out)+" output tokens and your prompt contains "+n+" input tokens, for a total of "+
				strconv.Itoa(p.tokens+out)+" tokens. Please reduce the length of the input prompt or the number of requested output tokens.",
				"input_tokens", n)
		}
	}
	room := limit - req.prompts[0].tokens
	switch {
	case isNone(requested) && req.chat:
		if room < 1 {
			return room, nil // SamplingParams refuses it
		}
		return min(defaultMaxTokens, room), nil
	case req.chat:
		return min(out, room), nil
	}
	return out, nil
}

// messageText passes add the text of a chat message's content: a string, or the
// "text" of each part of a list (image and audio parts count nothing).
func messageText(m gjson.Result, add func(string)) {
	switch c := m.Get("content"); {
	case c.Type == gjson.String:
		add(c.Str)
	case c.IsArray():
		c.ForEach(func(_, part gjson.Result) bool {
			if t := part.Get("text"); t.Type == gjson.String {
				add(t.Str)
			}
			return true
		})
	}
}

// completionPrompts reads a validated completions "prompt": a string, a list of
// strings, a list of token ids or a list of lists of token ids. Each string or id
// list is one prompt with its own n choices, as in vLLM.
func completionPrompts(o *object) ([]prompt, *openai.Error) {
	v := o.get("prompt")
	if isNone(v) {
		return []prompt{{hash: fnvOffset}}, nil // prompt_embeds: refused by the caller
	}
	if v.Type == gjson.String {
		p := prompt{hash: fnvOffset}
		p.addText(v.Str)
		return []prompt{p}, nil
	}
	var prompts []prompt
	var ids *prompt // the prompt being built from a flat list of token ids
	v.ForEach(func(_, item gjson.Result) bool {
		switch {
		case item.Type == gjson.String:
			p := prompt{hash: fnvOffset}
			p.addText(item.Str)
			prompts = append(prompts, p)
		case item.IsArray():
			p := prompt{hash: fnvOffset}
			item.ForEach(func(_, id gjson.Result) bool { p.addTokenID(intOf(id).Uint64()); return true })
			prompts = append(prompts, p)
		default:
			if ids == nil {
				ids = &prompt{hash: fnvOffset}
			}
			ids.addTokenID(intOf(item).Uint64())
		}
		return true
	})
	if ids != nil || len(prompts) == 0 {
		if ids == nil {
			ids = &prompt{hash: fnvOffset}
		}
		prompts = append(prompts, *ids)
	}
	for _, p := range prompts {
		if p.tokens == 0 && !p.text {
			return nil, errValue("The decoder prompt cannot be empty")
		}
	}
	return prompts, nil
}
