package runpod

import (
	"encoding/json"
	"testing"
)

func TestMergeItems(t *testing.T) {
	tests := []struct {
		name, a, b, want string
		err              bool
	}{
		{"native: tokens joined per choice, the later usage kept",
			`{"choices":[{"tokens":["a","b"]},{"tokens":["x"]}],"usage":{"input":3,"output":3}}`,
			`{"choices":[{"tokens":["c"]},{"tokens":["y","z"]}],"usage":{"input":3,"output":6}}`,
			`{"choices":[{"tokens":["a","b","c"]},{"tokens":["x","y","z"]}],"usage":{"input":3,"output":6}}`, false},
		{"native: a choice only the later item has",
			`{"choices":[{"tokens":["a"]}],"usage":{"output":1}}`,
			`{"choices":[{"tokens":[]},{"tokens":["q"]}],"usage":{"input":2,"output":2}}`,
			`{"choices":[{"tokens":["a"]},{"tokens":["q"]}],"usage":{"input":2,"output":2}}`, false},
		{"native: a usage-only item",
			`{"choices":[{"tokens":["a"]}],"usage":{"output":1}}`,
			`{"choices":[{"tokens":[]}],"usage":{"input":4,"output":2}}`,
			`{"choices":[{"tokens":["a"]}],"usage":{"input":4,"output":2}}`, false},
		{"raw SSE strings: concatenated",
			`"data: {\"a\":1}\n\n"`, `"data: [DONE]\n\n"`, `"data: {\"a\":1}\n\ndata: [DONE]\n\n"`, false},
		{"chunk lists: concatenated", `[{"a":1}]`, `[{"b":2},{"c":3}]`, `[{"a":1},{"b":2},{"c":3}]`, false},
		{"nothing before", ``, `[1]`, `[1]`, false},
		{"nothing after", `"x"`, ``, `"x"`, false},
		{"kinds that do not mix", `[1]`, `"x"`, ``, true},
		{"objects that are not native items", `{"id":"cmpl-1"}`, `{"id":"cmpl-2"}`, ``, true},
		{"numbers", `1`, `2`, ``, true},
		{"broken JSON", `["x"`, `["y"]`, ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergeItems(json.RawMessage(tt.a), json.RawMessage(tt.b))
			if tt.err {
				if err == nil {
					t.Fatalf("merged into %s; want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// A job's items merged one by one give the same content as merged in any
// grouping: the sender may merge whichever items waited together.
func TestMergeItemsAssociative(t *testing.T) {
	items := []string{
		`{"choices":[{"tokens":["a"]}],"usage":{"output":1}}`,
		`{"choices":[{"tokens":["b","c"]}],"usage":{"input":5,"output":3}}`,
		`{"choices":[{"tokens":["d"]}],"usage":{"input":5,"output":4}}`,
	}
	merge := func(a, b string) string {
		m, err := MergeItems(json.RawMessage(a), json.RawMessage(b))
		if err != nil {
			t.Fatal(err)
		}
		return string(m)
	}
	left := merge(merge(items[0], items[1]), items[2])
	right := merge(items[0], merge(items[1], items[2]))
	if left != right {
		t.Errorf("(a+b)+c = %s\na+(b+c) = %s", left, right)
	}
}

func FuzzMergeItems(f *testing.F) {
	f.Add([]byte(`{"choices":[{"tokens":["a"]}],"usage":{"output":1}}`), []byte(`{"choices":[{"tokens":["b"]}],"usage":{"input":1,"output":2}}`))
	f.Add([]byte(`"data: x\n\n"`), []byte(`"data: y\n\n"`))
	f.Add([]byte(`[{"a":1}]`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		m, err := MergeItems(a, b)
		valid := func(x []byte) bool { return len(x) == 0 || json.Valid(x) }
		if err == nil && valid(a) && valid(b) && !valid(m) {
			t.Fatalf("MergeItems(%q, %q) = %q: not JSON", a, b, m)
		}
	})
}
