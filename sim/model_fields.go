package sim

import (
	"math/big"

	"github.com/tidwall/gjson"
)

// The fields of vLLM's request models that pydantic checks, in definition order
// (chat_completion/protocol.py, completion/protocol.py). Fields whose types are
// too intricate to model (structured_outputs, vllm_xargs, prompt_embeds, ...) are
// accepted as they are.

// requestModels are the request models' validators, built once per Server.
type requestModels struct {
	chat, completion, responses []field
	tokenize                    validator
}

func newRequestModels() requestModels {
	return requestModels{chat: chatFields(), completion: completionFields(), responses: responsesModel(), tokenize: tokenizeRequest()}
}

// stopParam is StopParam: str | list[str] (at most VLLM_MAX_STOP_STRINGS, 4) | None.
func stopParam() validator {
	return nullable(union(
		branch{"str", vStr},
		branch{"list[str]", vList(vStr, maxStopStrings)},
	))
}

const maxStopStrings = 4

// streamOptions is StreamOptions.
func streamOptions() validator {
	return nullable(model(
		field{name: "include_usage", check: nullable(vBool)},
		field{name: "continuous_usage_stats", check: nullable(vBool)},
	))
}

// responseFormat approximates AnyResponseFormat: an object whose type is one of
// the formats vLLM knows.
func responseFormat() validator {
	return nullable(model(
		field{name: "type", required: true, check: vLiteral("text", "json_object", "json_schema", "structural_tag")},
	))
}

// chatTool is ChatCompletionToolsParam.
func chatTool() validator {
	return model(
		field{name: "type", check: vLiteral("function")},
		field{name: "function", required: true, check: model(
			field{name: "name", required: true, check: vStr},
			field{name: "description", check: nullable(vStr)},
			field{name: "parameters", check: nullable(vDict(vAny))},
			field{name: "strict", check: nullable(vBool)},
		)},
	)
}

// samplingFields are the "sampling params" block both request models share,
// from use_beam_search to bad_words; chat and completions order the last few
// differently.
func samplingFields(chat bool) []field {
	fs := []field{
		{name: "use_beam_search", check: vBool},
		{name: "top_k", check: nullable(vInt)},
		{name: "min_p", check: nullable(vFloat)},
		{name: "repetition_penalty", check: nullable(vFloat)},
		{name: "watermarking", check: nullable(vBool)},
		{name: "length_penalty", check: vFloat},
		{name: "stop_token_ids", check: nullable(vList(vInt, 0))},
		{name: "include_stop_str_in_output", check: vBool},
		{name: "ignore_eos", check: vBool},
		{name: "min_tokens", check: vInt},
		{name: "skip_special_tokens", check: vBool},
		{name: "spaces_between_special_tokens", check: vBool},
		{name: "truncate_prompt_tokens", check: nullable(vIntRange(big.NewInt(-1), big.NewInt(1<<62)))},
		{name: "truncation_side", check: nullable(vLiteral("left", "right"))},
	}
	if chat {
		fs = append(fs,
			field{name: "prompt_logprobs", check: nullable(vInt)},
			field{name: "allowed_token_ids", check: nullable(vList(vInt, 0))},
		)
	} else {
		fs = append(fs,
			field{name: "allowed_token_ids", check: nullable(vList(vInt, 0))},
			field{name: "prompt_logprobs", check: nullable(vInt)},
		)
	}
	return append(fs, field{name: "bad_words", check: vList(vStr, 0)})
}

// trailingFields are the extra params both models end with.
func trailingFields() []field {
	return []field{
		{name: "priority", check: int64Range()},
		{name: "request_id", check: vStr},
		{name: "session_id", check: nullable(vStr)},
		{name: "return_tokens_as_token_ids", check: nullable(vBool)},
		{name: "return_token_ids", check: nullable(vBool)},
		{name: "cache_salt", check: nullable(vStrMin(1))},
		{name: "kv_transfer_params", check: nullable(vDict(vAny))},
		{name: "ec_transfer_params", check: nullable(vDict(vAny))},
		{name: "stream_interval", check: nullable(vIntRange(big.NewInt(1), nil))},
	}
}

// chatFields are ChatCompletionRequest's fields.
func chatFields() []field {
	fs := []field{
		{name: "messages", required: true, check: vList(chatMessage, 0)},
		{name: "model", check: nullable(vStr)},
		{name: "frequency_penalty", check: nullable(vFloat)},
		{name: "logit_bias", check: nullable(vDict(vFloat))},
		{name: "logprobs", check: nullable(vBool)},
		{name: "top_logprobs", check: nullable(vInt)},
		{name: "max_tokens", check: nullable(vInt)},
		{name: "max_completion_tokens", check: nullable(vInt)},
		{name: "n", check: nullable(vInt)},
		{name: "presence_penalty", check: nullable(vFloat)},
		{name: "response_format", check: responseFormat()},
		{name: "seed", check: nullable(int64Range())},
		{name: "stop", check: stopParam()},
		{name: "stream", check: nullable(vBool)},
		{name: "stream_options", check: streamOptions()},
		{name: "temperature", check: nullable(vFloat)},
		{name: "top_p", check: nullable(vFloat)},
		{name: "tools", check: nullable(vList(chatTool(), 0))},
		// tool_choice: check_tool_usage has vetted it before pydantic runs.
		{name: "reasoning_effort", check: nullable(vLiteral("none", "minimal", "low", "medium", "high", "xhigh", "max"))},
		{name: "include_reasoning", check: vBool},
		{name: "parallel_tool_calls", check: nullable(vBool)},
		{name: "user", check: nullable(vStr)},
	}
	fs = append(fs, samplingFields(true)...)
	fs = append(fs,
		field{name: "echo", check: vBool},
		field{name: "add_generation_prompt", check: vBool},
		field{name: "continue_final_message", check: vBool},
		field{name: "add_special_tokens", check: vBool},
		field{name: "documents", check: nullable(vList(vDict(vStr), 0))},
		field{name: "chat_template", check: nullable(vStr)},
		field{name: "chat_template_kwargs", check: nullable(vDict(vAny))},
		field{name: "media_io_kwargs", check: nullable(vDict(vDict(vAny)))},
		field{name: "mm_processor_kwargs", check: nullable(vDict(vAny))},
	)
	return append(fs, trailingFields()...)
}

// promptParam is CompletionRequest.prompt: list[int>=0] | list[list[int>=0]] |
// str | list[str] | None.
func promptParam() validator {
	tokenID := vIntRange(new(big.Int), nil)
	return nullable(union(
		branch{"list[constrained-int]", vList(tokenID, 0)},
		branch{"list[list[constrained-int]]", vList(vList(tokenID, 0), 0)},
		branch{"str", vStr},
		branch{"list[str]", vList(vStr, 0)},
	))
}

// completionFields are CompletionRequest's fields.
func completionFields() []field {
	fs := []field{
		{name: "model", check: nullable(vStr)},
		{name: "prompt", check: promptParam()},
		{name: "echo", check: nullable(vBool)},
		{name: "frequency_penalty", check: nullable(vFloat)},
		{name: "logit_bias", check: nullable(vDict(vFloat))},
		{name: "logprobs", check: nullable(vInt)},
		{name: "max_tokens", check: nullable(vInt)},
		{name: "n", check: vInt},
		{name: "presence_penalty", check: nullable(vFloat)},
		{name: "seed", check: nullable(int64Range())},
		{name: "stop", check: stopParam()},
		{name: "stream", check: nullable(vBool)},
		{name: "stream_options", check: streamOptions()},
		{name: "suffix", check: nullable(vStr)},
		{name: "temperature", check: nullable(vFloat)},
		{name: "top_p", check: nullable(vFloat)},
		{name: "user", check: nullable(vStr)},
	}
	fs = append(fs, samplingFields(false)...)
	fs = append(fs,
		field{name: "add_special_tokens", check: vBool},
		field{name: "response_format", check: responseFormat()},
	)
	return append(fs, trailingFields()...)
}

// msgBranch is a member of ChatCompletionMessageParam: OpenAI's six message
// TypedDicts (a role literal; whether content is required; one more required
// key) and vLLM's custom one (any string role). openai_harmony's Message model is
// the eighth member.
type msgBranch struct {
	label, role     string
	contentRequired bool
	extra           string
}

func messageBranches() []msgBranch {
	return []msgBranch{
		{"ChatCompletionDeveloperMessageParam", "developer", true, ""},
		{"ChatCompletionSystemMessageParam", "system", true, ""},
		{"ChatCompletionUserMessageParam", "user", true, ""},
		{"ChatCompletionAssistantMessageParam", "assistant", false, ""},
		{"ChatCompletionToolMessageParam", "tool", true, "tool_call_id"},
		{"ChatCompletionFunctionMessageParam", "function", true, "name"},
		{"CustomChatCompletionMessageParam", "", false, ""},
	}
}

// chatMessage validates one chat message. A dict with a string role and a
// content that is absent, null, a string or a list of objects passes (vLLM's
// custom member accepts any role). Anything else fails every member of the union;
// the errors reported per member are an approximation (see docs/sim-fidelity.md).
func chatMessage(c *checker, v gjson.Result, loc []any) bool {
	if !v.IsObject() {
		for _, b := range messageBranches() {
			c.add("dict_type", at(loc, b.label), "Input should be a valid dictionary", v, nil)
		}
		c.add("model_attributes_type", at(loc, "Message"), "Input should be a valid dictionary or object to extract fields from", v, nil)
		return false
	}
	o := newObject(v)
	role, content := o.get("role"), o.get("content")
	contentOK := !content.Exists() || content.Type == gjson.Null || content.Type == gjson.String
	if content.IsArray() {
		contentOK = true
		content.ForEach(func(_, part gjson.Result) bool { contentOK = part.IsObject(); return contentOK })
	}
	if role.Type == gjson.String && contentOK {
		return true
	}
	for _, b := range messageBranches() {
		l := at(loc, b.label)
		switch {
		case !role.Exists():
			c.add("missing", at(l, "role"), "Field required", v, nil)
		case b.role != "" && (role.Type != gjson.String || role.Str != b.role):
			vLiteral(b.role)(c, role, at(l, "role"))
		case b.role == "" && role.Type != gjson.String:
			c.add("string_type", at(l, "role"), "Input should be a valid string", role, nil)
		case !content.Exists() && b.contentRequired:
			c.add("missing", at(l, "content"), "Field required", v, nil)
		case b.extra != "" && !o.has(b.extra):
			c.add("missing", at(l, b.extra), "Field required", v, nil)
		default:
			c.add("string_type", at(l, "content", "str"), "Input should be a valid string", content, nil)
		}
	}
	c.add("missing", at(loc, "Message", "author"), "Field required", v, nil)
	return false
}
