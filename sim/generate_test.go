package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
	plain := v.newSequence(0, p, 0, 8, nil, nil)
	full := plain.text(v)
	if plain.total != 8 || plain.reason != "length" || len(strings.Fields(full)) != 8 {
		t.Fatalf("plain sequence = %+v, %q", plain, full)
	}
	// The stop list is checked in order after each token; the first token whose
	// text completes a stop string ends the sequence.
	words := strings.Fields(full)
	stop := v.newSequence(0, p, 0, 8, []string{"nothing-matches", " " + words[3]}, nil)
	if got := stop.text(v); stop.reason != "stop" || stop.total != 4 || got != full[:strings.Index(full, " "+words[3])] {
		t.Errorf("stop sequence = %+v, %q", stop, got)
	}
	other := v.newSequence(1, p, 1, 8, nil, nil)
	if other.text(v) == full {
		t.Error("choice 1 generated the same text as choice 0")
	}
}

// FuzzParse feeds arbitrary bodies to the generation routes: never a panic, and
// every refusal is a 400, 404 or (a Python KeyError in vLLM) 500 whose body is
// valid JSON in vLLM's envelope.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"messages":[{"role":"user","content":"hi"}],"stop":["a"],"n":2}`), uint8(0))
	f.Add([]byte(`{"prompt":[[1,2],[3]],"max_tokens":3}`), uint8(1))
	f.Add([]byte(`{"prompt":"x","sim_fault_after":1e3,"stream_options":{"continuous_usage_stats":true}}`), uint8(1))
	f.Add([]byte(`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","required":["a"],"properties":{"a":{"type":"string"}}}}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`), uint8(0))
	f.Add([]byte(`{"input":[{"role":"user","content":[{"type":"input_text","text":"x"}]}],"max_output_tokens":5}`), uint8(2))
	f.Add([]byte(`{"temperature":"hot","n":0,"messages":"x","stop":["","a","b","c","d"]}`), uint8(0))
	s := New(Options{MaxModelLen: 64})
	f.Fuzz(func(t *testing.T, body []byte, route uint8) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		k := kind(route % 3)
		o, _, e := decodeBody("application/json", body)
		var req *genRequest
		if e == nil {
			if k == kindResponses {
				req, e = s.parseResponses(r, o)
			} else {
				req, e = s.parseGenerate(r, o, k)
			}
		}
		if e != nil {
			if e.Status != 400 && e.Status != 404 && e.Status != 500 {
				t.Fatalf("status %d", e.Status)
			}
			if b := s.errorBody(e); !json.Valid(b) {
				t.Fatalf("error body %s is not JSON", b)
			}
			return
		}
		if req.maxTokens < 0 || len(req.prompts) == 0 || req.n < 1 {
			t.Fatalf("accepted %+v", req)
		}
		if req.n*len(req.prompts) > 1<<12 {
			return // valid, but too big to generate in a fuzz iteration
		}
		g := s.newGeneration(req, time.Now())
		for i := range g.seqs {
			if g.seqs[i].tool == nil {
				g.seqs[i].text(s.vocab)
			}
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
