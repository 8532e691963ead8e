package check

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func rawItems(items ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(items))
	for i, it := range items {
		out[i] = json.RawMessage(it)
	}
	return out
}

// nativeItems makes the items of a native stream of the given sizes (one
// choice), with continuous usage.
func nativeItems(sizes ...int) []json.RawMessage {
	var out []json.RawMessage
	total := 0
	for _, n := range sizes {
		tokens := make([]string, n)
		for i := range tokens {
			tokens[i] = " w"
		}
		total += n
		b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"tokens": tokens}},
			"usage": map[string]any{"input": 5, "output": total}})
		out = append(out, b)
	}
	return out
}

func TestPolicyLimits(t *testing.T) {
	if got := policyLimits(jobPolicy, 7); !slices.Equal(got, []int{1, 2, 4, 4, 4, 4, 4}) {
		t.Errorf("policyLimits = %v", got)
	}
}

func TestCheckNativeItems(t *testing.T) {
	for _, tt := range []struct {
		name    string
		items   []json.RawMessage
		stream  bool
		strict  bool
		wantErr string
	}{
		{name: "not streamed", items: rawItems(`{"choices":[{"tokens":[" the sky is blue"]}],"usage":{"input":5,"output":16}}`)},
		{name: "not streamed, split", items: rawItems(`{"choices":[{"tokens":[" the"," sky"]}],"usage":{"input":5,"output":2}}`),
			wantErr: "want one item with the whole text"},
		{name: "no usage", items: rawItems(`{"choices":[{"tokens":[" x"]}]}`), wantErr: "the last item has no usage"},
		{name: "two choices", items: rawItems(`{"choices":[{"tokens":[]},{"tokens":[]}]}`), wantErr: "with one choice"},
		{name: "no item", items: nil, wantErr: "no item"},
		{name: "policy sizes", items: nativeItems(1, 2, 4, 4, 4, 1), stream: true, strict: true},
		{name: "cut by the time cap", items: nativeItems(1, 2, 3, 1, 4, 4, 1), stream: true, strict: true},
		{name: "too big for its place", items: nativeItems(1, 3, 4, 4, 4), stream: true, strict: true,
			wantErr: "item 2 holds 3 tokens, more than the batch policy allows there (2"},
		{name: "merged behind RunPod", items: nativeItems(1, 3, 12), stream: true},
		{name: "first item too big", items: nativeItems(2, 2, 4), stream: true, wantErr: "the first item holds 2 tokens"},
		{name: "an empty item", items: nativeItems(1, 0, 4), stream: true, wantErr: "item 2 of 3 holds no token"},
		{name: "usage-only last item", stream: true, strict: true, items: append(rawItems(
			`{"choices":[{"tokens":[" a"]}],"usage":{"output":1}}`,
			`{"choices":[{"tokens":[" b"," c"]}],"usage":{"output":3}}`),
			json.RawMessage(`{"choices":[{"tokens":[]}],"usage":{"input":5,"output":3}}`))},
		{name: "usage short of the tokens", stream: true, items: rawItems(
			`{"choices":[{"tokens":[" a"]}],"usage":{"input":5,"output":1}}`,
			`{"choices":[{"tokens":[" b"," c"]}],"usage":{"input":5,"output":2}}`),
			wantErr: "the items hold 3 tokens and the last usage.output says 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			detail, err := checkNativeItems(tt.items, tt.stream, tt.strict)
			if tt.wantErr == "" && (err != nil || detail == "") {
				t.Errorf("checkNativeItems: %q, %v", detail, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("checkNativeItems: %v; want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckOpenAIItems(t *testing.T) {
	ev := func(payload string) string { return "data: " + payload + "\n\n" }
	role := `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`
	tok := `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" x"}}]}`
	usage := `{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`
	str := func(events ...string) json.RawMessage {
		b, _ := json.Marshal(strings.Join(events, ""))
		return b
	}
	for _, tt := range []struct {
		name    string
		items   []json.RawMessage
		strict  bool
		wantErr string
	}{
		{name: "strings", strict: true, items: []json.RawMessage{str(ev(role)), str(ev(tok), ev(tok)),
			str(ev(tok), ev(usage), "data: [DONE]\n\n")}},
		{name: "lists", strict: true, items: rawItems("["+role+"]", "["+tok+","+tok+"]", "["+tok+","+usage+"]")},
		{name: "an event split across items", items: []json.RawMessage{str(ev(role)), str("data: " + tok), str("\n\n", ev(usage), "data: [DONE]\n\n")},
			wantErr: "item 2 is not whole SSE events"},
		{name: "no [DONE]", items: []json.RawMessage{str(ev(role)), str(ev(usage))}, wantErr: "without data: [DONE]"},
		{name: "no usage chunk", items: []json.RawMessage{str(ev(role)), str(ev(tok), "data: [DONE]\n\n")}, wantErr: "include_usage"},
		{name: "too big", strict: true, items: []json.RawMessage{str(ev(role)), str(ev(tok), ev(tok), ev(tok)),
			str(ev(usage), "data: [DONE]\n\n")}, wantErr: "item 2 holds 3 events"},
		{name: "the role chunk rides with the first token", strict: true, items: []json.RawMessage{str(ev(role), ev(tok)),
			str(ev(tok), ev(usage)), str("data: [DONE]\n\n")}},
		{name: "first too big", items: []json.RawMessage{str(ev(role), ev(tok), ev(tok)), str(ev(usage), "data: [DONE]\n\n")},
			wantErr: "the first item holds 2 events"},
		{name: "mixed", items: rawItems("["+role+"]", `"data: [DONE]\n\n"`), wantErr: "item 2 is not a list of chunks"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			detail, err := checkOpenAIItems(tt.items, tt.strict)
			if tt.wantErr == "" && (err != nil || detail == "") {
				t.Errorf("checkOpenAIItems: %q, %v", detail, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("checkOpenAIItems: %v; want an error with %q", err, tt.wantErr)
			}
		})
	}
}
