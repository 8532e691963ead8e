package sim

import (
	"math"
	"math/big"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// A small model of pydantic v2's lax validation of the request models, enough to
// report the errors pydantic would, in its words, at its locations, in its order
// (fields in the order the model defines them; every error, not just the first).

// pydErr is one pydantic error dict: {'type', 'loc', 'msg', 'input'[, 'ctx']}.
type pydErr struct {
	typ   string
	loc   []any // string and int segments, starting with "body"
	msg   string
	input []byte // repr of the input
	ctx   []byte // repr of the ctx dict; nil when the error has none
	plain string // set: a bare string in the error list (vLLM's Content-Type check)
}

func (e *pydErr) repr(dst []byte) []byte {
	if e.plain != "" {
		return append(dst, e.plain...)
	}
	dst = append(dst, "{'type': "...)
	dst = pyStrRepr(dst, e.typ)
	dst = append(dst, ", 'loc': ("...)
	for i, seg := range e.loc {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		switch seg := seg.(type) {
		case int:
			dst = strconv.AppendInt(dst, int64(seg), 10)
		case string:
			dst = pyStrRepr(dst, seg)
		}
	}
	if len(e.loc) == 1 {
		dst = append(dst, ',')
	}
	dst = append(dst, "), 'msg': "...)
	dst = pyStrRepr(dst, e.msg)
	dst = append(dst, ", 'input': "...)
	dst = append(dst, e.input...)
	if e.ctx != nil {
		dst = append(dst, ", 'ctx': "...)
		dst = append(dst, e.ctx...)
	}
	return append(dst, '}')
}

// internalLoc reports whether a loc segment is one of pydantic's own (a union
// branch or a validator wrapper), which vLLM leaves out of param.
func internalLoc(seg string) bool {
	if strings.ContainsAny(seg, "[](){}") {
		return true
	}
	switch strings.ToLower(seg) {
	case "function-wrap", "function-after", "function-before", "function-plain", "json-or-python",
		"lax-or-strict", "chain", "default", "nullable", "tagged-union", "union", "call", "arguments",
		"is-instance", "is-subclass", "callable", "str", "int", "float", "bool", "bytes", "bytearray",
		"list", "tuple", "dict", "set", "frozenset", "complex", "none", "nonetype":
		return true
	}
	return false
}

// errValidation is vLLM's answer to a RequestValidationError holding errs.
func errValidation(errs []pydErr) *openai.Error {
	e := &openai.Error{Status: http.StatusBadRequest, Type: "Bad Request", Message: "Validation error"}
	if len(errs) == 0 {
		return e
	}
	label := " validation errors:"
	if len(errs) == 1 {
		label = " validation error:"
	}
	b := strconv.AppendInt(nil, int64(len(errs)), 10)
	b = append(b, label...)
	for i := range errs {
		b = append(b, "\n  "...)
		b = errs[i].repr(b)
	}
	e.Message = strings.TrimRight(string(b), " \t\n")
	if first := errs[0]; first.plain == "" && len(first.loc) > 0 {
		var parts, all []string
		for _, seg := range first.loc {
			s := ""
			switch seg := seg.(type) {
			case int:
				s = strconv.Itoa(seg)
			case string:
				s = seg
			}
			all = append(all, s)
			if !internalLoc(s) {
				parts = append(parts, s)
			}
		}
		if len(parts) == 0 {
			parts = all
		}
		e.Param = strings.Join(parts, ".")
	}
	return e
}

// checker collects the errors of one validation.
type checker struct{ errs []pydErr }

func (c *checker) add(typ string, loc []any, msg string, input gjson.Result, ctx []byte) {
	c.errs = append(c.errs, pydErr{typ: typ, loc: loc, msg: msg, input: pyRepr(nil, input), ctx: ctx})
}

// missing adds a "missing" error, whose input is the whole model's dict.
func (c *checker) missing(loc []any, whole func() []byte) {
	c.errs = append(c.errs, pydErr{typ: "missing", loc: loc, msg: "Field required", input: whole()})
}

// at returns loc extended by seg, never sharing loc's backing array.
func at(loc []any, seg ...any) []any {
	out := make([]any, 0, len(loc)+len(seg))
	return append(append(out, loc...), seg...)
}

// validator checks one value at loc, adding errors to c; it reports success.
type validator func(c *checker, v gjson.Result, loc []any) bool

// field is one field of a model, in definition order.
type field struct {
	name     string
	required bool
	check    validator
}

// checkModel validates o's fields as pydantic validates a model (whose input is
// the dict o; whole renders it, for "missing" errors).
func checkModel(c *checker, o *object, whole func() []byte, loc []any, fields []field) bool {
	ok := true
	for _, f := range fields {
		v, present := o.vals[f.name]
		if !present {
			if f.required {
				c.missing(at(loc, f.name), whole)
				ok = false
			}
			continue
		}
		if !f.check(c, v, at(loc, f.name)) {
			ok = false
		}
	}
	return ok
}

// nullable accepts null, else applies check.
func nullable(check validator) validator {
	return func(c *checker, v gjson.Result, loc []any) bool {
		return v.Type == gjson.Null || check(c, v, loc)
	}
}

// model validates a nested model (one with extra="allow", like vLLM's).
func model(fields ...field) validator {
	return func(c *checker, v gjson.Result, loc []any) bool {
		if !v.IsObject() {
			c.add("model_attributes_type", loc, "Input should be a valid dictionary or object to extract fields from", v, nil)
			return false
		}
		return checkModel(c, newObject(v), func() []byte { return pyRepr(nil, v) }, loc, fields)
	}
}

func vAny(*checker, gjson.Result, []any) bool { return true }

func vFloat(c *checker, v gjson.Result, loc []any) bool {
	switch v.Type {
	case gjson.Number, gjson.True, gjson.False:
		return true
	case gjson.String:
		if _, ok := parsePyFloat(v.Str); ok {
			return true
		}
		c.add("float_parsing", loc, "Input should be a valid number, unable to parse string as a number", v, nil)
		return false
	}
	c.add("float_type", loc, "Input should be a valid number", v, nil)
	return false
}

// vFloatRange is a float with ge and le bounds.
func vFloatRange(ge, le float64) validator {
	return func(c *checker, v gjson.Result, loc []any) bool {
		if !vFloat(c, v, loc) {
			return false
		}
		// The bounds are written as ints in the model, and printed so.
		f, _ := floatOf(v)
		switch lo, hi := strconv.FormatFloat(ge, 'f', -1, 64), strconv.FormatFloat(le, 'f', -1, 64); {
		case f < ge:
			c.add("greater_than_equal", loc, "Input should be greater than or equal to "+lo, v, []byte("{'ge': "+lo+"}"))
			return false
		case f > le:
			c.add("less_than_equal", loc, "Input should be less than or equal to "+hi, v, []byte("{'le': "+hi+"}"))
			return false
		}
		return true
	}
}

func vInt(c *checker, v gjson.Result, loc []any) bool {
	switch v.Type {
	case gjson.True, gjson.False:
		return true
	case gjson.Number:
		switch {
		case isIntLiteral(v):
			return true
		case math.IsInf(v.Num, 0) || math.IsNaN(v.Num):
			c.add("finite_number", loc, "Input should be a finite number", v, nil)
			return false
		case v.Num != math.Trunc(v.Num):
			c.add("int_from_float", loc, "Input should be a valid integer, got a number with a fractional part", v, nil)
			return false
		}
		return true
	case gjson.String:
		if _, ok := parsePyIntStr(v.Str); ok {
			return true
		}
		c.add("int_parsing", loc, "Input should be a valid integer, unable to parse string as an integer", v, nil)
		return false
	}
	c.add("int_type", loc, "Input should be a valid integer", v, nil)
	return false
}

// vIntRange is an int with optional ge and le bounds (nil: none).
func vIntRange(ge, le *big.Int) validator {
	return func(c *checker, v gjson.Result, loc []any) bool {
		if !vInt(c, v, loc) {
			return false
		}
		i := intOf(v)
		switch {
		case ge != nil && i.Cmp(ge) < 0:
			c.add("greater_than_equal", loc, "Input should be greater than or equal to "+ge.String(), v,
				[]byte("{'ge': "+ge.String()+"}"))
			return false
		case le != nil && i.Cmp(le) > 0:
			c.add("less_than_equal", loc, "Input should be less than or equal to "+le.String(), v,
				[]byte("{'le': "+le.String()+"}"))
			return false
		}
		return true
	}
}

// int64Range is Field(ge=-2**63, le=2**63-1).
func int64Range() validator {
	return vIntRange(big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64))
}

func vBool(c *checker, v gjson.Result, loc []any) bool {
	if _, ok := boolOf(v); ok {
		return true
	}
	switch v.Type {
	case gjson.Number, gjson.String:
		c.add("bool_parsing", loc, "Input should be a valid boolean, unable to interpret input", v, nil)
	default:
		c.add("bool_type", loc, "Input should be a valid boolean", v, nil)
	}
	return false
}

func vStr(c *checker, v gjson.Result, loc []any) bool {
	if v.Type == gjson.String {
		return true
	}
	c.add("string_type", loc, "Input should be a valid string", v, nil)
	return false
}

// vStrMin is a string of at least n characters.
func vStrMin(n int) validator {
	return func(c *checker, v gjson.Result, loc []any) bool {
		if !vStr(c, v, loc) {
			return false
		}
		if len([]rune(v.Str)) < n {
			s := "s"
			if n == 1 {
				s = ""
			}
			c.add("string_too_short", loc, "String should have at least "+strconv.Itoa(n)+" character"+s, v,
				[]byte("{'min_length': "+strconv.Itoa(n)+"}"))
			return false
		}
		return true
	}
}

// vLiteral is Literal[values...].
func vLiteral(values ...string) validator {
	quoted := make([]string, len(values))
	for i, s := range values {
		quoted[i] = string(pyStrRepr(nil, s))
	}
	expected := quoted[len(quoted)-1]
	if len(quoted) > 1 {
		expected = strings.Join(quoted[:len(quoted)-1], ", ") + " or " + expected
	}
	return func(c *checker, v gjson.Result, loc []any) bool {
		if v.Type == gjson.String {
			for _, s := range values {
				if v.Str == s {
					return true
				}
			}
		}
		c.add("literal_error", loc, "Input should be "+expected, v, append(pyStrRepr([]byte("{'expected': "), expected), '}'))
		return false
	}
}

// vList is list[item] with at most maxLen items (0: no bound).
func vList(item validator, maxLen int) validator {
	return func(c *checker, v gjson.Result, loc []any) bool {
		if !v.IsArray() {
			c.add("list_type", loc, "Input should be a valid list", v, nil)
			return false
		}
		ok, n := true, 0
		v.ForEach(func(_, it gjson.Result) bool {
			if !item(c, it, at(loc, n)) {
				ok = false
			}
			n++
			return true
		})
		if maxLen > 0 && n > maxLen {
			s := "s"
			if maxLen == 1 {
				s = ""
			}
			c.add("too_long", loc, "List should have at most "+strconv.Itoa(maxLen)+" item"+s+" after validation, not "+strconv.Itoa(n), v,
				[]byte("{'field_type': 'List', 'max_length': "+strconv.Itoa(maxLen)+", 'actual_length': "+strconv.Itoa(n)+"}"))
			return false
		}
		return ok
	}
}

// vDict is dict[str, value].
func vDict(value validator) validator {
	return func(c *checker, v gjson.Result, loc []any) bool {
		if !v.IsObject() {
			c.add("dict_type", loc, "Input should be a valid dictionary", v, nil)
			return false
		}
		o, ok := newObject(v), true
		for _, k := range o.keys {
			if !value(c, o.vals[k], at(loc, k)) {
				ok = false
			}
		}
		return ok
	}
}

// branch is one member of a union and the label pydantic gives it in loc.
type branch struct {
	label string
	check validator
}

// union is pydantic's smart union: valid when a member is; otherwise every
// member's errors, each under its label.
func union(branches ...branch) validator {
	return func(c *checker, v gjson.Result, loc []any) bool {
		var all []pydErr
		for _, b := range branches {
			var bc checker
			if b.check(&bc, v, at(loc, b.label)) {
				return true
			}
			all = append(all, bc.errs...)
		}
		c.errs = append(c.errs, all...)
		return false
	}
}
