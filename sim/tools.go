package sim

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Tool calls. The simulator behaves like vLLM started with
// --enable-auto-tool-choice --tool-call-parser hermes: with tools and a
// tool_choice other than "none", every choice calls one tool (the named one, or
// the first) with arguments made up from the tool's parameters schema. "auto" is
// parsed from hermes' <tool_call>...</tool_call> output; "required" and a named
// choice run on guided decoding, as vLLM's parsers that support them do.

// toolMode is how the request chose its tool.
type toolMode int

const (
	toolAuto     toolMode = iota
	toolRequired          // tool_choice "required": guided decoding of a list of calls
	toolNamed             // tool_choice {"type":"function","function":{"name":...}}
)

// toolPlan is the tool every choice of a request calls.
type toolPlan struct {
	mode   toolMode
	name   string
	params gjson.Result // the function's parameters schema (may not exist)
}

// planTool reads the validated tools and tool_choice of a chat request; nil means
// no tool call (no tools, or tool_choice "none" or null).
func planTool(o *object) *toolPlan {
	tools := o.get("tools")
	if !truthy(tools) {
		return nil
	}
	choice := o.get("tool_choice")
	p := &toolPlan{}
	switch {
	case choice.IsObject():
		p.mode = toolNamed
		p.name = choice.Get("function.name").Str
	case choice.Type == gjson.String && choice.Str == "auto":
		p.mode = toolAuto
	case choice.Type == gjson.String && choice.Str == "required":
		p.mode = toolRequired
	default:
		return nil
	}
	tools.ForEach(func(_, t gjson.Result) bool {
		fn := t.Get("function")
		if p.mode != toolNamed || fn.Get("name").Str == p.name {
			p.name, p.params = fn.Get("name").Str, fn.Get("parameters")
			return false
		}
		return true
	})
	return p
}

// toolArguments makes up the call's arguments as JSON, in json.dumps' layout:
// every required property of a simple type (string, number, integer, boolean, or
// an enum of those) gets a value derived from seed; a schema with any other
// required property gets {}.
func toolArguments(params gjson.Result, seed uint64, v vocab) string {
	props := params.Get("properties")
	var b []byte
	k := 0
	ok := true
	params.Get("required").ForEach(func(_, name gjson.Result) bool {
		if name.Type != gjson.String {
			ok = false
			return false
		}
		val, simple := exampleValue(props.Get(gjson.Escape(name.Str)), mix(seed+uint64(k)), v)
		if !simple {
			ok = false
			return false
		}
		if k == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ", "...)
		}
		b = appendPyJSON(b, name.Str, false)
		b = append(b, ": "...)
		b = append(b, val...)
		k++
		return true
	})
	if !ok || k == 0 {
		return "{}"
	}
	return string(append(b, '}'))
}

// exampleValue is a JSON value for a simple property schema.
func exampleValue(schema gjson.Result, h uint64, v vocab) (string, bool) {
	if enum := schema.Get("enum"); enum.IsArray() {
		first := enum.Get("0")
		switch first.Type {
		case gjson.String:
			return string(appendPyJSON(nil, first.Str, false)), true
		case gjson.Number, gjson.True, gjson.False:
			return first.Raw, true
		}
		return "", false
	}
	typ := schema.Get("type")
	if typ.IsArray() { // ["string", "null"]: the first non-null type
		var first string
		typ.ForEach(func(_, t gjson.Result) bool {
			if t.Str != "null" {
				first = t.Str
				return false
			}
			return true
		})
		typ = gjson.Result{Type: gjson.String, Str: first}
	}
	switch typ.Str {
	case "string":
		return `"` + strings.TrimSpace(v.words[h%uint64(len(v.words))]) + `"`, true
	case "integer":
		return strconv.FormatUint(h%100, 10), true
	case "number":
		return pyFloatStr(float64(h%1000) / 10), true
	case "boolean":
		return "true", true
	}
	return "", false
}

// splitArguments cuts an arguments string into the pieces the model generates,
// one token each: each piece starts at a space (the first at the start).
func splitArguments(args string) []string {
	var pieces []string
	start := 0
	for i := 1; i < len(args); i++ {
		if args[i] == ' ' {
			pieces = append(pieces, args[start:i])
			start = i
		}
	}
	return append(pieces, args[start:])
}

// toolTokenKind is what one token of a tool call puts in a streamed delta.
type toolTokenKind int

const (
	tokSilent       toolTokenKind = iota // nothing: the parser is still buffering
	tokName                              // id, type, index and function.name (hermes)
	tokNameArgs                          // id, type, index, name and the first arguments piece
	tokArgs                              // an arguments piece
	tokArgsNullName                      // an arguments piece with "name": null (required)
)

type toolToken struct {
	kind toolTokenKind
	text string // the arguments piece, for the kinds that carry one
	raw  string // the token's text in the model's raw output
}

// toolCall is one choice's planned call.
type toolCall struct {
	mode   toolMode
	id     string // chatcmpl-tool-<16 hex>
	name   string
	args   string
	tokens []toolToken
}

// newToolCall plans the tokens of p's call with seed-made arguments.
func newToolCall(p *toolPlan, seed uint64, v vocab) *toolCall {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	c := &toolCall{mode: p.mode, id: "chatcmpl-tool-" + hex.EncodeToString(b[:]), name: p.name,
		args: toolArguments(p.params, seed, v)}
	pieces := splitArguments(c.args)
	quotedName := string(appendPyJSON(nil, p.name, false))
	switch p.mode {
	case toolAuto:
		c.tokens = append(c.tokens,
			toolToken{kind: tokSilent, raw: "<tool_call>\n"},
			toolToken{kind: tokName, raw: `{"name": ` + quotedName + `, "arguments": `})
		for _, piece := range pieces {
			c.tokens = append(c.tokens, toolToken{kind: tokArgs, text: piece, raw: piece})
		}
		c.tokens = append(c.tokens, toolToken{kind: tokSilent, raw: "}\n</tool_call>"})
	case toolNamed:
		for i, piece := range pieces {
			kind := tokArgs
			if i == 0 {
				kind = tokNameArgs
			}
			c.tokens = append(c.tokens, toolToken{kind: kind, text: piece, raw: piece})
		}
	case toolRequired:
		c.tokens = append(c.tokens, toolToken{kind: tokSilent, raw: `[{"name": ` + quotedName + `, "parameters": `})
		for i, piece := range pieces {
			kind := tokArgsNullName
			if i == 0 {
				kind = tokNameArgs
			}
			c.tokens = append(c.tokens, toolToken{kind: kind, text: piece, raw: piece})
		}
		c.tokens = append(c.tokens, toolToken{kind: tokSilent, raw: "}]"})
	}
	return c
}

// finishReason is vLLM's finish_reason for a call that was generated whole:
// "stop" for a named choice (as OpenAI does), "tool_calls" otherwise.
func (c *toolCall) finishReason() string {
	if c.mode == toolNamed {
		return "stop"
	}
	return "tool_calls"
}

// rawText is the model's raw output up to token k (exclusive).
func (c *toolCall) rawText(k int) string {
	var b strings.Builder
	for _, t := range c.tokens[:k] {
		b.WriteString(t.raw)
	}
	return b.String()
}

// partialArgs is the arguments text of the first k tokens.
func (c *toolCall) partialArgs(k int) string {
	var b strings.Builder
	for _, t := range c.tokens[:k] {
		b.WriteString(t.text)
	}
	return b.String()
}
