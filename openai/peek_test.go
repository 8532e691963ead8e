package openai

import (
	"net/http"
	"testing"
)

func TestPeek(t *testing.T) {
	tests := []struct {
		body      string
		want      Fields
		wantParam string // "" and wantErr false: no error
		wantErr   bool
	}{
		{body: `{"model":"m","messages":[],"stream":true,"n":2,"stream_options":{"include_usage":true},"max_tokens":7}`,
			want: Fields{Model: "m", HasModel: true, Stream: true, N: 2, IncludeUsage: true, MaxTokens: 7}},
		{body: `{"prompt":"x","temperature":0}`, want: Fields{N: 1}},
		{body: `{"stream":null,"n":null,"stream_options":null}`, want: Fields{N: 1}},
		{body: `{"max_completion_tokens":3}`, want: Fields{N: 1, MaxTokens: 3}},
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
