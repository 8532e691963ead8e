package runpod

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestParseInput(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		kind   Kind
		method string
		path   string
		stream bool
	}{
		{"prompt", `{"prompt":"hi"}`, KindNative, "", "", false},
		{"messages override prompt", `{"prompt":"x","messages":[{"role":"user","content":"hi"}],"stream":true}`, KindNative, "", "", true},
		{"templated prompt", `{"prompt":"hi","apply_chat_template":true,"sampling_params":{"max_tokens":5,"temperature":0}}`, KindNative, "", "", false},
		{"batch overrides", `{"prompt":"hi","stream":true,"max_batch_size":5,"min_batch_size":2,"batch_size_growth_factor":1.5}`, KindNative, "", "", true},
		{"openai chat", `{"openai_route":"/v1/chat/completions","openai_input":{"messages":[],"stream":true}}`, KindOpenAI, "POST", "/v1/chat/completions", true},
		{"openai input without route", `{"openai_input":{"messages":[]}}`, KindOpenAI, "POST", "/v1/chat/completions", false},
		{"openai models", `{"openai_route":"/v1/models"}`, KindOpenAI, "GET", "/v1/models", false},
		{"openai models, empty input", `{"openai_route":"/v1/models","openai_input":{}}`, KindOpenAI, "GET", "/v1/models", false},
		{"route with body", `{"route":"/tokenize","body":{"prompt":"a b"}}`, KindRoute, "POST", "/tokenize", false},
		{"route GET", `{"route":"/version"}`, KindRoute, "GET", "/version", false},
		{"route method", `{"route":"/v1/load_lora_adapter","method":"post","body":{"lora_name":"x"}}`, KindRoute, "POST", "/v1/load_lora_adapter", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ParseInput(json.RawMessage(tt.in))
			if err != nil {
				t.Fatalf("ParseInput: %v", err)
			}
			if in.Kind != tt.kind || in.Method != tt.method || in.Path != tt.path || in.Stream != tt.stream {
				t.Errorf("got kind %v %s %s stream %v; want kind %v %s %s stream %v",
					in.Kind, in.Method, in.Path, in.Stream, tt.kind, tt.method, tt.path, tt.stream)
			}
		})
	}
}

func TestParseInputErrors(t *testing.T) {
	tests := []struct{ in, field string }{
		{``, "input"},
		{`null`, "input"},
		{`"text"`, "input"},
		{`[1]`, "input"},
		{`{}`, ""},
		{`{"temperature":0.5}`, ""},
		{`{"prompt":5}`, "prompt"},
		{`{"messages":"hi"}`, "messages"},
		{`{"messages":[]}`, "messages"},
		{`{"messages":[{"content":"x"}]}`, "messages[0].role"},
		{`{"messages":[5]}`, "messages"},
		{`{"prompt":"x","stream":"yes"}`, "stream"},
		{`{"prompt":"x","apply_chat_template":1}`, "apply_chat_template"},
		{`{"prompt":"x","sampling_params":[1]}`, "sampling_params"},
		{`{"prompt":"x","sampling_params":{"n":0}}`, "sampling_params.n"},
		{`{"prompt":"x","sampling_params":{"n":100000}}`, "sampling_params.n"},
		{`{"prompt":"x","sampling_params":{"max_tokens":-3}}`, "sampling_params.max_tokens"},
		{`{"prompt":"x","sampling_params":{"max_tokens":"many"}}`, "sampling_params.max_tokens"},
		{`{"prompt":"x","sampling_params":{"stream":true}}`, "sampling_params.stream"},
		{`{"prompt":"x","max_batch_size":-1}`, "max_batch_size"},
		{`{"prompt":"x","max_batch_size":2.5}`, "max_batch_size"},
		{`{"prompt":"x","min_batch_size":"big"}`, "min_batch_size"},
		{`{"prompt":"x","batch_size_growth_factor":-2}`, "batch_size_growth_factor"},
		{`{"prompt":"x","max_batch_size":1e12}`, "max_batch_size"},
		{`{"openai_route":5}`, "openai_route"},
		{`{"openai_route":"/v1/nope","openai_input":{}}`, "openai_route"},
		{`{"openai_route":"/v1/chat/completions"}`, "openai_input"},
		{`{"openai_route":"/v1/chat/completions","openai_input":[1]}`, "openai_input"},
		{`{"openai_route":"/v1/models","openai_input":{"x":1}}`, "openai_input"},
		{`{"openai_input":{"messages":[],"stream":"yes"}}`, "openai_input.stream"},
		{`{"route":"tokenize"}`, "route"},
		{`{"route":"/../etc"}`, "route"},
		{`{"route":"/tokenize","body":"x"}`, "body"},
		{`{"route":"/tokenize","method":"BREW"}`, "method"},
		{`{"route":"/tokenize","method":"GET","body":{"a":1}}`, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseInput(json.RawMessage(tt.in))
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v; want an *InputError", err)
			}
			if ie.Field != tt.field {
				t.Errorf("field = %q; want %q (%v)", ie.Field, tt.field, err)
			}
			if tt.field != "" && !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name %q", err, tt.field)
			}
		})
	}
}

// FuzzParseInput: any input either parses into a consistent request or fails with
// an *InputError; it never panics.
func FuzzParseInput(f *testing.F) {
	for _, seed := range []string{
		`{"prompt":"hi","sampling_params":{"max_tokens":5},"stream":true,"max_batch_size":5}`,
		`{"messages":[{"role":"user","content":"x"}],"apply_chat_template":true}`,
		`{"openai_route":"/v1/models"}`,
		`{"openai_route":"/v1/completions","openai_input":{"prompt":"x","stream":true}}`,
		`{"route":"/tokenize","method":"POST","body":{"prompt":"a"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := ParseInput(raw)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v is not an *InputError", err)
			}
			return
		}
		switch in.Kind {
		case KindNative:
			if in.SamplingParams == nil {
				t.Fatal("native input without sampling params map")
			}
		case KindOpenAI, KindRoute:
			if !strings.HasPrefix(in.Path, "/") || in.Method == "" {
				t.Fatalf("bad request %s %q", in.Method, in.Path)
			}
			if in.Method == http.MethodGet && in.Body != nil {
				t.Fatal("GET with a body")
			}
		}
		if in.MaxBatchSize < 0 || in.MinBatchSize < 0 || in.GrowthFactor < 0 {
			t.Fatal("negative batch override accepted")
		}
	})
}
