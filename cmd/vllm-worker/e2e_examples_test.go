package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The examples of examples/ run against a worker on the simulated engine, so that they stay
// true. The Python one needs pip, which CI does not have; it is kept small instead.

// requireTools reports whether a test must fail, not skip, when a tool it needs
// (node, curl, the npm SDKs) is missing: in CI and under make test, which
// installs them.
func requireTools() bool {
	return os.Getenv("CI") != "" || os.Getenv("VLLM_WORKER_REQUIRE_TOOLS") == "1"
}

// needTool finds a program for an example test: missing, the test fails under
// make test and in CI, and is skipped elsewhere (a bare go test).
func needTool(t *testing.T, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if requireTools() {
			t.Fatalf("make test needs %s (%s): %v", name, hint, err)
		}
		t.Skipf("%s is missing (%s): %v", name, hint, err)
	}
	return p
}

func runExample(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestExampleNode runs examples/node/chat.mjs and responses.mjs (the Responses API, whole
// and streamed) with the openai npm SDK that `npm ci` installs in examples/node.
func TestExampleNode(t *testing.T) {
	dir, err := filepath.Abs("../../examples/node")
	if err != nil {
		t.Fatal(err)
	}
	node := needTool(t, "node", "Node 20 or later")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		if requireTools() {
			t.Fatalf("make test needs the openai SDK of the example (make sdk-deps): %v", err)
		}
		t.Skipf("the openai SDK of the example is missing (cd examples/node && npm ci): %v", err)
	}
	w := startWorker(t)
	env := []string{"VLLM_WORKER_BASE_URL=" + w.URL + "/openai/v1", "VLLM_WORKER_MODEL="}
	for script, wants := range map[string][]string{
		"chat.mjs":      {"models: " + testModel, "finish_reason: length"},
		"responses.mjs": {"status: incomplete, output tokens: 20", "streamed: incomplete, same text as whole: true"},
	} {
		out := runExample(t, dir, env, node, script)
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("%s printed no %q:\n%s", script, want, out)
			}
		}
	}
}

// TestExampleCurl runs examples/curl/examples.sh, which checks every answer itself.
func TestExampleCurl(t *testing.T) {
	bash := needTool(t, "bash", "the shell of the curl examples")
	needTool(t, "curl", "the curl examples")
	script, err := filepath.Abs("../../examples/curl/examples.sh")
	if err != nil {
		t.Fatal(err)
	}
	w := startWorker(t)
	out := runExample(t, t.TempDir(), []string{"VLLM_WORKER_URL=" + w.URL, "VLLM_WORKER_API_KEY=", "VLLM_WORKER_MODEL="}, bash, script)
	if !strings.Contains(out, "all examples passed") {
		t.Errorf("examples.sh did not finish:\n%s", out)
	}
}

// TestExampleCurlAPIKey runs the curl examples against a worker with API_KEY, and checks
// that they fail without the key.
func TestExampleCurlAPIKey(t *testing.T) {
	bash := needTool(t, "bash", "the shell of the curl examples")
	needTool(t, "curl", "the curl examples")
	script, err := filepath.Abs("../../examples/curl/examples.sh")
	if err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, "API_KEY=example-key")
	runExample(t, t.TempDir(), []string{"VLLM_WORKER_URL=" + w.URL, "VLLM_WORKER_API_KEY=example-key", "VLLM_WORKER_MODEL="}, bash, script)

	cmd := exec.Command(bash, script)
	cmd.Env = append(os.Environ(), "VLLM_WORKER_URL="+w.URL, "VLLM_WORKER_API_KEY=", "VLLM_WORKER_MODEL=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "HTTP 401") {
		t.Errorf("without the key examples.sh should stop on a 401; err %v, output:\n%s", err, out)
	}
}
