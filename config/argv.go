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

// genericFlags maps every other `vllm serve` flag of the table's version set as its
// UPPER_SNAKE name, sorted by flag name. Bad values are problems; removed, later and
// worker-owned flags, worker-vllm's old names and look-alikes of known names are warnings.
func (k *checker) genericFlags() []string {
	table := vllmFlags()
	var flags []vllmFlag
	for _, name := range slices.Sorted(maps.Keys(k.env)) { // sorted: warnings in a stable order
		class, r := table.classify(name)
		switch class {
		case flagVar:
			flags = append(flags, r)
			switch name {
			case "ALLOWED_ORIGINS", "ALLOWED_METHODS", "ALLOWED_HEADERS", "ALLOW_CREDENTIALS":
				// Passed all the same, as before; but it is not what its setter wants.
				k.warn("%s sets CORS for vLLM's own server, which only the worker reaches, so browsers never see it; CORS_ALLOWED_ORIGINS sets the worker's", name)
			}
		case removedVar:
			k.warn("%s", removedWarning(name, r))
		case laterVar:
			k.warn("%s is ignored: %s is newer than vLLM %s, whose flags the worker knows; if your vLLM has it, pass it in VLLM_EXTRA_ARGS", name, r.flag, table.version)
		case workerOwnedVar:
			msg := name + " is ignored: the worker reaches the engine over plain HTTP on a loopback port"
			if strings.HasPrefix(name, "SSL_") {
				msg += "; for HTTPS to clients set TLS_CERT_FILE and TLS_KEY_FILE"
			}
			k.warn("%s", msg)
		case legacyVar:
			k.warn("%s is ignored: worker-vllm read it, but it is no flag of vLLM %s; %s", name, table.version, legacyHint(name))
		case unknownVar:
			if l, ok := nearestLookalike(name, table.known); ok {
				k.warn("%s", lookalikeWarning(name, table.version, l))
			}
		}
	}
	slices.SortFunc(flags, func(x, y vllmFlag) int { return strings.Compare(x.flag, y.flag) })

	var a []string
	for _, f := range flags {
		name := envName(f.flag)
		v := k.env[name]
		switch f.kind {
		case pairedBool:
			if k.boolean(name, v) {
				a = append(a, f.flag)
			} else {
				a = append(a, "--no-"+f.flag[2:])
			}
		case storeTrue:
			if k.boolean(name, v) {
				a = append(a, f.flag) // there is no --no- form: false passes nothing
			}
		case nargsFlag:
			values, err := nargsValues(v)
			if err != nil {
				k.bad(name, v, err.Error())
			}
			a = append(append(a, f.flag), values...)
		case valueFlag:
			if name == "MAX_NUM_BATCHED_TOKENS" && strings.TrimSpace(v) == "0" {
				// The seed era's 0 meant "let the engine decide"; vLLM would reject it.
				continue
			}
			a = append(a, f.flag, v) // verbatim, JSON included
		}
	}
	return a
}

// nargsValues splits the value of a flag that takes several (nargs="+") into its arguments:
//   - a JSON list of at least one item gives one argument per item: a string item its text, any
//     other item (an object, a number) its JSON verbatim. LORA_MODULES='[{"name":...}, ...]', as
//     worker-vllm accepted, is one argument per adapter.
//   - a JSON object is one argument, verbatim (one LoRA adapter).
//   - anything else is split as a shell splits words, as VLLM_EXTRA_ARGS is: blanks separate,
//     quotes keep blanks (CUDAGRAPH_CAPTURE_SIZES="1 2 4 8", LORA_MODULES="a=/p/a b=/p/b").
func nargsValues(v string) ([]string, error) {
	t := strings.TrimSpace(v)
	if strings.HasPrefix(t, "{") {
		return []string{t}, nil
	}
	if strings.HasPrefix(t, "[") {
		var items []json.RawMessage
		if json.Unmarshal([]byte(t), &items) == nil && len(items) > 0 {
			out := make([]string, len(items))
			for i, it := range items {
				var s string
				if json.Unmarshal(it, &s) == nil {
					out[i] = s
				} else {
					out[i] = string(it)
				}
			}
			return out, nil
		}
	}
	return shellSplit(v)
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
