package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestFlagTable(t *testing.T) {
	table, err := parseFlagTable(vllmFlagsTSV)
	if err != nil {
		t.Fatalf("vllmflags.tsv: %v", err)
	}
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(table.version) {
		t.Errorf("version %q; want a vLLM release such as v0.28.0", table.version)
	}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(table.commit) {
		t.Errorf("commit %q; want a full commit id", table.commit)
	}
	count := map[flagStatus]int{}
	for _, r := range table.rows {
		count[r.status]++
	}
	// The counts of vllm-flags-README.md: 284 flags at the read point, 60 removed since v0.8.0,
	// 4 on main after the branch point. A regenerated table changes them.
	if count[flagCurrent] != 284 || count[flagRemoved] != 60 || count[flagLater] != 4 {
		t.Errorf("rows: %d current, %d removed, %d later; want 284, 60, 4", count[flagCurrent], count[flagRemoved], count[flagLater])
	}
	for _, want := range []struct {
		flag string
		kind flagKind
	}{
		{"--headless", storeTrue},
		{"--aggregate-engine-logging", storeTrue},
		{"--disable-log-stats", storeTrue},
		{"--fail-on-environ-validation", pairedBool},
		{"--enforce-eager", pairedBool},
		{"--gdn-prefill-backend", valueFlag},
		{"--max-model-len", valueFlag},
		{"--cudagraph-capture-sizes", nargsFlag},
		{"--lora-modules", nargsFlag},
	} {
		r, ok := table.byEnv[envName(want.flag)]
		if !ok || r.flag != want.flag || r.kind != want.kind || r.status != flagCurrent {
			t.Errorf("%s: got %+v; want a current flag of kind %d", want.flag, r, want.kind)
		}
	}
	if r := table.byEnv["SWAP_SPACE"]; r.status != flagRemoved || r.last != "v0.17.1" {
		t.Errorf("SWAP_SPACE: got %+v; want removed, last in v0.17.1", r)
	}
	if r := table.byEnv["TASK"]; !slices.Equal(r.use, []string{"--runner", "--convert"}) {
		t.Errorf("TASK: use %q; want --runner, --convert", r.use)
	}
	if r := table.byEnv["ENABLE_TRACE_REPLAY"]; r.status != flagLater {
		t.Errorf("ENABLE_TRACE_REPLAY: got %+v; want later", r)
	}
}

func TestParseFlagTableRejects(t *testing.T) {
	const head = "version\tv1.0.0\ncommit\t0123456789012345678901234567890123456789\n"
	tests := []struct{ name, text, want string }{
		{"no version", "--a\tvalue\tcurrent\n", "no version or commit"},
		{"unsorted", head + "--b\tvalue\tcurrent\n--a\tvalue\tcurrent\n", "sorted"},
		{"twice", head + "--a\tvalue\tcurrent\n--a\tvalue\tcurrent\n", "sorted"},
		{"unknown kind", head + "--a\tstore_false\tcurrent\n", "unknown kind"},
		{"unknown status", head + "--a\tvalue\tdeprecated\n", "unknown status"},
		{"removed without last", head + "--a\tvalue\tremoved\n", "last release"},
		{"last on a current flag", head + "--a\tvalue\tcurrent\tv0.1.0\n", "last release"},
		{"use of a flag not current", head + "--a\tvalue\tremoved\tv0.1.0\t--b\n--b\tvalue\tremoved\tv0.1.0\n", "not a current flag"},
		{"not a flag", head + "-a\tvalue\tcurrent\n", "not a version"},
		{"upper case", head + "--A\tvalue\tcurrent\n", "not a version"},
		{"too many columns", head + "--a\tvalue\tremoved\tv1\t--b\tx\n", "columns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlagTable(tt.text)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseFlagTable: %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestDockerfilePinsTableVersion fails when the vLLM images the Dockerfile builds on and the
// flag table are of different versions: regenerate the table for the new pin (see the header
// of vllmflags.tsv).
func TestDockerfilePinsTableVersion(t *testing.T) {
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	from := regexp.MustCompile(`(?im)^\s*FROM\s+(?:--\S+\s+)*vllm/vllm-openai:(\S+)`)
	matches := from.FindAllStringSubmatch(string(raw), -1)
	if len(matches) == 0 {
		t.Fatal("the Dockerfile has no FROM vllm/vllm-openai:<tag>")
	}
	version := vllmFlags().version
	for _, m := range matches {
		// v0.28.0 and its CUDA builds, v0.28.0-cu129.
		tag, _, _ := strings.Cut(m[1], "-")
		if tag != version {
			t.Errorf("the Dockerfile pins vllm/vllm-openai:%s but config/vllmflags.tsv holds the flags of vLLM %s", m[1], version)
		}
	}
}

// TestFlagTableCoversWorkerVLLM checks the table against worker-vllm HEAD's own lists of the
// variables it turns into engine arguments, which this worker mapped before it had the table:
// every flag of them is a flag of the table's version but the two vLLM removed since.
func TestFlagTableCoversWorkerVLLM(t *testing.T) {
	table := vllmFlags()
	head := strings.Fields(`ADDITIONAL_CONFIG ALLOWED_HEADERS ALLOWED_LOCAL_MEDIA_PATH
		ALLOWED_MEDIA_DOMAINS ALLOWED_METHODS ALLOWED_ORIGINS API_SERVER_COUNT ATTENTION_BACKEND BLOCK_SIZE
		CHAT_TEMPLATE CHAT_TEMPLATE_CONTENT_FORMAT CODE_REVISION COLLECT_DETAILED_TRACES COMPILATION_CONFIG
		CONFIG_FORMAT CONVERT CPU_OFFLOAD_GB DATA_PARALLEL_ADDRESS DATA_PARALLEL_BACKEND DATA_PARALLEL_RANK
		DATA_PARALLEL_RPC_PORT DATA_PARALLEL_SIZE DATA_PARALLEL_SIZE_LOCAL DATA_PARALLEL_START_RANK
		DBO_DECODE_TOKEN_THRESHOLD DBO_PREFILL_TOKEN_THRESHOLD DECODE_CONTEXT_PARALLEL_SIZE DEFAULT_MM_LORAS
		DISTRIBUTED_EXECUTOR_BACKEND DOWNLOAD_DIR DTYPE EPLB_CONFIG EXPERT_PLACEMENT_STRATEGY
		GENERATION_CONFIG GPU_MEMORY_UTILIZATION H11_MAX_HEADER_COUNT H11_MAX_INCOMPLETE_EVENT_SIZE
		HF_CONFIG_PATH HF_OVERRIDES HF_TOKEN IGNORE_PATTERNS IO_PROCESSOR_PLUGIN KV_CACHE_DTYPE
		KV_CACHE_MEMORY_BYTES KV_EVENTS_CONFIG KV_OFFLOADING_BACKEND KV_OFFLOADING_SIZE KV_TRANSFER_CONFIG
		LIMIT_MM_PER_PROMPT LOAD_FORMAT LOG_CONFIG_FILE LOGITS_PROCESSORS LOGPROBS_MODE
		LONG_PREFILL_TOKEN_THRESHOLD LORA_DTYPE LORA_MODULES MAMBA_CACHE_DTYPE MAMBA_SSM_CACHE_DTYPE
		MAX_CPU_LORAS MAX_LOG_LEN MAX_LOGPROBS MAX_LORA_RANK MAX_LORAS MAX_MODEL_LEN MAX_NUM_BATCHED_TOKENS
		MAX_NUM_SEQS MAX_PARALLEL_LOADING_WORKERS MEDIA_IO_KWARGS MIDDLEWARE MM_ENCODER_TP_MODE
		MM_PROCESSOR_CACHE_GB MM_PROCESSOR_CACHE_TYPE MM_PROCESSOR_KWARGS MM_SHM_CACHE_MAX_OBJECT_SIZE_MB
		MODEL_IMPL MODEL_LOADER_EXTRA_CONFIG NUM_GPU_BLOCKS_OVERRIDE OTLP_TRACES_ENDPOINT
		OVERRIDE_GENERATION_CONFIG PIPELINE_PARALLEL_SIZE POOLER_CONFIG PREFIX_CACHING_HASH_ALGO
		PT_LOAD_MAP_LOCATION QUANTIZATION REASONING_PARSER RESPONSE_ROLE REVISION ROOT_PATH RUNNER
		SAFETENSORS_LOAD_STRATEGY SCHEDULER_CLS SCHEDULING_POLICY SEED SERVED_MODEL_NAME
		SHOW_HIDDEN_METRICS_FOR_VERSION SPECULATIVE_CONFIG SSL_CA_CERTS SSL_CERT_REQS SSL_CERTFILE
		SSL_KEYFILE STRUCTURED_OUTPUTS_CONFIG TENSOR_PARALLEL_SIZE TOKENIZER TOKENIZER_MODE
		TOKENIZER_REVISION TOOL_CALL_PARSER TOOL_PARSER_PLUGIN TOOL_SERVER UDS UVICORN_LOG_LEVEL
		VIDEO_PRUNING_RATE WORKER_CLS WORKER_EXTENSION_CLS
		ALLOW_CREDENTIALS ASYNC_SCHEDULING DATA_PARALLEL_HYBRID_LB DISABLE_CASCADE_ATTN
		DISABLE_CHUNKED_MM_INPUT DISABLE_CUSTOM_ALL_REDUCE DISABLE_FASTAPI_DOCS
		DISABLE_HYBRID_KV_CACHE_MANAGER DISABLE_SLIDING_WINDOW DISABLE_UVICORN_ACCESS_LOG
		ENABLE_AUTO_TOOL_CHOICE ENABLE_CHUNKED_PREFILL ENABLE_DBO ENABLE_EPLB ENABLE_EXPERT_PARALLEL
		ENABLE_FORCE_INCLUDE_USAGE ENABLE_LOG_OUTPUTS ENABLE_LOG_REQUESTS ENABLE_LORA ENABLE_PREFIX_CACHING
		ENABLE_PROMPT_EMBEDS ENABLE_PROMPT_TOKENS_DETAILS ENABLE_REQUEST_ID_HEADERS
		ENABLE_SERVER_LOAD_TRACKING ENABLE_SLEEP_MODE ENABLE_SSL_REFRESH ENABLE_TOKENIZER_INFO_ENDPOINT
		ENFORCE_EAGER EXCLUDE_TOOLS_WHEN_TOOL_CHOICE_NONE FULLY_SHARDED_LORAS INTERLEAVE_MM_STRINGS
		KV_SHARING_FAST_PREFILL LOG_ERROR_STACK RAY_WORKERS_USE_NSIGHT RETURN_TOKENS_AS_TOKEN_IDS
		SKIP_MM_PROFILING SKIP_TOKENIZER_INIT TRUST_REQUEST_CHAT_TEMPLATE USE_TQDM_ON_LOAD
		DISABLE_LOG_STATS SHUTDOWN_TIMEOUT`)
	for _, name := range head {
		if r := table.byEnv[name]; r.status != flagCurrent {
			t.Errorf("%s: %+v; want a current flag", name, r)
		}
	}
	for _, name := range []string{"CALCULATE_KV_SCALES", "OVERRIDE_ATTENTION_DTYPE"} {
		if r := table.byEnv[name]; r.status != flagRemoved || r.last != "v0.27.1" {
			t.Errorf("%s: %+v; want removed after v0.27.1", name, r)
		}
	}
	headRemoved := strings.Fields(`CUDA_GRAPH_SIZES DISABLE_FRONTEND_MULTIPROCESSING DISABLE_LOG_REQUESTS
		DISABLE_MM_PREPROCESSOR_CACHE ENABLE_LORA_BIAS ENABLE_MULTIMODAL_ENCODER_DATA_PARALLEL
		EPLB_LOG_BALANCEDNESS EPLB_STEP_INTERVAL EPLB_WINDOW_SIZE GUIDED_DECODING_BACKEND
		GUIDED_DECODING_DISABLE_ADDITIONAL_PROPERTIES GUIDED_DECODING_DISABLE_ANY_WHITESPACE
		GUIDED_DECODING_DISABLE_FALLBACK LOGITS_PROCESSOR_PATTERN LORA_EXTRA_VOCAB_SIZE
		MAX_LONG_PARTIAL_PREFILLS MAX_NUM_PARTIAL_PREFILLS NUM_LOOKAHEAD_SLOTS NUM_REDUNDANT_EXPERTS
		OVERRIDE_POOLER_CONFIG ROPE_SCALING ROPE_THETA SWAP_SPACE TASK`)
	for _, name := range headRemoved {
		if r := table.byEnv[name]; r.status != flagRemoved {
			t.Errorf("%s: %+v; want a removed flag", name, r)
		}
	}
}

// TestClassify checks the special cases around the table: the worker's variables, the flags it
// owns, and worker-vllm's names that are not vLLM flags.
func TestClassify(t *testing.T) {
	table := vllmFlags()
	tests := []struct {
		names []string
		want  envClass
	}{
		{[]string{"HOST", "PORT", "API_KEY", "MODEL", "CONFIG", "HELP", "HF_TOKEN", "MAX_CONCURRENCY", "LOG_LEVEL", "ENGINE"}, workerVar},
		{[]string{"MODEL_NAME", "MAX_MODEL_LEN", "MAX_MODEL_LENGTH", "SERVED_MODEL_NAME", "DISABLE_LOG_STATS", "DISABLE_LOG_REQUESTS", "GPU_MEMORY_UTILIZATION", "REVISION", "TOKENIZER"}, seedVar},
		{[]string{"HEADLESS", "AGGREGATE_ENGINE_LOGGING", "FAIL_ON_ENVIRON_VALIDATION", "GDN_PREFILL_BACKEND", "ENFORCE_EAGER", "SEED", "ROOT_PATH"}, flagVar},
		{[]string{"UDS", "SSL_KEYFILE", "SSL_CERTFILE", "SSL_CA_CERTS", "SSL_CERT_REQS", "SSL_CIPHERS", "ENABLE_SSL_REFRESH"}, workerOwnedVar},
		{[]string{"SWAP_SPACE", "TASK", "CALCULATE_KV_SCALES", "SPECULATIVE_MODEL", "DEVICE"}, removedVar},
		{[]string{"ENABLE_TRACE_REPLAY", "PREFIX_CACHE_RETENTION_INTERVAL", "DCP_Q_REPLICATE", "PER_REQUEST_SPEC_DECODE_METRICS"}, laterVar},
		{[]string{"VLLM_CONFIG_FILE", "MAX_CONTEXT_LEN_TO_CAPTURE", "SPECULATIVE_METHOD", "SPECULATIVE_ENFORCE_EAGER"}, legacyVar},
		{[]string{"PATH", "VLLM_USE_DEEP_GEMM", "MAX_MODEL_LENGHT", "NO_SUCH_FLAG"}, unknownVar},
	}
	for _, tt := range tests {
		for _, name := range tt.names {
			if got, _ := table.classify(name); got != tt.want {
				t.Errorf("classify(%s) = %d; want %d", name, got, tt.want)
			}
		}
	}
	for _, r := range table.rows {
		if workerOwnedFlag(r.flag) && r.status != flagCurrent {
			t.Errorf("worker-owned %s is not a current flag", r.flag)
		}
	}
}
