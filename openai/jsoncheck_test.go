package openai

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckJSON(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	deepObj := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	tests := []struct {
		in   string
		want error // nil, ErrTooDeep, or any *SyntaxError (errSyntax)
	}{
		{`{}`, nil},
		{` { "a" : [ 1 , -2.5e+3 , true , false , null , "x\"\\\/\b\f\n\r\t\u00e9" ] } `, nil},
		{`[]`, nil},
		{`"é"`, nil},
		{`0`, nil},
		{`-0.0E-0`, nil},
		{`[[],{},[{}]]`, nil},
		{deep(MaxJSONDepth), nil},
		{deepObj(MaxJSONDepth), nil},
		{deep(MaxJSONDepth + 1), ErrTooDeep},
		{deepObj(MaxJSONDepth + 1), ErrTooDeep},
		{strings.Repeat("[", 10_000_000), ErrTooDeep}, // the stack-overflow attack: refused at level 129
		{`{"a":` + strings.Repeat("[", 200), ErrTooDeep},
		{``, errSyntax},
		{`   `, errSyntax},
		{`{`, errSyntax},
		{`{"a"}`, errSyntax},
		{`{"a":}`, errSyntax},
		{`{"a":1,}`, errSyntax},
		{`[1,]`, errSyntax},
		{`[1 2]`, errSyntax},
		{`{"a":1]`, errSyntax},
		{`[1}`, errSyntax},
		{`{a:1}`, errSyntax},
		{`{'a':1}`, errSyntax},
		{`01`, errSyntax},
		{`1.`, errSyntax},
		{`.5`, errSyntax},
		{`1e`, errSyntax},
		{`+1`, errSyntax},
		{`tru`, errSyntax},
		{`nul`, errSyntax},
		{`"abc`, errSyntax},
		{`"\x"`, errSyntax},
		{`"\u12g4"`, errSyntax},
		{"\"a\tb\"", errSyntax}, // a raw control character in a string
		{"\"\xff\"", errSyntax},
		{`{} x`, errSyntax},
		{`{}{}`, errSyntax},
		{`NaN`, errSyntax},
	}
	for _, tt := range tests {
		got := CheckJSON([]byte(tt.in))
		name := tt.in
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		switch {
		case tt.want == errSyntax:
			var se *SyntaxError
			if !errors.As(got, &se) {
				t.Errorf("CheckJSON(%q) = %v; want a syntax error", name, got)
			}
		case !errors.Is(got, tt.want):
			t.Errorf("CheckJSON(%q) = %v; want %v", name, got, tt.want)
		}
	}
}

// errSyntax stands for any *SyntaxError in TestCheckJSON.
var errSyntax = errors.New("any syntax error")

func TestCheckDepth(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{`{"a":[1,{"b":2}]}`, nil},
		{`"[[[[[[` + strings.Repeat("[", 500) + `"`, nil}, // brackets in a string do not count
		{`"\"` + strings.Repeat("[", 500) + `"`, nil},     // nor after an escaped quote
		{strings.Repeat("[", MaxJSONDepth), nil},
		{strings.Repeat("[", MaxJSONDepth+1), ErrTooDeep},
		{`not json at all`, nil},
	}
	for _, tt := range tests {
		if got := CheckDepth([]byte(tt.in)); !errors.Is(got, tt.want) {
			t.Errorf("CheckDepth(%.40q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestCheckJSONAllocs(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":30,"stream":true}`)
	if n := testing.AllocsPerRun(100, func() { _ = CheckJSON(body) }); n != 0 {
		t.Errorf("CheckJSON allocates %v times; want 0", n)
	}
}

// FuzzCheckJSON holds CheckJSON to encoding/json: for UTF-8 input it accepts
// exactly the valid documents nested at most MaxJSONDepth levels, and it never
// panics or recurses on any input.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `[`, `"\u00e9"`, `-1.5e3`, strings.Repeat("[", 130), `{"a":"\""}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckJSON(b)
		if !utf8.Valid(b) {
			return // encoding/json accepts invalid UTF-8 in strings; CheckJSON does not
		}
		want := json.Valid(b) && CheckDepth(b) == nil
		if (err == nil) != want {
			t.Fatalf("CheckJSON(%q) = %v; encoding/json says valid=%v (depth ok=%v)", b, err, json.Valid(b), CheckDepth(b) == nil)
		}
		if json.Valid(b) && CheckDepth(b) != nil && !errors.Is(err, ErrTooDeep) {
			t.Fatalf("CheckJSON(%q) = %v; want ErrTooDeep", b, err)
		}
	})
}

func BenchmarkCheckJSON(b *testing.B) {
	body := []byte(`{"model":"m","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Why is the sky blue? Explain in detail, with the physics."}],"max_tokens":300,"temperature":0.7,"stream":true,"stream_options":{"include_usage":true}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = CheckJSON(body)
	}
}
