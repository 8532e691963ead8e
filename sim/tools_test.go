package sim

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

var toolIDPattern = regexp.MustCompile(`^chatcmpl-tool-[0-9a-f]{16}$`)

func TestToolArguments(t *testing.T) {
	v := newVocab()
	for _, tt := range []struct{ params, want string }{
		{`{"type":"object","properties":{"n":{"type":"integer"},"ok":{"type":"boolean"},"u":{"enum":["c","f"]}},"required":["n","ok","u"]}`,
			`^\{"n": \d+, "ok": true, "u": "c"\}$`},
		{`{"type":"object","properties":{"city":{"type":["string","null"]},"x":{"type":"number"}},"required":["city","x"]}`,
			`^\{"city": "[a-z]+", "x": \d+\.\d+\}$`},
		{`{"type":"object","properties":{"a":{"type":"string"}}}`, `^\{\}$`},                                           // nothing required
		{`{"type":"object","properties":{"a":{"type":"object"}},"required":["a"]}`, `^\{\}$`},                          // not simple
		{`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"array"}},"required":["a","b"]}`, `^\{\}$`}, // one not simple
		{`null`, `^\{\}$`},
	} {
		got := toolArguments(gjson.Parse(tt.params), 42, v)
		if !regexp.MustCompile(tt.want).MatchString(got) || !gjson.Valid(got) {
			t.Errorf("toolArguments(%s) = %s; want %s", tt.params, got, tt.want)
		}
		if again := toolArguments(gjson.Parse(tt.params), 42, v); again != got {
			t.Errorf("not deterministic: %s then %s", got, again)
		}
		if joined := strings.Join(splitArguments(got), ""); joined != got {
			t.Errorf("pieces of %s join to %s", got, joined)
		}
	}
}

// toolBody is a chat request with the weather tool and the given extra fields.
func toolBody(extra string) string {
	return `{"messages":[{"role":"user","content":"weather?"}],` + weather + extra + `}`
}

func TestToolCallsNonStream(t *testing.T) {
	_, ts := newTest(t, Options{})
	for _, tt := range []struct {
		name, extra, finish string
		content             string // "null" or a JSON string
	}{
		{"auto by default", ``, "tool_calls", "null"},
		{"auto", `,"tool_choice":"auto"`, "tool_calls", "null"},
		{"required", `,"tool_choice":"required"`, "tool_calls", `""`},
		{"named", `,"tool_choice":{"type":"function","function":{"name":"get_weather"}}`, "stop", `""`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := postRead(t, ts.URL+chatRoute, toolBody(tt.extra))
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			c := gjson.GetBytes(b, "choices.0")
			if c.Get("finish_reason").Str != tt.finish || c.Get("stop_reason").Type != gjson.Null {
				t.Errorf("finish %s stop %s; want %s, null", c.Get("finish_reason").Raw, c.Get("stop_reason").Raw, tt.finish)
			}
			m := c.Get("message")
			if m.Get("content").Raw != tt.content {
				t.Errorf("content %s; want %s", m.Get("content").Raw, tt.content)
			}
			if keys := objectKeys(m); keys != "role,content,refusal,annotations,audio,function_call,tool_calls,reasoning" {
				t.Errorf("message keys %s", keys)
			}
			calls := m.Get("tool_calls").Array()
			if len(calls) != 1 || objectKeys(calls[0]) != "id,type,function" {
				t.Fatalf("tool_calls %s", m.Get("tool_calls").Raw)
			}
			call := calls[0]
			args := call.Get("function.arguments").Str
			if !toolIDPattern.MatchString(call.Get("id").Str) || call.Get("type").Str != "function" ||
				call.Get("function.name").Str != "get_weather" || !regexp.MustCompile(`^\{"city": "[a-z]+"\}$`).MatchString(args) {
				t.Errorf("call %s", call.Raw)
			}
			if u := gjson.GetBytes(b, "usage"); u.Get("completion_tokens").Int() < 2 {
				t.Errorf("usage %s", u.Raw)
			}
		})
	}
	// tool_choice none: text, no tool_calls key at all.
	_, b := postRead(t, ts.URL+chatRoute, toolBody(`,"tool_choice":"none","max_tokens":3`))
	if m := gjson.GetBytes(b, "choices.0.message"); m.Get("tool_calls").Exists() || len(strings.Fields(m.Get("content").Str)) != 3 {
		t.Errorf("tool_choice none: %s", m.Raw)
	}
	// Cut short by max_tokens: hermes cannot parse the partial output, which
	// comes back as text; a named choice keeps its partial arguments.
	_, b = postRead(t, ts.URL+chatRoute, toolBody(`,"max_tokens":2`))
	if c := gjson.GetBytes(b, "choices.0"); c.Get("finish_reason").Str != "length" || c.Get("message.tool_calls").Exists() ||
		c.Get("message.content").Str != "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": " {
		t.Errorf("auto cut short: %s", c.Raw)
	}
	_, b = postRead(t, ts.URL+chatRoute, toolBody(`,"max_tokens":1,"tool_choice":{"type":"function","function":{"name":"get_weather"}}`))
	if c := gjson.GetBytes(b, "choices.0"); c.Get("finish_reason").Str != "length" || c.Get("message.tool_calls.0.function.arguments").Str != `{"city":` {
		t.Errorf("named cut short: %s", c.Raw)
	}
}

func TestToolCallsStream(t *testing.T) {
	_, ts := newTest(t, Options{})
	for _, tt := range []struct {
		name, extra, finish string
		firstArgs           bool // the first tool delta carries arguments
		nullName            bool // later deltas carry "name": null
	}{
		{"auto", ``, "tool_calls", false, false},
		{"required", `,"tool_choice":"required"`, "tool_calls", true, true},
		{"named", `,"tool_choice":{"type":"function","function":{"name":"get_weather"}}`, "stop", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			chunks := streamOf(t, ts.URL+chatRoute, toolBody(tt.extra+`,"stream":true,"stream_options":{"include_usage":true}`))
			if role := chunks[0].Get("choices.0.delta"); role.Raw != `{"role":"assistant","content":""}` {
				t.Errorf("role chunk %s", chunks[0].Raw)
			}
			var args strings.Builder
			var id string
			for i, c := range chunks[1 : len(chunks)-2] {
				ch := c.Get("choices.0")
				if ch.Get("finish_reason").Type != gjson.Null || ch.Get("token_ids").Type != gjson.Null || !ch.Get("token_ids").Exists() {
					t.Errorf("chunk %s", c.Raw)
				}
				d := ch.Get("delta.tool_calls.0")
				if i == 0 {
					id = d.Get("id").Str
					if !toolIDPattern.MatchString(id) || d.Get("type").Str != "function" || d.Get("index").Int() != 0 ||
						d.Get("function.name").Str != "get_weather" || d.Get("function.arguments").Exists() != tt.firstArgs {
						t.Errorf("first tool delta %s", d.Raw)
					}
					if keys := objectKeys(d); keys != "id,type,index,function" {
						t.Errorf("first tool delta keys %s", keys)
					}
				} else {
					wantKeys := "index,function"
					if d.Get("id").Exists() || objectKeys(d) != wantKeys || (d.Get("function.name").Exists() != tt.nullName) ||
						(tt.nullName && d.Get("function.name").Type != gjson.Null) {
						t.Errorf("later tool delta %s", d.Raw)
					}
				}
				args.WriteString(d.Get("function.arguments").Str)
			}
			last := chunks[len(chunks)-2].Get("choices.0")
			args.WriteString(last.Get("delta.tool_calls.0.function.arguments").Str)
			if last.Get("finish_reason").Str != tt.finish || last.Get("stop_reason").Type != gjson.Null {
				t.Errorf("last chunk %s; want finish %s", last.Raw, tt.finish)
			}
			if !regexp.MustCompile(`^\{"city": "[a-z]+"\}$`).MatchString(args.String()) || id == "" {
				t.Errorf("streamed arguments %q (id %q)", args.String(), id)
			}
			if u := chunks[len(chunks)-1]; u.Get("usage.completion_tokens").Int() < 2 || !u.Get("system_fingerprint").Exists() {
				t.Errorf("usage chunk %s", u.Raw)
			}
		})
	}
}
