package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/config"
	"github.com/vllm-worker/vllm-worker/sim"
)

// TestSimQuirkNames: config validates SIM_QUIRKS against its own list (it imports
// nothing of ours); it must be the simulator's.
func TestSimQuirkNames(t *testing.T) {
	var names []string
	for _, q := range sim.Quirks() {
		names = append(names, string(q))
	}
	if !slices.Equal(names, config.SimQuirks()) {
		t.Errorf("config.SimQuirks() = %v; sim.Quirks() = %v", config.SimQuirks(), names)
	}
}

// TestSimQuirksReachEngine: a worker started with ENGINE=sim and SIM_QUIRKS runs
// its engine child with them.
func TestSimQuirksReachEngine(t *testing.T) {
	w := startWorker(t, "SIM_QUIRKS=no_n,flat_errors")
	resp, err := http.Post(w.URL+"/v1/completions", "application/json",
		strings.NewReader(`{"model":"`+testModel+`","prompt":"x","n":3,"max_tokens":2}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(gjson.GetBytes(b, "choices").Array()) != 1 {
		t.Errorf("n=3 through the worker: %d %s; want one choice (no_n)", resp.StatusCode, b)
	}
	// The worker turns the engine's flat error into the nested envelope.
	resp, err = http.Post(w.URL+"/v1/completions", "application/json",
		strings.NewReader(`{"model":"`+testModel+`","prompt":"x","temperature":3}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if e := gjson.GetBytes(b, "error"); resp.StatusCode != 400 || e.Get("type").Str != "BadRequestError" || e.Get("param").Str != "temperature" ||
		e.Get("message").Str != "temperature must be in [0, 2], got 3.0. (parameter=temperature, value=3.0)" {
		t.Errorf("a flat engine error through the worker: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Post(engineBase(t, w)+"/v1/completions", "application/json", strings.NewReader(`{"model":"nope","prompt":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || gjson.GetBytes(b, "object").Str != "error" || gjson.GetBytes(b, "error").Exists() {
		t.Errorf("engine's 404: %d %s; want the flat shape (flat_errors)", resp.StatusCode, b)
	}
}

// TestSimCommandQuirks: `vllm-worker sim` refuses an unknown quirk, from the flag
// or from SIM_QUIRKS, with exit code 2.
func TestSimCommandQuirks(t *testing.T) {
	for _, tt := range []struct {
		args, env []string
		want      string
	}{
		{[]string{"sim", "--port", "0", "--quirks", "no_n,bogus"}, nil, `unknown quirk "bogus"`},
		{[]string{"sim", "--port", "0"}, []string{"SIM_QUIRKS=bogus"}, `SIM_QUIRKS="bogus": unknown quirk "bogus"`},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), tt.args, tt.env, io.Discard, &stderr)
		if exitCode(err) != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want 2 and %q", tt.args, tt.env, exitCode(err), stderr.String(), tt.want)
		}
	}
}
