package config

import (
	"strings"

	"github.com/caarlos0/env/v10"
)

// rawEnv is the environment as text, read in one pass by caarlos0/env. Every field is a string
// so that load.go can type-check each value itself and name the variable in its message (the
// library's errors name Go fields). Defaults live in the tags; an alias pair has none, so that
// load.go can tell which of the two names was set.
type rawEnv struct {
	ModelName          string `env:"MODEL_NAME"`
	ModelRevision      string `env:"MODEL_REVISION"`
	Revision           string `env:"REVISION"`
	MaxModelLength     string `env:"MAX_MODEL_LENGTH"`
	MaxModelLen        string `env:"MAX_MODEL_LEN"`
	BasePath           string `env:"BASE_PATH" envDefault:"/runpod-volume"`
	LoadFormat         string `env:"LOAD_FORMAT"`
	HFToken            string `env:"HF_TOKEN"`
	Quantization       string `env:"QUANTIZATION"`
	TrustRemoteCode    string `env:"TRUST_REMOTE_CODE"`
	TokenizerName      string `env:"TOKENIZER_NAME"`
	Tokenizer          string `env:"TOKENIZER"`
	TokenizerRevision  string `env:"TOKENIZER_REVISION"`
	CustomChatTemplate string `env:"CUSTOM_CHAT_TEMPLATE"`
	ChatTemplate       string `env:"CHAT_TEMPLATE"`
	ServedModelName    string `env:"SERVED_MODEL_NAME"`

	Engine               string `env:"ENGINE" envDefault:"vllm"`
	EngineURL            string `env:"ENGINE_URL"`
	ExtraArgs            string `env:"VLLM_EXTRA_ARGS"`
	StartupTimeout       string `env:"VLLM_STARTUP_TIMEOUT" envDefault:"1200"`
	StallTimeout         string `env:"ENGINE_STALL_TIMEOUT" envDefault:"300"`
	Restart              string `env:"ENGINE_RESTART" envDefault:"never"`
	ShutdownTimeout      string `env:"SHUTDOWN_TIMEOUT"`
	TensorParallelSize   string `env:"TENSOR_PARALLEL_SIZE"`
	PipelineParallelSize string `env:"PIPELINE_PARALLEL_SIZE"`
	ExecutorBackend      string `env:"DISTRIBUTED_EXECUTOR_BACKEND"`
	LoadingWorkers       string `env:"MAX_PARALLEL_LOADING_WORKERS"`
	GPUMemory            string `env:"GPU_MEMORY_UTILIZATION" envDefault:"0.98"`
	DisableLogStats      string `env:"DISABLE_LOG_STATS" envDefault:"1"`
	DisableLogRequests   string `env:"DISABLE_LOG_REQUESTS"` // default 1, see loadEngine
	EnableLogRequests    string `env:"ENABLE_LOG_REQUESTS"`

	BatchSize            string `env:"DEFAULT_BATCH_SIZE" envDefault:"50"`
	DefaultMinBatchSize  string `env:"DEFAULT_MIN_BATCH_SIZE"`
	MinBatchSize         string `env:"MIN_BATCH_SIZE"`
	DefaultGrowthFactor  string `env:"DEFAULT_BATCH_SIZE_GROWTH_FACTOR"`
	GrowthFactor         string `env:"BATCH_SIZE_GROWTH_FACTOR"`
	BatchMaxWaitMS       string `env:"BATCH_MAX_WAIT_MS" envDefault:"50"`
	RawOpenAIOutput      string `env:"RAW_OPENAI_OUTPUT" envDefault:"1"`
	ServedModelOverride  string `env:"OPENAI_SERVED_MODEL_NAME_OVERRIDE"`
	OpenAIResponseRole   string `env:"OPENAI_RESPONSE_ROLE"`
	ResponseRole         string `env:"RESPONSE_ROLE"`
	Host                 string `env:"HOST" envDefault:"0.0.0.0"`
	Port                 string `env:"PORT" envDefault:"8000"`
	PortHealth           string `env:"PORT_HEALTH"` // default PORT
	APIKey               string `env:"API_KEY"`
	LogLevel             string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat            string `env:"LOG_FORMAT"` // default depends on RunPod variables
	MaxRequestBytes      string `env:"MAX_REQUEST_BYTES" envDefault:"33554432"`
	ShutdownGraceSeconds string `env:"SHUTDOWN_GRACE_SECONDS" envDefault:"25"`
	MaxConcurrency       string `env:"MAX_CONCURRENCY" envDefault:"100"`
	MaxQueue             string `env:"MAX_QUEUE" envDefault:"1000"`
	FirstByteTimeout     string `env:"FIRST_BYTE_TIMEOUT_SECONDS" envDefault:"1800"`
	StreamIdleTimeout    string `env:"STREAM_IDLE_TIMEOUT_SECONDS" envDefault:"600"`
	RequestReadTimeout   string `env:"REQUEST_READ_TIMEOUT_SECONDS" envDefault:"30"`
	ClientWriteTimeout   string `env:"CLIENT_WRITE_TIMEOUT_SECONDS" envDefault:"30"`
	JobStoreMaxBytes     string `env:"JOB_STORE_MAX_BYTES" envDefault:"268435456"`
	WebhookAllowPrivate  string `env:"WEBHOOK_ALLOW_PRIVATE" envDefault:"false"`
	CORSAllowedOrigins   string `env:"CORS_ALLOWED_ORIGINS"`
	TLSCertFile          string `env:"TLS_CERT_FILE"`
	TLSKeyFile           string `env:"TLS_KEY_FILE"`

	WebhookGetJob     string `env:"RUNPOD_WEBHOOK_GET_JOB"`
	WebhookPostOutput string `env:"RUNPOD_WEBHOOK_POST_OUTPUT"`
	WebhookPostStream string `env:"RUNPOD_WEBHOOK_POST_STREAM"`
	WebhookPing       string `env:"RUNPOD_WEBHOOK_PING"`
	RunPodAPIKey      string `env:"RUNPOD_AI_API_KEY"`
	PodID             string `env:"RUNPOD_POD_ID"`
	EndpointID        string `env:"RUNPOD_ENDPOINT_ID"`
	PingIntervalMS    string `env:"RUNPOD_PING_INTERVAL" envDefault:"10000"`

	Sim rawSim
}

// rawSim is the simulated engine's knobs as text.
type rawSim struct {
	TTFTMS      string `env:"SIM_TTFT_MS" envDefault:"0"`
	ITLMS       string `env:"SIM_ITL_MS" envDefault:"0"`
	StartupMS   string `env:"SIM_STARTUP_MS" envDefault:"0"`
	MaxNumSeqs  string `env:"SIM_MAX_NUM_SEQS" envDefault:"256"`
	MaxModelLen string `env:"SIM_MAX_MODEL_LEN" envDefault:"4096"`
	StartupExit string `env:"SIM_STARTUP_EXIT" envDefault:"0"`
	Quirks      string `env:"SIM_QUIRKS"`
}

// envMap is environ as a map, without the variables whose value is empty or blank: an empty
// value counts as unset everywhere (so it also gets the default).
func envMap(environ []string) map[string]string {
	m := env.ToMap(environ)
	for k, v := range m {
		// A nameless entry ("=x") is not a variable; caarlos0/env would offer it to the
		// untagged Sim field.
		if k == "" || strings.TrimSpace(v) == "" {
			delete(m, k)
		}
	}
	return m
}

// readEnv fills v (a pointer to a struct of string fields) from m.
func readEnv(v any, m map[string]string) error {
	return env.ParseWithOptions(v, env.Options{Environment: m})
}
