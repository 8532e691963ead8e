package engine

import (
	"strconv"
	"strings"
)

// PathError is an engine path CleanPath refused. Its message is safe to show to
// a client.
type PathError struct {
	Path   string // as given, quoted in the message
	Reason string
}

func (e *PathError) Error() string {
	p := e.Path
	if len(p) > 200 {
		p = p[:200] + "..."
	}
	return "invalid engine path " + strconv.Quote(p) + ": " + e.Reason
}

// CleanPath is the one gate of every path the worker sends on the engine's
// request line: the /v1/* pass-through, a job's openai_route and its route
// (contract section 8). p is an escaped path, optionally with a ?query. It
// refuses control characters (raw, or percent-encoded in the path), dot
// segments ("." and "..", also as %2e), encoded slashes (%2f, and %5c and a
// raw backslash, which some servers read as one), a fragment, and malformed
// percent-encoding; it escapes the bytes a request line cannot carry raw
// (space, quotes, non-ASCII, ...). What it returns can be written after the
// method verbatim, and the engine's router sees the same segments the worker
// checked.
func CleanPath(p string) (string, error) {
	fail := func(reason string) (string, error) { return "", &PathError{Path: p, Reason: reason} }
	if !strings.HasPrefix(p, "/") {
		return fail("it must start with /")
	}
	path, query, hasQuery := strings.Cut(p, "?")
	var b strings.Builder
	b.Grow(len(p))
	dots, seg := 0, 0 // the current segment's (decoded) dots and length
	// A segment that decodes to "." or ".." is a dot segment.
	endSegment := func() bool { return !(seg > 0 && dots == seg && seg <= 2) }
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '/':
			if !endSegment() {
				return fail("dot segments (. and ..) are not allowed")
			}
			b.WriteByte('/')
			dots, seg = 0, 0
			continue
		case c == '%':
			if i+2 >= len(path) || !isHexDigit(path[i+1]) || !isHexDigit(path[i+2]) {
				return fail("malformed percent-encoding")
			}
			d := unhex(path[i+1])<<4 | unhex(path[i+2])
			switch {
			case d < 0x20 || d == 0x7f:
				return fail("control characters are not allowed")
			case d == '/' || d == '\\':
				return fail("encoded slashes are not allowed")
			case d == '.':
				dots++
			}
			seg++
			b.WriteString(path[i : i+3])
			i += 2
			continue
		case c < 0x20 || c == 0x7f:
			return fail("control characters are not allowed")
		case c == '\\':
			return fail("backslashes are not allowed")
		case c == '#':
			return fail("a fragment (#) is not allowed")
		case c == '.':
			dots++
		}
		seg++
		appendEscaped(&b, c)
	}
	if !endSegment() {
		return fail("dot segments (. and ..) are not allowed")
	}
	if hasQuery {
		b.WriteByte('?')
		for i := 0; i < len(query); i++ {
			switch c := query[i]; {
			case c < 0x20 || c == 0x7f:
				return fail("control characters are not allowed")
			case c == '#':
				return fail("a fragment (#) is not allowed")
			case c == '%' && (i+2 >= len(query) || !isHexDigit(query[i+1]) || !isHexDigit(query[i+2])):
				return fail("malformed percent-encoding")
			default:
				appendEscaped(&b, c)
			}
		}
	}
	return b.String(), nil
}

// appendEscaped writes c, percent-encoded when a request-target may not carry
// it raw (RFC 3986's unreserved, sub-delims, ':', '@', '/', '?' and '%' pass).
func appendEscaped(b *strings.Builder, c byte) {
	if c >= 0x80 || c <= ' ' || strings.IndexByte(`"<>\^`+"`{|}", c) >= 0 {
		const hex = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
		return
	}
	b.WriteByte(c)
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
