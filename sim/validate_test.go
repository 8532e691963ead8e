package sim

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// vcase is one request vLLM refuses, and its answer: status, type, param ("" for
// null) and the whole message, as vLLM writes them (notes/vllm-validation.md).
type vcase struct {
	name, route, contentType, body string
	status                         int
	typ, param, msg                string
}

// runValidation posts each case and checks the answer exactly.
func runValidation(t *testing.T, o Options, cases []vcase) {
	t.Helper()
	_, ts := newTest(t, o)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+tt.route, strings.NewReader(tt.body))
			switch tt.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "none":
			default:
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d; want %d (body %s)", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			e := gjson.GetBytes(body, "error")
			if keys := objectKeys(e); keys != "message,type,param,code" {
				t.Errorf("error keys %s; want message,type,param,code: %s", keys, body)
			}
			if e.Get("type").Str != tt.typ || e.Get("code").Int() != int64(tt.status) {
				t.Errorf("type %q code %d; want %q %d", e.Get("type").Str, e.Get("code").Int(), tt.typ, tt.status)
			}
			if p := e.Get("param"); (tt.param == "" && p.Type != gjson.Null) || (tt.param != "" && p.Str != tt.param) {
				t.Errorf("param %s; want %q", p.Raw, tt.param)
			}
			if m := e.Get("message").Str; m != tt.msg {
				t.Errorf("message\n got %q\nwant %q", m, tt.msg)
			}
		})
	}
}

// objectKeys lists an object's keys in order, comma-separated.
func objectKeys(v gjson.Result) string {
	var keys []string
	v.ForEach(func(k, _ gjson.Result) bool { keys = append(keys, k.Str); return true })
	return strings.Join(keys, ",")
}

const (
	chatRoute = "/v1/chat/completions"
	cmplRoute = "/v1/completions"
	hi        = `"messages":[{"role":"user","content":"hi"}]`
	// toolUsage is the hint after a named tool_choice error.
	toolUsage = "Correct usage: `{\"type\": \"function\", \"function\": {\"name\": \"my_function\"}}`"
	// weather is a tools list with one function.
	weather = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`
)

func TestValidationBody(t *testing.T) {
	const mediaType = "1 validation error:\n  Unsupported Media Type: Only 'application/json' is allowed"
	runValidation(t, Options{}, []vcase{
		{name: "text/plain", route: chatRoute, contentType: "text/plain", body: `{` + hi + `}`,
			status: 400, typ: "Bad Request", msg: mediaType},
		{name: "no Content-Type", route: cmplRoute, contentType: "none", body: `{"prompt":"p"}`,
			status: 400, typ: "Bad Request", msg: mediaType},
		{name: "charset is fine", route: chatRoute, contentType: "application/json; charset=utf-8", body: `{"messages":5}`,
			status: 400, typ: "BadRequestError", msg: "'int' object is not iterable"},
		{name: "a space before the parameters is not", route: chatRoute, contentType: "application/json ; charset=utf-8", body: `{` + hi + `}`,
			status: 400, typ: "Bad Request", msg: mediaType},
		{name: "vnd+json is decoded, then refused", route: chatRoute, contentType: "application/vnd.api+json", body: `{` + hi + `}`,
			status: 400, typ: "Bad Request", msg: mediaType},
		{name: "truncated JSON", route: chatRoute, body: `{"messages":`, status: 400, typ: "Bad Request", param: "body.12",
			msg: "1 validation error:\n  {'type': 'json_invalid', 'loc': ('body', 12), 'msg': 'JSON decode error', 'input': {}, 'ctx': {'error': 'Expecting value'}}"},
		{name: "JSON decoded before the media type check", route: chatRoute, contentType: "none", body: `{"a" 1}`,
			status: 400, typ: "Bad Request", param: "body.5",
			msg: "1 validation error:\n  {'type': 'json_invalid', 'loc': ('body', 5), 'msg': 'JSON decode error', 'input': {}, 'ctx': {'error': \"Expecting ':' delimiter\"}}"},
		{name: "trailing garbage", route: cmplRoute, body: `{"prompt":"p"} x`, status: 400, typ: "Bad Request", param: "body.15",
			msg: "1 validation error:\n  {'type': 'json_invalid', 'loc': ('body', 15), 'msg': 'JSON decode error', 'input': {}, 'ctx': {'error': 'Extra data'}}"},
		{name: "single quotes", route: chatRoute, body: `{'model':'m'}`, status: 400, typ: "Bad Request", param: "body.1",
			msg: "1 validation error:\n  {'type': 'json_invalid', 'loc': ('body', 1), 'msg': 'JSON decode error', 'input': {}, 'ctx': {'error': 'Expecting property name enclosed in double quotes'}}"},
		{name: "offsets count characters", route: cmplRoute, body: `{"prompt":"héllo",}`, status: 400, typ: "Bad Request", param: "body.18",
			msg: "1 validation error:\n  {'type': 'json_invalid', 'loc': ('body', 18), 'msg': 'JSON decode error', 'input': {}, 'ctx': {'error': 'Expecting property name enclosed in double quotes'}}"},
		{name: "unterminated string", route: cmplRoute, body: `{"prompt":"hi}`, status: 400, typ: "Bad Request", param: "body.10",
			msg: "1 validation error:\n  {'type': 'json_invalid', 'loc': ('body', 10), 'msg': 'JSON decode error', 'input': {}, 'ctx': {'error': 'Unterminated string starting at'}}"},
		{name: "empty body", route: chatRoute, body: ``, status: 400, typ: "Bad Request", param: "body",
			msg: "1 validation error:\n  {'type': 'missing', 'loc': ('body',), 'msg': 'Field required', 'input': None}"},
		{name: "null body", route: cmplRoute, body: `null`, status: 400, typ: "Bad Request", param: "body",
			msg: "1 validation error:\n  {'type': 'missing', 'loc': ('body',), 'msg': 'Field required', 'input': None}"},
		{name: "array body", route: chatRoute, body: `[1]`, status: 400, typ: "Bad Request", param: "body",
			msg: "1 validation error:\n  {'type': 'model_attributes_type', 'loc': ('body',), 'msg': 'Input should be a valid dictionary or object to extract fields from', 'input': [1]}"},
		{name: "string body", route: cmplRoute, body: `"x"`, status: 400, typ: "Bad Request", param: "body",
			msg: "1 validation error:\n  {'type': 'model_attributes_type', 'loc': ('body',), 'msg': 'Input should be a valid dictionary or object to extract fields from', 'input': 'x'}"},
		{name: "not UTF-8", route: cmplRoute, body: "{\"prompt\":\"caf\xe9\"}", status: 400, typ: "Bad Request",
			msg: "There was an error parsing the body"},
		{name: "nested too deep", route: cmplRoute, body: `{"prompt":"p","x":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`,
			status: 400, typ: "Bad Request", msg: "There was an error parsing the body"},
		{name: "unknown model", route: chatRoute, body: `{"model":"nope",` + hi + `}`, status: 404, typ: "NotFoundError", param: "model",
			msg: "The model `nope` does not exist."},
		{name: "unknown model, after validation", route: chatRoute, body: `{"model":"nope","messages":"hi"}`, status: 400, typ: "Bad Request", param: "body.messages",
			msg: "1 validation error:\n  {'type': 'list_type', 'loc': ('body', 'messages'), 'msg': 'Input should be a valid list', 'input': 'hi'}"},
		{name: "paths in messages are sanitized", route: chatRoute, body: `{"model":"org/my/model.v1",` + hi + `}`, status: 404,
			typ: "NotFoundError", param: "model", msg: "The model `org<path>` does not exist."},
	})
}

func TestValidationChat(t *testing.T) {
	runValidation(t, Options{}, []vcase{
		{name: "temperature not a number", route: chatRoute, body: `{"model":"m",` + hi + `,"temperature":"hot"}`, status: 400, typ: "Bad Request",
			param: "body.temperature",
			msg:   "1 validation error:\n  {'type': 'float_parsing', 'loc': ('body', 'temperature'), 'msg': 'Input should be a valid number, unable to parse string as a number', 'input': 'hot'}"},
		{name: "errors in field order", route: chatRoute, body: `{"top_p":[1],` + hi + `,"temperature":"hot","n":1.5}`, status: 400, typ: "Bad Request",
			param: "body.n",
			msg: "3 validation errors:\n  {'type': 'int_from_float', 'loc': ('body', 'n'), 'msg': 'Input should be a valid integer, got a number with a fractional part', 'input': 1.5}" +
				"\n  {'type': 'float_parsing', 'loc': ('body', 'temperature'), 'msg': 'Input should be a valid number, unable to parse string as a number', 'input': 'hot'}" +
				"\n  {'type': 'float_type', 'loc': ('body', 'top_p'), 'msg': 'Input should be a valid number', 'input': [1]}"},
		{name: "messages missing", route: chatRoute, body: `{"model":"m"}`, status: 400, typ: "Bad Request", param: "body.messages",
			msg: "1 validation error:\n  {'type': 'missing', 'loc': ('body', 'messages'), 'msg': 'Field required', 'input': {'model': 'm'}}"},
		{name: "messages a string", route: chatRoute, body: `{"model":"m","messages":"hi"}`, status: 400, typ: "Bad Request", param: "body.messages",
			msg: "1 validation error:\n  {'type': 'list_type', 'loc': ('body', 'messages'), 'msg': 'Input should be a valid list', 'input': 'hi'}"},
		{name: "messages a number", route: chatRoute, body: `{"messages":5}`, status: 400, typ: "BadRequestError", msg: "'int' object is not iterable"},
		{name: "messages null", route: chatRoute, body: `{"messages":null}`, status: 400, typ: "BadRequestError", msg: "'NoneType' object is not iterable"},
		{name: "n zero", route: chatRoute, body: `{` + hi + `,"n":0}`, status: 400, typ: "BadRequestError", msg: "n must be at least 1, got 0."},
		{name: "n too large", route: chatRoute, body: `{` + hi + `,"n":20000}`, status: 400, typ: "BadRequestError",
			msg: "n must be at most 16384, got 20000. To increase this limit, set the VLLM_MAX_N_SEQUENCES environment variable."},
		{name: "n with greedy sampling", route: chatRoute, body: `{` + hi + `,"n":2,"temperature":0}`, status: 400, typ: "BadRequestError",
			msg: "n must be 1 when using greedy sampling, got 2."},
		{name: "top_p above 1", route: chatRoute, body: `{` + hi + `,"top_p":2}`, status: 400, typ: "BadRequestError", param: "top_p",
			msg: "top_p must be in (0, 1], got 2.0. (parameter=top_p, value=2.0)"},
		{name: "temperature above 2", route: chatRoute, body: `{` + hi + `,"temperature":3}`, status: 400, typ: "BadRequestError", param: "temperature",
			msg: "temperature must be in [0, 2], got 3.0. (parameter=temperature, value=3.0)"},
		{name: "temperature negative", route: chatRoute, body: `{` + hi + `,"temperature":-0.5}`, status: 400, typ: "BadRequestError", param: "temperature",
			msg: "temperature must be non-negative, got -0.5. (parameter=temperature, value=-0.5)"},
		{name: "temperature inf", route: chatRoute, body: `{` + hi + `,"temperature":"inf"}`, status: 400, typ: "BadRequestError", param: "temperature",
			msg: "temperature must be a finite number, got inf. (parameter=temperature, value=inf)"},
		{name: "presence_penalty", route: chatRoute, body: `{` + hi + `,"presence_penalty":3}`, status: 400, typ: "BadRequestError",
			msg: "presence_penalty must be in [-2, 2], got 3.0."},
		{name: "frequency_penalty", route: chatRoute, body: `{` + hi + `,"frequency_penalty":-2.5}`, status: 400, typ: "BadRequestError",
			msg: "frequency_penalty must be in [-2, 2], got -2.5."},
		{name: "repetition_penalty", route: chatRoute, body: `{` + hi + `,"repetition_penalty":0}`, status: 400, typ: "BadRequestError",
			msg: "repetition_penalty must be greater than zero, got 0.0."},
		{name: "top_k", route: chatRoute, body: `{` + hi + `,"top_k":-2}`, status: 400, typ: "BadRequestError",
			msg: "top_k must be 0 (disable), or at least 1, got -2."},
		{name: "min_p", route: chatRoute, body: `{` + hi + `,"min_p":1.5}`, status: 400, typ: "BadRequestError", msg: "min_p must be in [0, 1], got 1.5."},
		{name: "min_tokens negative", route: chatRoute, body: `{` + hi + `,"min_tokens":-1}`, status: 400, typ: "BadRequestError",
			msg: "min_tokens must be greater than or equal to 0, got -1."},
		{name: "repetition_penalty not finite", route: chatRoute, body: `{` + hi + `,"repetition_penalty":"-inf"}`, status: 400, typ: "BadRequestError",
			msg: "repetition_penalty must be a finite number, got -inf."},
		{name: "min_tokens above max_tokens", route: chatRoute, body: `{` + hi + `,"max_tokens":10,"min_tokens":20}`, status: 400, typ: "BadRequestError",
			msg: "min_tokens must be less than or equal to max_tokens=10, got 20."},
		{name: "max_tokens negative", route: chatRoute, body: `{` + hi + `,"max_tokens":-1}`, status: 400, typ: "BadRequestError", param: "max_tokens",
			msg: "max_tokens must be at least 1, got -1. (parameter=max_tokens, value=-1)"},
		{name: "max_tokens zero", route: chatRoute, body: `{` + hi + `,"max_tokens":0}`, status: 400, typ: "BadRequestError", param: "max_tokens",
			msg: "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)"},
		{name: "max_completion_tokens negative", route: chatRoute, body: `{` + hi + `,"max_completion_tokens":-1}`, status: 400, typ: "BadRequestError",
			param: "max_tokens", msg: "max_tokens must be at least 1, got -1. (parameter=max_tokens, value=-1)"},
		{name: "max_tokens beyond max_model_len", route: chatRoute, body: `{` + hi + `,"max_tokens":5000}`, status: 400, typ: "BadRequestError",
			param: "max_tokens",
			msg:   "max_tokens=5000 cannot be greater than max_model_len=max_total_tokens=4096. Please request fewer output tokens. (parameter=max_tokens, value=5000)"},
		{name: "max_completion_tokens beyond max_model_len", route: chatRoute, body: `{` + hi + `,"max_completion_tokens":5000}`, status: 400,
			typ: "BadRequestError", param: "max_completion_tokens",
			msg: "max_completion_tokens=5000 cannot be greater than max_model_len=max_total_tokens=4096. Please request fewer output tokens. (parameter=max_completion_tokens, value=5000)"},
		{name: "context length", route: chatRoute, body: `{` + hi + `,"max_tokens":4096}`, status: 400, typ: "BadRequestError", param: "input_tokens",
			msg: "This model's maximum context length is 4096 tokens. However, you requested 4096 output tokens and your prompt contains 1 input tokens, " +
				"for a total of 4097 tokens. Please reduce the length of the input prompt or the number of requested output tokens. (parameter=input_tokens, value=1)"},
		{name: "logprobs above max, not streamed", route: chatRoute, body: `{` + hi + `,"logprobs":true,"top_logprobs":50}`, status: 400,
			typ: "BadRequestError", param: "logprobs",
			msg: "Requested sample logprobs of 50, which is greater than max allowed: 20 (parameter=logprobs, value=50)"},
		{name: "top_logprobs without logprobs", route: chatRoute, body: `{` + hi + `,"top_logprobs":5}`, status: 400, typ: "BadRequestError",
			param: "top_logprobs", msg: "when using `top_logprobs`, `logprobs` must be set to true. (parameter=top_logprobs)"},
		{name: "top_logprobs not a number", route: chatRoute, body: `{` + hi + `,"top_logprobs":"abc"}`, status: 400, typ: "BadRequestError",
			param: "top_logprobs", msg: "`top_logprobs` must be an integer. (parameter=top_logprobs, value=abc)"},
		{name: "top_logprobs negative", route: chatRoute, body: `{` + hi + `,"logprobs":true,"top_logprobs":-2}`, status: 400, typ: "BadRequestError",
			param: "top_logprobs", msg: "`top_logprobs` must be a positive value or -1. (parameter=top_logprobs, value=-2)"},
		{name: "prompt_logprobs with stream", route: chatRoute, body: `{` + hi + `,"stream":true,"prompt_logprobs":1}`, status: 400, typ: "BadRequestError",
			param: "prompt_logprobs", msg: "`prompt_logprobs` are not available when `stream=True`. (parameter=prompt_logprobs)"},
		{name: "prompt_logprobs above max", route: chatRoute, body: `{` + hi + `,"prompt_logprobs":30}`, status: 400, typ: "BadRequestError",
			param: "prompt_logprobs", msg: "Requested prompt logprobs of 30, which is greater than max allowed: 20 (parameter=prompt_logprobs, value=30)"},
		{name: "stream_options without stream", route: chatRoute, body: `{` + hi + `,"stream_options":{"include_usage":true}}`, status: 400,
			typ: "BadRequestError", param: "stream_options", msg: "Stream options can only be defined when `stream=True`. (parameter=stream_options)"},
		{name: "stream_options with stream false", route: chatRoute, body: `{` + hi + `,"stream":false,"stream_options":{"include_usage":null}}`,
			status: 400, typ: "BadRequestError", param: "stream_options", msg: "Stream options can only be defined when `stream=True`. (parameter=stream_options)"},
		{name: "stream_options a string", route: chatRoute, body: `{` + hi + `,"stream":true,"stream_options":"yes"}`, status: 400, typ: "Bad Request",
			param: "body.stream_options",
			msg:   "1 validation error:\n  {'type': 'model_attributes_type', 'loc': ('body', 'stream_options'), 'msg': 'Input should be a valid dictionary or object to extract fields from', 'input': 'yes'}"},
		{name: "stream a string", route: chatRoute, body: `{` + hi + `,"stream":"maybe"}`, status: 400, typ: "Bad Request", param: "body.stream",
			msg: "1 validation error:\n  {'type': 'bool_parsing', 'loc': ('body', 'stream'), 'msg': 'Input should be a valid boolean, unable to interpret input', 'input': 'maybe'}"},
		{name: "model a number", route: chatRoute, body: `{"model":42,` + hi + `}`, status: 400, typ: "Bad Request", param: "body.model",
			msg: "1 validation error:\n  {'type': 'string_type', 'loc': ('body', 'model'), 'msg': 'Input should be a valid string', 'input': 42}"},
		{name: "seed beyond int64", route: chatRoute, body: `{` + hi + `,"seed":9223372036854775808}`, status: 400, typ: "Bad Request", param: "body.seed",
			msg: "1 validation error:\n  {'type': 'less_than_equal', 'loc': ('body', 'seed'), 'msg': 'Input should be less than or equal to 9223372036854775807', 'input': 9223372036854775808, 'ctx': {'le': 9223372036854775807}}"},
		{name: "five stop strings", route: chatRoute, body: `{` + hi + `,"stop":["a","b","c","d","e"]}`, status: 400, typ: "Bad Request", param: "body.stop",
			msg: "2 validation errors:\n  {'type': 'string_type', 'loc': ('body', 'stop', 'str'), 'msg': 'Input should be a valid string', 'input': ['a', 'b', 'c', 'd', 'e']}" +
				"\n  {'type': 'too_long', 'loc': ('body', 'stop', 'list[str]'), 'msg': 'List should have at most 4 items after validation, not 5', 'input': ['a', 'b', 'c', 'd', 'e'], 'ctx': {'field_type': 'List', 'max_length': 4, 'actual_length': 5}}"},
		{name: "stop not strings", route: chatRoute, body: `{` + hi + `,"stop":[1]}`, status: 400, typ: "Bad Request", param: "body.stop",
			msg: "2 validation errors:\n  {'type': 'string_type', 'loc': ('body', 'stop', 'str'), 'msg': 'Input should be a valid string', 'input': [1]}" +
				"\n  {'type': 'string_type', 'loc': ('body', 'stop', 'list[str]', 0), 'msg': 'Input should be a valid string', 'input': 1}"},
		{name: "empty stop string", route: chatRoute, body: `{` + hi + `,"stop":""}`, status: 400, typ: "BadRequestError", msg: "stop cannot contain an empty string."},
		{name: "empty stop string in a list", route: chatRoute, body: `{` + hi + `,"stop":["a",""]}`, status: 400, typ: "BadRequestError",
			msg: "stop cannot contain an empty string."},
		{name: "empty bad word", route: chatRoute, body: `{` + hi + `,"bad_words":["x",""]}`, status: 400, typ: "BadRequestError",
			msg: "bad_words cannot contain an empty string. Got bad_words=['x', '']"},
		{name: "logit_bias keys", route: chatRoute, body: `{` + hi + `,"logit_bias":{"bad1":1,"7":2,"bad2":3}}`, status: 400, typ: "BadRequestError",
			param: "logit_bias",
			msg:   "logit_bias contains key(s) that cannot be converted to integer token IDs: ['bad1', 'bad2'] (parameter=logit_bias, value=['bad1', 'bad2'])"},
		{name: "logit_bias values", route: chatRoute, body: `{` + hi + `,"logit_bias":{"7":"x"}}`, status: 400, typ: "Bad Request", param: "body.logit_bias.7",
			msg: "1 validation error:\n  {'type': 'float_parsing', 'loc': ('body', 'logit_bias', '7'), 'msg': 'Input should be a valid number, unable to parse string as a number', 'input': 'x'}"},
		{name: "logit_bias out of vocabulary", route: chatRoute, body: `{` + hi + `,"logit_bias":{"99999":1}}`, status: 400, typ: "BadRequestError",
			param: "logit_bias", msg: "token_id(s) [99999] in logit_bias contain out-of-vocab token ids. Vocabulary size: 32100 (parameter=logit_bias, value=[99999])"},
		{name: "allowed_token_ids empty", route: chatRoute, body: `{` + hi + `,"allowed_token_ids":[]}`, status: 400, typ: "BadRequestError",
			param: "allowed_token_ids", msg: "allowed_token_ids is not None and empty! (parameter=allowed_token_ids, value=[])"},
		{name: "allowed_token_ids out of vocabulary", route: chatRoute, body: `{` + hi + `,"allowed_token_ids":[1,40000]}`, status: 400,
			typ: "BadRequestError", param: "allowed_token_ids",
			msg: "allowed_token_ids contains out-of-vocab token id! (parameter=allowed_token_ids, value=[1, 40000])"},
		{name: "two kinds of structured output", route: chatRoute, body: `{` + hi + `,"structured_outputs":{"json":{},"regex":"a+"}}`, status: 400,
			typ: "BadRequestError", msg: "You can only use one kind of constraints for structured outputs ('json', 'regex' or 'choice')."},
		{name: "structured output and a named tool", route: chatRoute,
			body:   `{` + hi + `,` + weather + `,"tool_choice":{"type":"function","function":{"name":"get_weather"}},"structured_outputs":{"choice":["a"]}}`,
			status: 400, typ: "BadRequestError", msg: "You can only either use constraints for structured outputs or tools, not both."},
		{name: "reasoning_effort", route: chatRoute, body: `{` + hi + `,"reasoning_effort":"extreme"}`, status: 400, typ: "Bad Request",
			param: "body.reasoning_effort",
			msg:   "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'reasoning_effort'), 'msg': \"Input should be 'none', 'minimal', 'low', 'medium', 'high', 'xhigh' or 'max'\", 'input': 'extreme', 'ctx': {'expected': \"'none', 'minimal', 'low', 'medium', 'high', 'xhigh' or 'max'\"}}"},
		{name: "cache_salt empty", route: chatRoute, body: `{` + hi + `,"cache_salt":""}`, status: 400, typ: "Bad Request", param: "body.cache_salt",
			msg: "1 validation error:\n  {'type': 'string_too_short', 'loc': ('body', 'cache_salt'), 'msg': 'String should have at least 1 character', 'input': '', 'ctx': {'min_length': 1}}"},
		{name: "stream_interval zero", route: chatRoute, body: `{` + hi + `,"stream_interval":0}`, status: 400, typ: "Bad Request", param: "body.stream_interval",
			msg: "1 validation error:\n  {'type': 'greater_than_equal', 'loc': ('body', 'stream_interval'), 'msg': 'Input should be greater than or equal to 1', 'input': 0, 'ctx': {'ge': 1}}"},
		{name: "both prompt flags", route: chatRoute, body: `{` + hi + `,"continue_final_message":true,"add_generation_prompt":true}`, status: 400,
			typ: "BadRequestError", msg: "Cannot set both `continue_final_message` and `add_generation_prompt` to True."},
		{name: "json_schema without a schema", route: chatRoute, body: `{` + hi + `,"response_format":{"type":"json_schema"}}`, status: 400,
			typ: "BadRequestError", param: "response_format",
			msg: "When response_format type is 'json_schema', the 'json_schema' field must be provided. (parameter=response_format)"},
		{name: "chat template", route: chatRoute, body: `{` + hi + `,"chat_template":"{{ x }}"}`, status: 400, typ: "BadRequestError",
			msg: "Chat template is passed with request, but --trust-request-chat-template is not set. Refused request with untrusted chat template."},
		{name: "message without a role", route: chatRoute, body: `{"messages":[{"content":"hi"}]}`, status: 400, typ: "Bad Request",
			param: "body.messages.0.ChatCompletionDeveloperMessageParam.role",
			msg: "8 validation errors:\n  {'type': 'missing', 'loc': ('body', 'messages', 0, 'ChatCompletionDeveloperMessageParam', 'role'), 'msg': 'Field required', 'input': {'content': 'hi'}}" +
				"\n  {'type': 'missing', 'loc': ('body', 'messages', 0, 'ChatCompletionSystemMessageParam', 'role'), 'msg': 'Field required', 'input': {'content': 'hi'}}" +
				"\n  {'type': 'missing', 'loc': ('body', 'messages', 0, 'ChatCompletionUserMessageParam', 'role'), 'msg': 'Field required', 'input': {'content': 'hi'}}" +
				"\n  {'type': 'missing', 'loc': ('body', 'messages', 0, 'ChatCompletionAssistantMessageParam', 'role'), 'msg': 'Field required', 'input': {'content': 'hi'}}" +
				"\n  {'type': 'missing', 'loc': ('body', 'messages', 0, 'ChatCompletionToolMessageParam', 'role'), 'msg': 'Field required', 'input': {'content': 'hi'}}" +
				"\n  {'type': 'missing', 'loc': ('body', 'messages', 0, 'ChatCompletionFunctionMessageParam', 'role'), 'msg': 'Field required', 'input': {'content': 'hi'}}" +
				"\n  {'type': 'missing', 'loc': ('body', 'messages', 0, 'CustomChatCompletionMessageParam', 'role'), 'msg': 'Field required', 'input': {'content': 'hi'}}" +
				"\n  {'type': 'missing', 'loc': ('body', 'messages', 0, 'Message', 'author'), 'msg': 'Field required', 'input': {'content': 'hi'}}"},
		{name: "message not an object", route: chatRoute, body: `{"messages":["hi"]}`, status: 400, typ: "Bad Request",
			param: "body.messages.0.ChatCompletionDeveloperMessageParam",
			msg: "8 validation errors:\n  {'type': 'dict_type', 'loc': ('body', 'messages', 0, 'ChatCompletionDeveloperMessageParam'), 'msg': 'Input should be a valid dictionary', 'input': 'hi'}" +
				"\n  {'type': 'dict_type', 'loc': ('body', 'messages', 0, 'ChatCompletionSystemMessageParam'), 'msg': 'Input should be a valid dictionary', 'input': 'hi'}" +
				"\n  {'type': 'dict_type', 'loc': ('body', 'messages', 0, 'ChatCompletionUserMessageParam'), 'msg': 'Input should be a valid dictionary', 'input': 'hi'}" +
				"\n  {'type': 'dict_type', 'loc': ('body', 'messages', 0, 'ChatCompletionAssistantMessageParam'), 'msg': 'Input should be a valid dictionary', 'input': 'hi'}" +
				"\n  {'type': 'dict_type', 'loc': ('body', 'messages', 0, 'ChatCompletionToolMessageParam'), 'msg': 'Input should be a valid dictionary', 'input': 'hi'}" +
				"\n  {'type': 'dict_type', 'loc': ('body', 'messages', 0, 'ChatCompletionFunctionMessageParam'), 'msg': 'Input should be a valid dictionary', 'input': 'hi'}" +
				"\n  {'type': 'dict_type', 'loc': ('body', 'messages', 0, 'CustomChatCompletionMessageParam'), 'msg': 'Input should be a valid dictionary', 'input': 'hi'}" +
				"\n  {'type': 'model_attributes_type', 'loc': ('body', 'messages', 0, 'Message'), 'msg': 'Input should be a valid dictionary or object to extract fields from', 'input': 'hi'}"},
	})
}

func TestValidationTools(t *testing.T) {
	named := func(fn string) string { return `"tool_choice":{"type":"function","function":` + fn + `}` }
	runValidation(t, Options{}, []vcase{
		{name: "empty tools", route: chatRoute, body: `{` + hi + `,"tools":[]}`, status: 400, typ: "BadRequestError", param: "tools",
			msg: "`tools` must not be an empty array. Either provide at least one tool or omit the field entirely. (parameter=tools)"},
		{name: "tool_choice without tools", route: chatRoute, body: `{` + hi + `,"tool_choice":"auto"}`, status: 400, typ: "BadRequestError",
			param: "tool_choice", msg: "When using `tool_choice`, `tools` must be set. (parameter=tool_choice)"},
		{name: "required without tools", route: chatRoute, body: `{` + hi + `,"tool_choice":"required","tools":null}`, status: 400,
			typ: "BadRequestError", param: "tool_choice", msg: "When using `tool_choice`, `tools` must be set. (parameter=tool_choice)"},
		{name: "unknown tool_choice", route: chatRoute, body: `{` + hi + `,` + weather + `,"tool_choice":"foo"}`, status: 400, typ: "BadRequestError",
			param: "tool_choice", msg: `Invalid value for ` + "`tool_choice`" + `: foo! Only named tools, "none", "auto" or "required" are supported. (parameter=tool_choice)`},
		{name: "function not an object", route: chatRoute, body: `{` + hi + `,` + weather + `,` + named(`"x"`) + `}`, status: 400, typ: "BadRequestError",
			param: "tool_choice.function", msg: "Invalid value for `function`: `x` in `tool_choice`! " + toolUsage + " (parameter=tool_choice.function)"},
		{name: "no name", route: chatRoute, body: `{` + hi + `,` + weather + `,` + named(`{}`) + `}`, status: 400, typ: "BadRequestError",
			param: "tool_choice.function.name", msg: "Expected field `name` in `function` in `tool_choice`! " + toolUsage + " (parameter=tool_choice.function.name)"},
		{name: "empty name", route: chatRoute, body: `{` + hi + `,` + weather + `,` + named(`{"name":""}`) + `}`, status: 400, typ: "BadRequestError",
			param: "tool_choice.function.name", msg: "Invalid `name` in `function`: `` in `tool_choice`! " + toolUsage + " (parameter=tool_choice.function.name)"},
		{name: "unknown name", route: chatRoute, body: `{` + hi + `,` + weather + `,` + named(`{"name":"other"}`) + `}`, status: 400, typ: "BadRequestError",
			param: "tool_choice", msg: "The tool specified in `tool_choice` does not match any of the specified `tools` (parameter=tool_choice)"},
		{name: "tool without function, named choice", route: chatRoute, body: `{` + hi + `,"tools":[{"type":"function"}],` + named(`{"name":"f"}`) + `}`,
			status: 500, typ: "InternalServerError", msg: "'function'"},
		{name: "tool not an object, named choice", route: chatRoute, body: `{` + hi + `,"tools":[5],` + named(`{"name":"f"}`) + `}`,
			status: 400, typ: "BadRequestError", msg: "'int' object is not subscriptable"},
		{name: "tool not an object", route: chatRoute, body: `{` + hi + `,"tools":[5]}`, status: 400, typ: "Bad Request", param: "body.tools.0",
			msg: "1 validation error:\n  {'type': 'model_attributes_type', 'loc': ('body', 'tools', 0), 'msg': 'Input should be a valid dictionary or object to extract fields from', 'input': 5}"},
		{name: "tool without a name", route: chatRoute, body: `{` + hi + `,"tools":[{"type":"function","function":{}}]}`, status: 400, typ: "Bad Request",
			param: "body.tools.0.function.name",
			msg:   "1 validation error:\n  {'type': 'missing', 'loc': ('body', 'tools', 0, 'function', 'name'), 'msg': 'Field required', 'input': {}}"},
	})
}

func TestValidationCompletions(t *testing.T) {
	const noPrompt = "Either prompt or prompt_embeds must be provided and non-empty. (parameter=prompt)"
	runValidation(t, Options{}, []vcase{
		{name: "no prompt", route: cmplRoute, body: `{"model":"m"}`, status: 400, typ: "BadRequestError", param: "prompt", msg: noPrompt},
		{name: "empty prompt", route: cmplRoute, body: `{"prompt":""}`, status: 400, typ: "BadRequestError", param: "prompt", msg: noPrompt},
		{name: "null prompt", route: cmplRoute, body: `{"prompt":null}`, status: 400, typ: "BadRequestError", param: "prompt", msg: noPrompt},
		{name: "prompt a number", route: cmplRoute, body: `{"prompt":42}`, status: 400, typ: "Bad Request", param: "body.prompt",
			msg: "4 validation errors:\n  {'type': 'list_type', 'loc': ('body', 'prompt', 'list[constrained-int]'), 'msg': 'Input should be a valid list', 'input': 42}" +
				"\n  {'type': 'list_type', 'loc': ('body', 'prompt', 'list[list[constrained-int]]'), 'msg': 'Input should be a valid list', 'input': 42}" +
				"\n  {'type': 'string_type', 'loc': ('body', 'prompt', 'str'), 'msg': 'Input should be a valid string', 'input': 42}" +
				"\n  {'type': 'list_type', 'loc': ('body', 'prompt', 'list[str]'), 'msg': 'Input should be a valid list', 'input': 42}"},
		{name: "empty token list", route: cmplRoute, body: `{"prompt":[]}`, status: 400, typ: "BadRequestError", msg: "The decoder prompt cannot be empty"},
		{name: "too many prompts", route: cmplRoute, body: `{"prompt":[` + strings.Repeat(`"a",`, 1024) + `"a"]}`, status: 400, typ: "BadRequestError",
			param: "prompt", msg: "prompt list length 1025 exceeds the maximum allowed count of 1024. To increase this limit, set the VLLM_MAX_COMPLETION_PROMPTS environment variable. (parameter=prompt)"},
		{name: "max_tokens zero", route: cmplRoute, body: `{"prompt":"p","max_tokens":0}`, status: 400, typ: "BadRequestError", param: "max_tokens",
			msg: "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)"},
		{name: "n null", route: cmplRoute, body: `{"prompt":"p","n":null}`, status: 400, typ: "Bad Request", param: "body.n",
			msg: "1 validation error:\n  {'type': 'int_type', 'loc': ('body', 'n'), 'msg': 'Input should be a valid integer', 'input': None}"},
		{name: "logprobs above max", route: cmplRoute, body: `{"prompt":"p","logprobs":25}`, status: 400, typ: "BadRequestError", param: "logprobs",
			msg: "Requested sample logprobs of 25, which is greater than max allowed: 20 (parameter=logprobs, value=25)"},
		{name: "logprobs -1 is the vocabulary", route: cmplRoute, body: `{"prompt":"p","logprobs":-1}`, status: 400, typ: "BadRequestError", param: "logprobs",
			msg: "Requested sample logprobs of 32100, which is greater than max allowed: 20 (parameter=logprobs, value=32100)"},
		{name: "logprobs not a number", route: cmplRoute, body: `{"prompt":"p","logprobs":"x"}`, status: 400, typ: "BadRequestError", param: "logprobs",
			msg: "`logprobs` must be an integer. (parameter=logprobs, value=x)"},
		{name: "logprobs negative", route: cmplRoute, body: `{"prompt":"p","logprobs":-2}`, status: 400, typ: "BadRequestError", param: "logprobs",
			msg: "`logprobs` must be a positive value or -1. (parameter=logprobs, value=-2)"},
		{name: "prompt_embeds", route: cmplRoute, body: `{"prompt_embeds":"AAAA"}`, status: 400, typ: "BadRequestError",
			msg: "You must set `--enable-prompt-embeds` to input `prompt_embeds`."},
		{name: "prompt_logprobs with stream", route: cmplRoute, body: `{"prompt":"p","stream":true,"prompt_logprobs":-1}`, status: 400,
			typ: "BadRequestError", param: "prompt_logprobs", msg: "`prompt_logprobs` are not available when `stream=True`. (parameter=prompt_logprobs)"},
		{name: "suffix", route: cmplRoute, body: `{"prompt":"p","suffix":"s"}`, status: 400, typ: "BadRequestError", msg: "suffix is not currently supported"},
		{name: "context length", route: cmplRoute, body: `{"prompt":"a b c","max_tokens":4095}`, status: 400, typ: "BadRequestError", param: "input_tokens",
			msg: "This model's maximum context length is 4096 tokens. However, you requested 4095 output tokens and your prompt contains 3 input tokens, " +
				"for a total of 4098 tokens. Please reduce the length of the input prompt or the number of requested output tokens. (parameter=input_tokens, value=3)"},
		{name: "stream_options without stream", route: cmplRoute, body: `{"prompt":"p","stream_options":{"include_usage":true}}`, status: 400,
			typ: "BadRequestError", param: "stream_options", msg: "Stream options can only be defined when `stream=True`. (parameter=stream_options)"},
		{name: "unknown fault", route: cmplRoute, body: `{"prompt":"p","sim_fault":"nope"}`, status: 400, typ: "BadRequestError", param: "sim_fault",
			msg: `unknown sim_fault "nope"; want one of error_before, error_mid_stream, error_no_done, cut_mid_stream, hang, cuda_error, exit, slow_first_byte`},
		{name: "bad fault after", route: cmplRoute, body: `{"prompt":"p","sim_fault_after":-1}`, status: 400, typ: "BadRequestError", param: "sim_fault_after",
			msg: "'sim_fault_after' must be a non-negative integer"},
	})
}

func TestValidationTokenize(t *testing.T) {
	const label = "function-wrap[__log_extra_fields__()]"
	runValidation(t, Options{}, []vcase{
		{name: "neither prompt nor messages", route: "/tokenize", body: `{}`, status: 400, typ: "Bad Request", param: "body.prompt",
			msg: "2 validation errors:\n  {'type': 'missing', 'loc': ('body', '" + label + "', 'prompt'), 'msg': 'Field required', 'input': {}}" +
				"\n  {'type': 'missing', 'loc': ('body', '" + label + "', 'messages'), 'msg': 'Field required', 'input': {}}"},
		{name: "prompt a number", route: "/tokenize", body: `{"prompt":5}`, status: 400, typ: "Bad Request", param: "body.prompt",
			msg: "2 validation errors:\n  {'type': 'string_type', 'loc': ('body', '" + label + "', 'prompt'), 'msg': 'Input should be a valid string', 'input': 5}" +
				"\n  {'type': 'missing', 'loc': ('body', '" + label + "', 'messages'), 'msg': 'Field required', 'input': {'prompt': 5}}"},
		{name: "unknown model", route: "/tokenize", body: `{"model":"x","prompt":"p"}`, status: 404, typ: "NotFoundError", param: "model",
			msg: "The model `x` does not exist."},
	})
}

func TestValidationResponses(t *testing.T) {
	const route = "/v1/responses"
	runValidation(t, Options{}, []vcase{
		{name: "no input", route: route, body: `{"model":"m"}`, status: 400, typ: "Bad Request", param: "body.input",
			msg: "1 validation error:\n  {'type': 'missing', 'loc': ('body', 'input'), 'msg': 'Field required', 'input': {'model': 'm'}}"},
		{name: "input a number", route: route, body: `{"input":5}`, status: 400, typ: "Bad Request", param: "body.input",
			msg: "2 validation errors:\n  {'type': 'string_type', 'loc': ('body', 'input', 'str'), 'msg': 'Input should be a valid string', 'input': 5}" +
				"\n  {'type': 'list_type', 'loc': ('body', 'input', 'list[union[ResponseInputItemParam,ResponseOutputItem]]'), 'msg': 'Input should be a valid list', 'input': 5}"},
		{name: "input item not an object", route: route, body: `{"input":["hi"]}`, status: 400, typ: "Bad Request",
			param: "body.input",
			msg: "2 validation errors:\n  {'type': 'string_type', 'loc': ('body', 'input', 'str'), 'msg': 'Input should be a valid string', 'input': ['hi']}" +
				"\n  {'type': 'dict_type', 'loc': ('body', 'input', 'list[union[ResponseInputItemParam,ResponseOutputItem]]', 0), 'msg': 'Input should be a valid dictionary', 'input': 'hi'}"},
		{name: "prompt template", route: route, body: `{"input":"x","prompt":{"id":"p"}}`, status: 400, typ: "BadRequestError", param: "prompt",
			msg: "prompt template is not supported (parameter=prompt)"},
		{name: "background without store", route: route, body: `{"input":"x","background":true,"store":false}`, status: 400, typ: "BadRequestError",
			param: "background", msg: "background can only be used when `store` is true (parameter=background)"},
		{name: "background, store off on the server", route: route, body: `{"input":"x","background":true}`, status: 400, typ: "invalid_request_error",
			param: "background",
			msg:   "This vLLM engine does not support `store=True` and therefore does not support the background mode. To enable these features, set the environment variable `VLLM_ENABLE_RESPONSES_API_STORE=1` when launching the vLLM server."},
		{name: "previous_response_id", route: route, body: `{"input":"x","previous_response_id":"resp_1"}`, status: 404, typ: "invalid_request_error",
			param: "response_id", msg: "Response with id 'resp_1' not found."},
		{name: "required without tools", route: route, body: `{"input":"x","tool_choice":"required"}`, status: 400, typ: "BadRequestError",
			param: "tool_choice", msg: "Tool choice 'required' must be specified with 'tools' parameter. (parameter=tool_choice)"},
		{name: "named tool not found", route: route, body: `{"input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"}}`,
			status: 400, typ: "BadRequestError", param: "tool_choice", msg: "Tool choice 'function' not found in 'tools' parameter. (parameter=tool_choice)"},
		{name: "max_output_tokens zero", route: route, body: `{"input":"x","max_output_tokens":0}`, status: 400, typ: "BadRequestError", param: "max_tokens",
			msg: "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)"},
		{name: "max_output_tokens beyond max_model_len", route: route, body: `{"input":"x","max_output_tokens":5000}`, status: 400, typ: "BadRequestError",
			param: "max_output_tokens",
			msg:   "max_output_tokens=5000 cannot be greater than max_model_len=max_total_tokens=4096. Please request fewer output tokens. (parameter=max_output_tokens, value=5000)"},
		{name: "temperature", route: route, body: `{"input":"x","temperature":2.5}`, status: 400, typ: "BadRequestError", param: "temperature",
			msg: "temperature must be in [0, 2], got 2.5. (parameter=temperature, value=2.5)"},
		{name: "presence_penalty is bounded by pydantic", route: route, body: `{"input":"x","presence_penalty":3}`, status: 400, typ: "Bad Request",
			param: "body.presence_penalty",
			msg:   "1 validation error:\n  {'type': 'less_than_equal', 'loc': ('body', 'presence_penalty'), 'msg': 'Input should be less than or equal to 2', 'input': 3, 'ctx': {'le': 2}}"},
		{name: "unknown model", route: route, body: `{"model":"x","input":"x"}`, status: 404, typ: "NotFoundError", param: "model",
			msg: "The model `x` does not exist."},
	})
	runValidation(t, Options{MaxModelLen: 3}, []vcase{
		{name: "prompt fills the context", route: route, body: `{"input":"a b c"}`, status: 400, typ: "invalid_request_error", param: "input",
			msg: "The engine prompt length 3 exceeds the max_model_len 3. Please reduce prompt."},
	})
}

// TestAcceptedAsVLLMDoes: lax coercions, unknown fields and the edge values vLLM
// lets through.
func TestAcceptedAsVLLMDoes(t *testing.T) {
	_, ts := newTest(t, Options{})
	for _, tt := range []struct{ route, body string }{
		{chatRoute, `{` + hi + `,"n":"2","temperature":"0.5","top_p":1,"max_tokens":"3","seed":-1,"whatever":[1,{"x":null}]}`},
		{chatRoute, `{` + hi + `,"stream_options":{},"stop":[],"logprobs":true,"top_logprobs":20}`},
		{chatRoute, `{` + hi + `,"stream_options":null,"tool_choice":"none","tools":null,"temperature":0.000001,"n":2}`},
		{chatRoute, `{` + hi + `,"continue_final_message":true,"add_generation_prompt":false,"logit_bias":{" 12 ":5,"+3":1}}`},
		{chatRoute, `{"messages":[{"role":"critic","content":"x"},{"role":"assistant"}],"max_tokens":1}`},
		{cmplRoute, `{"prompt":"p","max_tokens":0,"echo":true}`},
		{cmplRoute, `{"prompt":[1,2,3],"max_tokens":null,"logprobs":20,"n":2.0}`},
		{"/tokenize", `{"messages":[{"role":"user","content":"a b"}],"add_generation_prompt":true}`},
		{"/v1/responses", `{"input":[{"role":"user","content":[{"type":"input_text","text":"x"}]}],"instructions":"be brief","stop":""}`},
	} {
		resp, body := postRead(t, ts.URL+tt.route, tt.body)
		if resp.StatusCode != 200 {
			t.Errorf("%s %s: %d %s", tt.route, tt.body, resp.StatusCode, body)
		}
	}
}

// TestEngineErrorInBand: a check vLLM's engine makes when it first runs the
// request is an in-band error event in a stream (no role chunk before it).
func TestEngineErrorInBand(t *testing.T) {
	_, ts := newTest(t, Options{})
	for _, route := range []string{chatRoute, cmplRoute} {
		body := `{` + hi + `,"prompt":"p","logprobs":true,"top_logprobs":50,"stream":true}`
		if route == cmplRoute {
			body = `{"prompt":"p","logprobs":50,"stream":true}`
		}
		resp, raw := postRead(t, ts.URL+route, body)
		want := `data: {"error": {"message": "Requested sample logprobs of 50, which is greater than max allowed: 20 (parameter=logprobs, value=50)", ` +
			`"type": "BadRequestError", "param": "logprobs", "code": 400}}` + "\n\ndata: [DONE]\n\n"
		if resp.StatusCode != 200 || string(raw) != want {
			t.Errorf("%s: %d %q; want 200 %q", route, resp.StatusCode, raw, want)
		}
	}
}
