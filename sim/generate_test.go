package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCountWords(t *testing.T) {
	for _, s := range []string{"", " ", "a", " a  b\tc\n", "héllo wörld", "a\u00a0b", "x\u3000y z"} {
		if got, want := countWords(s), len(strings.Fields(s)); got != want {
			t.Errorf("countWords(%q) = %d; want %d", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uo\te`, "ctl\x00\x1f\n\r\t", "ünï\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // request bodies are checked for UTF-8 before anything is parsed
		}
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: invalid JSON: %v", s, got, err)
		}
		if back != s {
			t.Fatalf("appendJSONString(%q) round-trips to %q", s, back)
		}
	})
}

func TestSequenceStop(t *testing.T) {
	v := newVocab()
	p := prompt{hash: fnvOffset}
	p.addText("seed words")
	plain := v.newSequence(0, p, 0, 8, nil)
	full := plain.text(v)
	if plain.total != 8 || plain.reason != "length" || len(strings.Fields(full)) != 8 {
		t.Fatalf("plain sequence = %+v, %q", plain, full)
	}
	// The stop list is checked in order after each token; the first token whose
	// text completes a stop string ends the sequence.
	words := strings.Fields(full)
	stop := v.newSequence(0, p, 0, 8, []string{"nothing-matches", " " + words[3]})
	if got := stop.text(v); stop.reason != "stop" || stop.total != 4 || got != full[:strings.Index(full, " "+words[3])] {
		t.Errorf("stop sequence = %+v, %q", stop, got)
	}
	other := v.newSequence(1, p, 1, 8, nil)
	if other.text(v) == full {
		t.Error("choice 1 generated the same text as choice 0")
	}
}

// FuzzParse feeds arbitrary bodies to both generation routes: never a panic, and
// every refusal is a 400 or 404 in vLLM's envelope.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"messages":[{"role":"user","content":"hi"}],"stop":["a"],"n":2}`), true)
	f.Add([]byte(`{"prompt":[[1,2],[3]],"max_tokens":3}`), false)
	f.Add([]byte(`{"prompt":"x","sim_fault_after":1e3,"stream_options":{"continuous_usage_stats":true}}`), false)
	s := New(Options{MaxModelLen: 64})
	f.Fuzz(func(t *testing.T, body []byte, chat bool) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		req, e := s.parse(r, body, chat)
		if e != nil {
			if e.Status != 400 && e.Status != 404 {
				t.Fatalf("status %d", e.Status)
			}
			return
		}
		if req.maxTokens < 1 || len(req.prompts) == 0 {
			t.Fatalf("accepted %+v", req)
		}
	})
}

func BenchmarkStreamZeroLatency(b *testing.B) {
	s := New(Options{})
	ts := httptest.NewServer(s)
	defer ts.Close()
	c := ts.Client()
	body := `{"prompt":"bench","stream":true,"max_tokens":256}`
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "tokens/s")
}
