package runpod

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// MergeItems joins two consecutive output items of one job into one, as if the
// batch policy had cut them as one: a consumer slower than the engine (RunPod's
// stream POSTs far away) merges what was produced while it was busy, so that its
// items follow its own pace and never queue up. Items are self-describing:
//
//   - native items {"choices":[{"tokens":[...]}, ...],"usage":{...}}: each
//     choice's tokens are joined, and b's usage (the later, cumulative one) kept;
//   - RAW_OPENAI_OUTPUT items, strings of whole SSE events: concatenated;
//   - parsed OpenAI items, lists of chunks: concatenated.
//
// A nil a gives b, and a nil b gives a, as they are; items of any other kind
// are an error.
func MergeItems(a, b json.RawMessage) (json.RawMessage, error) {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	switch {
	case len(a) == 0:
		return b, nil
	case len(b) == 0:
		return a, nil
	case a[0] != b[0]:
		return nil, fmt.Errorf("merge items: %q and %q items do not mix", a[0], b[0])
	}
	switch a[0] {
	case '"':
		var sa, sb string
		if err := json.Unmarshal(a, &sa); err != nil {
			return nil, fmt.Errorf("merge items: %w", err)
		}
		if err := json.Unmarshal(b, &sb); err != nil {
			return nil, fmt.Errorf("merge items: %w", err)
		}
		return json.Marshal(sa + sb)
	case '[':
		var la, lb []json.RawMessage
		if err := json.Unmarshal(a, &la); err != nil {
			return nil, fmt.Errorf("merge items: %w", err)
		}
		if err := json.Unmarshal(b, &lb); err != nil {
			return nil, fmt.Errorf("merge items: %w", err)
		}
		return json.Marshal(append(la, lb...))
	case '{':
		var na, nb nativeItem
		if err := json.Unmarshal(a, &na); err != nil {
			return nil, fmt.Errorf("merge items: %w", err)
		}
		if err := json.Unmarshal(b, &nb); err != nil {
			return nil, fmt.Errorf("merge items: %w", err)
		}
		if na.Choices == nil || nb.Choices == nil {
			return nil, errors.New("merge items: objects that are not native items")
		}
		for len(na.Choices) < len(nb.Choices) {
			na.Choices = append(na.Choices, nativeChoice{Tokens: []string{}})
		}
		for i, c := range nb.Choices {
			na.Choices[i].Tokens = append(na.Choices[i].Tokens, c.Tokens...)
		}
		na.Usage = nb.Usage
		return json.Marshal(na)
	}
	return nil, fmt.Errorf("merge items: %q items cannot be merged", a[0])
}
