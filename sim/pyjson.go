package sim

import "unicode/utf8"

// FastAPI decodes a request body with Python's json.loads and turns a decode error
// into a pydantic-style "json_invalid" error holding the decoder's message and the
// character offset where it stopped. pyJSONCheck finds that message and offset
// with the rules of CPython 3.12's C scanner, without building any value.

// maxPyJSONDepth bounds nesting. CPython's scanner recurses and a deep enough body
// raises RecursionError, which FastAPI answers with "There was an error parsing the
// body"; the simulator draws the line at a fixed depth of the same order.
const maxPyJSONDepth = 1000

// pyJSONError is a json.JSONDecodeError: msg and the character offset pos.
type pyJSONError struct {
	msg     string
	pos     int  // characters (not bytes) from the start of the body
	tooDeep bool // nested beyond maxPyJSONDepth: not a JSONDecodeError at all
}

// pyJSONCheck reports how json.loads would fail on b (valid UTF-8), or nil. NaN and
// Infinity, which Python accepts, are refused as "Expecting value": the simulator
// has no use for them.
func pyJSONCheck(b []byte) *pyJSONError {
	fail := func(msg string, at int) *pyJSONError {
		return &pyJSONError{msg: msg, pos: utf8.RuneCount(b[:min(at, len(b))])}
	}
	n := len(b)
	ws := func(i int) int {
		for i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
		return i
	}
	const (
		wantValue = iota
		wantKey
		afterValue
	)
	var stack []bool // true: an object, false: an array
	mode := wantValue
	i := ws(0)
	for {
		switch mode {
		case wantKey:
			if i >= n || b[i] != '"' {
				return fail("Expecting property name enclosed in double quotes", i)
			}
			j, e := scanPyString(b, i+1)
			if e != nil {
				return fail(e.msg, e.pos)
			}
			if i = ws(j); i >= n || b[i] != ':' {
				return fail("Expecting ':' delimiter", i)
			}
			i, mode = ws(i+1), wantValue

		case wantValue:
			if i >= n {
				return fail("Expecting value", i)
			}
			mode = afterValue
			switch c := b[i]; {
			case c == '"':
				j, e := scanPyString(b, i+1)
				if e != nil {
					return fail(e.msg, e.pos)
				}
				i = j
			case c == '{' || c == '[':
				if len(stack) >= maxPyJSONDepth {
					return &pyJSONError{tooDeep: true}
				}
				close := byte('}')
				if c == '[' {
					close = ']'
				}
				if i = ws(i + 1); i < n && b[i] == close {
					i++
					break
				}
				stack = append(stack, c == '{')
				mode = wantValue
				if c == '{' {
					mode = wantKey
				}
			case hasPrefix(b[i:], "null"), hasPrefix(b[i:], "true"):
				i += 4
			case hasPrefix(b[i:], "false"):
				i += 5
			default:
				j := scanPyNumber(b, i)
				if j == i {
					return fail("Expecting value", i)
				}
				i = j
			}

		case afterValue:
			if len(stack) == 0 {
				if i = ws(i); i != n {
					return fail("Extra data", i)
				}
				return nil
			}
			obj := stack[len(stack)-1]
			close := byte(']')
			if obj {
				close = '}'
			}
			i = ws(i)
			if i < n && b[i] == close {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if i >= n || b[i] != ',' {
				return fail("Expecting ',' delimiter", i)
			}
			i, mode = ws(i+1), wantValue
			if obj {
				mode = wantKey
			}
		}
	}
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// scanPyString scans a string whose opening quote is at j-1 and returns the index
// after its closing quote, or the decoder's error with a byte offset.
func scanPyString(b []byte, j int) (int, *pyJSONError) {
	begin, n := j-1, len(b)
	isHex := func(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
	for j < n {
		switch c := b[j]; {
		case c == '"':
			return j + 1, nil
		case c == '\\':
			j++
			if j >= n {
				return 0, &pyJSONError{msg: "Unterminated string starting at", pos: begin}
			}
			if b[j] != 'u' {
				switch b[j] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					j++
					continue
				}
				return 0, &pyJSONError{msg: `Invalid \escape`, pos: j - 1}
			}
			u := j
			if j+5 >= n {
				return 0, &pyJSONError{msg: `Invalid \uXXXX escape`, pos: u}
			}
			for k := j + 1; k <= j+4; k++ {
				if !isHex(b[k]) {
					return 0, &pyJSONError{msg: `Invalid \uXXXX escape`, pos: u}
				}
			}
			j += 5
		case c < 0x20:
			return 0, &pyJSONError{msg: "Invalid control character at", pos: j}
		default:
			j++
		}
	}
	return 0, &pyJSONError{msg: "Unterminated string starting at", pos: begin}
}

// scanPyNumber matches -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)? at i and returns the
// index after it, or i when nothing matches. A fraction or exponent that is not
// complete is left out of the match, as Python's regular expression does.
func scanPyNumber(b []byte, i int) int {
	n := len(b)
	digit := func(k int) bool { return k < n && '0' <= b[k] && b[k] <= '9' }
	j := i
	if j < n && b[j] == '-' {
		j++
	}
	switch {
	case j < n && b[j] == '0':
		j++
	case digit(j):
		for digit(j) {
			j++
		}
	default:
		return i
	}
	if j < n && b[j] == '.' && digit(j+1) {
		j += 2
		for digit(j) {
			j++
		}
	}
	if j < n && (b[j] == 'e' || b[j] == 'E') {
		k := j + 1
		if k < n && (b[k] == '+' || b[k] == '-') {
			k++
		}
		if digit(k) {
			for digit(k) {
				k++
			}
			j = k
		}
	}
	return j
}
