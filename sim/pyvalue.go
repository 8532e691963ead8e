package sim

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// vLLM's error messages quote request values the way Python prints them: pydantic's
// error dicts with repr(), vLLM's own messages with str() or f-strings. This file
// renders a JSON value as the Python value json.loads would make of it.

// object is a JSON object as Python's json.loads builds it: a duplicated key keeps
// its first position and its last value.
type object struct {
	keys []string
	vals map[string]gjson.Result
}

// newObject reads the members of the JSON object v.
func newObject(v gjson.Result) *object {
	o := &object{vals: map[string]gjson.Result{}}
	v.ForEach(func(k, val gjson.Result) bool {
		if _, dup := o.vals[k.Str]; !dup {
			o.keys = append(o.keys, k.Str)
		}
		o.vals[k.Str] = val
		return true
	})
	return o
}

// get is data.get(key): the value, or a non-existing Result.
func (o *object) get(key string) gjson.Result { return o.vals[key] }

// has is `key in data`.
func (o *object) has(key string) bool {
	_, ok := o.vals[key]
	return ok
}

// isNone reports whether v is absent or null: data.get(key) is None.
func isNone(v gjson.Result) bool { return !v.Exists() || v.Type == gjson.Null }

// isIntLiteral reports whether a JSON number is an integer literal, which Python's
// json module turns into an int (anything with a fraction or exponent is a float).
func isIntLiteral(v gjson.Result) bool {
	return v.Type == gjson.Number && !strings.ContainsAny(v.Raw, ".eE")
}

// bigInt is the Python int of an integer literal.
func bigInt(v gjson.Result) *big.Int {
	i, ok := new(big.Int).SetString(v.Raw, 10)
	if !ok {
		return new(big.Int)
	}
	return i
}

// truthy is Python's bool(value).
func truthy(v gjson.Result) bool {
	switch v.Type {
	case gjson.Null:
		return false
	case gjson.False:
		return false
	case gjson.True:
		return true
	case gjson.Number:
		return v.Num != 0
	case gjson.String:
		return v.Str != ""
	}
	if !v.Exists() {
		return false
	}
	empty := true
	v.ForEach(func(_, _ gjson.Result) bool { empty = false; return false })
	return !empty
}

// pyNumber is a JSON number as Python holds it, an int or a float, for
// comparisons in vLLM's before-validators (where true and false count as 1 and 0).
func pyNumber(v gjson.Result) (float64, bool) {
	switch v.Type {
	case gjson.Number:
		return v.Num, true
	case gjson.True:
		return 1, true
	case gjson.False:
		return 0, true
	}
	return 0, false
}

// pyTypeName is type(value).__name__.
func pyTypeName(v gjson.Result) string {
	switch {
	case !v.Exists(), v.Type == gjson.Null:
		return "NoneType"
	case v.Type == gjson.True, v.Type == gjson.False:
		return "bool"
	case v.Type == gjson.String:
		return "str"
	case isIntLiteral(v):
		return "int"
	case v.Type == gjson.Number:
		return "float"
	case v.IsArray():
		return "list"
	}
	return "dict"
}

// pyRepr appends repr(value).
func pyRepr(dst []byte, v gjson.Result) []byte {
	switch {
	case !v.Exists(), v.Type == gjson.Null:
		return append(dst, "None"...)
	case v.Type == gjson.True:
		return append(dst, "True"...)
	case v.Type == gjson.False:
		return append(dst, "False"...)
	case v.Type == gjson.String:
		return pyStrRepr(dst, v.Str)
	case isIntLiteral(v):
		if v.Raw == "-0" {
			return append(dst, '0')
		}
		return append(dst, v.Raw...)
	case v.Type == gjson.Number:
		return pyFloat(dst, v.Num)
	case v.IsArray():
		dst = append(dst, '[')
		first := true
		v.ForEach(func(_, item gjson.Result) bool {
			if !first {
				dst = append(dst, ", "...)
			}
			first = false
			dst = pyRepr(dst, item)
			return true
		})
		return append(dst, ']')
	}
	return pyDictRepr(dst, newObject(v))
}

// pyDictRepr appends repr(dict).
func pyDictRepr(dst []byte, o *object) []byte {
	dst = append(dst, '{')
	for i, k := range o.keys {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = pyStrRepr(dst, k)
		dst = append(dst, ": "...)
		dst = pyRepr(dst, o.vals[k])
	}
	return append(dst, '}')
}

// pyStr is str(value): a string as it is, anything else as its repr.
func pyStr(v gjson.Result) string {
	if v.Type == gjson.String {
		return v.Str
	}
	return string(pyRepr(nil, v))
}

// pyStrRepr appends repr(s) as CPython writes it: single quotes unless s holds a
// single quote and no double quote; non-printable characters escaped.
func pyStrRepr(dst []byte, s string) []byte {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	const hex = "0123456789abcdef"
	dst = append(dst, quote)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == rune(quote) || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r < 0x20 || r == 0x7f:
			dst = append(dst, '\\', 'x', hex[r>>4], hex[r&0xf])
		case r < utf8.RuneSelf || unicode.IsPrint(r):
			dst = utf8.AppendRune(dst, r)
		case r < 0x100:
			dst = append(dst, '\\', 'x', hex[r>>4], hex[r&0xf])
		case r < 0x10000:
			dst = append(dst, '\\', 'u', hex[r>>12], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		default:
			dst = append(dst, `\U000`...)
			dst = append(dst, hex[r>>16&0xf], hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		}
	}
	return append(dst, quote)
}

// pyFloat appends repr(f): the shortest digits that round-trip, in fixed notation
// while the decimal exponent is in (-4, 16], else in scientific notation with a
// signed, at least two-digit exponent (1e+16, 1.5e-05).
func pyFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	case math.IsNaN(f):
		return append(dst, "nan"...)
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±XX
	if e[0] == '-' {
		dst = append(dst, '-')
		e = e[1:]
	}
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	decpt := x + 1 // the value is 0.<digits> * 10^decpt
	switch {
	case decpt > 16 || decpt <= -4:
		dst = append(dst, digits[0])
		if len(digits) > 1 {
			dst = append(append(dst, '.'), digits[1:]...)
		}
		dst = append(dst, 'e')
		if x < 0 {
			dst, x = append(dst, '-'), -x
		} else {
			dst = append(dst, '+')
		}
		if x < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(x), 10)
	case decpt <= 0:
		dst = append(dst, "0."...)
		dst = append(dst, strings.Repeat("0", -decpt)...)
		return append(dst, digits...)
	case decpt >= len(digits):
		dst = append(dst, digits...)
		dst = append(dst, strings.Repeat("0", decpt-len(digits))...)
		return append(dst, ".0"...)
	}
	dst = append(dst, digits[:decpt]...)
	return append(append(dst, '.'), digits[decpt:]...)
}

// pyFloatStr is str(f) for a float.
func pyFloatStr(f float64) string { return string(pyFloat(nil, f)) }

// appendPyJSON appends s as Python's json.dumps writes a string: \b and \f have
// their short escapes; with ascii (json.dumps' default ensure_ascii) every
// non-ASCII character is a \u escape (a surrogate pair beyond the BMP).
func appendPyJSON(dst []byte, s string, ascii bool) []byte {
	const hex = "0123456789abcdef"
	u4 := func(dst []byte, r rune) []byte {
		return append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			switch {
			case !ascii:
				dst = utf8.AppendRune(dst, r)
			case r >= 0x10000:
				r1, r2 := utf16Surrogates(r)
				dst = u4(u4(dst, r1), r2)
			default:
				dst = u4(dst, r)
			}
			continue
		}
		i++
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = u4(dst, rune(c))
		}
	}
	return append(dst, '"')
}

func utf16Surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}
