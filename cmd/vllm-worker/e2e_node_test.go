package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestOpenAINodeSDK runs tests/node/sdk.test.mjs, the official openai npm SDK
// against the worker. CI installs the SDK with `npm ci`; elsewhere the test is
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
	w := startWorker(t)
	for _, prefix := range []string{"/openai/v1", "/v2/ENDPOINT/openai/v1"} {
		t.Run(prefix, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "--test", "sdk.test.mjs")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "VLLM_WORKER_BASE_URL="+w.URL+prefix, "VLLM_WORKER_MODEL="+testModel)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node SDK tests failed: %v\n%s", err, out)
			}
			t.Logf("%s", out)
		})
	}
}
