package sim

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// responseKeys are the keys of vLLM's response object, in order (notes 4.3).
const responseKeys = "id,created_at,incomplete_details,instructions,metadata,model,object,output,parallel_tool_calls,temperature," +
	"tool_choice,tools,top_p,background,max_output_tokens,max_tool_calls,previous_response_id,prompt,reasoning,service_tier," +
	"status,text,top_logprobs,truncation,usage,user,presence_penalty,frequency_penalty,kv_transfer_params,ec_transfer_params," +
	"input_messages,output_messages"

var (
	respIDPattern = regexp.MustCompile(`^resp_[0-9a-f]{16}$`)
	msgIDPattern  = regexp.MustCompile(`^msg_[0-9a-f]{16}$`)
	hexPattern    = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

func TestResponsesNonStream(t *testing.T) {
	_, ts := newTest(t, Options{MaxModelLen: 100})
	resp, b := postRead(t, ts.URL+"/v1/responses", `{"model":"`+testModel+`","input":"one two three","instructions":"be brief"}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	r := gjson.ParseBytes(b)
	if keys := objectKeys(r); keys != responseKeys {
		t.Errorf("keys\n got %s\nwant %s", keys, responseKeys)
	}
	if !respIDPattern.MatchString(r.Get("id").Str) || r.Get("object").Str != "response" || r.Get("status").Str != "completed" ||
		r.Get("incomplete_details").Type != gjson.Null || r.Get("instructions").Str != "be brief" || r.Get("model").Str != testModel {
		t.Errorf("response %s", b)
	}
	// No limit: the context's room is reported, and the simulated model's EOS comes after 16 tokens.
	if r.Get("max_output_tokens").Int() != 100-5 || r.Get("tool_choice").Str != "none" || r.Get("tools").Raw != "[]" ||
		r.Get("temperature").Raw != "1.0" || r.Get("top_p").Raw != "1.0" || r.Get("text").Type != gjson.Null {
		t.Errorf("echoed fields %s", b)
	}
	out := r.Get("output").Array()
	if len(out) != 1 || objectKeys(out[0]) != "id,content,role,status,type,phase" || !msgIDPattern.MatchString(out[0].Get("id").Str) ||
		out[0].Get("type").Str != "message" || out[0].Get("status").Str != "completed" {
		t.Fatalf("output %s", r.Get("output").Raw)
	}
	part := out[0].Get("content.0")
	if objectKeys(part) != "annotations,text,type,logprobs" || len(strings.Fields(part.Get("text").Str)) != 16 {
		t.Errorf("content part %s", part.Raw)
	}
	u := r.Get("usage")
	if u.Get("input_tokens").Int() != 5 || u.Get("output_tokens").Int() != 16 || u.Get("total_tokens").Int() != 21 ||
		u.Get("input_tokens_details.cached_tokens").Raw != "0" || u.Get("output_tokens_details.reasoning_tokens").Raw != "0" {
		t.Errorf("usage %s", u.Raw)
	}

	// A list of items, and a limit that ends the text: incomplete.
	_, b = postRead(t, ts.URL+"/v1/responses", `{"input":[{"role":"user","content":[{"type":"input_text","text":"a b"}]},`+
		`{"type":"message","role":"assistant","content":[{"type":"output_text","text":"c"}]}],"max_output_tokens":3,"tools":[{"type":"function","name":"f"}]}`)
	r = gjson.ParseBytes(b)
	if r.Get("status").Str != "incomplete" || r.Get("incomplete_details").Raw != `{"reason":"max_output_tokens"}` ||
		r.Get("usage.input_tokens").Int() != 3 || r.Get("usage.output_tokens").Int() != 3 || r.Get("max_output_tokens").Int() != 3 ||
		r.Get("tool_choice").Str != "auto" || r.Get("tools.0.name").Str != "f" {
		t.Errorf("incomplete response %s", b)
	}
}

// responseEvent is one event of a Responses stream.
type responseEvent struct {
	name string
	data gjson.Result
}

// responseEvents splits a Responses stream: every event is exactly
// "event: <type>\ndata: <JSON>\n\n" with the same type inside, sequence_number
// counts from 0, and nothing else (no [DONE]) is in the stream.
func responseEvents(t *testing.T, raw []byte) []responseEvent {
	t.Helper()
	var out []responseEvent
	for i, ev := range strings.SplitAfter(string(raw), "\n\n") {
		if ev == "" {
			continue
		}
		head, data, ok := strings.Cut(strings.TrimSuffix(ev, "\n\n"), "\n")
		name, ok2 := strings.CutPrefix(head, "event: ")
		payload, ok3 := strings.CutPrefix(data, "data: ")
		if !ok || !ok2 || !ok3 || strings.Contains(payload, "\n") || !gjson.Valid(payload) {
			t.Fatalf("event %d framing: %q", i, ev)
		}
		d := gjson.Parse(payload)
		if d.Get("type").Str != name || d.Get("sequence_number").Int() != int64(len(out)) {
			t.Fatalf("event %d: name %s, payload %s", i, name, payload)
		}
		out = append(out, responseEvent{name, d})
	}
	return out
}

func TestResponsesStream(t *testing.T) {
	_, ts := newTest(t, Options{})
	resp, raw := postRead(t, ts.URL+"/v1/responses", `{"input":"hello there","stream":true,"max_output_tokens":3}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	if strings.Contains(string(raw), "[DONE]") {
		t.Errorf("stream has [DONE]")
	}
	evs := responseEvents(t, raw)
	var names []string
	for _, e := range evs {
		names = append(names, strings.TrimPrefix(e.name, "response."))
	}
	want := "created in_progress output_item.added content_part.added output_text.delta output_text.delta output_text.delta " +
		"output_text.done content_part.done output_item.done completed"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
	created, completed := evs[0].data.Get("response"), evs[len(evs)-1].data.Get("response")
	if created.Get("status").Str != "in_progress" || created.Get("output").Raw != "[]" || created.Get("usage").Type != gjson.Null ||
		objectKeys(created) != responseKeys || evs[1].data.Get("response").Raw != created.Raw {
		t.Errorf("created %s", created.Raw)
	}
	if completed.Get("id").Str != created.Get("id").Str || completed.Get("created_at").Int() != created.Get("created_at").Int() ||
		completed.Get("status").Str != "incomplete" || completed.Get("usage.output_tokens").Int() != 3 {
		t.Errorf("completed %s", completed.Raw)
	}
	item := evs[2].data.Get("item.id").Str
	if !hexPattern.MatchString(item) || evs[2].data.Get("item.status").Str != "in_progress" || evs[2].data.Get("item.content").Raw != "[]" {
		t.Errorf("output_item.added %s", evs[2].data.Raw)
	}
	var text strings.Builder
	for _, e := range evs[3:] {
		if id := e.data.Get("item_id"); id.Exists() && id.Str != item {
			t.Errorf("%s item_id %s; want %s", e.name, id.Str, item)
		}
		if e.name == "response.output_text.delta" {
			if keys := objectKeys(e.data); keys != "content_index,delta,item_id,logprobs,output_index,sequence_number,type" {
				t.Errorf("delta keys %s", keys)
			}
			text.WriteString(e.data.Get("delta").Str)
		}
	}
	full := text.String()
	done := evs[7].data
	if objectKeys(done) != "content_index,item_id,logprobs,output_index,sequence_number,text,type" || done.Get("text").Str != full {
		t.Errorf("output_text.done %s; text %q", done.Raw, full)
	}
	if p := evs[8].data.Get("part"); p.Get("text").Str != full || p.Get("logprobs").Type != gjson.Null {
		t.Errorf("content_part.done %s", evs[8].data.Raw)
	}
	if it := evs[9].data.Get("item"); it.Get("id").Str != item || it.Get("status").Str != "completed" || it.Get("summary").Raw != "[]" ||
		it.Get("content.0.text").Str != full {
		t.Errorf("output_item.done %s", evs[9].data.Raw)
	}
	out := completed.Get("output.0")
	if !msgIDPattern.MatchString(out.Get("id").Str) || out.Get("content.0.text").Str != full || out.Get("summary").Exists() {
		t.Errorf("completed output %s", out.Raw)
	}
	// The same prompt streamed and not gives the same text.
	_, b := postRead(t, ts.URL+"/v1/responses", `{"input":"hello there","max_output_tokens":3}`)
	if got := gjson.GetBytes(b, "output.0.content.0.text").Str; got != full {
		t.Errorf("non-stream text %q; stream %q", got, full)
	}
}

func TestResponsesStreamEngineError(t *testing.T) {
	_, ts := newTest(t, Options{})
	resp := post(t, context.Background(), ts.URL+"/v1/responses",
		`{"input":"x","stream":true,"include":["message.output_text.logprobs"],"top_logprobs":30}`)
	raw, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read err %v; want the stream cut", err)
	}
	evs := responseEvents(t, raw)
	if len(evs) != 2 || evs[0].name != "response.created" || evs[1].name != "response.in_progress" {
		t.Errorf("events %q; want created and in_progress, then nothing", raw)
	}
	// Not streamed, the same refusal is a 400.
	r, b := postRead(t, ts.URL+"/v1/responses", `{"input":"x","include":["message.output_text.logprobs"],"top_logprobs":30}`)
	wantError(t, r, b, 400, "BadRequestError", "logprobs")
}
