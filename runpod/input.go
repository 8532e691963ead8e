package runpod

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/metrics"
	"github.com/vllm-worker/vllm-worker/openai"
)

// Kind is the shape of a job input.
type Kind int

// The job input shapes of contract section 5.
const (
	KindNative Kind = iota // prompt or messages, with sampling_params
	KindOpenAI             // openai_route and openai_input
	KindRoute              // route, method and body: any engine route
)

// Input is a validated job input.
type Input struct {
	Kind Kind

	// Native.
	Prompt            string
	Messages          json.RawMessage // a JSON array; overrides Prompt
	ApplyChatTemplate bool
	SamplingParams    map[string]json.RawMessage
	Stream            bool

	// Batch overrides (native and OpenAI alike); zero keeps the default.
	MaxBatchSize int
	MinBatchSize int
	GrowthFactor float64

	// OpenAI and route: the engine request.
	Method string
	Path   string
	Body   map[string]json.RawMessage // nil for a GET
}

// InputError is an invalid job input. Its message names the offending field.
type InputError struct {
	Field   string
	Message string
	Err     error // the cause, if any (an engine.PathError, openai.ErrTooDeep)
}

// Unwrap returns the cause.
func (e *InputError) Unwrap() error { return e.Err }

func (e *InputError) Error() string {
	if e.Field == "" {
		return "invalid input: " + e.Message
	}
	return "invalid input: " + e.Field + ": " + e.Message
}

func badField(field, format string, args ...any) *InputError {
	return &InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// openAIRoutes are the routes an openai_route may name: fixed, so that they
// need no path check.
var openAIRoutes = map[string]bool{
	"/v1/chat/completions": true,
	"/v1/completions":      true,
	"/v1/models":           true,
	"/v1/responses":        true,
	"/v1/messages":         true,
	"/v1/embeddings":       true,
}

// openAIRouteList names openAIRoutes in error messages.
const openAIRouteList = "/v1/chat/completions, /v1/completions, /v1/models, /v1/responses, /v1/messages or /v1/embeddings"

// ParseInput validates a job's input. Nothing reaches the engine for an input it
// rejects.
func ParseInput(raw json.RawMessage) (*Input, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badField("input", "is missing")
	}
	if err := openai.CheckJSON(raw); err != nil {
		e := badField("input", "%v", err)
		e.Err = err
		return nil, e
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, badField("input", "must be a JSON object")
	}
	in := &Input{}
	if err := parseBatch(fields, in); err != nil {
		return nil, err
	}
	switch {
	case present(fields, "openai_route") || present(fields, "openai_input"):
		return in, parseOpenAI(fields, in)
	case present(fields, "route"):
		return in, parseRoute(fields, in)
	case present(fields, "messages") || present(fields, "prompt"):
		return in, parseNative(fields, in)
	}
	return nil, &InputError{Message: "the input needs one of prompt, messages, openai_route (with openai_input) or route"}
}

func present(fields map[string]json.RawMessage, key string) bool {
	v, ok := fields[key]
	return ok && string(v) != "null"
}

func parseNative(fields map[string]json.RawMessage, in *Input) error {
	in.Kind = KindNative
	if present(fields, "messages") {
		m := fields["messages"]
		if m[0] != '[' {
			return badField("messages", "must be a list of {role, content} objects")
		}
		var msgs []map[string]json.RawMessage
		if err := json.Unmarshal(m, &msgs); err != nil {
			return badField("messages", "must be a list of {role, content} objects")
		}
		if len(msgs) == 0 {
			return badField("messages", "must not be empty")
		}
		for i, msg := range msgs {
			if msg == nil || !isJSONString(msg["role"]) {
				return badField(fmt.Sprintf("messages[%d].role", i), "must be a string")
			}
		}
		in.Messages = m
	} else if err := json.Unmarshal(fields["prompt"], &in.Prompt); err != nil {
		return badField("prompt", "must be a string")
	}
	if err := optBool(fields, "apply_chat_template", &in.ApplyChatTemplate); err != nil {
		return err
	}
	if err := optBool(fields, "stream", &in.Stream); err != nil {
		return err
	}
	if present(fields, "sampling_params") {
		if err := json.Unmarshal(fields["sampling_params"], &in.SamplingParams); err != nil || in.SamplingParams == nil {
			return badField("sampling_params", "must be an object of vLLM sampling parameters")
		}
	}
	if in.SamplingParams == nil {
		in.SamplingParams = map[string]json.RawMessage{}
	}
	return validateSampling(in.SamplingParams)
}

// validateSampling checks the sampling parameters the worker itself relies on.
func validateSampling(sp map[string]json.RawMessage) error {
	for _, key := range []string{"n", "max_tokens"} {
		v, ok := sp[key]
		if !ok || string(v) == "null" {
			continue
		}
		var n float64
		if err := json.Unmarshal(v, &n); err != nil || n != math.Trunc(n) || n < 0 || (key == "n" && (n < 1 || n > 128)) {
			limit := "a non-negative integer"
			if key == "n" {
				limit = "an integer from 1 to 128"
			}
			return badField("sampling_params."+key, "must be %s", limit)
		}
	}
	if v, ok := sp["stream"]; ok && string(v) != "null" {
		return badField("sampling_params.stream", "is not a sampling parameter; set stream at the top level of input")
	}
	return nil
}

func parseOpenAI(fields map[string]json.RawMessage, in *Input) error {
	in.Kind = KindOpenAI
	in.Path = "/v1/chat/completions"
	if present(fields, "openai_route") {
		if err := json.Unmarshal(fields["openai_route"], &in.Path); err != nil {
			return badField("openai_route", "must be a string such as /v1/chat/completions")
		}
		if !openAIRoutes[in.Path] {
			return badField("openai_route", "%q is not an OpenAI route (use one of %s; other engine routes go in route)", in.Path, openAIRouteList)
		}
	}
	if present(fields, "openai_input") {
		if err := json.Unmarshal(fields["openai_input"], &in.Body); err != nil {
			return badField("openai_input", "must be an object: the OpenAI request body")
		}
	}
	if len(in.Body) == 0 {
		in.Method, in.Body = http.MethodGet, nil
		if in.Path != "/v1/models" {
			return badField("openai_input", "is required for %s", in.Path)
		}
		return nil
	}
	if in.Path == "/v1/models" {
		// The engine lists its models on a GET: a body would get its 405.
		return badField("openai_input", "must be left out (or empty) for /v1/models, which takes no input")
	}
	in.Method = http.MethodPost
	return streamFlag(in, "openai_input.stream")
}

func parseRoute(fields map[string]json.RawMessage, in *Input) error {
	in.Kind = KindRoute
	if err := json.Unmarshal(fields["route"], &in.Path); err != nil || !strings.HasPrefix(in.Path, "/") {
		return badField("route", "must be an engine path starting with /, such as /tokenize")
	}
	clean, err := engine.CleanPath(in.Path)
	if err != nil {
		e := badField("route", "%s", err.Error())
		e.Err = err
		return e
	}
	in.Path = clean
	if present(fields, "body") {
		if err := json.Unmarshal(fields["body"], &in.Body); err != nil || in.Body == nil {
			return badField("body", "must be a JSON object")
		}
	}
	in.Method = http.MethodGet
	if in.Body != nil {
		in.Method = http.MethodPost
	}
	if present(fields, "method") {
		var m string
		if err := json.Unmarshal(fields["method"], &m); err != nil {
			return badField("method", "must be a string such as GET or POST")
		}
		switch m = strings.ToUpper(m); m {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
			in.Method = m
		default:
			return badField("method", "%q is not one of GET, POST, PUT, PATCH, DELETE", m)
		}
	}
	if in.Method == http.MethodGet && in.Body != nil {
		return badField("body", "cannot be sent with GET")
	}
	return streamFlag(in, "body.stream")
}

// streamFlag reads body.stream for OpenAI and route jobs.
func streamFlag(in *Input, field string) error {
	v, ok := in.Body["stream"]
	if !ok || string(v) == "null" {
		return nil
	}
	if err := json.Unmarshal(v, &in.Stream); err != nil {
		return badField(field, "must be a boolean")
	}
	return nil
}

func parseBatch(fields map[string]json.RawMessage, in *Input) error {
	for _, f := range []struct {
		key string
		dst *int
	}{{"max_batch_size", &in.MaxBatchSize}, {"min_batch_size", &in.MinBatchSize}} {
		if !present(fields, f.key) {
			continue
		}
		var v float64
		if err := json.Unmarshal(fields[f.key], &v); err != nil || v != math.Trunc(v) || v < 0 || v > 1<<20 {
			return badField(f.key, "must be a positive integer")
		}
		*f.dst = int(v)
	}
	if present(fields, "batch_size_growth_factor") {
		var g float64
		if err := json.Unmarshal(fields["batch_size_growth_factor"], &g); err != nil || g < 0 || math.IsInf(g, 0) || g > 1<<20 {
			return badField("batch_size_growth_factor", "must be a positive number")
		}
		in.GrowthFactor = g
	}
	return nil
}

func optBool(fields map[string]json.RawMessage, key string, dst *bool) error {
	if !present(fields, key) {
		return nil
	}
	if err := json.Unmarshal(fields[key], dst); err != nil {
		return badField(key, "must be a boolean")
	}
	return nil
}

func isJSONString(v json.RawMessage) bool {
	return len(v) > 0 && v[0] == '"'
}

// InputLimit names the limit of contract section 8 an invalid input hit (a
// metrics.Limit* name), or "" for any other invalid input.
func InputLimit(err error) string {
	var pe *engine.PathError
	switch {
	case errors.As(err, &pe):
		return metrics.LimitEnginePath
	case errors.Is(err, openai.ErrTooDeep):
		return metrics.LimitJSONDepth
	}
	return ""
}
