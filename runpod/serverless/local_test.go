package serverless

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vllm-worker/vllm-worker/sim"
)

func TestRunLocal(t *testing.T) {
	x := newHarness(t, sim.Options{}, HandlerOptions{})
	tests := []struct {
		name, job  string
		wantErr    string // "" means success
		wantResult string // a substring of the last line
		streamed   bool
	}{
		{"streamed", `{"input":{"prompt":"a b","stream":true,"sampling_params":{"max_tokens":20}}}`, "", `{"output":[`, true},
		{"whole", `{"id":"j1","input":{"prompt":"a b","sampling_params":{"max_tokens":5}}}`, "", `{"output":[`, false},
		{"openai stream", `{"input":{"openai_input":{"messages":[{"role":"user","content":"x"}],"stream":true,"max_tokens":8}}}`, "", `data: [DONE]`, true},
		{"engine error", `{"input":{"prompt":"x","sampling_params":{"sim_fault":"error_before"}}}`, "failed", `{"error":"engine error (500`, false},
		{"invalid", `{"input":{"prompt":"x","sampling_params":{"n":"two"}}}`, "sampling_params.n", `{"error":"invalid input: sampling_params.n`, false},
		{"no input", `{"id":"x"}`, `no "input"`, "", false},
		{"not json", `nope`, "test input", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := RunLocal(context.Background(), x.runner, json.RawMessage(tt.job), &out)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("RunLocal = %v; want error %q", err, tt.wantErr)
			}
			if tt.wantResult == "" {
				if out.Len() != 0 {
					t.Errorf("wrote %q; want nothing", out.String())
				}
				return
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, tt.wantResult) {
				t.Errorf("last line %s; want it to contain %s", last, tt.wantResult)
			}
			if !tt.streamed {
				if len(lines) != 1 {
					t.Errorf("%d lines; want only the result", len(lines))
				}
				return
			}
			var result struct{ Output []json.RawMessage }
			if err := json.Unmarshal([]byte(last), &result); err != nil {
				t.Fatal(err)
			}
			items := lines[:len(lines)-1]
			if len(items) < 2 || len(items) != len(result.Output) {
				t.Fatalf("%d item lines, %d items in the result; want them equal (and several)", len(items), len(result.Output))
			}
			for i, it := range items {
				if it != string(result.Output[i]) {
					t.Errorf("line %d = %s; want %s", i, it, result.Output[i])
				}
			}
		})
	}
}
