package check

import (
	"strings"
	"testing"
)

func TestParseWorker(t *testing.T) {
	for _, tt := range []struct {
		in         string
		kind       Kind
		base       string
		openai     string
		wantErrHas string
	}{
		{in: "http://127.0.0.1:8000", kind: KindWorker, base: "http://127.0.0.1:8000", openai: "http://127.0.0.1:8000/openai/v1"},
		{in: "http://127.0.0.1:8000/", kind: KindWorker, base: "http://127.0.0.1:8000"},
		{in: "http://127.0.0.1:8000/v1", kind: KindWorker, base: "http://127.0.0.1:8000"},
		{in: "http://127.0.0.1:8000/openai/v1/", kind: KindWorker, base: "http://127.0.0.1:8000"},
		{in: "http://pod:8000/v2/my-endpoint", kind: KindWorker, base: "http://pod:8000/v2/my-endpoint",
			openai: "http://pod:8000/v2/my-endpoint/openai/v1"},
		{in: "https://api.runpod.ai/v2/abc123", kind: KindRunPod, base: "https://api.runpod.ai/v2/abc123",
			openai: "https://api.runpod.ai/v2/abc123/openai/v1"},
		{in: "https://API.runpod.ai/v2/abc123/openai/v1", kind: KindRunPod, base: "https://API.runpod.ai/v2/abc123"},
		{in: "https://api.runpod.ai", wantErrHas: "https://api.runpod.ai/v2/<endpoint id>"},
		{in: "https://api.runpod.ai/v2/", wantErrHas: "<endpoint id>"},
		{in: "https://api.runpod.ai/v2/abc/run", wantErrHas: "<endpoint id>"},
		{in: "", wantErrHas: "no URL"},
		{in: "127.0.0.1:8000", wantErrHas: "http:// or https://"},
		{in: "ftp://host/", wantErrHas: "http:// or https://"},
		{in: "http://", wantErrHas: "no host"},
		{in: "http://user:secret@host:8000", wantErrHas: "--api-key"},
		{in: "http://host:8000/?x=1", wantErrHas: "query"},
		{in: "http://host:8000/#frag", wantErrHas: "fragment"},
	} {
		got, err := ParseWorker(tt.in)
		if tt.wantErrHas != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErrHas) {
				t.Errorf("ParseWorker(%q) = %+v, %v; want an error with %q", tt.in, got, err, tt.wantErrHas)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseWorker(%q): the error shows the password: %v", tt.in, err)
			}
			continue
		}
		if err != nil || got.Kind != tt.kind || got.Base != tt.base {
			t.Errorf("ParseWorker(%q) = %+v, %v; want %s %s", tt.in, got, err, tt.kind, tt.base)
		}
		if tt.openai != "" && got.OpenAIBase() != tt.openai {
			t.Errorf("ParseWorker(%q).OpenAIBase() = %s; want %s", tt.in, got.OpenAIBase(), tt.openai)
		}
		if got.URL("/health") != tt.base+"/health" {
			t.Errorf("ParseWorker(%q).URL(/health) = %s", tt.in, got.URL("/health"))
		}
	}
}

func TestParseEngine(t *testing.T) {
	for _, tt := range []struct{ in, base, openai string }{
		{"http://127.0.0.1:8001", "http://127.0.0.1:8001", "http://127.0.0.1:8001/v1"},
		{"http://127.0.0.1:8001/", "http://127.0.0.1:8001", "http://127.0.0.1:8001/v1"},
		{"http://127.0.0.1:8001/v1", "http://127.0.0.1:8001", "http://127.0.0.1:8001/v1"},
		{"https://vllm.internal/v1/", "https://vllm.internal", "https://vllm.internal/v1"},
	} {
		got, err := ParseEngine(tt.in)
		if err != nil || got.Kind != KindEngine || got.Base != tt.base || got.OpenAIBase() != tt.openai {
			t.Errorf("ParseEngine(%q) = %+v (openai %s), %v; want %s, %s", tt.in, got, got.OpenAIBase(), err, tt.base, tt.openai)
		}
	}
	if _, err := ParseEngine("localhost:8001"); err == nil {
		t.Error("ParseEngine without a scheme: no error")
	}
}
