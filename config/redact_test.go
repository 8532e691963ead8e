package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	c := mustLoad(t, "MODEL_NAME=m", "HF_TOKEN=hf_SeCrEt1", "API_KEY=SeCrEt2", "RUNPOD_AI_API_KEY=SeCrEt3",
		"VLLM_EXTRA_ARGS=--hf-token hf_SeCrEt1", "BATCH_MAX_WAIT_MS=20")
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as `vllm-worker config --json` should: keep "<redacted>" readable
	if err := enc.Encode(c.Redacted()); err != nil {
		t.Fatalf("encoding Redacted(): %v", err)
	}
	out := b.String()
	if strings.Contains(out, "SeCrEt") {
		t.Errorf("a secret's value is in Redacted(): %s", out)
	}
	for _, want := range []string{`"hf_token":"<redacted>"`, `"api_key":"<redacted>"`, `"max_wait":"20ms"`,
		`"extra_args":["--hf-token","<redacted>"]`, `"startup_timeout":"20m0s"`} {
		if !strings.Contains(out, want) {
			t.Errorf("Redacted() = %s; want it to contain %s", out, want)
		}
	}
	for _, section := range []string{"model", "engine", "streaming", "openai", "worker", "runpod", "sim", "warnings"} {
		if _, ok := c.Redacted()[section]; !ok {
			t.Errorf("Redacted() has no %q", section)
		}
	}
	// The Config itself is untouched: argv is exact (the user asked for this flag).
	if got := c.Engine.ExtraArgs[1]; got != "hf_SeCrEt1" {
		t.Errorf("Redacted() changed Engine.ExtraArgs: %q", got)
	}
}

func TestRedactedUnsetSecrets(t *testing.T) {
	r := mustLoad(t, "MODEL_NAME=m").Redacted()
	if got := r["model"].(map[string]any)["hf_token"]; got != "" {
		t.Errorf("unset hf_token shows %q; want \"\"", got)
	}
	if got := r["worker"].(map[string]any)["api_key"]; got != "" {
		t.Errorf("unset api_key shows %q; want \"\"", got)
	}
}
