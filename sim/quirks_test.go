package sim

import (
	"context"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestParseQuirks(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []Quirk
		err  string
	}{
		{in: "", want: nil},
		{in: " no_n , FLAT_errors,no_n,", want: []Quirk{QuirkNoN, QuirkFlatErrors}},
		{in: "no_continuous_usage,error_without_done", want: []Quirk{QuirkNoContinuousUsage, QuirkErrorWithoutDone}},
		{in: "no_n,bogus", err: `unknown quirk "bogus"; known: no_continuous_usage, no_n, error_without_done, flat_errors`},
	} {
		got, err := ParseQuirks(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseQuirks(%q) error %v; want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(quirkStrings(got), ",") != strings.Join(quirkStrings(tt.want), ",") {
			t.Errorf("ParseQuirks(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if err := Serve(context.Background(), "127.0.0.1:0", Options{Quirks: []Quirk{"bogus"}}, nil); err == nil ||
		!strings.Contains(err.Error(), `unknown quirk "bogus"`) {
		t.Errorf("Serve with a bad quirk = %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("New with a bad quirk did not panic")
		}
	}()
	New(Options{Quirks: []Quirk{"bogus"}})
}

func quirkStrings(qs []Quirk) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = string(q)
	}
	return out
}

func TestQuirkNoContinuousUsage(t *testing.T) {
	_, ts := newTest(t, Options{Quirks: []Quirk{QuirkNoContinuousUsage}})
	chunks := streamOf(t, ts.URL+chatRoute, `{`+hi+`,"stream":true,"max_tokens":3,"n":2,
		"stream_options":{"include_usage":true,"continuous_usage_stats":true}}`)
	for _, c := range chunks[:len(chunks)-1] {
		if c.Get("usage").Exists() {
			t.Errorf("usage on a chunk: %s", c.Raw)
		}
	}
	if last := chunks[len(chunks)-1]; last.Get("choices").Raw != "[]" || last.Get("usage.completion_tokens").Int() != 6 {
		t.Errorf("usage chunk %s", last.Raw)
	}
	// Without include_usage there is no usage at all.
	chunks = streamOf(t, ts.URL+cmplRoute, `{"prompt":"x","stream":true,"max_tokens":2,"stream_options":{"continuous_usage_stats":true}}`)
	for _, c := range chunks {
		if c.Get("usage").Exists() {
			t.Errorf("usage without include_usage: %s", c.Raw)
		}
	}
}

func TestQuirkNoN(t *testing.T) {
	_, ts := newTest(t, Options{Quirks: []Quirk{QuirkNoN}})
	for _, body := range []string{
		`{"prompt":"x","n":3,"max_tokens":2}`,
		`{"prompt":"x","n":0,"max_tokens":2}`,                 // not validated either
		`{"prompt":"x","n":2,"temperature":0,"max_tokens":2}`, // nor checked against greedy sampling
	} {
		resp, b := postRead(t, ts.URL+cmplRoute, body)
		if resp.StatusCode != 200 || len(gjson.GetBytes(b, "choices").Array()) != 1 || gjson.GetBytes(b, "usage.completion_tokens").Int() != 2 {
			t.Errorf("%s: %d %s; want one choice", body, resp.StatusCode, b)
		}
	}
	chunks := streamOf(t, ts.URL+chatRoute, `{`+hi+`,"n":4,"stream":true,"max_tokens":2}`)
	for _, c := range chunks {
		if i := c.Get("choices.0.index").Int(); i != 0 {
			t.Errorf("choice index %d: %s", i, c.Raw)
		}
	}
}

func TestQuirkErrorWithoutDone(t *testing.T) {
	_, ts := newTest(t, Options{Quirks: []Quirk{QuirkErrorWithoutDone}})
	// The engine's in-band refusal, and the mid-stream fault that normally ends with [DONE].
	for _, body := range []string{
		`{` + hi + `,"logprobs":true,"top_logprobs":50,"stream":true}`,
		`{` + hi + `,"stream":true,"max_tokens":5,"sim_fault":"error_mid_stream"}`,
	} {
		resp, raw := postRead(t, ts.URL+chatRoute, body)
		evs := events(t, raw)
		if resp.StatusCode != 200 || len(evs) == 0 || evs[len(evs)-1] == "[DONE]" || !gjson.Get(evs[len(evs)-1], "error.message").Exists() {
			t.Errorf("%s: %d %q; want the error event last, no [DONE]", body, resp.StatusCode, evs)
		}
	}
	// A stream that ends well still ends with [DONE].
	streamOf(t, ts.URL+chatRoute, `{`+hi+`,"stream":true,"max_tokens":2}`)
}

func TestQuirkFlatErrors(t *testing.T) {
	_, ts := newTest(t, Options{Quirks: []Quirk{QuirkFlatErrors}})
	resp, b := postRead(t, ts.URL+chatRoute, `{"model":"nope",`+hi+`}`)
	if want := `{"object":"error","message":"The model ` + "`nope`" + ` does not exist.","type":"NotFoundError","param":"model","code":404}`; resp.StatusCode != 404 || string(b) != want {
		t.Errorf("404 body %s; want %s", b, want)
	}
	resp, b = postRead(t, ts.URL+chatRoute, `{`+hi+`,"n":0}`)
	if want := `{"object":"error","message":"n must be at least 1, got 0.","type":"BadRequestError","param":null,"code":400}`; resp.StatusCode != 400 || string(b) != want {
		t.Errorf("400 body %s; want %s", b, want)
	}
	_, raw := postRead(t, ts.URL+chatRoute, `{`+hi+`,"logprobs":true,"top_logprobs":50,"stream":true}`)
	want := `data: {"object": "error", "message": "Requested sample logprobs of 50, which is greater than max allowed: 20 (parameter=logprobs, value=50)", ` +
		`"type": "BadRequestError", "param": "logprobs", "code": 400}` + "\n\ndata: [DONE]\n\n"
	if string(raw) != want {
		t.Errorf("error event %q; want %q", raw, want)
	}
	// Quirks combine: flat and without [DONE].
	_, ts2 := newTest(t, Options{Quirks: []Quirk{QuirkFlatErrors, QuirkErrorWithoutDone}})
	_, raw = postRead(t, ts2.URL+cmplRoute, `{"prompt":"x","stream":true,"max_tokens":5,"sim_fault":"error_mid_stream"}`)
	evs := events(t, raw)
	if last := gjson.Parse(evs[len(evs)-1]); last.Get("object").Str != "error" || last.Get("code").Int() != 500 {
		t.Errorf("events %q; want a flat error event last", evs)
	}
}
