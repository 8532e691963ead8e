package check

import (
	"strings"
	"testing"
)

func TestCheckEnvelope(t *testing.T) {
	for _, tt := range []struct{ in, wantErr string }{
		{`{"error":{"message":"The model x does not exist.","type":"NotFoundError","param":"model","code":404}}`, ""},
		{`{"error":{"message":"m","type":"BadRequestError","param":null,"code":null}}`, ""},
		{`{"object":"error","message":"m","type":"BadRequestError","param":null,"code":400}`, "flat shape"},
		{`{"detail":"Not Found"}`, "not in the envelope"},
		{`{"error":"boom"}`, `"error" is not an object`},
		{`{"error":{"message":"m","type":"T"}}`, "lacks [param code]"},
		{`{"error":{"message":"","type":"T","param":null,"code":1}}`, "lacks [message (a string)]"},
		{`Internal Server Error`, "not a JSON object"},
	} {
		e, err := checkEnvelope([]byte(tt.in))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("checkEnvelope(%s): %v", tt.in, err)
		case tt.wantErr == "" && (e.Message == "" || e.Type == ""):
			t.Errorf("checkEnvelope(%s) = %+v", tt.in, e)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("checkEnvelope(%s): %v; want an error with %q", tt.in, err, tt.wantErr)
		}
	}
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{`{"error": {"message": "m"}}`, true},
		{`{"object": "error", "message": "m"}`, true},
		{`{"object":"chat.completion.chunk","choices":[]}`, false},
		{`[DONE]`, false},
	} {
		if got := isErrorEvent([]byte(tt.in)); got != tt.want {
			t.Errorf("isErrorEvent(%s) = %v; want %v", tt.in, got, tt.want)
		}
	}
}
