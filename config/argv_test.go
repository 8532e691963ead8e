package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mustLoad loads environ or fails the test.
func mustLoad(t *testing.T, environ ...string) *Config {
	t.Helper()
	c, err := Load(environ)
	if err != nil {
		t.Fatalf("Load(%q): %v", environ, err)
	}
	return c
}

// vllm is the argv of a vLLM child on port 8123 for model m, followed by tail.
func vllm(model string, tail ...string) []string {
	return append([]string{"python3", "-m", "vllm.entrypoints.openai.api_server",
		"--host", "127.0.0.1", "--port", "8123", "--model", model}, tail...)
}

// withDefaults is tail after the flags every vLLM argv has unless told otherwise.
func withDefaults(tail ...string) []string {
	return append([]string{"--gpu-memory-utilization", "0.98", "--disable-log-stats"}, tail...)
}

func TestEngineArgv(t *testing.T) {
	const tpl = "{% for m in messages %}{{ m.content }}{% endfor %}"
	tests := []struct {
		name string
		env  []string
		want []string
		warn string // a substring of the joined warnings; "" = no warning
	}{
		{
			name: "minimal",
			env:  []string{"MODEL_NAME=m"},
			want: vllm("m", withDefaults()...),
		},
		{
			name: "seed README example",
			env: []string{
				"MODEL_NAME=openchat/openchat-3.5-1210", "MODEL_REVISION=main", "MAX_MODEL_LENGTH=8192",
				"BASE_PATH=/models", "LOAD_FORMAT=safetensors", "HF_TOKEN=hf_SeCrEt", "QUANTIZATION=awq",
				"TRUST_REMOTE_CODE=1", "TOKENIZER_NAME=openchat/openchat-3.5-1210", "TOKENIZER_REVISION=main",
				"CUSTOM_CHAT_TEMPLATE=" + tpl, "TENSOR_PARALLEL_SIZE=2", "GPU_MEMORY_UTILIZATION=0.95",
				"MAX_PARALLEL_LOADING_WORKERS=4", "DEFAULT_BATCH_SIZE=30", "DEFAULT_MIN_BATCH_SIZE=2",
				"DEFAULT_BATCH_SIZE_GROWTH_FACTOR=2", "RAW_OPENAI_OUTPUT=1",
				"OPENAI_SERVED_MODEL_NAME_OVERRIDE=openchat", "OPENAI_RESPONSE_ROLE=assistant",
				"MAX_CONCURRENCY=50", "DISABLE_LOG_STATS=1", "DISABLE_LOG_REQUESTS=0",
			},
			want: vllm("openchat/openchat-3.5-1210",
				"--revision", "main", "--served-model-name", "openchat", "--max-model-len", "8192",
				"--tokenizer", "openchat/openchat-3.5-1210", "--tokenizer-revision", "main",
				"--chat-template", tpl, "--load-format", "safetensors", "--quantization", "awq",
				"--trust-remote-code", "--tensor-parallel-size", "2", "--max-parallel-loading-workers", "4",
				"--gpu-memory-utilization", "0.95", "--disable-log-stats", "--enable-log-requests"),
		},
		{
			name: "paired booleans: true is --flag, false is --no-flag",
			env: []string{"MODEL_NAME=m", "ENFORCE_EAGER=false", "ENABLE_PREFIX_CACHING=0",
				"ENABLE_AUTO_TOOL_CHOICE=Yes", "TOOL_CALL_PARSER=hermes", "TRUST_REMOTE_CODE=off"},
			want: vllm("m", "--no-trust-remote-code", "--gpu-memory-utilization", "0.98", "--disable-log-stats",
				"--enable-auto-tool-choice", "--no-enable-prefix-caching", "--no-enforce-eager",
				"--tool-call-parser", "hermes"),
		},
		{
			name: "generic flags sorted by flag name",
			env:  []string{"MODEL_NAME=m", "MAX_LORAS=2", "MAX_LORA_RANK=16", "ENABLE_LORA=1", "DTYPE=half"},
			want: vllm("m", withDefaults("--dtype", "half", "--enable-lora", "--max-lora-rank", "16", "--max-loras", "2")...),
		},
		{
			name: "removed flag warns and emits nothing",
			env:  []string{"MODEL_NAME=m", "SWAP_SPACE=4"},
			want: vllm("m", withDefaults()...),
			warn: "SWAP_SPACE is ignored: vLLM removed --swap-space after v0.17.1",
		},
		{
			name: "removed flag with a hint",
			env:  []string{"MODEL_NAME=m", "ROPE_SCALING={}", "TASK=generate"},
			want: vllm("m", withDefaults()...),
			warn: "ROPE_SCALING is ignored: vLLM removed --rope-scaling after v0.11.0; use HF_OVERRIDES\nTASK is ignored: vLLM removed --task after v0.12.0; use RUNNER or CONVERT",
		},
		{
			name: "flags the worker owns warn and emit nothing",
			env:  []string{"MODEL_NAME=m", "UDS=/tmp/vllm.sock", "SSL_KEYFILE=/k", "SSL_CIPHERS=x"},
			want: vllm("m", withDefaults()...),
			warn: "UDS is ignored",
		},
		{
			name: "SSL flags point to the worker's TLS",
			env:  []string{"MODEL_NAME=m", "SSL_CERTFILE=/c"},
			want: vllm("m", withDefaults()...),
			warn: "SSL_CERTFILE is ignored: the worker reaches the engine over plain HTTP on a loopback port; for HTTPS to clients set TLS_CERT_FILE and TLS_KEY_FILE",
		},
		{
			name: "vLLM's CORS is passed, with a pointer to the worker's",
			env:  []string{"MODEL_NAME=m", "ALLOWED_ORIGINS=[\"*\"]"},
			want: vllm("m", withDefaults("--allowed-origins", "[\"*\"]")...),
			warn: "ALLOWED_ORIGINS sets CORS for vLLM's own server, which only the worker reaches, so browsers never see it; CORS_ALLOWED_ORIGINS sets the worker's",
		},
		{
			name: "MAX_NUM_BATCHED_TOKENS=0 is dropped, SEED=0 is kept",
			env:  []string{"MODEL_NAME=m", "MAX_NUM_BATCHED_TOKENS=0", "SEED=0"},
			want: vllm("m", withDefaults("--seed", "0")...),
		},
		{
			name: "MAX_NUM_BATCHED_TOKENS nonzero is kept",
			env:  []string{"MODEL_NAME=m", "MAX_NUM_BATCHED_TOKENS=8192"},
			want: vllm("m", withDefaults("--max-num-batched-tokens", "8192")...),
		},
		{
			name: "JSON passes verbatim",
			env:  []string{"MODEL_NAME=m", `SPECULATIVE_CONFIG={"method": "ngram", "num_speculative_tokens": 5}`},
			want: vllm("m", withDefaults("--speculative-config", `{"method": "ngram", "num_speculative_tokens": 5}`)...),
		},
		{
			name: "LORA_MODULES: a JSON list is one argument per object",
			env:  []string{"MODEL_NAME=m", `LORA_MODULES=[{"name": "a", "path": "p/a"}, {"name":"b","path":"p/b"}]`},
			want: vllm("m", withDefaults("--lora-modules", `{"name": "a", "path": "p/a"}`, `{"name":"b","path":"p/b"}`)...),
		},
		{
			name: "LORA_MODULES: name=path pairs split, one object verbatim",
			env:  []string{"MODEL_NAME=m", "LORA_MODULES=a=p/a b=p/b"},
			want: vllm("m", withDefaults("--lora-modules", "a=p/a", "b=p/b")...),
		},
		{
			name: "VLLM_EXTRA_ARGS are shell-split and last",
			env: []string{"MODEL_NAME=m", "MAX_NUM_SEQS=16",
				`VLLM_EXTRA_ARGS=--max-num-seqs 8 --chat-template "a b" --x='y z' --empty ''`},
			want: vllm("m", withDefaults("--max-num-seqs", "16",
				"--max-num-seqs", "8", "--chat-template", "a b", "--x=y z", "--empty", "")...),
		},
		{
			name: "override beats SERVED_MODEL_NAME; names split on commas and spaces",
			env:  []string{"MODEL_NAME=m", "SERVED_MODEL_NAME=a", "OPENAI_SERVED_MODEL_NAME_OVERRIDE=b, c"},
			want: vllm("m", append([]string{"--served-model-name", "b", "c"}, withDefaults()...)...),
		},
		{
			name: "SERVED_MODEL_NAME alone",
			env:  []string{"MODEL_NAME=m", "SERVED_MODEL_NAME=a"},
			want: vllm("m", append([]string{"--served-model-name", "a"}, withDefaults()...)...),
		},
		{
			name: "generic aliases of seed names",
			env: []string{"MODEL_NAME=m", "REVISION=r", "MAX_MODEL_LEN=4096", "TOKENIZER=t",
				"CHAT_TEMPLATE=/tpl.jinja", "RESPONSE_ROLE=bot", "ENABLE_LOG_REQUESTS=false"},
			want: vllm("m", "--revision", "r", "--max-model-len", "4096", "--tokenizer", "t",
				"--chat-template", "/tpl.jinja", "--response-role", "bot", "--gpu-memory-utilization", "0.98",
				"--disable-log-stats", "--no-enable-log-requests"),
		},
		{
			name: "seed name wins over its alias, with a warning",
			env:  []string{"MODEL_NAME=m", "MAX_MODEL_LENGTH=8192", "MAX_MODEL_LEN=4096"},
			want: vllm("m", append([]string{"--max-model-len", "8192"}, withDefaults()...)...),
			warn: "MAX_MODEL_LENGTH and MAX_MODEL_LEN are both set and differ",
		},
		{
			name: "max model len in vLLM's forms",
			env:  []string{"MODEL_NAME=m", "MAX_MODEL_LENGTH=32k"},
			want: vllm("m", append([]string{"--max-model-len", "32000"}, withDefaults()...)...),
		},
		{
			name: "max model len auto",
			env:  []string{"MODEL_NAME=m", "MAX_MODEL_LEN=auto"},
			want: vllm("m", append([]string{"--max-model-len", "auto"}, withDefaults()...)...),
		},
		{
			name: "log switches off; DISABLE_LOG_REQUESTS=1 emits nothing",
			env:  []string{"MODEL_NAME=m", "DISABLE_LOG_STATS=false", "DISABLE_LOG_REQUESTS=1"},
			want: vllm("m", "--gpu-memory-utilization", "0.98"),
		},
		{
			name: "DISABLE_LOG_REQUESTS wins over ENABLE_LOG_REQUESTS",
			env:  []string{"MODEL_NAME=m", "DISABLE_LOG_REQUESTS=1", "ENABLE_LOG_REQUESTS=1"},
			want: vllm("m", withDefaults()...),
			warn: "disagree",
		},
		{
			name: "response role assistant is vLLM's default",
			env:  []string{"MODEL_NAME=m", "OPENAI_RESPONSE_ROLE=assistant", "RESPONSE_ROLE=bot"},
			want: vllm("m", withDefaults()...),
			warn: "OPENAI_RESPONSE_ROLE and RESPONSE_ROLE",
		},
		{
			name: "parallelism and shutdown",
			env: []string{"MODEL_NAME=m", "PIPELINE_PARALLEL_SIZE=2", "DISTRIBUTED_EXECUTOR_BACKEND=Ray",
				"SHUTDOWN_TIMEOUT=20"},
			want: vllm("m", "--pipeline-parallel-size", "2", "--distributed-executor-backend", "ray",
				"--gpu-memory-utilization", "0.98", "--disable-log-stats", "--shutdown-timeout", "20"),
		},
		{
			name: "the worker's own variables are never flags",
			env: []string{"MODEL_NAME=m", "HOST=1.2.3.4", "PORT=9000", "PORT_HEALTH=9001", "API_KEY=k",
				"MODEL=x", "CONFIG=y.yaml", "HELP=1", "LOG_LEVEL=debug", "LOG_FORMAT=json",
				"MAX_CONCURRENCY=3", "ENGINE_RESTART=on-failure", "BASE_PATH=/models", "VLLM_PORT=1",
				"HF_TOKEN=hf_SeCrEt", "RUNPOD_POD_ID=p"},
			want: vllm("m", withDefaults()...),
		},
		{
			name: "VLLM_EXTRA_ARGS moving the engine's port warns",
			env:  []string{"MODEL_NAME=m", "VLLM_EXTRA_ARGS=--port=9000"},
			want: vllm("m", withDefaults("--port=9000")...),
			warn: "VLLM_EXTRA_ARGS sets --port",
		},
		{
			name: "HF_TOKEN pasted into VLLM_EXTRA_ARGS warns",
			env:  []string{"MODEL_NAME=m", "HF_TOKEN=hf_x", "VLLM_EXTRA_ARGS=--hf-token hf_x"},
			want: vllm("m", withDefaults("--hf-token", "hf_x")...),
			warn: "VLLM_EXTRA_ARGS holds HF_TOKEN's value",
		},
		{
			name: "flags of the table beyond worker-vllm's list",
			env: []string{"MODEL_NAME=m", "HEADLESS=1", "AGGREGATE_ENGINE_LOGGING=1",
				"FAIL_ON_ENVIRON_VALIDATION=1", "GDN_PREFILL_BACKEND=triton"},
			want: vllm("m", withDefaults("--aggregate-engine-logging", "--fail-on-environ-validation",
				"--gdn-prefill-backend", "triton", "--headless")...),
		},
		{
			name: "an explicit false: --no-flag for a pair, nothing for a store_true flag",
			env:  []string{"MODEL_NAME=m", "HEADLESS=0", "AGGREGATE_ENGINE_LOGGING=off", "FAIL_ON_ENVIRON_VALIDATION=0"},
			want: vllm("m", withDefaults("--no-fail-on-environ-validation")...),
		},
		{
			name: "nargs: shell words",
			env:  []string{"MODEL_NAME=m", "CUDAGRAPH_CAPTURE_SIZES=1 2  4", `IGNORE_PATTERNS='original/**/*' "*.pt"`},
			want: vllm("m", withDefaults("--cudagraph-capture-sizes", "1", "2", "4", "--ignore-patterns", "original/**/*", "*.pt")...),
		},
		{
			name: "nargs: a JSON list is one argument per item",
			env:  []string{"MODEL_NAME=m", "CUDAGRAPH_CAPTURE_SIZES=[1, 2, 4]", `ALLOWED_MEDIA_DOMAINS=["a.com", "b b.org"]`},
			want: vllm("m", withDefaults("--allowed-media-domains", "a.com", "b b.org", "--cudagraph-capture-sizes", "1", "2", "4")...),
		},
		{
			name: "nargs: a glob that is not a JSON list is a word",
			env:  []string{"MODEL_NAME=m", "IGNORE_PATTERNS=[ab]*.bin"},
			want: vllm("m", withDefaults("--ignore-patterns", "[ab]*.bin")...),
		},
		{
			name: "a value with choices passes verbatim; vLLM checks it",
			env:  []string{"MODEL_NAME=m", "KV_CACHE_DTYPE=fp8", "MAX_MODEL_LEN=auto", "ALLOWED_ORIGINS=[\"*\"]"},
			want: vllm("m", append([]string{"--max-model-len", "auto"}, withDefaults("--allowed-origins", `["*"]`, "--kv-cache-dtype", "fp8")...)...),
			warn: "ALLOWED_ORIGINS sets CORS for vLLM's own server",
		},
		{
			name: "a flag vLLM removed after worker-vllm listed it",
			env:  []string{"MODEL_NAME=m", "CALCULATE_KV_SCALES=1"},
			want: vllm("m", withDefaults()...),
			warn: "CALCULATE_KV_SCALES is ignored: vLLM removed --calculate-kv-scales after v0.27.1",
		},
		{
			name: "a removed flag names the flags vLLM gave instead",
			env:  []string{"MODEL_NAME=m", "NUM_SPECULATIVE_TOKENS=4"},
			want: vllm("m", withDefaults()...),
			warn: "vLLM removed --num-speculative-tokens after v0.8.2; use SPECULATIVE_CONFIG or SPEC_TOKENS",
		},
		{
			name: "a removed flag worker-vllm folded into another setting",
			env:  []string{"MODEL_NAME=m", "NGRAM_PROMPT_LOOKUP_MAX=4"},
			want: vllm("m", withDefaults()...),
			warn: "NGRAM_PROMPT_LOOKUP_MAX is ignored: vLLM removed --ngram-prompt-lookup-max after v0.8.2; use SPECULATIVE_CONFIG (JSON)",
		},
		{
			name: "worker-vllm's own names",
			env:  []string{"MODEL_NAME=m", "VLLM_CONFIG_FILE=/c.yaml"},
			want: vllm("m", withDefaults()...),
			warn: `VLLM_CONFIG_FILE is ignored: worker-vllm read it, but it is no flag of vLLM v0.28.0; use VLLM_EXTRA_ARGS="--config <file>"`,
		},
		{
			name: "a flag newer than the table's version",
			env:  []string{"MODEL_NAME=m", "ENABLE_TRACE_REPLAY=1"},
			want: vllm("m", withDefaults()...),
			warn: "ENABLE_TRACE_REPLAY is ignored: --enable-trace-replay is newer than vLLM v0.28.0, whose flags the worker knows; if your vLLM has it, pass it in VLLM_EXTRA_ARGS",
		},
		{
			name: "a misspelt variable names the nearest and VLLM_EXTRA_ARGS",
			env:  []string{"MODEL_NAME=m", "MAX_MODEL_LENGHT=4096"},
			want: vllm("m", withDefaults()...),
			warn: "MAX_MODEL_LENGHT is ignored: it is neither a variable of the worker nor a flag of vLLM v0.28.0; did you mean MAX_MODEL_LENGTH (--max-model-len)? VLLM_EXTRA_ARGS passes a flag the worker does not know",
		},
		{
			name: "flags the worker sets itself are never emitted twice",
			env: []string{"MODEL_NAME=m", "MODEL=x", "HOST=h", "PORT=1", "SERVED_MODEL_NAME=s",
				"GPU_MEMORY_UTILIZATION=0.5", "DISABLE_LOG_STATS=1", "CONFIG=/c.yaml", "API_KEY=k"},
			want: vllm("m", "--served-model-name", "s", "--gpu-memory-utilization", "0.5", "--disable-log-stats"),
		},
		{
			name: "nameless and malformed environ entries are ignored",
			env:  []string{"MODEL_NAME=m", "=x", "NOEQUALS", "=::=::\\"},
			want: vllm("m", withDefaults()...),
		},
		{
			name: "empty and blank values count as unset",
			env:  []string{"MODEL_NAME=m", "MAX_MODEL_LENGTH=", "QUANTIZATION=  ", "ENFORCE_EAGER=", "GPU_MEMORY_UTILIZATION="},
			want: vllm("m", withDefaults()...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.env...)
			got := c.EngineArgv(8123, "/bin/vllm-worker")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("EngineArgv mismatch (-want +got):\n%s", diff)
			}
			warnings := strings.Join(c.Warnings, "\n")
			if tt.warn == "" && warnings != "" {
				t.Errorf("got warnings %q; want none", c.Warnings)
			}
			if !strings.Contains(warnings, tt.warn) {
				t.Errorf("got warnings %q; want one containing %q", c.Warnings, tt.warn)
			}
			if strings.Contains(strings.Join(got, " "), "SeCrEt") {
				t.Errorf("HF_TOKEN's value is in argv %q", got)
			}
		})
	}
}

func TestEngineArgvSim(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"model name", []string{"ENGINE=sim", "MODEL_NAME=m", "MAX_NUM_SEQS=4", "VLLM_EXTRA_ARGS=--x"},
			[]string{"/bin/vllm-worker", "sim", "--host", "127.0.0.1", "--port", "8123", "--model", "m"}},
		{"first served name", []string{"ENGINE=sim", "MODEL_NAME=m", "OPENAI_SERVED_MODEL_NAME_OVERRIDE=a,b"},
			[]string{"/bin/vllm-worker", "sim", "--host", "127.0.0.1", "--port", "8123", "--model", "a"}},
		{"quirks", []string{"ENGINE=sim", "MODEL_NAME=m", "SIM_QUIRKS=flat_errors, no_n"},
			[]string{"/bin/vllm-worker", "sim", "--host", "127.0.0.1", "--port", "8123", "--model", "m", "--quirks", "flat_errors,no_n"}},
		{"ENGINE_URL: no child", []string{"ENGINE=sim", "ENGINE_URL=http://h:1/"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustLoad(t, tt.env...).EngineArgv(8123, "/bin/vllm-worker")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("EngineArgv mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEngineEnv(t *testing.T) {
	tests := []struct {
		name string
		env  []string // the worker's environment: both Load's and EngineEnv's input
		want []string
	}{
		{"HF_HOME from the default BASE_PATH; HF_TOKEN kept",
			[]string{"MODEL_NAME=m", "HF_TOKEN=hf_x"},
			[]string{"MODEL_NAME=m", "HF_TOKEN=hf_x", "HF_HOME=/runpod-volume/huggingface-cache"}},
		{"HF_HOME from BASE_PATH",
			[]string{"MODEL_NAME=m", "BASE_PATH=/models/"},
			[]string{"MODEL_NAME=m", "BASE_PATH=/models/", "HF_HOME=/models/huggingface-cache"}},
		{"HF_HOME already set wins",
			[]string{"MODEL_NAME=m", "HF_HOME=/cache", "BASE_PATH=/models"},
			[]string{"MODEL_NAME=m", "HF_HOME=/cache", "BASE_PATH=/models"}},
		{"empty HF_HOME is replaced",
			[]string{"MODEL_NAME=m", "HF_HOME="},
			[]string{"MODEL_NAME=m", "HF_HOME=/runpod-volume/huggingface-cache"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustLoad(t, tt.env...).EngineEnv(tt.env)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("EngineEnv mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServedModelNames(t *testing.T) {
	tests := []struct {
		env  []string
		want []string
	}{
		{[]string{"MODEL_NAME=org/m"}, []string{"org/m"}},
		{[]string{"MODEL_NAME=org/m", "SERVED_MODEL_NAME=a b"}, []string{"a", "b"}},
		{[]string{"MODEL_NAME=org/m", "SERVED_MODEL_NAME=a", "OPENAI_SERVED_MODEL_NAME_OVERRIDE=x,,y"}, []string{"x", "y"}},
		{[]string{"ENGINE_URL=http://127.0.0.1:9"}, nil},
	}
	for _, tt := range tests {
		if got := mustLoad(t, tt.env...).ServedModelNames(); !cmp.Equal(got, tt.want) {
			t.Errorf("ServedModelNames() with %q = %q; want %q", tt.env, got, tt.want)
		}
	}
}

// TestEveryFlagMaps sets each flag of the table's version, alone, as its UPPER_SNAKE name:
// each one reaches the engine's argv once, in its kind's form, without a warning, except the
// few that are the worker's own and the flags it owns.
func TestEveryFlagMaps(t *testing.T) {
	table := vllmFlags()
	base := len(mustLoad(t, "MODEL_NAME=m").EngineArgv(8123, "w"))
	var notMapped []string
	for _, r := range table.rows {
		if r.status != flagCurrent {
			continue
		}
		name := envName(r.flag)
		if c, _ := table.classify(name); c != flagVar {
			notMapped = append(notMapped, name)
			continue
		}
		type setting struct {
			value string
			want  []string
		}
		var settings []setting
		switch r.kind {
		case valueFlag:
			settings = []setting{{"8", []string{r.flag, "8"}}, {`{"a": 1}`, []string{r.flag, `{"a": 1}`}}}
		case pairedBool:
			settings = []setting{{"1", []string{r.flag}}, {"false", []string{"--no-" + r.flag[2:]}}}
		case storeTrue:
			settings = []setting{{"yes", []string{r.flag}}, {"0", nil}}
		case nargsFlag:
			settings = []setting{{"a 'b c'", []string{r.flag, "a", "b c"}}, {`["x"]`, []string{r.flag, "x"}}}
		}
		for _, s := range settings {
			c := mustLoad(t, "MODEL_NAME=m", name+"="+s.value)
			argv := c.EngineArgv(8123, "w")
			if got := argv[base:]; !slices.Equal(got, s.want) {
				t.Errorf("%s=%s: argv ends %q; want %q", name, s.value, got, s.want)
			}
			if len(c.Warnings) > 0 && !strings.HasPrefix(name, "ALLOW") { // vLLM's CORS flags warn that browsers never see them
				t.Errorf("%s=%s: warnings %q", name, s.value, c.Warnings)
			}
		}
	}
	// The worker's own (HOST, PORT, API_KEY, MODEL, CONFIG, HF_TOKEN), the seed names mapped by
	// seedFlags, and the flags the worker owns.
	want := []string{"API_KEY", "CHAT_TEMPLATE", "CONFIG", "DISABLE_LOG_STATS", "DISTRIBUTED_EXECUTOR_BACKEND",
		"ENABLE_LOG_REQUESTS", "ENABLE_SSL_REFRESH", "GPU_MEMORY_UTILIZATION", "HF_TOKEN", "HOST", "LOAD_FORMAT",
		"MAX_MODEL_LEN", "MAX_PARALLEL_LOADING_WORKERS", "MODEL", "PIPELINE_PARALLEL_SIZE", "PORT", "QUANTIZATION",
		"RESPONSE_ROLE", "REVISION", "SERVED_MODEL_NAME", "SHUTDOWN_TIMEOUT", "SSL_CA_CERTS", "SSL_CERTFILE",
		"SSL_CERT_REQS", "SSL_CIPHERS", "SSL_KEYFILE", "TENSOR_PARALLEL_SIZE", "TOKENIZER", "TOKENIZER_REVISION",
		"TRUST_REMOTE_CODE", "UDS"}
	slices.Sort(notMapped)
	if diff := cmp.Diff(want, notMapped); diff != "" {
		t.Errorf("current flags not mapped generically (-want +got):\n%s", diff)
	}
}
