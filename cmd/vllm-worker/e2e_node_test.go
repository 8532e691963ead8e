package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vllm-worker/vllm-worker/sim"
)

// TestOpenAINodeSDK runs tests/node/sdk.test.mjs, the official openai npm SDK
// against the worker: on the sim, and on the sim with each SIM_QUIRKS behaviour
// of other OpenAI servers, where the SDK must see the same answers (but for an
// engine that ignores n: one choice, never an invented second). CI installs the SDK with `npm ci`; elsewhere the test is
// skipped when it is missing, but never when CI is set.
func TestOpenAINodeSDK(t *testing.T) {
	dir, err := filepath.Abs("../../tests/node")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	_, sdkErr := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json"))
	if err != nil || sdkErr != nil {
		if requireTools() {
			t.Fatalf("make test needs node and the openai SDK (make sdk-deps): node: %v, sdk: %v", err, sdkErr)
		}
		t.Skipf("node or the openai SDK is missing (cd tests/node && npm ci): %v %v", err, sdkErr)
	}
	sdk := func(t *testing.T, base, quirks string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "--test", "sdk.test.mjs")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "VLLM_WORKER_BASE_URL="+base, "VLLM_WORKER_MODEL="+testModel, "VLLM_WORKER_SIM_QUIRKS="+quirks)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("node SDK tests failed: %v\n%s", err, out)
		}
		t.Logf("%s", out)
	}
	w := startWorker(t)
	for _, prefix := range []string{"/openai/v1", "/v2/ENDPOINT/openai/v1"} {
		t.Run(prefix, func(t *testing.T) { sdk(t, w.URL+prefix, "") })
	}
	// The same tests on engines that behave as other OpenAI servers do.
	for _, q := range sim.Quirks() {
		t.Run("SIM_QUIRKS="+string(q), func(t *testing.T) {
			w := startWorker(t, "SIM_QUIRKS="+string(q))
			sdk(t, w.URL+"/openai/v1", string(q))
		})
	}
}
