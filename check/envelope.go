package check

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// envelope is the error of {"error":{"message","type","param","code"}}.
type envelope struct {
	Message string
	Type    string
}

// checkEnvelope checks that raw is an error in the OpenAI envelope
// {"error":{"message","type","param","code"}} (message and type strings,
// param and code present), which the worker passes to its clients and reads
// an engine's errors in. It names the old flat {"object":"error",...} shape
// of vLLM before v0.10.2 when it sees it.
func checkEnvelope(raw []byte) (envelope, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return envelope{}, fmt.Errorf("the error is not a JSON object (%v): %s", err, quote(raw))
	}
	inner, ok := top["error"]
	if !ok {
		if string(bytes.TrimSpace(top["object"])) == `"error"` {
			return envelope{}, fmt.Errorf(`the error has the flat shape {"object":"error","message":...} of vLLM before v0.10.2, `+
				`not the envelope {"error":{"message","type","param","code"}}: %s`, quote(raw))
		}
		return envelope{}, fmt.Errorf(`the error is not in the envelope {"error":{"message","type","param","code"}}: %s`, quote(raw))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(inner, &fields); err != nil {
		return envelope{}, fmt.Errorf(`"error" is not an object: %s`, quote(raw))
	}
	var e envelope
	var missing []string
	if json.Unmarshal(fields["message"], &e.Message) != nil || e.Message == "" {
		missing = append(missing, "message (a string)")
	}
	if json.Unmarshal(fields["type"], &e.Type) != nil || e.Type == "" {
		missing = append(missing, "type (a string)")
	}
	for _, k := range []string{"param", "code"} {
		if _, ok := fields[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return e, fmt.Errorf("the error envelope lacks %v: %s", missing, quote(raw))
	}
	return e, nil
}

// isErrorEvent reports whether an event's payload is an error, in the
// envelope or the flat shape.
func isErrorEvent(payload []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(payload, &top) != nil {
		return false
	}
	_, nested := top["error"]
	return nested || string(bytes.TrimSpace(top["object"])) == `"error"`
}
