package sim

import (
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// The checks vLLM's SamplingParams makes (sampling_params.py): those of its
// construction (_verify_args), which answer 400 before a stream starts, and those
// of the engine's verify at add_request, which a stream reports in-band.

const (
	maxNSequences = 16384 // VLLM_MAX_N_SEQUENCES' default
	maxLogprobs   = 20    // --max-logprobs' default
	// vocabSize is the simulated tokenizer's vocabulary: /tokenize's ids are below it.
	vocabSize = 32100
)

// samplingScope says which request fields reach SamplingParams: the Responses API
// passes no n, penalties, min_p, min_tokens or bad_words, and drops an empty stop.
type samplingScope int

const (
	scopeGenerate samplingScope = iota // chat and completions
	scopeResponses
)

// floatField is a float field's value, or def when it is absent or null.
func floatField(o *object, name string, def float64) float64 {
	if v := o.get(name); !isNone(v) {
		f, _ := floatOf(v)
		return f
	}
	return def
}

// intField is an int field's value, or def when it is absent or null.
func intField(o *object, name string, def int64) *big.Int {
	if v := o.get(name); !isNone(v) {
		return intOf(v)
	}
	return big.NewInt(def)
}

// stopStrings is the request's stop list as SamplingParams gets it.
func stopStrings(o *object, scope samplingScope) []string {
	v := o.get("stop")
	switch {
	case v.Type == gjson.String:
		if scope == scopeResponses && v.Str == "" {
			return nil
		}
		return []string{v.Str}
	case v.IsArray():
		var out []string
		v.ForEach(func(_, s gjson.Result) bool { out = append(out, s.Str); return true })
		return out
	}
	return nil
}

// pyStrList is repr(list_of_str).
func pyStrList(items []string) string {
	b := []byte{'['}
	for i, s := range items {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = pyStrRepr(b, s)
	}
	return string(append(b, ']'))
}

// pyIntKey reports whether Python's int() accepts s: optional whitespace and sign,
// decimal digits with single underscores between them.
func pyIntKey(s string) (*big.Int, bool) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(strings.TrimPrefix(t, "+"), "-")
	if t == "" || t[0] == '_' || t[len(t)-1] == '_' || strings.Contains(t, "__") {
		return nil, false
	}
	i, ok := new(big.Int).SetString(strings.ReplaceAll(strings.TrimSpace(s), "_", ""), 10)
	return i, ok
}

// checkSampling makes SamplingParams' construction checks, in their order, for a
// request whose effective max_tokens is maxTokens.
func checkSampling(o *object, maxTokens int, scope samplingScope) *openai.Error {
	gen := scope == scopeGenerate
	if lb := o.get("logit_bias"); lb.IsObject() {
		var bad []string
		for _, k := range newObject(lb).keys {
			if _, ok := pyIntKey(k); !ok {
				bad = append(bad, k)
			}
		}
		if len(bad) > 0 {
			v := pyStrList(bad)
			return errVLLM("logit_bias contains key(s) that cannot be converted to integer token IDs: "+v, "logit_bias", v)
		}
	}
	n := intField(o, "n", 1)
	if gen {
		switch {
		case n.Sign() < 1:
			return errVLLM("n must be at least 1, got "+n.String()+".", "", "")
		case n.Cmp(big.NewInt(maxNSequences)) > 0:
			return errVLLM("n must be at most "+strconv.Itoa(maxNSequences)+", got "+n.String()+
				". To increase this limit, set the VLLM_MAX_N_SEQUENCES environment variable.", "", "")
		}
		for _, name := range []string{"presence_penalty", "frequency_penalty"} {
			if p := floatField(o, name, 0); !(-2 <= p && p <= 2) {
				return errVLLM(name+" must be in [-2, 2], got "+pyFloatStr(p)+".", "", "")
			}
		}
	}
	switch rp := floatField(o, "repetition_penalty", 1); {
	case math.IsInf(rp, 0) || math.IsNaN(rp):
		return errVLLM("repetition_penalty must be a finite number, got "+pyFloatStr(rp)+".", "", "")
	case rp <= 0:
		return errVLLM("repetition_penalty must be greater than zero, got "+pyFloatStr(rp)+".", "", "")
	}
	temp := floatField(o, "temperature", 1)
	switch t := pyFloatStr(temp); {
	case math.IsInf(temp, 0) || math.IsNaN(temp):
		return errVLLM("temperature must be a finite number, got "+t+".", "temperature", t)
	case temp < 0:
		return errVLLM("temperature must be non-negative, got "+t+".", "temperature", t)
	case temp > 2:
		return errVLLM("temperature must be in [0, 2], got "+t+".", "temperature", t)
	}
	if p := floatField(o, "top_p", 1); !(0 < p && p <= 1) {
		t := pyFloatStr(p)
		return errVLLM("top_p must be in (0, 1], got "+t+".", "top_p", t)
	}
	if k := intField(o, "top_k", 0); k.Cmp(big.NewInt(-1)) < 0 {
		return errVLLM("top_k must be 0 (disable), or at least 1, got "+k.String()+".", "", "")
	}
	if p := floatField(o, "min_p", 0); gen && !(0 <= p && p <= 1) {
		return errVLLM("min_p must be in [0, 1], got "+pyFloatStr(p)+".", "", "")
	}
	if maxTokens < 1 {
		m := strconv.Itoa(maxTokens)
		return errVLLM("max_tokens must be at least 1, got "+m+".", "max_tokens", m)
	}
	if gen {
		switch mt := intField(o, "min_tokens", 0); {
		case mt.Sign() < 0:
			return errVLLM("min_tokens must be greater than or equal to 0, got "+mt.String()+".", "", "")
		case mt.Cmp(big.NewInt(int64(maxTokens))) > 0:
			return errVLLM("min_tokens must be less than or equal to max_tokens="+strconv.Itoa(maxTokens)+", got "+mt.String()+".", "", "")
		}
	}
	for _, s := range stopStrings(o, scope) {
		if s == "" {
			return errVLLM("stop cannot contain an empty string.", "", "")
		}
	}
	if bw := o.get("bad_words"); gen && bw.IsArray() {
		var words []string
		empty := false
		bw.ForEach(func(_, w gjson.Result) bool { words = append(words, w.Str); empty = empty || w.Str == ""; return true })
		if empty {
			return errVLLM("bad_words cannot contain an empty string. Got bad_words="+pyStrList(words), "", "")
		}
	}
	// Temperatures in (0, 0.01) are raised to 0.01 first: only 0 is greedy.
	if gen && temp == 0 && n.Cmp(big.NewInt(1)) > 0 {
		return errVLLM("n must be 1 when using greedy sampling, got "+n.String()+".", "", "")
	}
	return nil
}

// logprobsCount is the number of sample logprobs a request asks for, and whether
// it asks: chat's top_logprobs with logprobs true, completions' logprobs, the
// Responses API's top_logprobs with the output_text.logprobs include.
func logprobsCount(o *object, k kind) (*big.Int, bool) {
	switch k {
	case kindChat:
		if !truthy(o.get("logprobs")) {
			return nil, false
		}
		return intField(o, "top_logprobs", 0), true
	case kindCompletion:
		v := o.get("logprobs")
		return intOf(v), !isNone(v)
	}
	included := false
	o.get("include").ForEach(func(_, s gjson.Result) bool {
		included = s.Str == "message.output_text.logprobs"
		return !included
	})
	return intField(o, "top_logprobs", 0), included
}

// checkEngine makes the engine's SamplingParams.verify checks. A stream reports
// their error in-band; a non-streaming request answers 400 with it.
func checkEngine(o *object, k kind) *openai.Error {
	limit := big.NewInt(maxLogprobs)
	over := func(v *big.Int) (*big.Int, bool) {
		if v.Cmp(big.NewInt(-1)) == 0 {
			v = big.NewInt(vocabSize) // -1 asks for the whole vocabulary
		}
		return v, v.Cmp(limit) > 0
	}
	if n, ok := logprobsCount(o, k); ok {
		if n, bad := over(n); bad {
			return errVLLM("Requested sample logprobs of "+n.String()+", which is greater than max allowed: "+
				strconv.Itoa(maxLogprobs), "logprobs", n.String())
		}
	}
	if v := o.get("prompt_logprobs"); k != kindResponses && !isNone(v) {
		if n, bad := over(intOf(v)); bad {
			return errVLLM("Requested prompt logprobs of "+n.String()+", which is greater than max allowed: "+
				strconv.Itoa(maxLogprobs), "prompt_logprobs", n.String())
		}
	}
	inVocab := func(i *big.Int) bool { return i.Sign() >= 0 && i.Cmp(big.NewInt(vocabSize)) < 0 }
	if lb := o.get("logit_bias"); lb.IsObject() {
		var bad []string
		for _, key := range newObject(lb).keys {
			if id, _ := pyIntKey(key); !inVocab(id) {
				bad = append(bad, id.String())
			}
		}
		if len(bad) > 0 {
			v := "[" + strings.Join(bad, ", ") + "]"
			return errVLLM("token_id(s) "+v+" in logit_bias contain out-of-vocab token ids. Vocabulary size: "+
				strconv.Itoa(vocabSize), "logit_bias", v)
		}
	}
	if ids := o.get("allowed_token_ids"); k != kindResponses && ids.IsArray() {
		if !truthy(ids) {
			return errVLLM("allowed_token_ids is not None and empty!", "allowed_token_ids", "[]")
		}
		bad := false
		ids.ForEach(func(_, id gjson.Result) bool { bad = !inVocab(intOf(id)); return !bad })
		if bad {
			return errVLLM("allowed_token_ids contains out-of-vocab token id!", "allowed_token_ids", pyStr(ids))
		}
	}
	return nil
}
