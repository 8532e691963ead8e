package sim

import (
	"math"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestPyFloat(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		want string
	}{
		{2, "2.0"}, {0.1, "0.1"}, {-0.5, "-0.5"}, {1e15, "1000000000000000.0"}, {1e16, "1e+16"},
		{1.5e16, "1.5e+16"}, {0.0001, "0.0001"}, {0.00001, "1e-05"}, {1.5e-7, "1.5e-07"}, {1e22, "1e+22"},
		{123456789.123, "123456789.123"}, {math.Copysign(0, -1), "-0.0"}, {5e-324, "5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"}, {math.Inf(1), "inf"}, {math.Inf(-1), "-inf"}, {math.NaN(), "nan"},
	} {
		if got := pyFloatStr(tt.f); got != tt.want {
			t.Errorf("pyFloat(%v) = %s; want %s", tt.f, got, tt.want)
		}
	}
}

func TestPyRepr(t *testing.T) {
	for _, tt := range []struct{ json, want string }{
		{`"hot"`, `'hot'`},
		{`"it's"`, `"it's"`},
		{`"a\"b'c"`, `'a"b\'c'`},
		{`"tab\t nl\n back\\"`, `'tab\t nl\n back\\'`},
		{`"\u0000\u007f\u00a0\u2028é😀"`, `'\x00\x7f\xa0\u2028é😀'`},
		{`[1, 2.50, -0, 1E3, true, false, null, {}]`, `[1, 2.5, 0, 1000.0, True, False, None, {}]`},
		{`{"b": 1, "a": [], "b": 2}`, `{'b': 2, 'a': []}`}, // json.loads: first position, last value
		{`123456789012345678901234567890`, `123456789012345678901234567890`},
	} {
		if got := string(pyRepr(nil, gjson.Parse(tt.json))); got != tt.want {
			t.Errorf("repr(%s) = %s; want %s", tt.json, got, tt.want)
		}
	}
}

func TestPyJSONCheck(t *testing.T) {
	for _, tt := range []struct {
		body, msg string
		pos       int
	}{
		{`{"a": [1, {"b": null}], "c": "\u00e9\n"}`, "", 0},
		{``, "Expecting value", 0},
		{`  `, "Expecting value", 2},
		{`{`, "Expecting property name enclosed in double quotes", 1},
		{`[`, "Expecting value", 1},
		{`{"a":`, "Expecting value", 5},
		{`{"a":1`, "Expecting ',' delimiter", 6},
		{`{"a":1,}`, "Expecting property name enclosed in double quotes", 7},
		{`[1,]`, "Expecting value", 3},
		{`[1 2]`, "Expecting ',' delimiter", 3},
		{`{"a" 1}`, "Expecting ':' delimiter", 5},
		{`{"a":1}x`, "Extra data", 7},
		{`01`, "Extra data", 1},
		{`1.`, "Extra data", 1},
		{`-`, "Expecting value", 0},
		{`nul`, "Expecting value", 0},
		{`NaN`, "Expecting value", 0}, // Python accepts it; the simulator does not
		{`"abc`, "Unterminated string starting at", 0},
		{`["a\`, "Unterminated string starting at", 1},
		{"\"a\x01\"", "Invalid control character at", 2},
		{`"\q"`, `Invalid \escape`, 1},
		{`"\u12"`, `Invalid \uXXXX escape`, 2},
		{`"\u12x4"`, `Invalid \uXXXX escape`, 2},
		{`["é", x]`, "Expecting value", 6}, // characters, not bytes
	} {
		e := pyJSONCheck([]byte(tt.body))
		switch {
		case tt.msg == "" && e != nil:
			t.Errorf("%q: %+v; want valid", tt.body, e)
		case tt.msg != "" && (e == nil || e.msg != tt.msg || e.pos != tt.pos):
			t.Errorf("%q: %+v; want %q at %d", tt.body, e, tt.msg, tt.pos)
		}
	}
	if e := pyJSONCheck([]byte(strings.Repeat("[", 1001) + strings.Repeat("]", 1001))); e == nil || !e.tooDeep {
		t.Errorf("1001 levels: %+v; want too deep", e)
	}
	if e := pyJSONCheck([]byte(strings.Repeat("[", 1000) + strings.Repeat("]", 1000))); e != nil {
		t.Errorf("1000 levels: %+v; want valid", e)
	}
}

func TestSanitize(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain message ", "plain message"},
		{"see /tmp/x/y for details", "see <path> for details"},
		{"failed in /a/b.py today", "failed in <path> today"},
		{"one /segment.txt stays", "one /segment.txt stays"},
		{"<Foo object at 0x7f00aa>", "<Foo object>"},
		{"boom\n  File \"x.py\", line 3, in f\n    raise", "boom"},
	} {
		if got := sanitize(tt.in); got != tt.want {
			t.Errorf("sanitize(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
