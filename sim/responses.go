package sim

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// The Responses API (POST /v1/responses), as vLLM serves it with no reasoning
// parser and its response store off (the default): one message output item of
// generated text. Tools are validated and echoed, but never called here.

// responsesFields is what a Responses request sets in the response object.
type responsesFields struct {
	maxSet       bool // max_output_tokens was given: a "length" end is incomplete
	maxOutput    int  // the effective max_output_tokens
	temperature  float64
	topP         float64
	topLogprobs  string // "null", or the count when output logprobs are included
	instructions []byte // JSON, null when absent; likewise below
	metadata     []byte
	toolChoice   []byte
	tools        []byte
	parallel     []byte
	maxToolCalls []byte
	reasoning    []byte
	serviceTier  []byte
	text         []byte
	truncation   []byte
	user         []byte
}

// responsesModel are ResponsesRequest's fields that pydantic checks, in order.
func responsesModel() []field {
	item := func(c *checker, v gjson.Result, loc []any) bool {
		if v.IsObject() {
			return true
		}
		c.add("dict_type", loc, "Input should be a valid dictionary", v, nil)
		return false
	}
	include := vLiteral("code_interpreter_call.outputs", "computer_call_output.output.image_url", "file_search_call.results",
		"message.input_image.image_url", "message.output_text.logprobs", "reasoning.encrypted_content")
	penalty := nullable(vFloatRange(-2, 2))
	return []field{
		{name: "background", check: nullable(vBool)},
		{name: "include", check: nullable(vList(include, 0))},
		{name: "input", required: true, check: union(
			branch{"str", vStr},
			branch{"list[union[ResponseInputItemParam,ResponseOutputItem]]", vList(item, 0)},
		)},
		{name: "instructions", check: nullable(vStr)},
		{name: "max_output_tokens", check: nullable(vInt)},
		{name: "max_tool_calls", check: nullable(vInt)},
		{name: "metadata", check: nullable(vDict(vStr))},
		{name: "model", check: nullable(vStr)},
		{name: "logit_bias", check: nullable(vDict(vFloat))},
		{name: "parallel_tool_calls", check: nullable(vBool)},
		{name: "previous_response_id", check: nullable(vStr)},
		{name: "reasoning", check: nullable(vDict(vAny))},
		{name: "service_tier", check: vLiteral("auto", "default", "flex", "scale", "priority")},
		{name: "store", check: nullable(vBool)},
		{name: "stream", check: nullable(vBool)},
		{name: "temperature", check: nullable(vFloat)},
		{name: "text", check: nullable(vDict(vAny))},
		{name: "tools", check: vList(item, 0)},
		{name: "top_logprobs", check: nullable(vInt)},
		{name: "top_p", check: nullable(vFloat)},
		{name: "top_k", check: nullable(vInt)},
		{name: "truncation", check: nullable(vLiteral("auto", "disabled"))},
		{name: "user", check: nullable(vStr)},
		{name: "skip_special_tokens", check: vBool},
		{name: "include_stop_str_in_output", check: vBool},
		{name: "request_id", check: vStr},
		{name: "priority", check: vInt},
		{name: "cache_salt", check: nullable(vStr)},
		{name: "repetition_penalty", check: nullable(vFloat)},
		{name: "seed", check: nullable(int64Range())},
		{name: "stop", check: stopParam()},
		{name: "ignore_eos", check: vBool},
		{name: "presence_penalty", check: penalty},
		{name: "frequency_penalty", check: penalty},
	}
}

// errInvalid is the Responses API's own 400 (type invalid_request_error).
func errInvalid(status int, msg, param string) *openai.Error {
	return &openai.Error{Status: status, Type: "invalid_request_error", Message: msg, Param: param}
}

// responsesBefore runs ResponsesRequest's before-validators.
func responsesBefore(o *object) *openai.Error {
	if !isNone(o.get("prompt")) {
		return errVLLM("prompt template is not supported", "prompt", "")
	}
	if truthy(o.get("background")) && o.has("store") && !truthy(o.get("store")) {
		return errVLLM("background can only be used when `store` is true", "background", "")
	}
	return nil
}

// checkResponsesTools is the serving layer's tool_choice check: "required" needs
// tools, and a named function must be among them (flat function tools).
func checkResponsesTools(o *object) *openai.Error {
	choice, tools := o.get("tool_choice"), o.get("tools")
	switch {
	case choice.Type == gjson.String && choice.Str == "required" && !truthy(tools):
		return errVLLM("Tool choice 'required' must be specified with 'tools' parameter.", "tool_choice", "")
	case choice.IsObject() && choice.Get("type").Str == "function":
		found := false
		tools.ForEach(func(_, t gjson.Result) bool {
			found = t.Get("type").Str == "function" && t.Get("name").Str == choice.Get("name").Str
			return !found
		})
		if !found {
			return errVLLM("Tool choice 'function' not found in 'tools' parameter.", "tool_choice", "")
		}
	}
	return nil
}

// inputText passes add every text of a Responses input: a string, or the items'
// message contents (strings or parts' text) and function call outputs.
func inputText(input gjson.Result, add func(string)) {
	if input.Type == gjson.String {
		add(input.Str)
		return
	}
	input.ForEach(func(_, item gjson.Result) bool {
		messageText(item, add)
		if out := item.Get("output"); out.Type == gjson.String {
			add(out.Str)
		}
		return true
	})
}

// parseResponses validates a Responses request as vLLM does.
func (s *Server) parseResponses(r *http.Request, o *object) (*genRequest, *openai.Error) {
	req := &genRequest{kind: kindResponses, faultAfter: 2, n: 1}
	if e := parseSimFields(o, req); e != nil {
		return nil, e
	}
	if e := responsesBefore(o); e != nil {
		return nil, e
	}
	var c checker
	checkModel(&c, o, func() []byte { return pyDictRepr(nil, o) }, []any{"body"}, s.models.responses)
	if len(c.errs) > 0 {
		return nil, errValidation(c.errs)
	}
	if e := s.checkModel(o); e != nil {
		return nil, e
	}
	if e := checkResponsesTools(o); e != nil {
		return nil, e
	}
	if id := o.get("previous_response_id"); id.Type == gjson.String && id.Str != "" {
		return nil, errInvalid(http.StatusNotFound, "Response with id '"+id.Str+"' not found.", "response_id")
	}
	if truthy(o.get("background")) {
		return nil, errInvalid(http.StatusBadRequest, "This vLLM engine does not support `store=True` and therefore does not support "+
			"the background mode. To enable these features, set the environment variable `VLLM_ENABLE_RESPONSES_API_STORE=1` "+
			"when launching the vLLM server.", "background")
	}
	p := prompt{hash: fnvOffset}
	if ins := o.get("instructions"); ins.Type == gjson.String {
		p.addText(ins.Str)
	}
	inputText(o.get("input"), p.addText)
	req.prompts = []prompt{p}

	limit, room := s.o.MaxModelLen, s.o.MaxModelLen-p.tokens
	f := &responsesFields{}
	out := 0
	if v := o.get("max_output_tokens"); !isNone(v) {
		f.maxSet, out = true, clampInt(intOf(v))
	}
	if out > limit {
		v := strconv.Itoa(out)
		return nil, errVLLM("max_output_tokens="+v+" cannot be greater than max_model_len=max_total_tokens="+strconv.Itoa(limit)+
			". Please request fewer output tokens.", "max_output_tokens", v)
	}
	if p.tokens+out > limit {
		n := strconv.Itoa(p.tokens)
		return nil, errVLLM("This model's maximum context length is "+strconv.Itoa(limit)+" tokens. However, you requested "+
			strconv.Itoa(out)+" output tokens and your prompt contains "+n+" input tokens, for a total of "+
			strconv.Itoa(p.tokens+out)+" tokens. Please reduce the length of the input prompt or the number of requested output tokens.",
			"input_tokens", n)
	}
	if p.tokens >= limit {
		return nil, errInvalid(http.StatusBadRequest, "The engine prompt length "+strconv.Itoa(p.tokens)+" exceeds the max_model_len "+
			strconv.Itoa(limit)+". Please reduce prompt.", "input")
	}
	f.maxOutput, req.maxTokens = room, min(defaultMaxTokens, room)
	if f.maxSet {
		f.maxOutput = min(out, room)
		req.maxTokens = f.maxOutput
	}
	if e := checkSampling(o, req.maxTokens, scopeResponses); e != nil {
		return nil, e
	}
	req.stream, _ = boolOf(o.get("stream"))
	if req.engineErr = checkEngine(o, kindResponses); req.engineErr != nil && !req.stream {
		return nil, req.engineErr
	}
	req.stops = stopStrings(o, scopeResponses)
	req.baseID = "resp_" + randomHex()
	if v := o.get("request_id"); v.Type == gjson.String && v.Str != "" {
		req.baseID = v.Str
	}
	f.temperature = floatField(o, "temperature", 1)
	f.topP = floatField(o, "top_p", 1)
	f.topLogprobs = "null"
	if n, ok := logprobsCount(o, kindResponses); ok {
		f.topLogprobs = n.String()
	}
	raw := func(name, def string) []byte {
		if v := o.get(name); !isNone(v) {
			return []byte(v.Raw)
		}
		return []byte(def)
	}
	f.instructions, f.metadata, f.maxToolCalls = raw("instructions", "null"), raw("metadata", "null"), raw("max_tool_calls", "null")
	f.reasoning, f.text, f.user = raw("reasoning", "null"), raw("text", "null"), raw("user", "null")
	f.serviceTier, f.truncation = raw("service_tier", `"auto"`), raw("truncation", `"disabled"`)
	f.parallel, f.tools = raw("parallel_tool_calls", "true"), raw("tools", "[]")
	f.toolChoice = raw("tool_choice", `"auto"`)
	if tc := o.get("tool_choice"); !truthy(o.get("tools")) && (!tc.Exists() || tc.Str == "auto" || tc.Str == "none") {
		f.toolChoice = []byte(`"none"`) // no tools: auto and none both become none
	}
	req.resp = f
	return req, nil
}

// handleResponses serves POST /v1/responses.
func (s *Server) handleResponses(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	o, _, e := readBody(w, r)
	var req *genRequest
	if e == nil {
		req, e = s.parseResponses(r, o)
	}
	if e != nil {
		s.reject(w, r, e)
		return
	}
	s.serve(w, r, req, start)
}

// appendResponse appends the response object of g with status, its output items
// and its usage (null while in progress), keys in vLLM's order.
func (s *Server) appendResponse(b []byte, g *generation, status string, output []byte, usage []byte) []byte {
	f := g.resp
	b = append(b, `{"id":`...)
	b = appendPyJSON(b, g.id, false)
	b = append(b, `,"created_at":`...)
	b = strconv.AppendInt(b, g.created, 10)
	b = append(b, `,"incomplete_details":`...)
	if status == "incomplete" {
		b = append(b, `{"reason":"max_output_tokens"}`...)
	} else {
		b = append(b, "null"...)
	}
	b = append(append(b, `,"instructions":`...), f.instructions...)
	b = append(append(b, `,"metadata":`...), f.metadata...)
	b = append(b, `,"model":`...)
	b = appendPyJSON(b, s.o.Model, false)
	b = append(b, `,"object":"response","output":`...)
	b = append(b, output...)
	b = append(append(b, `,"parallel_tool_calls":`...), f.parallel...)
	b = append(b, `,"temperature":`...)
	b = pyFloat(b, f.temperature)
	b = append(append(b, `,"tool_choice":`...), f.toolChoice...)
	b = append(append(b, `,"tools":`...), f.tools...)
	b = append(b, `,"top_p":`...)
	b = pyFloat(b, f.topP)
	b = append(b, `,"background":false,"max_output_tokens":`...)
	b = strconv.AppendInt(b, int64(f.maxOutput), 10)
	b = append(append(b, `,"max_tool_calls":`...), f.maxToolCalls...)
	b = append(b, `,"previous_response_id":null,"prompt":null,"reasoning":`...)
	b = append(b, f.reasoning...)
	b = append(append(b, `,"service_tier":`...), f.serviceTier...)
	b = append(b, `,"status":"`+status+`","text":`...)
	b = append(b, f.text...)
	b = append(b, `,"top_logprobs":`+f.topLogprobs+`,"truncation":`...)
	b = append(b, f.truncation...)
	b = append(append(b, `,"usage":`...), usage...)
	b = append(append(b, `,"user":`...), f.user...)
	return append(b, `,"presence_penalty":0.0,"frequency_penalty":0.0,"kv_transfer_params":null,"ec_transfer_params":null,"input_messages":null,"output_messages":null}`...)
}

// responseUsage is the Responses usage object of g.
func responseUsage(g *generation) []byte {
	c := g.completionTokens()
	b := []byte(`{"input_tokens":`)
	b = strconv.AppendInt(b, int64(g.tokens), 10)
	b = append(b, `,"input_tokens_details":{"cached_tokens":0,"input_tokens_per_turn":[],"cached_tokens_per_turn":[]},"output_tokens":`...)
	b = strconv.AppendInt(b, int64(c), 10)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":0,"tool_output_tokens":0,"output_tokens_per_turn":[],"tool_output_tokens_per_turn":[]},"total_tokens":`...)
	b = strconv.AppendInt(b, int64(g.tokens+c), 10)
	return append(b, '}')
}

// responseStatus is "completed", or "incomplete" when max_output_tokens ended it.
func responseStatus(g *generation) string {
	if g.resp.maxSet && g.seqs[0].reason == "length" {
		return "incomplete"
	}
	return "completed"
}

// appendOutputText appends a finished output_text part of text.
func appendOutputText(b []byte, text string) []byte {
	b = append(b, `{"annotations":[],"text":`...)
	b = appendPyJSON(b, text, false)
	return append(b, `,"type":"output_text","logprobs":null}`...)
}

// appendMessageItem appends the message output item of text (no content part
// when text is empty); extra is appended after its keys.
func appendMessageItem(b []byte, id, text, status, extra string) []byte {
	b = append(b, `{"id":`...)
	b = appendPyJSON(b, id, false)
	b = append(b, `,"content":[`...)
	if text != "" {
		b = appendOutputText(b, text)
	}
	b = append(b, `],"role":"assistant","status":"`+status+`","type":"message","phase":null`+extra+`}`...)
	return b
}

// responseBody generates g and renders the non-streaming response object.
func (s *Server) responseBody(g *generation) []byte {
	text := g.seqs[0].text(s.vocab)
	output := appendMessageItem([]byte{'['}, "msg_"+randomHex(), text, "completed", "")
	output = append(output, ']')
	return s.appendResponse(nil, g, responseStatus(g), output, responseUsage(g))
}
