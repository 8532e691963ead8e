package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vllm-worker/vllm-worker/config"
)

// checkDoc is the document of `vllm-worker check --json`.
type checkDoc struct {
	Target      string `json:"target"`
	Kind        string `json:"kind"`
	Model       string `json:"model"`
	OK          bool   `json:"ok"`
	Unreachable bool   `json:"unreachable"`
	Failed      int    `json:"failed"`
	Checks      []struct {
		Name      string   `json:"name"`
		OK        bool     `json:"ok"`
		LatencyMS float64  `json:"latency_ms"`
		TTFTMS    *float64 `json:"ttft_ms"`
		Error     string   `json:"error"`
		Detail    string   `json:"detail"`
		Request   *struct {
			Method, URL, Body, Curl string
		} `json:"request"`
	} `json:"checks"`
}

// failed maps the failed checks to their errors.
func (d *checkDoc) failed() map[string]string {
	out := map[string]string{}
	for _, c := range d.Checks {
		if !c.OK {
			out[c.Name] = c.Error
		}
	}
	return out
}

func (d *checkDoc) names() []string {
	var out []string
	for _, c := range d.Checks {
		out = append(out, c.Name)
	}
	return out
}

// runCheckCmd runs `vllm-worker args...` through run and returns its exit code
// and output.
func runCheckCmd(t *testing.T, args ...string) (code int, stdout, stderr string, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	start := time.Now()
	err := run(ctx, args, nil, &out, &errOut)
	if err != nil {
		errOut.WriteString("vllm-worker: " + err.Error() + "\n") // as main prints it
	}
	return exitCode(err), out.String(), errOut.String(), time.Since(start)
}

// runCheckJSON runs check with --json and decodes its document.
func runCheckJSON(t *testing.T, args ...string) (int, *checkDoc, string) {
	t.Helper()
	code, out, errOut, _ := runCheckCmd(t, append(args, "--json")...)
	var d checkDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("check --json: not one JSON document (%v):\n%s\nstderr: %s", err, out, errOut)
	}
	return code, &d, errOut
}

var (
	workerCheckNames = []string{"health", "models", "chat", "chat_stream", "completions", "completions_stream",
		"unknown_model", "invalid_request", "stream_error", "runsync_prompt", "runsync_prompt_stream",
		"runsync_messages", "runsync_messages_stream", "openai_route", "openai_route_stream", "run_stream_status", "cancel"}
	engineCheckNames = []string{"health", "models", "chat_stream", "completions_stream", "include_usage",
		"continuous_usage", "n", "error_shape", "stream_error_done", "abort_on_disconnect"}
)

// knownWorkerBugs are worker checks that fail through a worker whose engine has
// a quirk, by quirk: bugs of the worker, not of the checks. A fixed one makes
// TestCheckQuirks fail until it is removed here.
var knownWorkerBugs = map[string]map[string]string{}

// engineQuirkCheck is, for each quirk, the engine check that must fail and what
// its error must name.
var engineQuirkCheck = map[string][2]string{
	"no_continuous_usage": {"continuous_usage", "the server ignores stream_options.continuous_usage_stats"},
	"no_n":                {"n", "the server ignores n"},
	"error_without_done":  {"stream_error_done", "after the in-band error event"},
	"flat_errors":         {"error_shape", `the flat shape {"object":"error","message":...}`},
}

// TestCheckQuirks runs `check` against a worker on the simulated engine, with no
// quirk and with each one: every worker check passes (the worker hides its
// engine's quirks). Then `check --engine` against that worker's engine: with no
// quirk every engine check passes, with one only the check of that quirk fails,
// naming the behaviour.
func TestCheckQuirks(t *testing.T) {
	quirks := append([]string{""}, config.SimQuirks()...)
	if len(engineQuirkCheck) != len(quirks)-1 {
		t.Fatalf("engineQuirkCheck covers %d quirks; the simulator has %v", len(engineQuirkCheck), quirks[1:])
	}
	for _, quirk := range quirks {
		name := quirk
		if name == "" {
			name = "vllm"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// 2 ms a token: the cancel and abort checks' long generations are
			// still running when they cut them.
			w := startWorker(t, "SIM_ITL_MS=2", "SIM_QUIRKS="+quirk)

			code, d, stderr := runCheckJSON(t, "check", w.URL, "--timeout", "60s")
			if !slices.Equal(d.names(), workerCheckNames) {
				t.Errorf("worker checks %v; want %v", d.names(), workerCheckNames)
			}
			bugs := knownWorkerBugs[quirk]
			for _, c := range d.Checks {
				says, known := bugs[c.Name]
				switch {
				case !c.OK && !known:
					t.Errorf("worker check %s failed (SIM_QUIRKS=%q): %s\nrequest: %+v", c.Name, quirk, c.Error, c.Request)
				case !c.OK && !strings.Contains(c.Error, says):
					t.Errorf("worker check %s: %s; want the known bug (%s)", c.Name, c.Error, says)
				case c.OK && known:
					t.Errorf("worker check %s passes with SIM_QUIRKS=%s: the worker bug is fixed, remove it from knownWorkerBugs", c.Name, quirk)
				}
			}
			if wantCode := min(len(bugs), 1); code != wantCode || d.OK != (wantCode == 0) || d.Model != testModel {
				t.Errorf("worker: exit %d, ok %v, model %q; want %d, %v, %s; stderr: %s", code, d.OK, d.Model, wantCode, wantCode == 0, testModel, stderr)
			}

			code, d, stderr = runCheckJSON(t, "check", "--engine", engineBase(t, w)+"/v1")
			if !slices.Equal(d.names(), engineCheckNames) {
				t.Errorf("engine checks %v; want %v", d.names(), engineCheckNames)
			}
			failed := d.failed()
			want, hasQuirk := engineQuirkCheck[quirk]
			switch {
			case !hasQuirk && len(failed) > 0:
				t.Errorf("engine checks failed against the simulated vLLM: %v", failed)
			case hasQuirk && (len(failed) != 1 || !strings.Contains(failed[want[0]], want[1])):
				t.Errorf("engine checks with SIM_QUIRKS=%s failed: %v; want only %s, saying %q", quirk, failed, want[0], want[1])
			}
			if wantCode := min(len(failed), 1); code != wantCode || d.Kind != "engine" {
				t.Errorf("engine: exit %d, kind %q; want %d, engine; stderr: %s", code, d.Kind, wantCode, stderr)
			}
			for _, c := range d.Checks {
				if !c.OK && (c.Request == nil || !strings.HasPrefix(c.Request.Curl, "curl ") || c.Request.URL == "") {
					t.Errorf("engine check %s failed without the request that showed it: %+v", c.Name, c.Request)
				}
			}
		})
	}
}

// TestCheckTable: without --json the report is a table, one row per check, and
// --model names a model the worker does not serve as the models check's failure.
func TestCheckTable(t *testing.T) {
	w := startWorker(t, "SIM_ITL_MS=2")
	code, out, stderr, _ := runCheckCmd(t, "check", w.URL)
	if code != 0 || !strings.Contains(out, "all 17 checks passed") {
		t.Errorf("exit %d; want 0 and all passed:\n%s\nstderr: %s", code, out, stderr)
	}
	for _, name := range workerCheckNames {
		if !strings.Contains(out, "\n"+name+" ") {
			t.Errorf("no row for %s:\n%s", name, out)
		}
	}
	if !strings.HasPrefix(out, "worker "+w.URL+", model "+testModel+"\n") ||
		!strings.Contains(out, "CHECK  ") || !strings.Contains(out, "TTFT") {
		t.Errorf("table:\n%s", out)
	}

	code, d, _ := runCheckJSON(t, "check", w.URL, "--model", "no-such-model", "--timeout", "30s")
	if code != 1 || !strings.Contains(d.failed()["models"], `model "no-such-model" (--model) is not served; the list has `+testModel) {
		t.Errorf("--model no-such-model: exit %d, failures %v", code, d.failed())
	}
}

// TestCheckAPIKey: the key goes as a bearer token; a failure's request shows
// $API_KEY, never the key.
func TestCheckAPIKey(t *testing.T) {
	const key = "sekret-key-123"
	w := startWorker(t, "API_KEY="+key, "SIM_ITL_MS=2")
	if code, d, stderr := runCheckJSON(t, "check", w.URL, "--api-key", key); code != 0 {
		t.Errorf("with the key: exit %d, failures %v; stderr %s", code, d.failed(), stderr)
	}
	code, out, _, _ := runCheckCmd(t, "check", w.URL, "--api-key", "wrong-key-456", "--json")
	var d checkDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if code != 1 || d.failed()["chat"] == "" || d.failed()["health"] != "" {
		t.Errorf("with a wrong key: exit %d, failures %v; want 1 and every check but health failed", code, d.failed())
	}
	if strings.Contains(out, "wrong-key-456") || !strings.Contains(out, `Authorization: Bearer $API_KEY`) {
		t.Errorf("the output shows the key, or no $API_KEY:\n%s", out)
	}
}

// TestCheckUsage: bad usage exits 2 with the usage text.
func TestCheckUsage(t *testing.T) {
	for _, args := range [][]string{
		{"check"},
		{"check", "http://127.0.0.1:1", "http://127.0.0.1:2"},
		{"check", "http://127.0.0.1:1", "--engine", "http://127.0.0.1:2"},
		{"check", "127.0.0.1:8000"},
		{"check", "ftp://127.0.0.1:1"},
		{"check", "https://api.runpod.ai"},
		{"check", "--bogus", "http://127.0.0.1:1"},
		{"check", "--engine"},
		{"check", "http://127.0.0.1:1", "--timeout", "0s"},
		{"check", "http://127.0.0.1:1", "--total-timeout", "soon"},
	} {
		code, out, stderr, _ := runCheckCmd(t, args...)
		if code != 2 || !strings.Contains(stderr, "usage: vllm-worker check URL") || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant 2 and the usage", args, code, out, stderr)
		}
	}
	if code, _, stderr, _ := runCheckCmd(t, "check", "-h"); code != 0 || !strings.Contains(stderr, "--total-timeout") {
		t.Errorf("check -h: exit %d, stderr:\n%s", code, stderr)
	}
	if _, out, _, _ := runCheckCmd(t, "help"); !strings.Contains(out, "check URL") {
		t.Errorf("the usage does not mention check:\n%s", out)
	}
}

// TestCheckUnreachable: a URL nobody listens on fails at once, saying so.
func TestCheckUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	code, out, stderr, took := runCheckCmd(t, "check", url)
	if code != 1 || took > 10*time.Second || !strings.Contains(stderr, "cannot reach "+url) ||
		!strings.Contains(stderr, "connection refused") || !strings.Contains(out, "the target did not answer: no check was run") {
		t.Errorf("exit %d after %v; want 1 at once, saying it cannot reach %s\nstdout:\n%s\nstderr:\n%s", code, took, url, out, stderr)
	}
	code, d, _ := runCheckJSON(t, "check", "--engine", url)
	if code != 1 || !d.Unreachable || len(d.Checks) != 1 || d.Checks[0].Name != "connect" || d.Checks[0].Request == nil {
		t.Errorf("--json: exit %d, %+v; want one failed connect check with its request", code, d)
	}
}

// TestCheckTimeouts: a server that never answers is cut by --timeout, and a
// server that answers only /health by --timeout on each check and
// --total-timeout on them all.
func TestCheckTimeouts(t *testing.T) {
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer silent.Close()
	code, out, stderr, took := runCheckCmd(t, "check", silent.URL, "--timeout", "300ms")
	if code != 1 || took > 10*time.Second || !strings.Contains(stderr, "cannot reach "+silent.URL+": timed out after 300ms (--timeout)") {
		t.Errorf("a silent server: exit %d after %v\nstdout:\n%s\nstderr:\n%s", code, took, out, stderr)
	}

	healthOnly := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"ready","jobs":{"completed":0,"failed":0,"inProgress":0,"inQueue":0,"retried":0},` +
				`"workers":{"idle":1,"initializing":0,"ready":1,"running":0,"throttled":0,"unhealthy":0}}`))
			return
		}
		// The server sees the client leave only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer healthOnly.Close()
	start := time.Now()
	code, d, _ := runCheckJSON(t, "check", healthOnly.URL, "--timeout", "200ms", "--total-timeout", "1s")
	took = time.Since(start)
	failed := d.failed()
	if code != 1 || took > 10*time.Second || len(d.Checks) != len(workerCheckNames) || failed["health"] != "" {
		t.Errorf("exit %d after %v, failures %v; want 1, health passing, every other check failed", code, took, failed)
	}
	if !strings.HasPrefix(failed["models"], "timed out after 200ms (--timeout)") {
		t.Errorf("models: %q; want timed out after 200ms", failed["models"])
	}
	if !strings.HasPrefix(failed["cancel"], "not run: the total time limit of 1s (--total-timeout) was reached") {
		t.Errorf("cancel: %q; want not run", failed["cancel"])
	}
	for _, c := range d.Checks {
		if c.LatencyMS > 1500 {
			t.Errorf("check %s took %vms: past its time limits", c.Name, c.LatencyMS)
		}
	}
}
