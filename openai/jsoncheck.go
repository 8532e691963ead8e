package openai

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// MaxJSONDepth is the deepest nesting of objects and arrays the worker accepts in
// any JSON it parses from outside (contract section 8). vLLM's own requests nest
// a handful of levels (a tool's JSON schema a few more); 128 leaves room for any
// real request while keeping every recursive parser far from its stack limit.
const MaxJSONDepth = 128

// ErrTooDeep is returned by CheckJSON and CheckDepth for a document nested
// deeper than MaxJSONDepth.
var ErrTooDeep = errors.New("JSON nested deeper than " + strconv.Itoa(MaxJSONDepth) + " levels")

// SyntaxError is a JSON document that is not valid, and where it went wrong.
type SyntaxError struct {
	Offset int // the byte where the document stopped being JSON
	msg    string
}

func (e *SyntaxError) Error() string {
	return "invalid JSON at byte " + strconv.Itoa(e.Offset) + ": " + e.msg
}

// CheckJSON reports whether b is exactly one valid JSON value (RFC 8259, UTF-8),
// nested at most MaxJSONDepth levels: nil, ErrTooDeep or a *SyntaxError. It
// walks the document with an explicit stack, never recursion, so that no input
// can exhaust the goroutine stack; only a document it accepts may be handed to
// a recursive parser (gjson, encoding/json). It does not allocate.
func CheckJSON(b []byte) error {
	var stack [MaxJSONDepth]byte // the open containers: '{' or '['
	depth := 0
	i := skipSpace(b, 0)
	for {
		// A value is expected at b[i].
		if i >= len(b) {
			return syntaxErr(i, "unexpected end of input")
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth == MaxJSONDepth {
				return ErrTooDeep
			}
			stack[depth] = c
			depth++
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' is '{'+2 and ']' is '['+2: empty
				depth--
				i++
				break
			}
			if c == '{' {
				var err error
				if i, err = objectKey(b, i); err != nil {
					return err
				}
			}
			continue
		case '"':
			var err error
			if i, err = scanString(b, i); err != nil {
				return err
			}
		case 't':
			if !hasLiteral(b, i, "true") {
				return syntaxErr(i, "invalid literal")
			}
			i += 4
		case 'f':
			if !hasLiteral(b, i, "false") {
				return syntaxErr(i, "invalid literal")
			}
			i += 5
		case 'n':
			if !hasLiteral(b, i, "null") {
				return syntaxErr(i, "invalid literal")
			}
			i += 4
		default:
			var err error
			if i, err = scanNumber(b, i); err != nil {
				return err
			}
		}
		// A value ended at b[i]: close containers, or move to the next member.
		for {
			i = skipSpace(b, i)
			if depth == 0 {
				if i != len(b) {
					return syntaxErr(i, "data after the JSON value")
				}
				return nil
			}
			if i >= len(b) {
				return syntaxErr(i, "unexpected end of input")
			}
			open := stack[depth-1]
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
				if open == '{' {
					var err error
					if i, err = objectKey(b, i); err != nil {
						return err
					}
				}
			case open + 2:
				depth--
				i++
				continue
			default:
				return syntaxErr(i, "expected ',' or the end of the "+containerName(open))
			}
			break
		}
	}
}

// CheckDepth reports ErrTooDeep when b, read as JSON, nests deeper than
// MaxJSONDepth; it checks nothing else, so that a body forwarded as it is (the
// /v1/* pass-through) is refused only when it could crash a recursive parser.
// Brackets inside strings do not count.
func CheckDepth(b []byte) error {
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if depth++; depth > MaxJSONDepth {
				return ErrTooDeep
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

func syntaxErr(off int, msg string) error { return &SyntaxError{Offset: off, msg: msg} }

func containerName(open byte) string {
	if open == '{' {
		return "object"
	}
	return "array"
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// objectKey reads `"key" :` at b[i] and returns the index of the member's value.
func objectKey(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return i, syntaxErr(i, "expected a string key")
	}
	i, err := scanString(b, i)
	if err != nil {
		return i, err
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, syntaxErr(i, "expected ':' after an object key")
	}
	return skipSpace(b, i+1), nil
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// scanString reads the string starting with the quote at b[i] and returns the
// index after its closing quote.
func scanString(b []byte, i int) (int, error) {
	start := i
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return i, syntaxErr(i, "unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, syntaxErr(i, "invalid \\u escape")
				}
				i += 6
			default:
				return i, syntaxErr(i, "invalid escape")
			}
		case c < 0x20:
			return i, syntaxErr(i, "control character in a string")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, syntaxErr(i, "invalid UTF-8")
			}
			i += size
		}
	}
	return start, syntaxErr(start, "unterminated string")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber reads a JSON number at b[i]: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, error) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return start, syntaxErr(start, "expected a value")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, syntaxErr(i, "invalid number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, syntaxErr(i, "invalid number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, nil
}
