// Package config reads the worker's environment once, validates it, and turns it into the
// engine's command line and environment.
//
// Load is the only reader of the environment: other packages get a section of Config, never
// call os.Getenv, and never re-parse variables. The package imports nothing of ours, starts
// nothing and does no I/O; it only computes. Secrets (HF_TOKEN, API_KEY, RUNPOD_AI_API_KEY) are
// never written into the engine argv, Redacted output or error messages.
package config

import (
	"strings"
	"time"
	"unicode"
)

// Engine kinds (Engine.Kind).
const (
	KindVLLM = "vllm" // vLLM's OpenAI server as a child process (the default)
	KindSim  = "sim"  // the built-in simulated engine, `vllm-worker sim`, as a child process
)

// Restart policies (Engine.Restart).
const (
	RestartNever     = "never"      // the worker exits when the engine dies (the default)
	RestartOnFailure = "on-failure" // the supervisor restarts the engine with backoff
)

// Log formats (Worker.LogFormat).
const (
	LogJSON    = "json"
	LogConsole = "console"
)

// Config is the whole, validated configuration. Build it with Load.
type Config struct {
	Model     Model
	Engine    Engine
	Streaming Streaming
	OpenAI    OpenAI
	Worker    Worker
	RunPod    RunPod
	Sim       Sim

	// Warnings are non-fatal findings (removed vLLM flags, alias conflicts, variables whose
	// names look like a flag or setting but are none, ...), one line each, for the caller to
	// log at start.
	Warnings []string

	// genericFlags are the vLLM flags from the generic UPPER_SNAKE mapping, already in argv
	// form and order (sorted by flag name). A Config built by hand has none.
	genericFlags []string
}

// Model is the model to serve and how to load it.
type Model struct {
	Name              string // MODEL_NAME: HF repo id or local path; "" only with ENGINE_URL
	Revision          string // MODEL_REVISION (alias REVISION)
	MaxModelLen       int    // MAX_MODEL_LENGTH (alias MAX_MODEL_LEN; "32k" forms read as vLLM does); 0 = the model's own, -1 = auto (fit to GPU memory)
	BasePath          string // BASE_PATH, default /runpod-volume; the HF cache lives under it
	LoadFormat        string // LOAD_FORMAT; "" = vLLM's default (auto)
	HFToken           string // HF_TOKEN, secret: reaches the engine through its environment only
	Quantization      string // QUANTIZATION
	TrustRemoteCode   *bool  // TRUST_REMOTE_CODE; nil = not set (vLLM's default, off)
	Tokenizer         string // TOKENIZER_NAME (alias TOKENIZER)
	TokenizerRevision string // TOKENIZER_REVISION
	ChatTemplate      string // CUSTOM_CHAT_TEMPLATE (alias CHAT_TEMPLATE): a path or the template
	ServedModelName   string // SERVED_MODEL_NAME; OpenAI.ServedModelNameOverride wins over it
}

// Engine is how the engine is run (or reached).
type Engine struct {
	Kind           string        // ENGINE: KindVLLM (default) or KindSim
	URL            string        // ENGINE_URL: an already-running OpenAI server (no child); "" = run one. No trailing slash.
	ExtraArgs      []string      // VLLM_EXTRA_ARGS, shell-split; appended last so they win
	StartupTimeout time.Duration // VLLM_STARTUP_TIMEOUT seconds, default 1200
	StallTimeout   time.Duration // ENGINE_STALL_TIMEOUT seconds, default 300: report a start-up with no output and no readiness; 0 = off
	Restart        string        // ENGINE_RESTART: RestartNever (default) or RestartOnFailure
	// ShutdownTimeout is vLLM's --shutdown-timeout (SHUTDOWN_TIMEOUT, whole seconds): how long the
	// engine drains in-flight requests on SIGTERM. 0 = not set (vLLM aborts them at once).
	ShutdownTimeout time.Duration

	TensorParallelSize         int     // TENSOR_PARALLEL_SIZE; 0 = not set (vLLM's 1)
	PipelineParallelSize       int     // PIPELINE_PARALLEL_SIZE; 0 = not set (vLLM's 1)
	DistributedExecutorBackend string  // DISTRIBUTED_EXECUTOR_BACKEND: mp, ray, uni, external_launcher; "" = vLLM picks
	MaxParallelLoadingWorkers  int     // MAX_PARALLEL_LOADING_WORKERS; 0 = not set
	GPUMemoryUtilization       float64 // GPU_MEMORY_UTILIZATION in (0,1], default 0.98 (always passed)
	DisableLogStats            bool    // DISABLE_LOG_STATS, default true
	// EnableLogRequests is vLLM's request logging: DISABLE_LOG_REQUESTS=0 (or ENABLE_LOG_REQUESTS)
	// sets it; nil = vLLM's default (off).
	EnableLogRequests *bool
}

// Streaming is the dynamic batch-size policy of streamed output (contract section 5).
type Streaming struct {
	BatchSize    int           // DEFAULT_BATCH_SIZE, default 50, >= 1: the largest item
	MinBatchSize int           // DEFAULT_MIN_BATCH_SIZE (alias MIN_BATCH_SIZE), default 1, >= 1: the first item
	GrowthFactor float64       // DEFAULT_BATCH_SIZE_GROWTH_FACTOR (alias BATCH_SIZE_GROWTH_FACTOR), default 3, > 0
	MaxWait      time.Duration // BATCH_MAX_WAIT_MS, default 50ms; 0 = no time cap
}

// OpenAI is how the OpenAI face behaves.
type OpenAI struct {
	RawOutput               bool   // RAW_OPENAI_OUTPUT, default true: stream items are SSE text
	ServedModelNameOverride string // OPENAI_SERVED_MODEL_NAME_OVERRIDE
	ResponseRole            string // OPENAI_RESPONSE_ROLE (alias RESPONSE_ROLE), default "assistant"
}

// Worker is the worker's own HTTP server and process.
type Worker struct {
	Host            string        // HOST, default 0.0.0.0
	Port            int           // PORT, default 8000; 0 = any free port
	PortHealth      int           // PORT_HEALTH (RunPod /ping); default = Port
	APIKey          string        // API_KEY, secret; "" = no auth
	LogLevel        string        // LOG_LEVEL: trace, debug, info (default), warn, error, fatal, panic, disabled
	LogFormat       string        // LOG_FORMAT: LogJSON or LogConsole; default json on RunPod, else console
	MaxRequestBytes int64         // MAX_REQUEST_BYTES, default 32 MiB
	ShutdownGrace   time.Duration // SHUTDOWN_GRACE_SECONDS, default 25s: drain budget on SIGTERM
	MaxConcurrency  int           // MAX_CONCURRENCY, default 100, >= 1: requests (and jobs) in flight
	MaxQueue        int           // MAX_QUEUE, default 1000: HTTP requests waiting for a slot; beyond, 429
	// FirstByteTimeout bounds the wait for the engine's response headers
	// (FIRST_BYTE_TIMEOUT_SECONDS, default 1800; 0 = none). For a non-streamed
	// request vLLM answers only after the whole generation, so it is generous.
	FirstByteTimeout time.Duration
	// StreamIdleTimeout ends a stream the engine stopped feeding
	// (STREAM_IDLE_TIMEOUT_SECONDS, default 600; 0 = none). It is a gap, not a
	// total: a generation that keeps producing is never cut.
	StreamIdleTimeout time.Duration
	// RequestReadTimeout bounds a request whose headers or body make no progress
	// (REQUEST_READ_TIMEOUT_SECONDS, default 30; 0 = none): a stalled body gets 408.
	RequestReadTimeout time.Duration
	// ClientWriteTimeout bounds each write to a client (CLIENT_WRITE_TIMEOUT_SECONDS,
	// default 30; 0 = none): a client that reads nothing for this long is dropped and
	// its engine request aborted.
	ClientWriteTimeout time.Duration
	// JobStoreMaxBytes bounds the bytes the local job store holds (JOB_STORE_MAX_BYTES,
	// default 256 MiB): beyond, /run and /runsync get 429.
	JobStoreMaxBytes int64
	// WebhookAllowPrivate lets /run webhooks reach loopback, private and link-local
	// addresses (WEBHOOK_ALLOW_PRIVATE, default false).
	WebhookAllowPrivate bool
	// CORSAllowedOrigins are the origins browsers may call the API from
	// (CORS_ALLOWED_ORIGINS): ["*"], or origins as browsers send them
	// (scheme://host[:port], lower case, no default port). nil: CORS is off.
	CORSAllowedOrigins []string
	// TLSCertFile and TLSKeyFile (TLS_CERT_FILE, TLS_KEY_FILE) make the PORT
	// listener serve HTTPS; both are set or neither. Load checks only that they
	// come as a pair: the worker reads the files when it starts to listen.
	TLSCertFile string
	TLSKeyFile  string
}

// RunPod is RunPod's serverless platform wiring; WebhookGetJob != "" means handler mode.
type RunPod struct {
	WebhookGetJob     string        // RUNPOD_WEBHOOK_GET_JOB (a URL template)
	WebhookPostOutput string        // RUNPOD_WEBHOOK_POST_OUTPUT
	WebhookPostStream string        // RUNPOD_WEBHOOK_POST_STREAM
	WebhookPing       string        // RUNPOD_WEBHOOK_PING
	APIKey            string        // RUNPOD_AI_API_KEY, secret
	PodID             string        // RUNPOD_POD_ID
	EndpointID        string        // RUNPOD_ENDPOINT_ID
	PingInterval      time.Duration // RUNPOD_PING_INTERVAL ms, default 10s
}

// Sim are the knobs of the simulated engine.
type Sim struct {
	TTFT         time.Duration // SIM_TTFT_MS, default 0: delay before the first token
	ITL          time.Duration // SIM_ITL_MS, default 0: delay between tokens
	StartupDelay time.Duration // SIM_STARTUP_MS, default 0: refuse connections this long
	MaxNumSeqs   int           // SIM_MAX_NUM_SEQS, default 256
	MaxModelLen  int           // SIM_MAX_MODEL_LEN, default 4096
	StartupExit  int           // SIM_STARTUP_EXIT, default 0: fault injection, exit with this code instead of serving
	// Quirks is SIM_QUIRKS: the names of SimQuirks to turn on, lower-cased, without
	// duplicates, comma-separated; "" (the default) is none, vLLM's own behaviour.
	Quirks string
}

// SimQuirks are the quirk names SIM_QUIRKS accepts: the ways in which other
// OpenAI-compatible servers differ from vLLM that the simulated engine can
// mimic (its package lists the same names; a test in cmd keeps them in step).
func SimQuirks() []string {
	return []string{"no_continuous_usage", "no_n", "error_without_done", "flat_errors"}
}

// Error is an invalid configuration: one line per bad variable, all of them at once.
type Error struct {
	Problems []string
}

// Error joins the problems, one per line.
func (e *Error) Error() string { return strings.Join(e.Problems, "\n") }

// ServedModelNames are the names clients use in `model`: OPENAI_SERVED_MODEL_NAME_OVERRIDE,
// else SERVED_MODEL_NAME (each split on commas and spaces), else MODEL_NAME. The first is the
// one the engine reports. Empty only with ENGINE_URL and no name set.
func (c *Config) ServedModelNames() []string {
	for _, s := range []string{c.OpenAI.ServedModelNameOverride, c.Model.ServedModelName} {
		if names := splitNames(s); len(names) > 0 {
			return names
		}
	}
	if c.Model.Name == "" {
		return nil
	}
	return []string{c.Model.Name}
}

func splitNames(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// Scrub replaces every secret value (HF_TOKEN, API_KEY, RUNPOD_AI_API_KEY) found in s with
// "<redacted>"; for log lines that may quote user input, such as the engine command line.
func (c *Config) Scrub(s string) string { return scrub(s, c.secrets()) }

func scrub(s string, secrets []string) string {
	for _, secret := range secrets {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}

func (c *Config) secrets() []string {
	var out []string
	for _, s := range []string{c.Model.HFToken, c.Worker.APIKey, c.RunPod.APIKey} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
