package openai

import (
	"net/http"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Fields are the few request fields the worker acts on. They are read from the raw
// body, which is forwarded unchanged.
type Fields struct {
	Model        string // "" when absent
	HasModel     bool
	Stream       bool
	N            int // 1 when absent
	IncludeUsage bool
}

// Peek validates that body is one JSON object, nested at most MaxJSONDepth
// levels, and reads Fields from it in a single pass over its top-level keys. The
// error is a 400 naming the offending field.
func Peek(body []byte) (Fields, *Error) {
	f := Fields{N: 1}
	if len(body) == 0 {
		return f, NewError(http.StatusBadRequest, "request body is empty; expected a JSON object")
	}
	if !utf8.Valid(body) {
		return f, NewError(http.StatusBadRequest, "request body is not valid UTF-8")
	}
	if err := CheckJSON(body); err != nil {
		return f, JSONError(err)
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return f, NewError(http.StatusBadRequest, "request body must be a JSON object")
	}
	var bad *Error
	root.ForEach(func(key, v gjson.Result) bool {
		switch key.Str {
		case "model":
			switch v.Type {
			case gjson.Null: // absent, as for vLLM: the base model
			case gjson.String:
				f.Model, f.HasModel = v.Str, v.Str != ""
			default:
				bad = NewError(http.StatusBadRequest, "'model' must be a string").WithParam("model")
				return false
			}
		case "stream":
			switch v.Type {
			case gjson.True, gjson.False:
				f.Stream = v.Type == gjson.True
			case gjson.Null:
			default:
				bad = NewError(http.StatusBadRequest, "'stream' must be a boolean").WithParam("stream")
				return false
			}
		case "n":
			if v.Type == gjson.Null {
				return true
			}
			if v.Type != gjson.Number || v.Num != float64(int64(v.Num)) || v.Num < 1 {
				bad = NewError(http.StatusBadRequest, "'n' must be a positive integer").WithParam("n")
				return false
			}
			if v.Num > MaxN {
				bad = NewError(http.StatusBadRequest, "'n' must be at most 128").WithParam("n")
				return false
			}
			f.N = int(v.Num)
		case "max_tokens", "max_completion_tokens":
			if v.Type == gjson.Null {
				return true
			}
			if v.Type != gjson.Number || v.Num != float64(int64(v.Num)) || v.Num < 0 {
				bad = NewError(http.StatusBadRequest, "'"+key.Str+"' must be a non-negative integer").WithParam(key.Str)
				return false
			}
		case "stream_options":
			if v.Type == gjson.Null {
				return true
			}
			if !v.IsObject() {
				bad = NewError(http.StatusBadRequest, "'stream_options' must be an object").WithParam("stream_options")
				return false
			}
			f.IncludeUsage = v.Get("include_usage").Type == gjson.True
		}
		return true
	})
	return f, bad
}

// MaxN is the largest n the worker forwards; more would only exhaust the engine.
const MaxN = 128
