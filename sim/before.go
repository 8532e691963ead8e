package sim

import (
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// vLLM's model-level "before" validators run on the raw request dict before any
// field is type-checked, the last-defined first; the first to raise answers the
// request. They are Python code on untyped data, so their failures on odd input
// are Python's own TypeErrors and KeyErrors, reproduced here where they matter.

// chatBefore runs ChatCompletionRequest's before-validators in their run order.
// It may add tool_choice "auto" to o, as check_tool_usage does.
func chatBefore(o *object) *openai.Error {
	for _, check := range []func(*object) *openai.Error{
		checkMessagesIterable, // check_system_message_content_type iterates messages
		checkGenerationPrompt,
		checkToolUsage,
		checkStructuredOutputs,
		checkChatLogprobs,
		checkStreamOptions,
		checkResponseFormat,
	} {
		if e := check(o); e != nil {
			return e
		}
	}
	return nil
}

// completionBefore runs CompletionRequest's before-validators in their run order.
// It sets a null or absent max_tokens to 16, as normalize_null_max_tokens does.
func completionBefore(o *object) *openai.Error {
	for _, check := range []func(*object) *openai.Error{
		checkPromptListLength,
		checkPromptPresent,
		checkStreamOptions,
		checkCompletionLogprobs,
		checkStructuredOutputs,
		checkResponseFormat,
	} {
		if e := check(o); e != nil {
			return e
		}
	}
	if isNone(o.get("max_tokens")) {
		o.set("max_tokens", gjson.Parse(strconv.Itoa(defaultMaxTokens)))
	}
	return nil
}

// set is data[key] = v.
func (o *object) set(key string, v gjson.Result) {
	if !o.has(key) {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = v
}

// notIterable is the TypeError of iterating over a value that is not iterable.
func notIterable(v gjson.Result) *openai.Error {
	return errValue("'" + pyTypeName(v) + "' object is not iterable")
}

// pyIter iterates v as a Python for loop does (a dict by its keys, a string by
// its characters); a number, bool or None is a TypeError.
func pyIter(v gjson.Result, each func(gjson.Result) bool) *openai.Error {
	switch {
	case v.IsArray():
		v.ForEach(func(_, item gjson.Result) bool { return each(item) })
	case v.IsObject():
		for _, k := range newObject(v).keys {
			if !each(gjson.Result{Type: gjson.String, Str: k, Raw: strconv.Quote(k)}) {
				break
			}
		}
	case v.Type == gjson.String:
		for _, r := range v.Str {
			s := string(r)
			if !each(gjson.Result{Type: gjson.String, Str: s, Raw: strconv.Quote(s)}) {
				break
			}
		}
	default:
		return notIterable(v)
	}
	return nil
}

// pySubscript is v[key] for a string key: a KeyError (500) when a dict lacks it,
// a TypeError (400) when v is not a dict.
func pySubscript(v gjson.Result, key string) (gjson.Result, *openai.Error) {
	switch {
	case v.IsObject():
		o := newObject(v)
		if !o.has(key) {
			return gjson.Result{}, errInternal("'" + key + "'")
		}
		return o.get(key), nil
	case v.Type == gjson.String:
		return gjson.Result{}, errValue("string indices must be integers, not 'str'")
	case v.IsArray():
		return gjson.Result{}, errValue("list indices must be integers or slices, not str")
	}
	return gjson.Result{}, errValue("'" + pyTypeName(v) + "' object is not subscriptable")
}

func checkMessagesIterable(o *object) *openai.Error {
	if m, ok := o.vals["messages"]; ok {
		return pyIter(m, func(gjson.Result) bool { return true })
	}
	return nil
}

func checkGenerationPrompt(o *object) *openai.Error {
	if truthy(o.get("continue_final_message")) && truthy(o.get("add_generation_prompt")) {
		return errVLLM("Cannot set both `continue_final_message` and `add_generation_prompt` to True.", "", "")
	}
	return nil
}

const toolChoiceUsage = "Correct usage: `{\"type\": \"function\", \"function\": {\"name\": \"my_function\"}}`"

func checkToolUsage(o *object) *openai.Error {
	tools := o.get("tools")
	if tools.IsArray() && !truthy(tools) {
		return errVLLM("`tools` must not be an empty array. Either provide at least one tool or omit the field entirely.", "tools", "")
	}
	if !o.has("tool_choice") && truthy(tools) {
		o.set("tool_choice", gjson.Parse(`"auto"`))
	}
	choice, ok := o.vals["tool_choice"]
	if !ok || choice.Type == gjson.Null || (choice.Type == gjson.String && choice.Str == "none") {
		return nil
	}
	if isNone(tools) {
		return errVLLM("When using `tool_choice`, `tools` must be set.", "tool_choice", "")
	}
	if !choice.IsObject() {
		if choice.Type == gjson.String && (choice.Str == "auto" || choice.Str == "required") {
			return nil
		}
		return errVLLM("Invalid value for `tool_choice`: "+pyStr(choice)+"! Only named tools, \"none\", \"auto\" or \"required\" are supported.", "tool_choice", "")
	}
	fn := newObject(choice).get("function")
	if !fn.IsObject() {
		return errVLLM("Invalid value for `function`: `"+pyStr(fn)+"` in `tool_choice`! "+toolChoiceUsage, "tool_choice.function", "")
	}
	f := newObject(fn)
	if !f.has("name") {
		return errVLLM("Expected field `name` in `function` in `tool_choice`! "+toolChoiceUsage, "tool_choice.function.name", "")
	}
	name := f.get("name")
	if name.Type != gjson.String || name.Str == "" {
		return errVLLM("Invalid `name` in `function`: `"+pyStr(name)+"` in `tool_choice`! "+toolChoiceUsage, "tool_choice.function.name", "")
	}
	found := false
	var e *openai.Error
	if err := pyIter(tools, func(tool gjson.Result) bool {
		var fn, n gjson.Result
		if fn, e = pySubscript(tool, "function"); e != nil {
			return false
		}
		if n, e = pySubscript(fn, "name"); e != nil {
			return false
		}
		found = n.Type == gjson.String && n.Str == name.Str
		return !found
	}); err != nil {
		return err
	}
	if e != nil {
		return e
	}
	if !found {
		return errVLLM("The tool specified in `tool_choice` does not match any of the specified `tools`", "tool_choice", "")
	}
	return nil
}

func checkStructuredOutputs(o *object) *openai.Error {
	so := o.get("structured_outputs")
	if !so.IsObject() {
		return nil
	}
	s, count := newObject(so), 0
	for _, k := range []string{"json", "regex", "choice"} {
		if !isNone(s.get(k)) {
			count++
		}
	}
	if count > 1 {
		return errVLLM("You can only use one kind of constraints for structured outputs ('json', 'regex' or 'choice').", "", "")
	}
	if choice := o.get("tool_choice"); count > 0 && choice.IsObject() {
		return errVLLM("You can only either use constraints for structured outputs or tools, not both.", "", "")
	}
	return nil
}

// checkLogprobsInt is the shared part of check_logprobs: prompt_logprobs and the
// logprobs-count field (top_logprobs for chat, logprobs for completions) must be
// numbers, prompt_logprobs is refused with stream, negatives other than -1 are
// refused.
func checkLogprobsInt(o *object, countField string) *openai.Error {
	for _, name := range []string{"prompt_logprobs", countField} {
		if v := o.get(name); !isNone(v) {
			if _, ok := pyNumber(v); !ok {
				return errVLLM("`"+name+"` must be an integer.", name, pyStr(v))
			}
		}
	}
	if v := o.get("prompt_logprobs"); !isNone(v) {
		p, _ := pyNumber(v)
		if truthy(o.get("stream")) && (p > 0 || p == -1) {
			return errVLLM("`prompt_logprobs` are not available when `stream=True`.", "prompt_logprobs", "")
		}
		if p < 0 && p != -1 {
			return errVLLM("`prompt_logprobs` must be a positive value or -1.", "prompt_logprobs", pyStr(v))
		}
	}
	if v := o.get(countField); !isNone(v) {
		if p, _ := pyNumber(v); p < 0 && p != -1 {
			return errVLLM("`"+countField+"` must be a positive value or -1.", countField, pyStr(v))
		}
	}
	return nil
}

func checkChatLogprobs(o *object) *openai.Error {
	if e := checkLogprobsInt(o, "top_logprobs"); e != nil {
		return e
	}
	if v := o.get("top_logprobs"); !isNone(v) {
		if p, _ := pyNumber(v); (p == -1 || p > 0) && !truthy(o.get("logprobs")) {
			return errVLLM("when using `top_logprobs`, `logprobs` must be set to true.", "top_logprobs", "")
		}
	}
	return nil
}

func checkCompletionLogprobs(o *object) *openai.Error {
	return checkLogprobsInt(o, "logprobs")
}

func checkStreamOptions(o *object) *openai.Error {
	if truthy(o.get("stream_options")) && !truthy(o.get("stream")) {
		return errVLLM("Stream options can only be defined when `stream=True`.", "stream_options", "")
	}
	return nil
}

func checkResponseFormat(o *object) *openai.Error {
	rf := o.get("response_format")
	if !rf.IsObject() {
		return nil
	}
	f := newObject(rf)
	if t := f.get("type"); t.Type == gjson.String && t.Str == "json_schema" && isNone(f.get("json_schema")) {
		return errVLLM("When response_format type is 'json_schema', the 'json_schema' field must be provided.", "response_format", "")
	}
	return nil
}

// maxCompletionPrompts is VLLM_MAX_COMPLETION_PROMPTS' default.
const maxCompletionPrompts = 1024

func checkPromptListLength(o *object) *openai.Error {
	p := o.get("prompt")
	if !p.IsArray() {
		return nil
	}
	// vLLM's is_list_of looks at the first item only.
	first, n := p.Get("0"), len(p.Array())
	ints := isIntLiteral(first) || first.Type == gjson.True || first.Type == gjson.False
	if n > maxCompletionPrompts && !ints {
		return errVLLM("prompt list length "+strconv.Itoa(n)+" exceeds the maximum allowed count of "+
			strconv.Itoa(maxCompletionPrompts)+". To increase this limit, set the VLLM_MAX_COMPLETION_PROMPTS environment variable.", "prompt", "")
	}
	return nil
}

func checkPromptPresent(o *object) *openai.Error {
	p, embeds := o.get("prompt"), o.get("prompt_embeds")
	promptEmpty := isNone(p) || (p.Type == gjson.String && p.Str == "")
	embedsEmpty := isNone(embeds) || (embeds.IsArray() && !truthy(embeds))
	if promptEmpty && embedsEmpty {
		return errVLLM("Either prompt or prompt_embeds must be provided and non-empty.", "prompt", "")
	}
	return nil
}
