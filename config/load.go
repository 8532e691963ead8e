package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Load reads environ (os.Environ() form, "K=V") once, validates it, and returns the
// configuration. On an invalid configuration the error is an *Error listing every bad variable,
// one line each. Non-fatal findings are in Config.Warnings.
func Load(environ []string) (*Config, error) {
	k := newChecker(environ)
	var r rawEnv
	if err := readEnv(&r, k.env); err != nil {
		// Every field is a string, so this would be a bug in the tags; report it all the same.
		k.problems = append(k.problems, "environment: "+err.Error())
	}

	c := &Config{
		Model:     k.model(&r),
		Engine:    k.engine(&r),
		Streaming: k.streaming(&r),
		OpenAI:    k.openAI(&r),
		Worker:    k.worker(&r),
		RunPod:    k.runPod(&r),
		Sim:       k.sim(&r.Sim),
	}
	if c.Model.Name == "" && c.Engine.URL == "" {
		k.problems = append(k.problems, "MODEL_NAME: not set (required unless ENGINE_URL is set)")
	}
	if c.Engine.URL != "" && k.set("ENGINE") {
		k.warn("ENGINE=%s is ignored: ENGINE_URL is set, so no engine is started", k.quote(r.Engine))
	}
	if t := c.Engine.ShutdownTimeout; t > 0 && c.Worker.ShutdownGrace < t {
		k.warn("SHUTDOWN_GRACE_SECONDS (%s) is shorter than SHUTDOWN_TIMEOUT (%s): requests still draining in the engine will be cut", c.Worker.ShutdownGrace, t)
	}
	c.genericFlags = k.genericFlags()

	if len(k.problems) > 0 {
		return nil, &Error{Problems: k.problems}
	}
	c.Warnings = k.warnings
	return c, nil
}

// LoadSim reads only the simulated engine's knobs (SIM_*), for `vllm-worker sim`; MODEL_NAME is
// not required.
func LoadSim(environ []string) (Sim, error) {
	k := newChecker(environ)
	var r rawSim
	if err := readEnv(&r, k.env); err != nil {
		k.problems = append(k.problems, "environment: "+err.Error())
	}
	s := k.sim(&r)
	if len(k.problems) > 0 {
		return Sim{}, &Error{Problems: k.problems}
	}
	return s, nil
}

func (k *checker) model(r *rawEnv) Model {
	m := Model{
		Name:              strings.TrimSpace(r.ModelName),
		BasePath:          r.BasePath,
		LoadFormat:        r.LoadFormat,
		HFToken:           r.HFToken,
		Quantization:      r.Quantization,
		TrustRemoteCode:   k.optBool("TRUST_REMOTE_CODE", r.TrustRemoteCode),
		TokenizerRevision: r.TokenizerRevision,
		ServedModelName:   r.ServedModelName,
	}
	_, m.Revision = k.alias("MODEL_REVISION", r.ModelRevision, "REVISION", r.Revision)
	_, m.Tokenizer = k.alias("TOKENIZER_NAME", r.TokenizerName, "TOKENIZER", r.Tokenizer)
	_, m.ChatTemplate = k.alias("CUSTOM_CHAT_TEMPLATE", r.CustomChatTemplate, "CHAT_TEMPLATE", r.ChatTemplate)
	if name, v := k.alias("MAX_MODEL_LENGTH", r.MaxModelLength, "MAX_MODEL_LEN", r.MaxModelLen); v != "" {
		m.MaxModelLen = k.modelLen(name, v)
	}
	return m
}

func (k *checker) engine(r *rawEnv) Engine {
	e := Engine{
		Kind:                      k.oneOf("ENGINE", r.Engine, KindVLLM, KindSim),
		StartupTimeout:            k.seconds("VLLM_STARTUP_TIMEOUT", r.StartupTimeout, true),
		StallTimeout:              k.seconds("ENGINE_STALL_TIMEOUT", r.StallTimeout, false),
		Restart:                   k.oneOf("ENGINE_RESTART", r.Restart, RestartNever, RestartOnFailure),
		TensorParallelSize:        k.optInteger("TENSOR_PARALLEL_SIZE", r.TensorParallelSize, 1),
		PipelineParallelSize:      k.optInteger("PIPELINE_PARALLEL_SIZE", r.PipelineParallelSize, 1),
		MaxParallelLoadingWorkers: k.optInteger("MAX_PARALLEL_LOADING_WORKERS", r.LoadingWorkers, 1),
		DisableLogStats:           k.boolean("DISABLE_LOG_STATS", r.DisableLogStats),
	}
	if r.EngineURL != "" {
		e.URL = k.httpURL("ENGINE_URL", r.EngineURL)
	}
	if r.ExtraArgs != "" {
		args, err := shellSplit(r.ExtraArgs)
		if err != nil {
			k.bad("VLLM_EXTRA_ARGS", r.ExtraArgs, err.Error())
		}
		e.ExtraArgs = args
		k.checkExtraArgs(args, r.HFToken)
	}
	if r.ShutdownTimeout != "" {
		// vLLM's flag is an int, so no fractions here.
		e.ShutdownTimeout = time.Duration(k.integer("SHUTDOWN_TIMEOUT", r.ShutdownTimeout, 0)) * time.Second
	}
	if r.ExecutorBackend != "" {
		e.DistributedExecutorBackend = k.oneOf("DISTRIBUTED_EXECUTOR_BACKEND", r.ExecutorBackend,
			"mp", "ray", "uni", "external_launcher")
	}
	if f, ok := k.number("GPU_MEMORY_UTILIZATION", r.GPUMemory); ok {
		if f <= 0 || f > 1 {
			k.bad("GPU_MEMORY_UTILIZATION", r.GPUMemory, "must be in (0, 1]")
		}
		e.GPUMemoryUtilization = f
	}
	e.EnableLogRequests = k.logRequests(r)
	return e
}

// logRequests resolves vLLM's request logging. The seed's DISABLE_LOG_REQUESTS (default 1) wins
// over the generic ENABLE_LOG_REQUESTS when set; vLLM removed --disable-log-requests, so 0 becomes
// --enable-log-requests and 1 emits nothing (off is vLLM's default).
func (k *checker) logRequests(r *rawEnv) *bool {
	enable := k.optBool("ENABLE_LOG_REQUESTS", r.EnableLogRequests)
	if r.DisableLogRequests == "" {
		return enable
	}
	on := !k.boolean("DISABLE_LOG_REQUESTS", r.DisableLogRequests)
	if enable != nil && *enable != on {
		k.warn("DISABLE_LOG_REQUESTS and ENABLE_LOG_REQUESTS disagree; using DISABLE_LOG_REQUESTS=%s", k.quote(r.DisableLogRequests))
	}
	if !on {
		return nil
	}
	return &on
}

func (k *checker) streaming(r *rawEnv) Streaming {
	s := Streaming{
		BatchSize:    k.integer("DEFAULT_BATCH_SIZE", r.BatchSize, 1),
		MinBatchSize: 1,
		GrowthFactor: 3,
		MaxWait:      k.millis("BATCH_MAX_WAIT_MS", r.BatchMaxWaitMS, 0),
	}
	if name, v := k.alias("DEFAULT_MIN_BATCH_SIZE", r.DefaultMinBatchSize, "MIN_BATCH_SIZE", r.MinBatchSize); v != "" {
		s.MinBatchSize = k.integer(name, v, 1)
	}
	if name, v := k.alias("DEFAULT_BATCH_SIZE_GROWTH_FACTOR", r.DefaultGrowthFactor, "BATCH_SIZE_GROWTH_FACTOR", r.GrowthFactor); v != "" {
		if f, ok := k.number(name, v); ok {
			if f <= 0 {
				k.bad(name, v, "must be > 0")
			}
			s.GrowthFactor = f
		}
	}
	return s
}

func (k *checker) openAI(r *rawEnv) OpenAI {
	o := OpenAI{
		RawOutput:               k.boolean("RAW_OPENAI_OUTPUT", r.RawOpenAIOutput),
		ServedModelNameOverride: r.ServedModelOverride,
		ResponseRole:            "assistant",
	}
	if _, v := k.alias("OPENAI_RESPONSE_ROLE", r.OpenAIResponseRole, "RESPONSE_ROLE", r.ResponseRole); v != "" {
		o.ResponseRole = strings.TrimSpace(v)
	}
	return o
}

func (k *checker) worker(r *rawEnv) Worker {
	w := Worker{
		Host:              strings.TrimSpace(r.Host),
		Port:              k.port("PORT", r.Port),
		APIKey:            r.APIKey,
		LogLevel:          k.logLevel(r.LogLevel),
		LogFormat:         LogConsole,
		MaxRequestBytes:   int64(k.integer("MAX_REQUEST_BYTES", r.MaxRequestBytes, 1)),
		ShutdownGrace:     k.seconds("SHUTDOWN_GRACE_SECONDS", r.ShutdownGraceSeconds, false),
		MaxConcurrency:    k.integer("MAX_CONCURRENCY", r.MaxConcurrency, 1),
		MaxQueue:          k.integer("MAX_QUEUE", r.MaxQueue, 0),
		FirstByteTimeout:  k.seconds("FIRST_BYTE_TIMEOUT_SECONDS", r.FirstByteTimeout, false),
		StreamIdleTimeout: k.seconds("STREAM_IDLE_TIMEOUT_SECONDS", r.StreamIdleTimeout, false),

		RequestReadTimeout:  k.seconds("REQUEST_READ_TIMEOUT_SECONDS", r.RequestReadTimeout, false),
		ClientWriteTimeout:  k.seconds("CLIENT_WRITE_TIMEOUT_SECONDS", r.ClientWriteTimeout, false),
		JobStoreMaxBytes:    int64(k.integer("JOB_STORE_MAX_BYTES", r.JobStoreMaxBytes, 1)),
		WebhookAllowPrivate: k.boolean("WEBHOOK_ALLOW_PRIVATE", r.WebhookAllowPrivate),
		CORSAllowedOrigins:  k.corsOrigins(r.CORSAllowedOrigins),
	}
	w.TLSCertFile, w.TLSKeyFile = k.tlsFiles(r.TLSCertFile, r.TLSKeyFile)
	w.PortHealth = w.Port
	if r.PortHealth != "" {
		w.PortHealth = k.port("PORT_HEALTH", r.PortHealth)
	}
	switch {
	case r.LogFormat != "":
		w.LogFormat = k.oneOf("LOG_FORMAT", r.LogFormat, LogJSON, LogConsole)
	case k.set("RUNPOD_WEBHOOK_GET_JOB") || k.set("RUNPOD_POD_ID") || k.set("RUNPOD_ENDPOINT_ID"):
		w.LogFormat = LogJSON // RunPod's log viewer parses JSON lines
	}
	return w
}

func (k *checker) runPod(r *rawEnv) RunPod {
	return RunPod{
		WebhookGetJob:     r.WebhookGetJob,
		WebhookPostOutput: r.WebhookPostOutput,
		WebhookPostStream: r.WebhookPostStream,
		WebhookPing:       r.WebhookPing,
		APIKey:            r.RunPodAPIKey,
		PodID:             r.PodID,
		EndpointID:        r.EndpointID,
		PingInterval:      k.millis("RUNPOD_PING_INTERVAL", r.PingIntervalMS, 1),
	}
}

func (k *checker) sim(r *rawSim) Sim {
	return Sim{
		TTFT:         k.millis("SIM_TTFT_MS", r.TTFTMS, 0),
		ITL:          k.millis("SIM_ITL_MS", r.ITLMS, 0),
		StartupDelay: k.millis("SIM_STARTUP_MS", r.StartupMS, 0),
		MaxNumSeqs:   k.integer("SIM_MAX_NUM_SEQS", r.MaxNumSeqs, 1),
		MaxModelLen:  k.integer("SIM_MAX_MODEL_LEN", r.MaxModelLen, 1),
		StartupExit:  k.integer("SIM_STARTUP_EXIT", r.StartupExit, 0),
		Quirks:       k.simQuirks(r.Quirks),
	}
}

// simQuirks checks SIM_QUIRKS, a comma-separated list of SimQuirks, and returns it
// normalised: lower case, no blanks or duplicates.
func (k *checker) simQuirks(value string) string {
	var names []string
	for part := range strings.SplitSeq(value, ",") {
		q := strings.ToLower(strings.TrimSpace(part))
		switch {
		case q == "" || slices.Contains(names, q):
		case !slices.Contains(SimQuirks(), q):
			k.bad("SIM_QUIRKS", value, "unknown quirk "+strconv.Quote(q)+"; known: "+strings.Join(SimQuirks(), ", "))
			return ""
		default:
			names = append(names, q)
		}
	}
	return strings.Join(names, ",")
}

func (k *checker) port(name, value string) int {
	p := k.integer(name, value, 0)
	if p > 65535 {
		k.bad(name, value, "must be a port number, 0 to 65535")
		return 0
	}
	return p
}

// logLevel accepts zerolog's level names; "warning" is taken for "warn".
func (k *checker) logLevel(value string) string {
	if strings.EqualFold(strings.TrimSpace(value), "warning") {
		return "warn"
	}
	return k.oneOf("LOG_LEVEL", value, "trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled")
}

// httpURL checks an absolute http(s) URL with a host and returns it without a trailing slash,
// so that callers can append paths such as /v1/models.
func (k *checker) httpURL(name, value string) string {
	v := strings.TrimSpace(value)
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		k.bad(name, value, "not an http:// or https:// URL with a host")
		return ""
	}
	if u.RawQuery != "" || u.Fragment != "" {
		k.bad(name, value, "must not have a query or fragment")
		return ""
	}
	return strings.TrimRight(v, "/")
}

// modelLen parses vLLM's --max-model-len: a positive integer, or one with a suffix as vLLM reads
// it (k/m/g/t = 1000^n and may have decimals, K/M/G/T = 1024^n), or auto/-1 (returned as -1:
// vLLM fits the length to the GPU memory).
func (k *checker) modelLen(name, value string) int {
	v := strings.TrimSpace(value)
	if v == "-1" || strings.EqualFold(v, "auto") {
		return -1
	}
	n, err := humanInt(v)
	switch {
	case err != nil:
		k.bad(name, value, fmt.Sprintf("not a token count (%v)", err))
		return 0
	case n < 1:
		k.bad(name, value, "must be >= 1 (or auto)")
		return 0
	}
	return n
}

// checkExtraArgs warns about VLLM_EXTRA_ARGS that fight the worker: the listen address is the
// worker's to choose, and a token on the command line is visible to every process.
func (k *checker) checkExtraArgs(args []string, token string) {
	for _, a := range args {
		flag, _, _ := strings.Cut(a, "=")
		switch {
		case flag == "--host" || flag == "--port" || flag == "--uds":
			k.warn("VLLM_EXTRA_ARGS sets %s: the worker expects the engine on the loopback port it chose, and may never see it ready", flag)
		case token != "" && strings.Contains(a, token):
			k.warn("VLLM_EXTRA_ARGS holds HF_TOKEN's value, which makes it visible in the process list; the engine already reads HF_TOKEN from its environment")
		}
	}
}
