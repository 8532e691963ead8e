package sim

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// streamOf posts a streaming request and returns its events, checking the
// framing, the headers and that id, object and created are constant.
func streamOf(t *testing.T, url, body string) []gjson.Result {
	t.Helper()
	resp, raw := postRead(t, url, body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("status %d content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	evs := events(t, raw)
	if len(evs) == 0 || evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", tail(raw))
	}
	out := make([]gjson.Result, 0, len(evs)-1)
	for i, ev := range evs[:len(evs)-1] {
		if ev == "[DONE]" {
			t.Fatalf("[DONE] at event %d of %d", i, len(evs))
		}
		out = append(out, gjson.Parse(ev))
	}
	for _, c := range out {
		if c.Get("id").Str != out[0].Get("id").Str || c.Get("created").Int() != out[0].Get("created").Int() ||
			c.Get("object").Str != out[0].Get("object").Str || c.Get("model").Str != testModel {
			t.Fatalf("chunk %s differs in id/created/object/model from %s", c.Raw, out[0].Raw)
		}
	}
	return out
}

func TestStreamShape(t *testing.T) {
	_, ts := newTest(t, Options{})
	tests := []struct {
		chat      bool
		n, max    int
		usage     bool
		wantOrder string // choice index of each content chunk
	}{
		{chat: true, n: 1, max: 3, wantOrder: "000"},
		{chat: true, n: 2, max: 3, usage: true, wantOrder: "010101"},
		{chat: false, n: 1, max: 1, usage: true, wantOrder: "0"},
		{chat: false, n: 3, max: 2, wantOrder: "012012"},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("chat=%t/n=%d/max=%d/usage=%t", tt.chat, tt.n, tt.max, tt.usage)
		t.Run(name, func(t *testing.T) {
			url, body := ts.URL+"/v1/completions", `"prompt":"one two three"`
			if tt.chat {
				url, body = ts.URL+"/v1/chat/completions", `"messages":[{"role":"user","content":"one two three"}]`
			}
			body = fmt.Sprintf(`{"model":%q,%s,"stream":true,"n":%d,"max_tokens":%d,"stream_options":{"include_usage":%t}}`,
				testModel, body, tt.n, tt.max, tt.usage)
			chunks := streamOf(t, url, body)
			wantID := "cmpl-"
			if tt.chat {
				wantID = "chatcmpl-"
			}
			if id := chunks[0].Get("id").Str; !strings.HasPrefix(id, wantID) || len(id) != len(wantID)+16 {
				t.Errorf("id = %q; want %s<16 hex>", id, wantID)
			}
			if tt.usage {
				last := chunks[len(chunks)-1]
				chunks = chunks[:len(chunks)-1]
				if !last.Get("choices").IsArray() || len(last.Get("choices").Array()) != 0 ||
					last.Get("usage.completion_tokens").Int() != int64(tt.n*tt.max) ||
					last.Get("usage.prompt_tokens").Int() != 3 || last.Get("usage.total_tokens").Int() != int64(3+tt.n*tt.max) {
					t.Errorf("usage chunk = %s", last.Raw)
				}
			}
			var order strings.Builder
			roles := map[int64]int{}
			finishes := map[int64]int{}
			for _, c := range chunks {
				if c.Get("usage").Exists() {
					t.Errorf("usage on a content chunk without continuous_usage_stats: %s", c.Raw)
				}
				choices := c.Get("choices").Array()
				if len(choices) != 1 {
					t.Fatalf("chunk has %d choices; want 1: %s", len(choices), c.Raw)
				}
				ch := choices[0]
				idx := ch.Get("index").Int()
				if ch.Get("logprobs").Type != gjson.Null || !ch.Get("finish_reason").Exists() {
					t.Errorf("choice lacks logprobs/finish_reason: %s", ch.Raw)
				}
				if ch.Get("delta.role").Str == "assistant" {
					if ch.Get("delta.content").Str != "" || order.Len() > 0 || ch.Get("finish_reason").Type != gjson.Null {
						t.Errorf("bad or late role chunk %s", ch.Raw)
					}
					roles[idx]++
					continue
				}
				if roles[idx] != 1 && tt.chat {
					t.Errorf("content for index %d before its role chunk", idx)
				}
				if finishes[idx] > 0 {
					t.Errorf("chunk for index %d after its finish chunk: %s", idx, ch.Raw)
				}
				text := ch.Get("delta.content")
				if !tt.chat {
					text = ch.Get("text")
					if !ch.Get("stop_reason").Exists() {
						t.Errorf("completions chunk without stop_reason: %s", ch.Raw)
					}
				}
				if text.Type != gjson.String || text.Str == "" {
					t.Errorf("chunk without a token: %s", ch.Raw)
				}
				if fr := ch.Get("finish_reason"); fr.Type != gjson.Null {
					if fr.Str != "length" || ch.Get("stop_reason").Type != gjson.Null {
						t.Errorf("finish chunk = %s; want length, stop_reason null", ch.Raw)
					}
					finishes[idx]++
				}
				order.WriteString(fmt.Sprint(idx))
			}
			if order.String() != tt.wantOrder {
				t.Errorf("content chunk order = %s; want %s", order.String(), tt.wantOrder)
			}
			for i := range int64(tt.n) {
				if finishes[i] != 1 || (tt.chat && roles[i] != 1) {
					t.Errorf("index %d: %d role and %d finish chunks; want 1 (role for chat only)", i, roles[i], finishes[i])
				}
			}
		})
	}
}

func TestMaxTokensExact(t *testing.T) {
	_, ts := newTest(t, Options{})
	for _, max := range []int{1, 2, 17, 300} {
		for _, route := range []string{"/v1/chat/completions", "/v1/completions"} {
			body := fmt.Sprintf(`{"prompt":"p","messages":[{"role":"user","content":"p"}],"stream":true,"max_tokens":%d}`, max)
			_, raw := postRead(t, ts.URL+route, body)
			if got := strings.Count(string(raw), `{"content":"`) + strings.Count(string(raw), `"text":"`); got != max {
				t.Errorf("%s max_tokens %d: %d content chunks", route, max, got)
			}
		}
	}
	// Chat prefers max_completion_tokens; both routes default to 16.
	_, raw := postRead(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"p"}],"stream":true,"max_tokens":9,"max_completion_tokens":3}`)
	if got := strings.Count(string(raw), `{"content":"`); got != 3 {
		t.Errorf("max_completion_tokens 3: %d content chunks", got)
	}
	_, raw = postRead(t, ts.URL+"/v1/completions", `{"prompt":"p","stream":true}`)
	if got := strings.Count(string(raw), `"text":"`); got != 16 {
		t.Errorf("default: %d content chunks; want 16", got)
	}
}

func TestContinuousUsage(t *testing.T) {
	_, ts := newTest(t, Options{})
	chunks := streamOf(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"x y"}],"stream":true,"max_tokens":3,"n":2,
		"stream_options":{"include_usage":true,"continuous_usage_stats":true}}`)
	seen := map[int64]int64{} // index -> completion tokens so far
	for _, c := range chunks[:len(chunks)-1] {
		idx := c.Get("choices.0.index").Int()
		u := c.Get("usage")
		if u.Get("prompt_tokens").Int() != 2 || u.Get("total_tokens").Int() != 2+u.Get("completion_tokens").Int() {
			t.Fatalf("chunk usage = %s", c.Raw)
		}
		if got := u.Get("completion_tokens").Int(); got != seen[idx] && got != seen[idx]+1 {
			t.Errorf("index %d usage went from %d to %d", idx, seen[idx], got)
		}
		seen[idx] = u.Get("completion_tokens").Int()
	}
	if seen[0] != 3 || seen[1] != 3 {
		t.Errorf("final per-choice usage = %v; want 3 each", seen)
	}
	if last := chunks[len(chunks)-1]; last.Get("usage.completion_tokens").Int() != 6 {
		t.Errorf("usage chunk = %s; want 6 completion tokens", last.Raw)
	}
	// Without include_usage, vLLM ignores continuous_usage_stats.
	chunks = streamOf(t, ts.URL+"/v1/completions", `{"prompt":"x","stream":true,"max_tokens":2,"stream_options":{"continuous_usage_stats":true}}`)
	for _, c := range chunks {
		if c.Get("usage").Exists() {
			t.Errorf("usage without include_usage: %s", c.Raw)
		}
	}
}

func TestStop(t *testing.T) {
	_, ts := newTest(t, Options{})
	const prompt = `"prompt":"tell me a story"`
	_, b := postRead(t, ts.URL+"/v1/completions", `{`+prompt+`,"max_tokens":10}`)
	full := gjson.GetBytes(b, "choices.0.text").Str
	words := strings.SplitAfter(full, " ")[1:] // each "word " but the last
	// Stop on the 5th token's word (with its leading space): the text keeps 4 tokens.
	stop := " " + strings.TrimSpace(words[4])
	cut := strings.Index(full, stop)
	for _, body := range []string{
		fmt.Sprintf(`{%s,"max_tokens":10,"stop":%q}`, prompt, stop),
		fmt.Sprintf(`{%s,"max_tokens":10,"stop":["zzz",%q]}`, prompt, stop),
	} {
		_, b := postRead(t, ts.URL+"/v1/completions", body)
		c := gjson.GetBytes(b, "choices.0")
		if c.Get("text").Str != full[:cut] || c.Get("finish_reason").Str != "stop" || c.Get("stop_reason").Str != stop {
			t.Errorf("%s: choice = %s; want text %q, stop, stop_reason %q", body, c.Raw, full[:cut], stop)
		}
		chunks := streamOf(t, ts.URL+"/v1/completions", strings.Replace(body, "{", `{"stream":true,`, 1))
		var text strings.Builder
		for _, ch := range chunks {
			text.WriteString(ch.Get("choices.0.text").Str)
		}
		last := chunks[len(chunks)-1].Get("choices.0")
		if text.String() != full[:cut] || last.Get("finish_reason").Str != "stop" || last.Get("stop_reason").Str != stop {
			t.Errorf("stream: text %q, last %s; want %q, stop %q", text.String(), last.Raw, full[:cut], stop)
		}
	}
	// A stop string spanning two tokens ends the text before its start.
	span := strings.TrimSuffix(words[2], " ") + " " + strings.TrimSpace(words[3])[:2]
	cut = strings.Index(full, span)
	_, b = postRead(t, ts.URL+"/v1/completions", fmt.Sprintf(`{%s,"max_tokens":10,"stop":%q}`, prompt, span))
	if got := gjson.GetBytes(b, "choices.0.text").Str; got != full[:cut] {
		t.Errorf("spanning stop %q: text %q; want %q", span, got, full[:cut])
	}
	if got := gjson.GetBytes(b, "usage.completion_tokens").Int(); got != 4 {
		t.Errorf("spanning stop: completion_tokens %d; want 4 (the token that completed the stop)", got)
	}
}

func TestDeterministic(t *testing.T) {
	_, ts := newTest(t, Options{})
	text := func(body string) string {
		_, b := postRead(t, ts.URL+"/v1/chat/completions", body)
		return gjson.GetBytes(b, "choices.0.message.content").Str
	}
	a1 := text(`{"messages":[{"role":"user","content":"alpha"}]}`)
	a2 := text(`{"messages":[{"role":"user","content":[{"type":"text","text":"alpha"}]}]}`)
	b := text(`{"messages":[{"role":"user","content":"bravo"}]}`)
	if a1 != a2 || a1 == b {
		t.Errorf("same prompt gave %q and %q; other prompt %q", a1, a2, b)
	}
}
