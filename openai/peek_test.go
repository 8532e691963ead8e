package openai

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPeek(t *testing.T) {
	tests := []struct {
		body      string
		want      Fields
		wantParam string // "" and wantErr false: no error
		wantErr   bool
	}{
		{body: `{"model":"m","messages":[],"stream":true,"n":2,"stream_options":{"include_usage":true},"max_tokens":7}`,
			want: Fields{Model: "m", HasModel: true, Stream: true, N: 2, IncludeUsage: true}},
		{body: `{"prompt":"x","temperature":0}`, want: Fields{N: 1}},
		{body: `{"stream":null,"n":null,"stream_options":null}`, want: Fields{N: 1}},
		{body: `{"max_completion_tokens":3}`, want: Fields{N: 1}},
		{body: `{"model":null}`, want: Fields{N: 1}},
		{body: `{"model":""}`, want: Fields{N: 1}},
		{body: ``, wantErr: true},
		{body: `{"model":`, wantErr: true},
		{body: `[1,2]`, wantErr: true},
		{body: `"str"`, wantErr: true},
		{body: "{\"model\":\"\xff\"}", wantErr: true},
		{body: `{"model":7}`, wantErr: true, wantParam: "model"},
		{body: `{"stream":"yes"}`, wantErr: true, wantParam: "stream"},
		{body: `{"n":0}`, wantErr: true, wantParam: "n"},
		{body: `{"n":1.5}`, wantErr: true, wantParam: "n"},
		{body: `{"n":1000000}`, wantErr: true, wantParam: "n"},
		{body: `{"max_tokens":-1}`, wantErr: true, wantParam: "max_tokens"},
		{body: `{"stream_options":true}`, wantErr: true, wantParam: "stream_options"},
	}
	for _, tt := range tests {
		got, err := Peek([]byte(tt.body))
		if (err != nil) != tt.wantErr {
			t.Errorf("Peek(%s) err = %v; want error %v", tt.body, err, tt.wantErr)
			continue
		}
		if err != nil {
			if err.Status != http.StatusBadRequest || err.Param != tt.wantParam {
				t.Errorf("Peek(%s) = status %d param %q; want 400 param %q", tt.body, err.Status, err.Param, tt.wantParam)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("Peek(%s) = %+v; want %+v", tt.body, got, tt.want)
		}
	}
}

func FuzzPeek(f *testing.F) {
	f.Add([]byte(`{"model":"m","stream":true,"n":2}`))
	f.Add([]byte(`{"stream_options":{"include_usage":true}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fields, err := Peek(body)
		if err == nil && fields.N < 1 {
			t.Fatalf("accepted n = %d", fields.N)
		}
		if err != nil && err.Status != http.StatusBadRequest {
			t.Fatalf("status %d; want 400", err.Status)
		}
	})
}

func TestErrorJSON(t *testing.T) {
	got := string(NewError(http.StatusNotFound, "The model `x` does not exist.").WithParam("model").JSON())
	want := "{\"error\":{\"message\":\"The model `x` does not exist.\",\"type\":\"NotFoundError\",\"param\":\"model\",\"code\":404}}"
	if got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	if got := string(NewError(502, "engine unreachable").SSE()); got != `data: {"error":{"message":"engine unreachable","type":"BadGatewayError","param":null,"code":502}}`+"\n\n" {
		t.Errorf("SSE = %q", got)
	}
}

func TestNormalizeError(t *testing.T) {
	long := strings.Repeat("é", 600) // 1,200 bytes: a cut at 1,024 falls inside a character
	tests := []struct {
		name, body, wantMsg, wantType string
		same                          bool // passed through unchanged
	}{
		{"vLLM nested", `{"error":{"message":"bad","type":"BadRequestError","param":null,"code":400}}`, "bad", "BadRequestError", true},
		{"nested without type or code", `{"error":{"message":"x"}}`, "x", "BadRequestError", false},
		{"classic flat", `{"object":"error","message":"flat","type":"BadRequestError","param":null,"code":400}`, "flat", "BadRequestError", false},
		{"FastAPI detail", `{"detail":"Not Found"}`, "Not Found", "BadRequestError", false},
		{"null detail", `{"detail":null}`, "Bad Request", "BadRequestError", false},
		{"plain text", "boom", "boom", "BadRequestError", false},
		{"long non-ASCII text", long, long[:1024] + "...", "BadRequestError", false},
	}
	for _, tt := range tests {
		got := NormalizeError(400, []byte(tt.body))
		if tt.same && string(got) != tt.body {
			t.Errorf("%s: changed to %s", tt.name, got)
		}
		var env struct {
			Error struct {
				Message, Type string
				Code          int
			}
		}
		if err := json.Unmarshal(got, &env); err != nil || !utf8.Valid(got) {
			t.Fatalf("%s: %s is not a valid envelope: %v", tt.name, got, err)
		}
		if env.Error.Message != tt.wantMsg || env.Error.Type != tt.wantType || env.Error.Code != 400 {
			t.Errorf("%s: %+v; want message %.40q type %s code 400", tt.name, env.Error, tt.wantMsg, tt.wantType)
		}
	}
}
