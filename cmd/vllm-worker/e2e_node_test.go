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
// engine that ignores n: one choice, never an invented second). CI installs the
// SDK with `npm ci`; elsewhere the test is skipped when it is missing, but never
// when CI is set.
func TestOpenAINodeSDK(t *testing.T) {
	node := nodeSDK(t)
	w := startWorker(t)
	for _, prefix := range []string{"/openai/v1", "/v2/ENDPOINT/openai/v1"} {
		t.Run(prefix, func(t *testing.T) {
			node.run(t, []string{"VLLM_WORKER_BASE_URL=" + w.URL + prefix, "VLLM_WORKER_MODEL=" + testModel}, "sdk.test.mjs")
		})
	}
	// The same tests on engines that behave as other OpenAI servers do.
	for _, q := range sim.Quirks() {
		t.Run("SIM_QUIRKS="+string(q), func(t *testing.T) {
			w := startWorker(t, "SIM_QUIRKS="+string(q))
			node.run(t, []string{"VLLM_WORKER_BASE_URL=" + w.URL + "/openai/v1", "VLLM_WORKER_MODEL=" + testModel,
				"VLLM_WORKER_SIM_QUIRKS=" + string(q)}, "sdk.test.mjs")
		})
	}
}

// nodeRunner runs node test files of tests/node.
type nodeRunner struct{ node, dir string }

// nodeSDK finds node and the openai SDK of tests/node; it skips the test when
// they are missing, except under make test (requireTools), where it fails.
func nodeSDK(t *testing.T) nodeRunner {
	t.Helper()
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
	return nodeRunner{node: node, dir: dir}
}

// run runs `node --test files...` with env added to the test's environment.
func (n nodeRunner) run(t *testing.T, env []string, files ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.node, append([]string{"--test"}, files...)...)
	cmd.Dir = n.dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node SDK tests %v failed: %v\n%s", files, err, out)
	}
	t.Logf("%s", out)
}
