package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Variable documents one environment variable the worker reads: the source of
// docs/configuration.md (ConfigurationMarkdown) and, through vars_test.go, a check that
// every variable Load reads is documented and every documented one is read.
type Variable struct {
	Name        string   // the name to use; the seed's (worker-vllm 0.3.0) name where there is one
	Aliases     []string // other names for the same setting; when both are set and differ, Name wins with a warning
	Default     string   // the effective default, as text; "" when unset means "not set" (nothing is passed)
	Group       string   // the section of docs/configuration.md
	Description string   // Markdown, one paragraph, no "|"
	VLLMFlag    string   // the `vllm serve` flag it becomes; "" for a variable of the worker only
	Secret      bool     // never in the engine argv, logs, `vllm-worker config` output or error messages
	// Generic marks a vLLM flag that Load reads through the generic UPPER_SNAKE mapping rather
	// than a field of Config; it is listed for convenience, like any other vLLM flag would be.
	Generic bool
}

// The groups of Variables, in the order of docs/configuration.md.
const (
	GroupModel     = "Model"
	GroupTokenizer = "Tokenizer"
	GroupParallel  = "Parallelism"
	GroupSystem    = "System"
	GroupStreaming = "Streaming"
	GroupOpenAI    = "OpenAI"
	GroupServer    = "Serverless"
	GroupTools     = "Tools and LoRA"
	GroupEngine    = "Engine"
	GroupWorker    = "Worker"
	GroupRunPod    = "RunPod"
	GroupSim       = "Simulated engine"
)

// variableGroups lists the groups in document order.
func variableGroups() []string {
	return []string{GroupModel, GroupTokenizer, GroupParallel, GroupSystem, GroupStreaming, GroupOpenAI,
		GroupServer, GroupTools, GroupEngine, GroupWorker, GroupRunPod, GroupSim}
}

// Variables returns every environment variable the worker reads, grouped, in document order.
// It returns a new slice each time.
func Variables() []Variable {
	return []Variable{
		// Model.
		{Name: "MODEL_NAME", Group: GroupModel, VLLMFlag: "--model",
			Description: "The model to serve: a Hugging Face repository id (`Qwen/Qwen2.5-7B-Instruct`) or a local path. Required, unless `ENGINE_URL` is set. With `ENGINE=sim` it is the simulated model's name."},
		{Name: "MODEL_REVISION", Aliases: []string{"REVISION"}, Group: GroupModel, VLLMFlag: "--revision",
			Description: "The model revision: a branch, tag or commit."},
		{Name: "MAX_MODEL_LENGTH", Aliases: []string{"MAX_MODEL_LEN"}, Group: GroupModel, VLLMFlag: "--max-model-len",
			Default:     "the model's",
			Description: "The context length in tokens. vLLM's forms are accepted: `8192`, `32k` (decimal, `25.6k` allowed), `32K` (binary), and `auto` or `-1` (the longest that fits in GPU memory)."},
		{Name: "BASE_PATH", Group: GroupModel, Default: "/runpod-volume",
			Description: "Where the Hugging Face cache lives: the engine gets `HF_HOME=$BASE_PATH/huggingface-cache` unless `HF_HOME` is set. On RunPod a network volume is mounted at `/runpod-volume`, so the weights are downloaded once per volume. Images with a baked model use another path, such as `/models` (see [deployment](deployment.md))."},
		{Name: "LOAD_FORMAT", Group: GroupModel, VLLMFlag: "--load-format", Default: "vLLM's (`auto`)",
			Description: "The weight format (`auto`, `safetensors`, `pt`, `gguf`, ...)."},
		{Name: "HF_TOKEN", Group: GroupModel, Secret: true,
			Description: "Hugging Face token for private and gated models. It reaches the engine through its environment only: never its command line, the logs, `vllm-worker config` or an error message."},
		{Name: "QUANTIZATION", Group: GroupModel, VLLMFlag: "--quantization",
			Description: "The quantization method (`awq`, `gptq`, `fp8`, `bitsandbytes`, ...); the model must be quantized that way, except for methods vLLM applies at load time (e.g. `fp8`)."},
		{Name: "TRUST_REMOTE_CODE", Group: GroupModel, VLLMFlag: "--trust-remote-code", Default: "off",
			Description: "Run the model repository's own Python code. A boolean: `1` gives `--trust-remote-code`, `0` gives `--no-trust-remote-code`."},

		// Tokenizer.
		{Name: "TOKENIZER_NAME", Aliases: []string{"TOKENIZER"}, Group: GroupTokenizer, VLLMFlag: "--tokenizer", Default: "the model's",
			Description: "A tokenizer repository or path other than the model's."},
		{Name: "TOKENIZER_REVISION", Group: GroupTokenizer, VLLMFlag: "--tokenizer-revision",
			Description: "The tokenizer revision."},
		{Name: "CUSTOM_CHAT_TEMPLATE", Aliases: []string{"CHAT_TEMPLATE"}, Group: GroupTokenizer, VLLMFlag: "--chat-template", Default: "the tokenizer's",
			Description: "A Jinja chat template, inline or as a file path, for models whose tokenizer has none (needed for `messages` and `apply_chat_template`)."},

		// Parallelism.
		{Name: "TENSOR_PARALLEL_SIZE", Group: GroupParallel, VLLMFlag: "--tensor-parallel-size", Default: "vLLM's (1)",
			Description: "How many GPUs each model replica is split across."},
		{Name: "PIPELINE_PARALLEL_SIZE", Group: GroupParallel, VLLMFlag: "--pipeline-parallel-size", Default: "vLLM's (1)",
			Description: "Pipeline stages; with tensor parallelism, GPUs used = TP × PP (across nodes with `ray`)."},
		{Name: "DISTRIBUTED_EXECUTOR_BACKEND", Group: GroupParallel, VLLMFlag: "--distributed-executor-backend", Default: "vLLM's choice",
			Description: "`mp`, `ray`, `uni` or `external_launcher`. `ray` is the one for more than one node (see [deployment](deployment.md))."},

		// System.
		{Name: "GPU_MEMORY_UTILIZATION", Group: GroupSystem, VLLMFlag: "--gpu-memory-utilization", Default: "0.98",
			Description: "The fraction of GPU memory vLLM may use, in (0, 1]. Always passed: the seed's 0.98 differs from vLLM's 0.9."},
		{Name: "MAX_PARALLEL_LOADING_WORKERS", Group: GroupSystem, VLLMFlag: "--max-parallel-loading-workers",
			Description: "vLLM's bound on the workers that load the weights at once, to limit host memory when loading a large model with tensor parallelism."},

		// Streaming.
		{Name: "DEFAULT_BATCH_SIZE", Group: GroupStreaming, Default: "50",
			Description: "The largest item of a streamed answer, in units (a token of one choice in native jobs; an SSE event in OpenAI jobs and on the OpenAI HTTP routes). A job's `max_batch_size` overrides it."},
		{Name: "DEFAULT_MIN_BATCH_SIZE", Aliases: []string{"MIN_BATCH_SIZE"}, Group: GroupStreaming, Default: "1",
			Description: "The first item's size. Each next item may be the previous one × the growth factor, up to `DEFAULT_BATCH_SIZE`: 1, 3, 9, 27, 50, 50, ... by default. A job's `min_batch_size` overrides it. worker-vllm documented this name but read only the alias; both are read here."},
		{Name: "DEFAULT_BATCH_SIZE_GROWTH_FACTOR", Aliases: []string{"BATCH_SIZE_GROWTH_FACTOR"}, Group: GroupStreaming, Default: "3",
			Description: "The growth factor, > 0; a float is accepted (`1.5`). Batching is dynamic only when it is > 1, the minimum is ≥ 1 and the maximum exceeds the minimum; otherwise every item holds `DEFAULT_BATCH_SIZE` units. A job's `batch_size_growth_factor` overrides it."},
		{Name: "BATCH_MAX_WAIT_MS", Group: GroupStreaming, Default: "50",
			Description: "An item is also sent once its oldest unit has waited this long, so batching never holds a token back longer, even when the engine is slow. `0` turns the time cap off (pure counting, as in worker-vllm)."},

		// OpenAI.
		{Name: "RAW_OPENAI_OUTPUT", Group: GroupOpenAI, Default: "1",
			Description: "For streamed `openai_route` jobs: `1` makes each output item one string of whole SSE events (`data: {...}\\n\\n`, the last ending with `data: [DONE]\\n\\n`); `0` makes it a list of the parsed chunk objects, without `[DONE]`."},
		{Name: "OPENAI_SERVED_MODEL_NAME_OVERRIDE", Group: GroupOpenAI, VLLMFlag: "--served-model-name",
			Description: "The model name clients use in `model` and see in `/v1/models`; wins over `SERVED_MODEL_NAME`. Several names may be given, separated by commas or spaces; the first is the one responses carry."},
		{Name: "SERVED_MODEL_NAME", Group: GroupOpenAI, VLLMFlag: "--served-model-name", Default: "`MODEL_NAME`",
			Description: "vLLM's own name for the same setting, used when `OPENAI_SERVED_MODEL_NAME_OVERRIDE` is not set."},
		{Name: "OPENAI_RESPONSE_ROLE", Aliases: []string{"RESPONSE_ROLE"}, Group: GroupOpenAI, VLLMFlag: "--response-role", Default: "assistant",
			Description: "The role of generated chat messages. Passed only when it is not `assistant`, vLLM's default."},

		// Serverless.
		{Name: "MAX_CONCURRENCY", Group: GroupServer, Default: "100",
			Description: "How many requests run at once: OpenAI HTTP requests to the engine (beyond, up to `MAX_QUEUE` wait and then 429), jobs of `/run` and `/runsync` (beyond, they stay `IN_QUEUE`), and jobs taken in handler mode."},
		{Name: "DISABLE_LOG_STATS", Group: GroupServer, VLLMFlag: "--disable-log-stats", Default: "1",
			Description: "`1` stops vLLM's periodic throughput log line; `0` passes nothing."},
		{Name: "DISABLE_LOG_REQUESTS", Group: GroupServer, VLLMFlag: "--enable-log-requests", Default: "1",
			Description: "vLLM's request logging. vLLM removed `--disable-log-requests` after 0.16 and logs no requests by default, so `1` passes nothing and `0` passes `--enable-log-requests`. Wins over `ENABLE_LOG_REQUESTS` when both are set."},
		{Name: "ENABLE_LOG_REQUESTS", Group: GroupServer, VLLMFlag: "--enable-log-requests",
			Description: "vLLM's current name for request logging, used when `DISABLE_LOG_REQUESTS` is not set: `1` gives `--enable-log-requests`, `0` gives `--no-enable-log-requests`."},

		// Tools and LoRA: generic vLLM flags, listed because the contract names them.
		{Name: "ENABLE_AUTO_TOOL_CHOICE", Group: GroupTools, VLLMFlag: "--enable-auto-tool-choice", Generic: true,
			Description: "A boolean: let the model call tools on its own (`tool_choice: \"auto\"`); needs `TOOL_CALL_PARSER`."},
		{Name: "TOOL_CALL_PARSER", Group: GroupTools, VLLMFlag: "--tool-call-parser", Generic: true,
			Description: "The parser of the model's tool calls (`hermes`, `llama3_json`, `mistral`, ...). vLLM refuses to start with an unknown name."},
		{Name: "REASONING_PARSER", Group: GroupTools, VLLMFlag: "--reasoning-parser", Generic: true,
			Description: "The parser that moves the model's reasoning into `reasoning` fields (`deepseek_r1`, `qwen3`, ...)."},
		{Name: "ENABLE_LORA", Group: GroupTools, VLLMFlag: "--enable-lora", Generic: true,
			Description: "A boolean: serve LoRA adapters."},
		{Name: "LORA_MODULES", Group: GroupTools, VLLMFlag: "--lora-modules", Generic: true,
			Description: "Adapters to load at start: `name=path` words separated by spaces, one JSON object `{\"name\",\"path\",\"base_model_name\"}`, or, as worker-vllm accepted, a JSON list of such objects (one argument each)."},
		{Name: "MAX_LORAS", Group: GroupTools, VLLMFlag: "--max-loras", Generic: true,
			Description: "How many adapters may be used in one batch."},
		{Name: "MAX_LORA_RANK", Group: GroupTools, VLLMFlag: "--max-lora-rank", Generic: true,
			Description: "The largest adapter rank."},

		// Engine.
		{Name: "ENGINE", Group: GroupEngine, Default: "vllm",
			Description: "`vllm` runs `python3 -m vllm.entrypoints.openai.api_server` as a child process; `sim` runs the built-in simulated engine (`vllm-worker sim`) instead: no GPU, no Python."},
		{Name: "ENGINE_URL", Group: GroupEngine,
			Description: "Use an OpenAI-compatible server that is already running (an `http://` or `https://` URL without a query) instead of starting a child: `ENGINE` is then ignored, `MODEL_NAME` is optional, and the worker waits for `ENGINE_URL/health`. The worker never restarts it."},
		{Name: "VLLM_EXTRA_ARGS", Group: GroupEngine,
			Description: "More `vllm serve` arguments, split as a shell splits words (quotes keep spaces) and appended last, so that they win. `--host`, `--port` and `--uds` get a warning: the worker chooses the engine's address."},
		{Name: "VLLM_STARTUP_TIMEOUT", Group: GroupEngine, Default: "1200",
			Description: "Seconds the engine has to answer `GET /health` with 200 after it was started (downloads and compilation included). Past it the start has failed."},
		{Name: "ENGINE_STALL_TIMEOUT", Group: GroupEngine, Default: "300",
			Description: "Seconds of start-up with no engine output and no readiness after which the worker logs a warning that the start-up looks stalled (once per stall; `/health` keeps reporting the phase). 0 turns it off."},
		{Name: "ENGINE_RESTART", Group: GroupEngine, Default: "never",
			Description: "`never`: when the engine dies the worker exits non-zero, so that RunPod or the orchestrator replaces it. `on-failure`: it restarts the engine after 1 s, doubling up to 1 min (back to 1 s after 5 min of service); until it is back, `/health` reports `unhealthy`, then `starting`."},
		{Name: "SHUTDOWN_TIMEOUT", Group: GroupEngine, VLLMFlag: "--shutdown-timeout", Default: "vLLM's (0)",
			Description: "Whole seconds vLLM (0.18 or later) drains its requests on SIGTERM. The worker also waits that long plus 5 s (instead of 10 s) before it kills the engine's process group."},

		// Worker.
		{Name: "HOST", Group: GroupWorker, Default: "0.0.0.0",
			Description: "The address the worker listens on."},
		{Name: "PORT", Group: GroupWorker, Default: "8000",
			Description: "The port of every route; `0` picks a free one (logged). HTTPS when `TLS_CERT_FILE` and `TLS_KEY_FILE` are set, else plain HTTP."},
		{Name: "PORT_HEALTH", Group: GroupWorker, Default: "`PORT`",
			Description: "RunPod load-balancer endpoints probe `GET /ping` on this port. When it differs from `PORT`, a second listener serves only `/ping` and `/health` there, always over plain HTTP (also with `TLS_CERT_FILE`), for load balancers and probes that speak no TLS."},
		{Name: "API_KEY", Group: GroupWorker, Secret: true,
			Description: "When set, every route but `/health` and `/ping` needs `Authorization: Bearer <key>` (or the bare key, as RunPod sends it); otherwise 401."},
		{Name: "LOG_LEVEL", Group: GroupWorker, Default: "info",
			Description: "`trace`, `debug`, `info`, `warn` (or `warning`), `error`, `fatal`, `panic` or `disabled`. The access log lines of successful `/health`, `/ping` and `/metrics` requests are at `debug`."},
		{Name: "LOG_FORMAT", Group: GroupWorker, Default: "json on RunPod, else console",
			Description: "`json` (one object per line) or `console`. The default is `json` when `RUNPOD_WEBHOOK_GET_JOB`, `RUNPOD_POD_ID` or `RUNPOD_ENDPOINT_ID` is set."},
		{Name: "MAX_REQUEST_BYTES", Group: GroupWorker, Default: "33554432",
			Description: "The largest request body (32 MiB); larger ones get 413."},
		{Name: "SHUTDOWN_GRACE_SECONDS", Group: GroupWorker, Default: "25",
			Description: "On SIGTERM the worker stops taking new work (503 with `Retry-After`; handler mode stops taking jobs) and lets the requests and jobs in flight finish for up to this long in all, then cuts what is left and stops the engine. A handler-mode job cut this way posts no result, so that RunPod can give it to another worker. Fractions are accepted."},
		{Name: "MAX_QUEUE", Group: GroupWorker, Default: "1000",
			Description: "OpenAI HTTP requests that may wait for one of the `MAX_CONCURRENCY` slots; beyond, 429 with `Retry-After`. `0` refuses at once."},
		{Name: "FIRST_BYTE_TIMEOUT_SECONDS", Group: GroupWorker, Default: "1800",
			Description: "The longest wait for the engine's response headers; vLLM sends them only after the whole generation of a non-streamed request, so it is generous. Past it, 504. `0`: no limit."},
		{Name: "STREAM_IDLE_TIMEOUT_SECONDS", Group: GroupWorker, Default: "600",
			Description: "An OpenAI HTTP stream the engine sends nothing on for this long is ended with an in-band 504 error event and `[DONE]`, and a job's engine stream fails the job with that 504; the engine request is aborted. A gap, not a total: a generation that keeps producing is never cut. `0`: none."},
		{Name: "REQUEST_READ_TIMEOUT_SECONDS", Group: GroupWorker, Default: "30",
			Description: "A client's request headers must arrive within this long, or the connection is closed; its body must make progress: each 1 KiB of it (or its end) within this long, or the answer is 408 and the connection is closed. A large upload that keeps arriving is never cut. The API key is checked before the body is read. `0`: none."},
		{Name: "CLIENT_WRITE_TIMEOUT_SECONDS", Group: GroupWorker, Default: "30",
			Description: "A client that takes nothing of its answer (a stream or a plain body) for this long is dropped: the connection is closed, its engine request aborted and its `MAX_CONCURRENCY` slot freed. Each write is timed on its own, so a long stream the client keeps reading is never cut. `0`: none."},
		{Name: "JOB_STORE_MAX_BYTES", Group: GroupWorker, Default: "268435456",
			Description: "The bytes the job store of `/run` and `/runsync` may hold (256 MiB): inputs of queued jobs (dropped once a job starts), and outputs and errors of jobs until their 30 minutes of retention end. Beyond, `/run` and `/runsync` get 429 with `Retry-After`."},
		{Name: "WEBHOOK_ALLOW_PRIVATE", Group: GroupWorker, Default: "false",
			Description: "A `/run` webhook must be an `http` or `https` URL with a host and no user info (else 400), and is never delivered to a loopback, private, link-local (cloud metadata), unspecified or multicast address, checked on the address actually dialed, nor redirected. `true` allows private targets (a webhook receiver beside the worker)."},
		{Name: "CORS_ALLOWED_ORIGINS", Group: GroupWorker,
			Description: "The origins that browser apps may call the API from (CORS), comma-separated: `*` (any origin) or `scheme://host[:port]`, without a path, such as `https://app.example.com,http://localhost:5173`. Not set: CORS is off, no `Access-Control-*` header is sent and a preflight gets 405. Set: a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) on any route, `/v2/{endpoint_id}/...` included, is answered by the worker before and without the `API_KEY` check and never reaches the engine: 204 allowing `GET` and `POST` and the headers the OpenAI SDKs send (`Authorization`, `Content-Type`, `OpenAI-Organization`, `OpenAI-Project`, `OpenAI-Beta`, `X-Request-Id`, the `X-Stainless-*` headers of openai-node, ...) for an hour (`Access-Control-Max-Age: 3600`), or 403 without any CORS header for an origin, method or header not allowed. Answers to an allowed origin carry `Access-Control-Allow-Origin` (`*`, or the origin) and expose `X-Request-Id` and `Retry-After`. Cookies are never allowed: send the key in `Authorization`."},
		{Name: "TLS_CERT_FILE", Group: GroupWorker,
			Description: "A PEM file with the server certificate, followed by its intermediates: with `TLS_KEY_FILE`, `PORT` serves HTTPS (TLS 1.2 or later; HTTP/1.1 and HTTP/2) instead of plain HTTP. Set both or neither. Read once at start: a file that cannot be read or parsed, or a key that does not match, stops the worker with status 2 and a message naming the file; restart the worker to load a renewed certificate. `PORT_HEALTH`, when it differs from `PORT`, stays plain HTTP."},
		{Name: "TLS_KEY_FILE", Group: GroupWorker,
			Description: "The PEM file with the private key of `TLS_CERT_FILE` (RSA, ECDSA or Ed25519). Keep it readable by the worker only."},

		// RunPod.
		{Name: "RUNPOD_WEBHOOK_GET_JOB", Group: GroupRunPod,
			Description: "Set by RunPod on serverless queue workers: the job-take URL. Its presence turns on handler mode (see [deployment](deployment.md))."},
		{Name: "RUNPOD_WEBHOOK_POST_OUTPUT", Group: GroupRunPod,
			Description: "Set by RunPod: the job-done URL template (`$ID` is the job id)."},
		{Name: "RUNPOD_WEBHOOK_POST_STREAM", Group: GroupRunPod,
			Description: "Set by RunPod: the URL each streamed item is posted to."},
		{Name: "RUNPOD_WEBHOOK_PING", Group: GroupRunPod,
			Description: "Set by RunPod: the heartbeat URL."},
		{Name: "RUNPOD_AI_API_KEY", Group: GroupRunPod, Secret: true,
			Description: "Set by RunPod: the key sent, bare, as `Authorization` on every request to RunPod."},
		{Name: "RUNPOD_POD_ID", Group: GroupRunPod,
			Description: "Set by RunPod: this worker's id (`$RUNPOD_POD_ID` in the URL templates)."},
		{Name: "RUNPOD_ENDPOINT_ID", Group: GroupRunPod,
			Description: "Set by RunPod: the endpoint's id. Only makes `json` the default `LOG_FORMAT`."},
		{Name: "RUNPOD_PING_INTERVAL", Group: GroupRunPod, Default: "10000",
			Description: "Milliseconds between heartbeats in handler mode."},

		// Simulated engine.
		{Name: "SIM_TTFT_MS", Group: GroupSim, Default: "0",
			Description: "The simulated engine's delay before the first token, in ms."},
		{Name: "SIM_ITL_MS", Group: GroupSim, Default: "0",
			Description: "Its delay between tokens, in ms."},
		{Name: "SIM_STARTUP_MS", Group: GroupSim, Default: "0",
			Description: "How long it refuses connections after start, like vLLM loading a model."},
		{Name: "SIM_MAX_NUM_SEQS", Group: GroupSim, Default: "256",
			Description: "Sequences it generates at once; more requests wait, as in vLLM."},
		{Name: "SIM_MAX_MODEL_LEN", Group: GroupSim, Default: "4096",
			Description: "Its context length (`max_model_len` in `/v1/models`)."},
		{Name: "SIM_STARTUP_EXIT", Group: GroupSim, Default: "0",
			Description: "Fault injection for tests: a non-zero value makes it exit with that code instead of serving, as vLLM does when it cannot load a model."},
		{Name: "SIM_QUIRKS", Group: GroupSim,
			Description: "A comma-separated list of ways to behave like other OpenAI-compatible servers instead of vLLM, so the worker can be tested against them: `no_continuous_usage` (ignores `stream_options.continuous_usage_stats`), `no_n` (ignores `n`: one choice), `error_without_done` (an in-band error event ends the stream, with no `[DONE]`), `flat_errors` (the old flat `{\"object\":\"error\",...}` error shape). An unknown name is a configuration error. See [the simulator's fidelity](sim-fidelity.md)."},
	}
}

// ConfigurationMarkdown is docs/configuration.md, generated from Variables.
func ConfigurationMarkdown() string {
	var b strings.Builder
	b.WriteString(configIntro)
	vars := Variables()
	for _, g := range variableGroups() {
		fmt.Fprintf(&b, "\n## %s\n\n", g)
		if intro := groupIntro(g); intro != "" {
			b.WriteString(intro + "\n\n")
		}
		b.WriteString("| variable | default | vLLM flag | meaning |\n|---|---|---|---|\n")
		for _, v := range vars {
			if v.Group != g {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", variableCell(v), orDash(v.Default), flagCell(v), cell(v.Description))
		}
	}
	b.WriteString(configOutro(vllmFlags()))
	return b.String()
}

func variableCell(v Variable) string {
	s := "`" + v.Name + "`"
	for _, a := range v.Aliases {
		s += " (alias `" + a + "`)"
	}
	if v.Secret {
		s += " (secret)"
	}
	return s
}

func flagCell(v Variable) string {
	if v.VLLMFlag == "" {
		if v.Secret && v.Group == GroupModel {
			return "environment only"
		}
		return "(worker)"
	}
	return "`" + v.VLLMFlag + "`"
}

func orDash(s string) string {
	if s == "" {
		return "not set"
	}
	if strings.ContainsAny(s, "`' ") {
		return cell(s)
	}
	return "`" + s + "`"
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func groupIntro(g string) string {
	switch g {
	case GroupStreaming:
		return "How streamed output is grouped into items: RunPod stream items, and the flushes of the OpenAI HTTP SSE streams. " +
			"A unit is one token delta of one choice (native jobs) or one whole SSE event (OpenAI); an event is never split."
	case GroupTools:
		return "These are ordinary vLLM flags, read by the generic mapping below; they are listed because worker-vllm users set them."
	case GroupEngine:
		return "How the engine is run. A child engine always listens on `127.0.0.1`, on a free port the worker picks at start."
	case GroupRunPod:
		return "RunPod sets these on its serverless workers; there is no need to set them by hand."
	case GroupSim:
		return "Knobs of the simulated engine (`ENGINE=sim`, `vllm-worker sim`), for demos, tests and benchmarks."
	}
	return ""
}

const configIntro = `# Configuration

<!-- Generated from config/vars.go by: go test ./config -run TestConfigurationDoc -update. Do not edit. -->

vllm-worker is configured by environment variables only, read once at start. Every variable of
worker-vllm 0.3.0 keeps its name, meaning and default; aliases are extra names for the same
setting. ` + "`vllm-worker config`" + ` prints the effective configuration (secrets shown as
` + "`<redacted>`" + `) and the engine command line the worker would run (all of it but ` + "`--port`" + `, a free loopback port chosen at each start); ` + "`vllm-worker config --json`" + ` prints
both as one JSON object.

Rules for every variable:

- An empty value counts as unset, and gets the default.
- Booleans accept ` + "`1/0`, `true/false`, `yes/no`, `on/off`" + ` in any case; anything else is an error.
- An invalid value stops the worker before anything starts: it prints ` + "`invalid configuration:`" + `
  and one line per bad variable, all of them at once, and exits with status 2.
- When a name and its alias are both set and differ, the name wins and a warning is logged.
- "not set" means nothing is passed and vLLM's own default applies.
`

// configOutro is the end of docs/configuration.md: how every other vLLM flag is read, from the
// flag table t.
func configOutro(t *flagTable) string {
	current := 0
	for _, r := range t.rows {
		if r.status == flagCurrent {
			current++
		}
	}
	typo, _ := nearestLookalike("MAX_MODEL_LENGHT", t.known)
	return `
## Any other vLLM flag

The worker knows every flag of ` + "`vllm serve`" + ` of vLLM ` + t.version + `, the version of the
` + "`vllm/vllm-openai:" + t.version + "`" + ` image the [Dockerfile](../Dockerfile) builds on: the ` + strconv.Itoa(current) + ` flags listed in
[` + "`config/vllmflags.tsv`" + `](../config/vllmflags.tsv), read from vLLM's own argument definitions
(` + "`make_arg_parser`" + ` and ` + "`EngineArgs.add_cli_args`" + `). The ` + t.version + ` tag itself could not be
read when the table was made: it was read at vLLM commit ` + "`" + t.commit[:9] + "`" + `, taken to be where
the ` + t.version + ` release branch started, so a flag added to that branch later is missing. The table
also lists the flags of earlier releases (back to v0.8.0) that ` + t.version + ` no longer has, and the
few added to vLLM since. A test fails when the Dockerfile's vLLM and the table's disagree; the
table's header says how to make it again for another version.

Each flag of the table can be set as its UPPER_SNAKE name: the flag without its dashes, ` + "`-`" + `
turned into ` + "`_`" + `, upper-cased. ` + "`MAX_NUM_SEQS=128`" + ` gives ` + "`--max-num-seqs 128`" + `,
` + "`KV_CACHE_DTYPE=fp8`" + ` gives ` + "`--kv-cache-dtype fp8`" + `. Values are passed verbatim, JSON included
(` + "`SPECULATIVE_CONFIG='{\"method\":\"ngram\",\"num_speculative_tokens\":4}'`" + `); vLLM checks them.

- Boolean flags are ` + "`--flag`/`--no-flag`" + ` pairs: ` + "`ENFORCE_EAGER=1`" + ` gives ` + "`--enforce-eager`" + `,
  ` + "`FAIL_ON_ENVIRON_VALIDATION=0`" + ` gives ` + "`--no-fail-on-environ-validation`" + `, never ` + "`--flag false`" + `.
- A few flags can only be switched on (` + "`HEADLESS`, `GRPC`, `AGGREGATE_ENGINE_LOGGING`" + `,
  ` + "`DATA_PARALLEL_MULTI_PORT_EXTERNAL_LB`" + `): ` + "`1`" + ` gives the flag, ` + "`0`" + ` gives nothing.
- Flags that take several values (` + "`CUDAGRAPH_CAPTURE_SIZES`, `IGNORE_PATTERNS`, `LORA_MODULES`" + `,
  ` + "`ALLOWED_MEDIA_DOMAINS`" + `, ...): a JSON list gives one argument per item (` + "`[1, 2, 4]`" + `; a string item
  its text, any other item its JSON), a JSON object is one argument, and anything else is split
  into words as a shell splits them (` + "`1 2 4`" + `, ` + "`'original/**/*' '*.pt'`" + `).
- ` + "`MAX_NUM_BATCHED_TOKENS=0`" + ` means unset, as it did in worker-vllm; other zeros (` + "`SEED=0`" + `) are passed.
- A flag vLLM removed (` + "`SWAP_SPACE`, `ROPE_SCALING`, `TASK`, `GUIDED_DECODING_BACKEND`, `CALCULATE_KV_SCALES`" + `, ...)
  logs a warning naming the last release that had it and what vLLM said to use instead, and
  passes nothing; so does a flag newer than ` + t.version + ` (` + "`ENABLE_TRACE_REPLAY`" + `, ...), and a setting of
  worker-vllm's own that vLLM never had as a flag (` + "`SPECULATIVE_METHOD`, `VLLM_CONFIG_FILE`" + `, ...).
  So do ` + "`UDS`" + ` and the ` + "`SSL_*`" + ` flags: the worker talks plain HTTP to the engine on loopback
  (HTTPS to clients is the worker's own: ` + "`TLS_CERT_FILE`, `TLS_KEY_FILE`" + `).
- vLLM's CORS flags (` + "`ALLOWED_ORIGINS`, `ALLOWED_METHODS`, `ALLOWED_HEADERS`, `ALLOW_CREDENTIALS`" + `) are
  passed, with a warning: only the worker reaches vLLM's server, so browsers never see them. The
  worker's CORS is ` + "`CORS_ALLOWED_ORIGINS`" + `.
- The worker's own variables (` + "`HOST`, `PORT`, `API_KEY`" + `, ...), ` + "`MODEL`, `CONFIG`, `HELP`" + ` and ` + "`HF_TOKEN`" + `
  are never turned into flags; the seed variables above are mapped once, in their fixed order.
- Any other variable passes nothing. When its name looks like a known one, the worker says so at
  start (in its log and in ` + "`vllm-worker config`" + `), naming the nearest: a name with the same words in
  another order, or one edit away from a known name of 8 to 12 characters, two from a longer one
  (an edit is a letter added, dropped or changed, or two neighbours swapped). The known names are
  the flags of the table (current, removed and newer), the worker's variables, and ` + "`NO_<flag>`" + ` for a
  boolean pair (whose false is ` + "`<flag>=0`" + `). Variables of other software never count: ` + "`VLLM_*`" + `
  (vLLM's own, passed through), ` + "`CUDA_*`, `NVIDIA_*`, `NV_*`, `NCCL_*`, `HF_*`, `PYTHON*`, `TORCH*`, `LD_*`" + `,
  ` + "`KUBERNETES_*`, `RUNPOD_*`" + `, Kubernetes service links and the like.
  ` + "`MAX_MODEL_LENGHT=4096`" + ` gives:
  ` + "`" + lookalikeWarning("MAX_MODEL_LENGHT", t.version, typo) + "`" + `.
- A flag the table does not know (one of a newer vLLM in an image of your own, or of a platform
  plugin) goes in ` + "`VLLM_EXTRA_ARGS`" + `, which passes it as it is.

The engine's command line is, in this order: ` + "`python3 -m vllm.entrypoints.openai.api_server --host 127.0.0.1 --port <free port> --model $MODEL_NAME`" + `,
the flags of the variables above in a fixed order, the generic flags sorted by name, then
` + "`VLLM_EXTRA_ARGS`" + `. vLLM keeps the last value of a repeated flag, so ` + "`VLLM_EXTRA_ARGS`" + ` wins.

The engine inherits the worker's whole environment, so vLLM's own variables (` + "`VLLM_*`" + `,
` + "`CUDA_VISIBLE_DEVICES`, `HF_HUB_OFFLINE`, `HF_TOKEN`" + `, ...) reach it unchanged; ` + "`HF_HOME`" + ` is added
as ` + "`$BASE_PATH/huggingface-cache`" + ` when it is not set.
`
}
