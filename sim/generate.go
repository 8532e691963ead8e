package sim

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"
)

// vocabulary is the simulated model's whole output vocabulary: 64 ASCII words, so a
// token never needs JSON escaping and a stop cut never splits a UTF-8 sequence.
const vocabulary = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi " +
	"omicron pi rho sigma tau upsilon phi chi psi omega red orange yellow green blue indigo " +
	"violet amber river stone cloud ember frost grove harbor island jungle kettle lantern " +
	"meadow needle orchard pebble quartz raven saddle timber umbra valley willow xenon yarrow " +
	"zephyr anchor bridge canyon dune"

// vocab holds the tokens of vocabulary, each with its leading space, and their JSON
// string forms, ready to be appended to a chunk.
type vocab struct {
	words  []string
	quoted [][]byte
}

func newVocab() vocab {
	fields := strings.Fields(vocabulary)
	v := vocab{words: make([]string, len(fields)), quoted: make([][]byte, len(fields))}
	for i, f := range fields {
		v.words[i] = " " + f
		v.quoted[i] = appendJSONString(nil, v.words[i])
	}
	return v
}

// tokenAt is the vocabulary index of token k of a sequence seeded with seed.
func (v vocab) tokenAt(seed uint64, k int) int {
	return int(mix(seed+uint64(k)*0x9e3779b97f4a7c15) % uint64(len(v.words)))
}

// mix is splitmix64's finaliser: a cheap, well-spread 64-bit hash.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// prompt is one prompt as the simulated tokenizer sees it.
type prompt struct {
	tokens int    // whitespace-separated words (or token ids)
	hash   uint64 // FNV-1a of the text, so different prompts generate differently; starts at fnvOffset
	text   bool   // given as text (which a real tokenizer never makes empty), not token ids
}

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

// addText adds s's words to p and folds s into its hash.
func (p *prompt) addText(s string) {
	p.text = true
	for i := 0; i < len(s); i++ {
		p.hash = (p.hash ^ uint64(s[i])) * fnvPrime
	}
	p.tokens += countWords(s)
}

// countWords counts whitespace-separated words as strings.Fields would, without
// allocating.
func countWords(s string) int {
	n, in := 0, false
	for i := 0; i < len(s); {
		c := s[i]
		var space bool
		if c < utf8.RuneSelf {
			space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			space = unicode.IsSpace(r)
			i += size
		}
		if !space && !in {
			n++
		}
		in = !space
	}
	return n
}

// sequence is one choice being generated. Its whole course (length, finish reason,
// stop cut) is planned up front, which is cheap and lets a stream emit each token as
// it is produced with no stop-string look-behind buffer.
type sequence struct {
	index  int       // choice index in the response
	seed   uint64    // from the prompt hash and the index
	total  int       // tokens it generates: its completion_tokens at the end
	reason string    // the engine's: "length" or "stop"
	stop   string    // the matched stop string when reason is "stop"
	cut    int       // output length in bytes after the stop cut; -1 without a stop
	k      int       // tokens generated so far
	off    int       // bytes of (uncut) text generated so far
	tool   *toolCall // the tool call it generates instead of text, if any
}

// newSequence plans choice index of prompt p: maxTokens tokens ending in "length",
// unless a stop string appears first. Like vLLM, stop strings are checked in list
// order after each token, and the text ends before the match. With a tool plan it
// generates a tool call instead (cut short by maxTokens, or ended by EOS).
func (v vocab) newSequence(index int, p prompt, choice int, maxTokens int, stops []string, tool *toolPlan) sequence {
	s := sequence{index: index, seed: mix(p.hash ^ mix(uint64(choice)+1)), total: maxTokens, reason: "length", cut: -1}
	if tool != nil {
		s.tool = newToolCall(tool, s.seed, v)
		if n := len(s.tool.tokens); n <= maxTokens {
			s.total, s.reason = n, "stop"
		}
		return s
	}
	if len(stops) == 0 {
		return s
	}
	pats := make([][]byte, len(stops))
	for i, stop := range stops {
		pats[i] = []byte(stop)
	}
	var text []byte
	for k := 0; k < maxTokens; k++ {
		w := v.words[v.tokenAt(s.seed, k)]
		text = append(text, w...)
		for j, pat := range pats {
			from := max(0, len(text)-len(w)-len(pat)+1)
			if i := bytes.Index(text[from:], pat); i >= 0 {
				s.total, s.reason, s.stop, s.cut = k+1, "stop", stops[j], from+i
				return s
			}
		}
	}
	return s
}

// next generates the next token and returns the vocabulary index and the piece of
// it that is output (shorter, or empty, when the stop cut falls in it), and whether
// it is the sequence's last token.
func (s *sequence) next(v vocab) (tok int, piece string, last bool) {
	tok = v.tokenAt(s.seed, s.k)
	piece = v.words[tok]
	s.k++
	start := s.off
	s.off += len(piece)
	if s.cut >= 0 && s.off > s.cut {
		piece = piece[:max(0, s.cut-start)]
		tok = -1 // the piece is no longer a whole vocabulary word
	}
	return tok, piece, s.k == s.total
}

// nextTool generates the next token of s's tool call, and whether it is the last.
func (s *sequence) nextTool() (toolToken, bool) {
	t := s.tool.tokens[s.k]
	s.k++
	return t, s.k == s.total
}

// done reports whether s has generated all its tokens.
func (s *sequence) done() bool { return s.k >= s.total }

// toolWhole reports whether s's tool call was generated whole (not cut short).
func (s *sequence) toolWhole() bool { return s.tool != nil && s.total == len(s.tool.tokens) }

// finishReason is the finish_reason the API reports for s: the engine's, or for a
// tool call the tool-choice mode's. A streamed "auto" call whose name went out
// reports tool_calls even when cut short, as vLLM's streaming does.
func (s *sequence) finishReason(stream bool) string {
	switch {
	case s.tool == nil:
		return s.reason
	case s.toolWhole():
		return s.tool.finishReason()
	case stream && s.tool.mode == toolAuto && s.total >= 2:
		return "tool_calls"
	}
	return "length"
}

// text generates the whole of s and returns its output text.
func (s *sequence) text(v vocab) string {
	var b strings.Builder
	for !s.done() {
		_, piece, _ := s.next(v)
		b.WriteString(piece)
	}
	return b.String()
}

// appendJSONString appends s as a JSON string. It is the hot-path replacement for
// encoding/json; strconv.AppendQuote is not JSON (it writes \x escapes).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
