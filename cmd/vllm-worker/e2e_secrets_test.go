package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Distinctive secret values: any 10 characters of one of them found in the
// output is a leak.
var testSecrets = map[string]string{
	"HF_TOKEN":          "hf_Zq8TnW3vKc5LrX1pYd7M",
	"API_KEY":           "sk-wk-Jm4RbV9eTq2WzH6uNc",
	"RUNPOD_AI_API_KEY": "rpa_Lx5NcG8sKd3FyP7wQe1A",
}

func secretEnv() []string {
	var env []string
	for k, v := range testSecrets {
		env = append(env, k+"="+v)
	}
	return env
}

// findLeaks reports every secret (or 10-character piece of one) found in text.
func findLeaks(t *testing.T, where, text string) {
	t.Helper()
	for name, s := range testSecrets {
		for i := 0; i+10 <= len(s); i++ {
			if at := strings.Index(text, s[i:i+10]); at >= 0 {
				t.Errorf("%s leaks %s (%q): ...%s...", where, name, s[i:i+10], text[max(0, at-150):min(len(text), at+60)])
				break
			}
		}
	}
}

// TestSecretsNeverLeak runs a worker with HF_TOKEN, API_KEY and RUNPOD_AI_API_KEY
// set, exercises it (right and wrong keys, engine and input errors, jobs,
// health, metrics, the config command, a configuration error) and checks that
// none of the three values appears in anything a client or operator can read:
// every response status, header and body, the worker's whole log (which relays
// the engine child's output and logs its argv), and the config output. HF_TOKEN
// reaches the engine through its environment only.
func TestSecretsNeverLeak(t *testing.T) {
	hf, key := testSecrets["HF_TOKEN"], testSecrets["API_KEY"]
	w := startWorker(t, append(secretEnv(), "LOG_LEVEL=trace")...)
	c := &http.Client{Timeout: 30 * time.Second}
	var seen bytes.Buffer // every response, as a client sees it

	do := func(method, path, auth, body string) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, w.URL+path, rd)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		raw := readAll(t, resp)
		fmt.Fprintf(&seen, "== %s %s\n%s %s\n", method, path, resp.Proto, resp.Status)
		_ = resp.Header.Write(&seen)
		seen.Write(raw)
		seen.WriteString("\n")
		return resp.StatusCode, raw
	}
	good := "Bearer " + key
	expect := func(want int, method, path, auth, body string) []byte {
		t.Helper()
		got, raw := do(method, path, auth, body)
		if got != want {
			t.Errorf("%s %s: %d; want %d: %.200s", method, path, got, want, raw)
		}
		return raw
	}

	// Keys: right, wrong, and other secrets offered as the key.
	expect(200, "GET", "/v1/models", good, "")
	expect(200, "GET", "/v2/ep/openai/v1/models", key, "")
	for _, bad := range []string{"", "Bearer wrong", "Bearer " + key + "x", "Bearer " + hf, "Bearer " + testSecrets["RUNPOD_AI_API_KEY"], "Basic " + key} {
		expect(401, "GET", "/v1/models", bad, "")
		expect(401, "POST", "/runsync", bad, `{"input":{"prompt":"x"}}`)
	}
	// Normal traffic and errors.
	expect(200, "POST", "/v1/chat/completions", good, chatBody(`"max_tokens":4`))
	expect(200, "POST", "/openai/v1/completions", good, `{"model":"test-model","prompt":"x","max_tokens":4,"stream":true}`)
	expect(400, "POST", "/v1/chat/completions", good, `{"model":`)
	expect(404, "POST", "/v1/chat/completions", good, `{"model":"gpt-4","messages":[]}`)
	expect(400, "POST", "/v1/chat/completions", good, chatBody(`"max_tokens":100000`))
	expect(500, "POST", "/v1/chat/completions", good, chatBody(`"sim_fault":"error_before"`))
	expect(500, "POST", "/v1/completions", good, `{"model":"test-model","prompt":"x","sim_fault":"cuda_error"}`)
	expect(200, "POST", "/v1/chat/completions", good, chatBody(`"stream":true,"sim_fault":"cut_mid_stream"`))
	expect(404, "GET", "/nope", good, "")
	// Jobs: completed, failed, run and status, cancelled.
	expect(200, "POST", "/runsync", good, `{"input":{"prompt":"x","sampling_params":{"max_tokens":4},"stream":true}}`)
	expect(200, "POST", "/runsync", good, `{"input":{"prompt":42}}`)
	expect(200, "POST", "/runsync", good, `{"input":{"openai_input":{"messages":[{"role":"user","content":"x"}],"sim_fault":"error_before"}}}`)
	var job struct{ ID string }
	if err := json.Unmarshal(expect(200, "POST", "/run", good, `{"input":{"prompt":"x","sampling_params":{"max_tokens":500},"stream":true}}`), &job); err != nil {
		t.Fatal(err)
	}
	expect(200, "POST", "/cancel/"+job.ID, good, "")
	expect(200, "GET", "/status/"+job.ID, good, "")
	expect(200, "POST", "/purge-queue", good, "")
	// Health and metrics.
	expect(200, "GET", "/health", "", "")
	expect(200, "GET", "/v2/ep/health", "", "")
	expect(200, "GET", "/ping", "", "")
	metricsStatus, _ := do("GET", "/metrics", good, "")

	// The engine's argv carries no token; its environment does.
	start := w.Log.waitLine(t, time.Second, func(l map[string]any) bool { return l["message"] == "starting engine" })
	argv := fmt.Sprint(start["argv"])
	if strings.Contains(argv, hf) || strings.Contains(strings.ToLower(argv), "token") {
		t.Errorf("engine argv %s carries the HF token", argv)
	}
	if env, err := os.ReadFile("/proc/" + strconv.Itoa(enginePID(t, w.Log)) + "/environ"); err == nil {
		if !bytes.Contains(env, []byte("\x00HF_TOKEN="+hf+"\x00")) && !bytes.HasPrefix(env, []byte("HF_TOKEN="+hf+"\x00")) {
			t.Errorf("the engine's environment has no HF_TOKEN")
		}
		for _, name := range []string{"API_KEY", "RUNPOD_AI_API_KEY"} {
			if bytes.Contains(env, []byte(testSecrets[name])) {
				t.Logf("note: the engine child inherits %s, which it does not need", name)
			}
		}
	}

	// The config command, as text and JSON, and a configuration error.
	var cfgOut bytes.Buffer
	runConfigCmd := func(env []string, args ...string) error {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"config"}, args...), env, &stdout, &stderr)
		fmt.Fprintf(&cfgOut, "== config %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
		if args != nil && args[0] == "--json" && err == nil {
			var doc struct {
				Config map[string]json.RawMessage `json:"config"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
				t.Errorf("config --json: %v", err)
			}
			for _, f := range [][2]string{{"model", "hf_token"}, {"worker", "api_key"}, {"runpod", "api_key"}} {
				var section map[string]any
				_ = json.Unmarshal(doc.Config[f[0]], &section)
				if got := section[f[1]]; got != "<redacted>" {
					t.Errorf("config --json %s.%s = %v; want <redacted>", f[0], f[1], got)
				}
			}
		}
		return err
	}
	env := baseEnv(secretEnv()...)
	if err := runConfigCmd(env); err != nil {
		t.Errorf("config: %v", err)
	}
	if err := runConfigCmd(env, "--json"); err != nil {
		t.Errorf("config --json: %v", err)
	}
	// The real vLLM command line too (ENGINE=vllm, the default).
	var vllmEnv []string
	for _, kv := range env {
		if kv != "ENGINE=sim" {
			vllmEnv = append(vllmEnv, kv)
		}
	}
	if err := runConfigCmd(vllmEnv, "--json"); err != nil {
		t.Errorf("config --json (vllm): %v", err)
	}
	if err := runConfigCmd(append(env, "MAX_CONCURRENCY=lots", "GPU_MEMORY_UTILIZATION=2"), "--json"); exitCode(err) != 2 {
		t.Errorf("config with bad variables: %v; want exit 2", err)
	}
	if !strings.Contains(cfgOut.String(), "python3") {
		t.Errorf("config output has no vLLM command line:\n%s", cfgOut.String())
	}

	// Stop the worker so that its shutdown lines are captured too.
	w.stop(t)
	findLeaks(t, "a response", seen.String())
	findLeaks(t, "the worker log", w.Log.String())
	findLeaks(t, "the config output", cfgOut.String())

	if metricsStatus != http.StatusOK {
		t.Errorf("GET /metrics: %d; contract section 4 requires Prometheus text", metricsStatus)
	}
}
