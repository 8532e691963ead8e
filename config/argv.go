package config

import (
	"encoding/json"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
)

// EngineArgv is the exact command line of the engine child, listening on 127.0.0.1:port.
// self is the path of the vllm-worker executable, run as `self sim` when Engine.Kind is
// KindSim. It is nil when Engine.URL is set (no child).
//
// vLLM's flags come in a fixed order: --host, --port, --model, the seed variables' flags (in
// the order of seedFlags), the generic UPPER_SNAKE flags sorted by flag name, and
// VLLM_EXTRA_ARGS last, so that they win (argparse keeps the last value). HF_TOKEN is never in it.
func (c *Config) EngineArgv(port int, self string) []string {
	if c.Engine.URL != "" {
		return nil
	}
	listen := []string{"--host", "127.0.0.1", "--port", strconv.Itoa(port)}
	if c.Engine.Kind == KindSim {
		model := ""
		if names := c.ServedModelNames(); len(names) > 0 {
			model = names[0]
		}
		argv := slices.Concat([]string{self, "sim"}, listen, []string{"--model", model})
		if c.Sim.Quirks != "" {
			// Also in the child's environment, but the flag shows in `vllm-worker config`.
			argv = append(argv, "--quirks", c.Sim.Quirks)
		}
		return argv
	}
	return slices.Concat(
		[]string{"python3", "-m", "vllm.entrypoints.openai.api_server"},
		listen,
		[]string{"--model", c.Model.Name},
		c.seedFlags(),
		c.genericFlags,
		c.Engine.ExtraArgs,
	)
}

// seedFlags maps the typed seed settings to vLLM flags; a setting that is not set (zero) emits
// nothing, except --gpu-memory-utilization (the seed's 0.98 differs from vLLM's 0.9).
func (c *Config) seedFlags() []string {
	var a []string
	value := func(flag, v string) {
		if v != "" {
			a = append(a, flag, v)
		}
	}
	count := func(flag string, n int) {
		if n != 0 {
			a = append(a, flag, strconv.Itoa(n))
		}
	}
	paired := func(flag string, b *bool) {
		switch {
		case b == nil:
		case *b:
			a = append(a, "--"+flag)
		default:
			a = append(a, "--no-"+flag)
		}
	}
	m, e := &c.Model, &c.Engine

	value("--revision", m.Revision)
	if m.ServedModelName != "" || c.OpenAI.ServedModelNameOverride != "" {
		// nargs="+": one argument per name.
		a = append(append(a, "--served-model-name"), c.ServedModelNames()...)
	}
	switch {
	case m.MaxModelLen < 0:
		a = append(a, "--max-model-len", "auto")
	case m.MaxModelLen > 0:
		count("--max-model-len", m.MaxModelLen)
	}
	value("--tokenizer", m.Tokenizer)
	value("--tokenizer-revision", m.TokenizerRevision)
	value("--chat-template", m.ChatTemplate)
	if r := c.OpenAI.ResponseRole; r != "" && r != "assistant" {
		a = append(a, "--response-role", r)
	}
	value("--load-format", m.LoadFormat)
	value("--quantization", m.Quantization)
	paired("trust-remote-code", m.TrustRemoteCode)
	count("--tensor-parallel-size", e.TensorParallelSize)
	count("--pipeline-parallel-size", e.PipelineParallelSize)
	value("--distributed-executor-backend", e.DistributedExecutorBackend)
	count("--max-parallel-loading-workers", e.MaxParallelLoadingWorkers)
	if e.GPUMemoryUtilization > 0 {
		a = append(a, "--gpu-memory-utilization", strconv.FormatFloat(e.GPUMemoryUtilization, 'f', -1, 64))
	}
	if e.DisableLogStats {
		a = append(a, "--disable-log-stats") // store-true: there is no --no- form
	}
	paired("enable-log-requests", e.EnableLogRequests)
	count("--shutdown-timeout", int(e.ShutdownTimeout.Seconds()))
	return a
}

// genericFlags maps every other `vllm serve` flag set as its UPPER_SNAKE name, sorted by flag
// name. Bad booleans are problems; removed and worker-owned flags are warnings.
func (k *checker) genericFlags() []string {
	type flag struct{ name, env string }
	var flags []flag
	for _, name := range slices.Sorted(maps.Keys(k.env)) { // sorted: warnings in a stable order
		switch vllmFlag(name) {
		case valueFlag, pairedBool:
			flags = append(flags, flag{flagName(name), name})
			switch name {
			case "ALLOWED_ORIGINS", "ALLOWED_METHODS", "ALLOWED_HEADERS", "ALLOW_CREDENTIALS":
				// Passed all the same, as before; but it is not what its setter wants.
				k.warn("%s sets CORS for vLLM's own server, which only the worker reaches, so browsers never see it; CORS_ALLOWED_ORIGINS sets the worker's", name)
			}
		case removedFlag:
			msg := name + " is ignored: vLLM removed " + flagName(name)
			if hint := removedHint(name); hint != "" {
				msg += "; " + hint
			}
			k.warn("%s", msg)
		case workerOwned:
			msg := name + " is ignored: the worker reaches the engine over plain HTTP on a loopback port"
			if strings.HasPrefix(name, "SSL_") {
				msg += "; for HTTPS to clients set TLS_CERT_FILE and TLS_KEY_FILE"
			}
			k.warn("%s", msg)
		}
	}
	slices.SortFunc(flags, func(x, y flag) int { return strings.Compare(x.name, y.name) })

	var a []string
	for _, f := range flags {
		v := k.env[f.env]
		switch {
		case vllmFlag(f.env) == pairedBool:
			if k.boolean(f.env, v) {
				a = append(a, f.name)
			} else {
				a = append(a, "--no-"+f.name[2:])
			}
		case f.env == "MAX_NUM_BATCHED_TOKENS" && strings.TrimSpace(v) == "0":
			// The seed era's 0 meant "let the engine decide"; vLLM would reject it.
		case f.env == "LORA_MODULES":
			a = append(append(a, f.name), loraModules(v)...)
		default:
			a = append(a, f.name, v) // verbatim, JSON included
		}
	}
	return a
}

// loraModules splits LORA_MODULES into --lora-modules' arguments (nargs="+", each `name=path`
// or one JSON object). A JSON list, as worker-vllm accepted, becomes one argument per object,
// each object's text kept verbatim; `a=p1 b=p2` becomes two; anything else passes as is.
func loraModules(v string) []string {
	t := strings.TrimSpace(v)
	if strings.HasPrefix(t, "[") {
		var items []json.RawMessage
		if json.Unmarshal([]byte(t), &items) == nil && len(items) > 0 {
			out := make([]string, len(items))
			for i, it := range items {
				out[i] = string(it)
			}
			return out
		}
		return []string{v}
	}
	if !strings.HasPrefix(t, "{") {
		if f := strings.Fields(t); len(f) > 1 {
			return f
		}
	}
	return []string{v}
}

// EngineEnv is the engine child's environment: base (the worker's own environment) plus
// HF_HOME=$BASE_PATH/huggingface-cache unless base sets HF_HOME. HF_TOKEN stays in it: the
// environment is the only way the token reaches the engine.
func (c *Config) EngineEnv(base []string) []string {
	out := make([]string, 0, len(base)+1)
	hasHome := false
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if isWorkerSecret(name) {
			continue // the engine has no use for the worker's own keys
		}
		if v, ok := strings.CutPrefix(kv, "HF_HOME="); ok {
			if strings.TrimSpace(v) == "" {
				continue // empty counts as unset: ours replaces it
			}
			hasHome = true
		}
		out = append(out, kv)
	}
	if !hasHome && c.Model.BasePath != "" {
		out = append(out, "HF_HOME="+path.Join(c.Model.BasePath, "huggingface-cache"))
	}
	return out
}

// isWorkerSecret names the worker's own keys, kept out of the engine's
// environment. VLLM_API_KEY is among them: with it vLLM would demand a key the
// worker does not send, and the engine listens on loopback only.
func isWorkerSecret(name string) bool {
	switch name {
	case "API_KEY", "RUNPOD_AI_API_KEY", "VLLM_API_KEY":
		return true
	}
	return false
}
