package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLoadDefaults(t *testing.T) {
	got := mustLoad(t, "MODEL_NAME=m", "PATH=/usr/bin")
	want := &Config{
		Model: Model{Name: "m", BasePath: "/runpod-volume"},
		Engine: Engine{Kind: KindVLLM, StartupTimeout: 1200 * time.Second, StallTimeout: 5 * time.Minute, Restart: RestartNever,
			GPUMemoryUtilization: 0.98, DisableLogStats: true},
		Streaming: Streaming{BatchSize: 50, MinBatchSize: 1, GrowthFactor: 3, MaxWait: 50 * time.Millisecond},
		OpenAI:    OpenAI{RawOutput: true, ResponseRole: "assistant"},
		Worker: Worker{Host: "0.0.0.0", Port: 8000, PortHealth: 8000, LogLevel: "info", LogFormat: LogConsole,
			MaxRequestBytes: 32 << 20, ShutdownGrace: 25 * time.Second, MaxConcurrency: 100,
			MaxQueue: 1000, FirstByteTimeout: 30 * time.Minute, StreamIdleTimeout: 10 * time.Minute,
			RequestReadTimeout: 30 * time.Second, ClientWriteTimeout: 30 * time.Second, JobStoreMaxBytes: 256 << 20},
		RunPod: RunPod{PingInterval: 10 * time.Second},
		Sim:    Sim{MaxNumSeqs: 256, MaxModelLen: 4096},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("Load defaults mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadValues(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		check func(c *Config) any // returns the part under test
		want  any
		warn  string
	}{
		{"streaming seed names", []string{"DEFAULT_BATCH_SIZE=10", "DEFAULT_MIN_BATCH_SIZE=2", "DEFAULT_BATCH_SIZE_GROWTH_FACTOR=2.5", "BATCH_MAX_WAIT_MS=0"},
			func(c *Config) any { return c.Streaming }, Streaming{10, 2, 2.5, 0}, ""},
		{"streaming aliases", []string{"MIN_BATCH_SIZE=4", "BATCH_SIZE_GROWTH_FACTOR=1.5"},
			func(c *Config) any { return c.Streaming }, Streaming{50, 4, 1.5, 50 * time.Millisecond}, ""},
		{"streaming seed name wins", []string{"DEFAULT_MIN_BATCH_SIZE=2", "MIN_BATCH_SIZE=4"},
			func(c *Config) any { return c.Streaming.MinBatchSize }, 2, "DEFAULT_MIN_BATCH_SIZE and MIN_BATCH_SIZE"},
		{"alias equal to seed: no warning", []string{"DEFAULT_MIN_BATCH_SIZE=2", "MIN_BATCH_SIZE=2"},
			func(c *Config) any { return c.Streaming.MinBatchSize }, 2, ""},
		{"PORT_HEALTH defaults to PORT", []string{"PORT=0"},
			func(c *Config) any { return [2]int{c.Worker.Port, c.Worker.PortHealth} }, [2]int{0, 0}, ""},
		{"PORT_HEALTH set", []string{"PORT=9000", "PORT_HEALTH=9001"},
			func(c *Config) any { return [2]int{c.Worker.Port, c.Worker.PortHealth} }, [2]int{9000, 9001}, ""},
		{"json logs on RunPod", []string{"RUNPOD_ENDPOINT_ID=e"},
			func(c *Config) any { return c.Worker.LogFormat }, LogJSON, ""},
		{"json logs in handler mode", []string{"RUNPOD_WEBHOOK_GET_JOB=https://x/job-take/$ID"},
			func(c *Config) any { return c.Worker.LogFormat }, LogJSON, ""},
		{"LOG_FORMAT wins", []string{"RUNPOD_POD_ID=p", "LOG_FORMAT=Console"},
			func(c *Config) any { return c.Worker.LogFormat }, LogConsole, ""},
		{"log level warning", []string{"LOG_LEVEL=WARNING"},
			func(c *Config) any { return c.Worker.LogLevel }, "warn", ""},
		{"durations", []string{"SHUTDOWN_GRACE_SECONDS=2.5", "VLLM_STARTUP_TIMEOUT=60", "RUNPOD_PING_INTERVAL=2500"},
			func(c *Config) any {
				return []time.Duration{c.Worker.ShutdownGrace, c.Engine.StartupTimeout, c.RunPod.PingInterval}
			}, []time.Duration{2500 * time.Millisecond, time.Minute, 2500 * time.Millisecond}, ""},
		{"ENGINE_URL: no model needed, trailing slash dropped", []string{"MODEL_NAME=", "ENGINE_URL=https://h:8000/"},
			func(c *Config) any { return c.Engine.URL }, "https://h:8000", ""},
		{"ENGINE_URL makes ENGINE moot", []string{"ENGINE=sim", "ENGINE_URL=http://h"},
			func(c *Config) any { return c.Engine.Kind }, KindSim, "ENGINE=\"sim\" is ignored"},
		{"ENGINE is case-insensitive", []string{"ENGINE=SIM"},
			func(c *Config) any { return c.Engine.Kind }, KindSim, ""},
		{"extra args", []string{`VLLM_EXTRA_ARGS=  --a "b c"  `},
			func(c *Config) any { return c.Engine.ExtraArgs }, []string{"--a", "b c"}, ""},
		{"raw output off", []string{"RAW_OPENAI_OUTPUT=0"},
			func(c *Config) any { return c.OpenAI.RawOutput }, false, ""},
		{"max model len binary suffix", []string{"MAX_MODEL_LENGTH=4K"},
			func(c *Config) any { return c.Model.MaxModelLen }, 4096, ""},
		{"max model len decimal suffix", []string{"MAX_MODEL_LEN=25.6k"},
			func(c *Config) any { return c.Model.MaxModelLen }, 25600, ""},
		{"shutdown grace shorter than the engine's drain", []string{"SHUTDOWN_TIMEOUT=60"},
			func(c *Config) any { return c.Engine.ShutdownTimeout }, time.Minute, "SHUTDOWN_GRACE_SECONDS (25s) is shorter"},
		{"sim knobs", []string{"SIM_TTFT_MS=20", "SIM_ITL_MS=5", "SIM_STARTUP_MS=100", "SIM_MAX_NUM_SEQS=2", "SIM_MAX_MODEL_LEN=128"},
			func(c *Config) any { return c.Sim }, Sim{TTFT: 20 * time.Millisecond, ITL: 5 * time.Millisecond, StartupDelay: 100 * time.Millisecond, MaxNumSeqs: 2, MaxModelLen: 128}, ""},
		{"sim quirks, normalised", []string{"SIM_QUIRKS= No_N,flat_errors,,no_n "},
			func(c *Config) any { return c.Sim.Quirks }, "no_n,flat_errors", ""},
		{"CORS origins as browsers send them", []string{"CORS_ALLOWED_ORIGINS= https://App.Example.com , http://localhost:5173,,https://app.example.com:443,http://[::1]:8080,http://h:80,tauri://localhost"},
			func(c *Config) any { return c.Worker.CORSAllowedOrigins },
			[]string{"https://app.example.com", "http://localhost:5173", "http://[::1]:8080", "http://h", "tauri://localhost"}, ""},
		{"CORS any origin", []string{"CORS_ALLOWED_ORIGINS=*"},
			func(c *Config) any { return c.Worker.CORSAllowedOrigins }, []string{"*"}, ""},
		{"CORS * makes the others moot", []string{"CORS_ALLOWED_ORIGINS=https://a.example,*"},
			func(c *Config) any { return c.Worker.CORSAllowedOrigins }, []string{"*"}, "* allows every origin"},
		{"CORS blank is off", []string{"CORS_ALLOWED_ORIGINS= , "},
			func(c *Config) any { return c.Worker.CORSAllowedOrigins }, []string(nil), ""},
		{"TLS files", []string{"TLS_CERT_FILE=/etc/tls/cert.pem", "TLS_KEY_FILE= /etc/tls/key.pem "},
			func(c *Config) any { return [2]string{c.Worker.TLSCertFile, c.Worker.TLSKeyFile} },
			[2]string{"/etc/tls/cert.pem", "/etc/tls/key.pem"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "MODEL_NAME=") }) {
				env = append(slices.Clone(env), "MODEL_NAME=m")
			}
			c := mustLoad(t, env...)
			if diff := cmp.Diff(tt.want, tt.check(c)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			warnings := strings.Join(c.Warnings, "\n")
			if (tt.warn == "") != (warnings == "") || !strings.Contains(warnings, tt.warn) {
				t.Errorf("got warnings %q; want %q", c.Warnings, tt.warn)
			}
		})
	}
}

func TestBooleanWords(t *testing.T) {
	for _, word := range []string{"1", "true", "TRUE", "yes", "Yes", "on", " ON "} {
		if c := mustLoad(t, "MODEL_NAME=m", "RAW_OPENAI_OUTPUT=0", "TRUST_REMOTE_CODE="+word); c.Model.TrustRemoteCode == nil || !*c.Model.TrustRemoteCode {
			t.Errorf("TRUST_REMOTE_CODE=%q: got %v; want true", word, c.Model.TrustRemoteCode)
		}
	}
	for _, word := range []string{"0", "false", "False", "no", "NO", "off"} {
		if c := mustLoad(t, "MODEL_NAME=m", "RAW_OPENAI_OUTPUT="+word); c.OpenAI.RawOutput {
			t.Errorf("RAW_OPENAI_OUTPUT=%q: got true; want false", word)
		}
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string // every problem, in any order
	}{
		{"missing model", []string{"PORT=1"}, []string{"MODEL_NAME: not set (required unless ENGINE_URL is set)"}},
		{"unknown boolean word", []string{"MODEL_NAME=m", "TRUST_REMOTE_CODE=maybe"},
			[]string{`TRUST_REMOTE_CODE="maybe": not a boolean (use 1/0, true/false, yes/no or on/off)`}},
		{"unknown boolean word in a generic flag", []string{"MODEL_NAME=m", "ENFORCE_EAGER=2"},
			[]string{`ENFORCE_EAGER="2": not a boolean (use 1/0, true/false, yes/no or on/off)`}},
		{"several at once", []string{"MAX_CONCURRENCY=abc", "DEFAULT_BATCH_SIZE=0", "GPU_MEMORY_UTILIZATION=1.5",
			"ENABLE_LORA=maybe", "ENGINE=docker", "TENSOR_PARALLEL_SIZE=two", "MAX_MODEL_LENGTH=1.5K"},
			[]string{
				`MAX_CONCURRENCY="abc": not an integer`,
				`DEFAULT_BATCH_SIZE="0": must be >= 1`,
				`GPU_MEMORY_UTILIZATION="1.5": must be in (0, 1]`,
				`ENABLE_LORA="maybe": not a boolean (use 1/0, true/false, yes/no or on/off)`,
				`ENGINE="docker": must be one of vllm, sim`,
				`TENSOR_PARALLEL_SIZE="two": not an integer`,
				`MAX_MODEL_LENGTH="1.5K": not a token count (use digits, optionally with a k/m/g or K/M/G suffix; no decimals with K/M/G)`,
				"MODEL_NAME: not set (required unless ENGINE_URL is set)",
			}},
		{"streaming", []string{"MODEL_NAME=m", "MIN_BATCH_SIZE=0", "BATCH_SIZE_GROWTH_FACTOR=NaN", "BATCH_MAX_WAIT_MS=-1"},
			[]string{`MIN_BATCH_SIZE="0": must be >= 1`, `BATCH_SIZE_GROWTH_FACTOR="NaN": not a finite number`,
				`BATCH_MAX_WAIT_MS="-1": must be >= 0`}},
		{"growth factor zero", []string{"MODEL_NAME=m", "DEFAULT_BATCH_SIZE_GROWTH_FACTOR=0"},
			[]string{`DEFAULT_BATCH_SIZE_GROWTH_FACTOR="0": must be > 0`}},
		{"worker", []string{"MODEL_NAME=m", "PORT=70000", "PORT_HEALTH=-1", "LOG_LEVEL=loud", "LOG_FORMAT=xml",
			"MAX_REQUEST_BYTES=0", "SHUTDOWN_GRACE_SECONDS=-2", "RUNPOD_PING_INTERVAL=0"},
			[]string{`PORT="70000": must be a port number, 0 to 65535`, `PORT_HEALTH="-1": must be >= 0`,
				`LOG_LEVEL="loud": must be one of trace, debug, info, warn, error, fatal, panic, disabled`,
				`LOG_FORMAT="xml": must be one of json, console`, `MAX_REQUEST_BYTES="0": must be >= 1`,
				`SHUTDOWN_GRACE_SECONDS="-2": must be >= 0`, `RUNPOD_PING_INTERVAL="0": must be >= 1`}},
		{"engine", []string{"MODEL_NAME=m", "ENGINE_URL=localhost:8000", "ENGINE_RESTART=always",
			"VLLM_STARTUP_TIMEOUT=0", "DISTRIBUTED_EXECUTOR_BACKEND=k8s", "VLLM_EXTRA_ARGS=--x 'y", "SHUTDOWN_TIMEOUT=1.5"},
			[]string{`ENGINE_URL="localhost:8000": not an http:// or https:// URL with a host`,
				`ENGINE_RESTART="always": must be one of never, on-failure`, `VLLM_STARTUP_TIMEOUT="0": must be > 0`,
				`DISTRIBUTED_EXECUTOR_BACKEND="k8s": must be one of mp, ray, uni, external_launcher`,
				`VLLM_EXTRA_ARGS="--x 'y": unbalanced single quote`, `SHUTDOWN_TIMEOUT="1.5": not an integer`}},
		{"TLS certificate without its key", []string{"MODEL_NAME=m", "TLS_CERT_FILE=/c.pem"},
			[]string{"TLS_KEY_FILE: not set, but TLS_CERT_FILE is (set both to serve HTTPS on PORT, or neither)"}},
		{"TLS key without its certificate", []string{"MODEL_NAME=m", "TLS_KEY_FILE=/k.pem", "TLS_CERT_FILE= "},
			[]string{"TLS_CERT_FILE: not set, but TLS_KEY_FILE is (set both to serve HTTPS on PORT, or neither)"}},
		{"CORS origins that are not origins", []string{"MODEL_NAME=m",
			"CORS_ALLOWED_ORIGINS=https://ok.example,https://a.example/,app.example.com,https://*.example.com,https://u@a.example,http://a.example:0,null,https://bücher.example"},
			[]string{
				`CORS_ALLOWED_ORIGINS: "https://a.example/" is not an origin: an origin has no path, query or fragment, not even a trailing /: want * or scheme://host[:port], such as https://app.example.com or http://localhost:5173`,
				`CORS_ALLOWED_ORIGINS: "app.example.com" is not an origin: want * or scheme://host[:port], such as https://app.example.com or http://localhost:5173`,
				`CORS_ALLOWED_ORIGINS: "https://*.example.com" is not an origin: no wildcards inside an origin; * alone allows every origin`,
				`CORS_ALLOWED_ORIGINS: "https://u@a.example" is not an origin: no user info in an origin`,
				`CORS_ALLOWED_ORIGINS: "http://a.example:0" is not an origin: the port must be 1 to 65535`,
				`CORS_ALLOWED_ORIGINS: "null" is not an origin: want * or scheme://host[:port], such as https://app.example.com or http://localhost:5173`,
				`CORS_ALLOWED_ORIGINS: "https://bücher.example" is not an origin: only printable ASCII; write an international host name in its xn-- form`,
			}},
		{"unknown sim quirk", []string{"MODEL_NAME=m", "SIM_QUIRKS=no_n,bogus"},
			[]string{`SIM_QUIRKS="no_n,bogus": unknown quirk "bogus"; known: no_continuous_usage, no_n, error_without_done, flat_errors`}},
		{"out of range", []string{"MODEL_NAME=m", "MAX_CONCURRENCY=99999999999999999999", "SIM_ITL_MS=99999999999999"},
			[]string{`MAX_CONCURRENCY="99999999999999999999": out of range`, `SIM_ITL_MS="99999999999999": too large`}},
		{"secrets never in errors", []string{"MODEL_NAME=m", "HF_TOKEN=hf_SeCrEt", "VLLM_EXTRA_ARGS=--hf-token hf_SeCrEt '"},
			[]string{`VLLM_EXTRA_ARGS="--hf-token <redacted> '": unbalanced single quote`}},
		{"a secret past the cut of a long value", []string{"MODEL_NAME=m", "HF_TOKEN=hf_SeCrEt",
			"VLLM_EXTRA_ARGS=" + strings.Repeat("a", 75) + " hf_SeCrEt '"},
			[]string{`VLLM_EXTRA_ARGS="` + strings.Repeat("a", 75) + ` <red...": unbalanced single quote`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.env)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load(%q) = %v, %v; want an *Error", tt.env, c, err)
			}
			if c != nil {
				t.Errorf("Load returned a Config with an error")
			}
			sort := cmpopts.SortSlices(func(a, b string) bool { return a < b })
			if diff := cmp.Diff(tt.want, cerr.Problems, sort); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
			if got, want := err.Error(), strings.Join(cerr.Problems, "\n"); got != want {
				t.Errorf("Error() = %q; want the problems joined by newlines %q", got, want)
			}
		})
	}
}

func TestLoadSim(t *testing.T) {
	s, err := LoadSim([]string{"SIM_TTFT_MS=7", "SIM_MAX_NUM_SEQS=3"})
	if err != nil {
		t.Fatalf("LoadSim: %v", err)
	}
	if want := (Sim{TTFT: 7 * time.Millisecond, MaxNumSeqs: 3, MaxModelLen: 4096}); s != want {
		t.Errorf("LoadSim = %+v; want %+v", s, want)
	}
	_, err = LoadSim([]string{"SIM_ITL_MS=fast", "SIM_MAX_MODEL_LEN=0", "MAX_CONCURRENCY=x"})
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 2 {
		t.Errorf("LoadSim with two bad knobs = %v; want an *Error with 2 problems", err)
	}
}
