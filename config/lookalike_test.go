package config

import (
	"slices"
	"strings"
	"testing"
)

// platformEnv is what a worker's process finds in its environment on RunPod and Kubernetes,
// from the vllm/vllm-openai image (CUDA, Python, vLLM), the container runtime, the cluster,
// torch.distributed launchers and common tooling. None of it is a setting of the worker or vLLM.
var platformEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "HOSTNAME=4f7a1c9e2b3d",
	"PWD=/", "OLDPWD=/", "SHLVL=1", "TERM=xterm", "LANG=C.UTF-8", "LANGUAGE=en_US:en", "LC_ALL=C.UTF-8", "TZ=Etc/UTC",
	"DEBIAN_FRONTEND=noninteractive", "_=/usr/local/bin/vllm-worker", "container=docker",
	"NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility", "NVIDIA_REQUIRE_CUDA=cuda>=12.9",
	"NVIDIA_PRODUCT_NAME=CUDA", "NV_CUDA_CUDART_VERSION=12.9.79-1", "NV_LIBNCCL_PACKAGE_VERSION=2.27.3-1",
	"NVARCH=x86_64", "CUDA_VERSION=12.9.1", "CUDA_HOME=/usr/local/cuda", "CUDA_VISIBLE_DEVICES=0,1",
	"CUDA_MODULE_LOADING=LAZY", "CUDNN_VERSION=9.10", "NCCL_VERSION=2.27.3", "NCCL_P2P_DISABLE=1",
	"LD_LIBRARY_PATH=/usr/local/nvidia/lib64", "LIBRARY_PATH=/usr/local/cuda/lib64/stubs",
	"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "PYTHON_VERSION=3.12", "PIP_NO_CACHE_DIR=1",
	"UV_HTTP_TIMEOUT=500", "UV_INDEX_STRATEGY=unsafe-best-match", "UV_LINK_MODE=copy", "VIRTUAL_ENV=/opt/venv",
	"VLLM_USAGE_SOURCE=production-docker-image", "VLLM_WORKER_MULTIPROC_METHOD=spawn", "VLLM_USE_DEEP_GEMM=0",
	"VLLM_ATTENTION_BACKEND=FLASHINFER", "VLLM_LOGGING_LEVEL=INFO", "VLLM_HOST_IP=10.0.0.5",
	"HF_HOME=/runpod-volume/huggingface-cache", "HF_HUB_OFFLINE=1", "HF_HUB_ENABLE_HF_TRANSFER=1",
	"HF_HUB_DISABLE_TELEMETRY=1", "HF_DATASETS_CACHE=/runpod-volume/datasets", "HUGGINGFACE_HUB_CACHE=/hub",
	"TOKENIZERS_PARALLELISM=false", "TRANSFORMERS_OFFLINE=1", "TORCH_CUDA_ARCH_LIST=8.0 9.0",
	"TORCHINDUCTOR_CACHE_DIR=/tmp/ind", "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True",
	"PYTORCH_ALLOC_CONF=expandable_segments:True", "TRITON_CACHE_DIR=/tmp/triton", "OMP_NUM_THREADS=8",
	"MKL_NUM_THREADS=8", "MAX_JOBS=16", "NVCC_THREADS=2", "TINI_SUBREAPER=1",
	"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_SERVICE_PORT_HTTPS=443",
	"KUBERNETES_PORT=tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443",
	"KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1", "KUBERNETES_PORT_443_TCP_PORT=443", "KUBERNETES_PORT_443_TCP_PROTO=tcp",
	"MODEL_SERVER_SERVICE_HOST=10.96.4.2", "MODEL_SERVER_SERVICE_PORT_HTTP=8000", "MODEL_SERVER_PORT_8000_TCP_ADDR=10.96.4.2",
	"REDIS_PORT=tcp://10.96.7.1:6379", "REDIS_PORT_6379_TCP_PROTO=tcp",
	"NODE_NAME=gpu-node-7", "POD_NAME=vllm-0", "POD_NAMESPACE=inference", "POD_IP=10.1.2.3", "HOST_IP=10.0.0.5",
	"NODE_IP=10.0.0.5", "SERVICE_ACCOUNT=default",
	"WORLD_SIZE=1", "RANK=0", "LOCAL_RANK=0", "LOCAL_WORLD_SIZE=1", "GROUP_RANK=0", "PRIMARY_ADDR=10.0.0.2",
	"PRIMARY_PORT=29500", "NODE_ADDR=10.0.0.5", "NUM_NODES=1", "NUM_TRAINERS=8", "HOST_NODE_ADDR=10.0.0.2:29400",
	"RUNPOD_POD_ID=abc123", "RUNPOD_POD_HOSTNAME=abc123-64410f", "RUNPOD_GPU_COUNT=2", "RUNPOD_CPU_COUNT=16",
	"RUNPOD_GPU_NAME=NVIDIA+H100", "RUNPOD_DC_ID=EU-RO-1", "RUNPOD_ENDPOINT_ID=ep1", "RUNPOD_ENDPOINT_SECRET=s",
	"RUNPOD_WEBHOOK_GET_JOB=https://api.runpod.ai/v2/ep1/job-take/$RUNPOD_POD_ID", "RUNPOD_AI_API_KEY=rk",
	"RUNPOD_DEBUG_LEVEL=INFO", "RUNPOD_VOLUME_ID=v1", "RUNPOD_PUBLIC_IP=1.2.3.4", "RUNPOD_TCP_PORT_22=22022",
	"RUNPOD_MEM_GB=120", "PUBLIC_KEY=ssh-ed25519 AAAA", "JUPYTER_PASSWORD=x", "SSH_AUTH_SOCK=/tmp/ssh",
	"HTTP_PROXY=http://proxy:3128", "HTTPS_PROXY=http://proxy:3128", "NO_PROXY=localhost", "no_proxy=localhost",
	"http_proxy=http://proxy:3128", "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca.pem", "CURL_CA_BUNDLE=/etc/ssl/ca.pem",
	"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "SSL_CERT_DIR=/etc/ssl/certs",
	"RAY_ADDRESS=auto", "RAY_DEDUP_LOGS=0", "OTEL_SERVICE_NAME=vllm", "AWS_REGION=eu-west-1",
	"GIT_SHA=0123abc", "BUILD_DATE=2026-09-01", "VERSION=1.0", "IMAGE_VERSION=2", "ENVIRONMENT=prod",
	"DEBUG=0", "LOG_DIR=/var/log", "CACHE_DIR=/cache", "DATA_DIR=/data", "WORKER_ID=3", "MODEL_PATH=/models/m",
	"MODEL_ID=org/m", "OPENAI_API_KEY=sk-x", "OPENAI_BASE_URL=http://x", "WANDB_API_KEY=w",
	"PROMETHEUS_MULTIPROC_DIR=/tmp/prom", "GRPC_VERBOSITY=ERROR", "GRPC_ENABLE_FORK_SUPPORT=1",
}

func TestLookalikePlatformEnvironment(t *testing.T) {
	c := mustLoad(t, append(slices.Clone(platformEnv), "MODEL_NAME=m")...)
	if len(c.Warnings) > 0 {
		t.Errorf("a RunPod and Kubernetes environment gives warnings:\n%s", strings.Join(c.Warnings, "\n"))
	}
	if got, want := c.EngineArgv(8123, "w"), vllm("m", withDefaults()...); !slices.Equal(got, want) {
		t.Errorf("a RunPod and Kubernetes environment: argv %q; want %q", got, want)
	}
}

func TestLookalike(t *testing.T) {
	known := vllmFlags().known
	tests := []struct {
		name string
		want string // the suggestion; "" = none
	}{
		// Misspellings: a swap, a letter, British spelling.
		{"MAX_MODEL_LENGHT", "MAX_MODEL_LENGTH (--max-model-len)"},
		{"ENFORCE_EGAER", "ENFORCE_EAGER (--enforce-eager)"},
		{"GPU_MEMORY_UTILISATION", "GPU_MEMORY_UTILIZATION (--gpu-memory-utilization)"},
		{"TENSOR_PARALEL_SIZE", "TENSOR_PARALLEL_SIZE (--tensor-parallel-size)"},
		{"MAX_NUM_SEQ", "MAX_NUM_SEQS (--max-num-seqs)"},
		{"HEADLES", "HEADLESS (--headless)"},
		{"GDN_PREFILL_BACKENDS", "GDN_PREFILL_BACKEND (--gdn-prefill-backend)"},
		{"KV_CACHE_DTYP", "KV_CACHE_DTYPE (--kv-cache-dtype)"},
		{"DEFAULT_BATCH_SIZ", "DEFAULT_BATCH_SIZE (the worker's)"},
		{"MAX_CONCURENCY", "MAX_CONCURRENCY (the worker's)"},
		{"SERVED_MODEL_NAMES", "SERVED_MODEL_NAME (--served-model-name)"},
		{"MAX_NUM_BATCHED_TOKEN", "MAX_NUM_BATCHED_TOKENS (--max-num-batched-tokens)"},
		// The same words in another order.
		{"MODEL_LEN_MAX", "MAX_MODEL_LEN (--max-model-len)"},
		{"ENABLE_CACHING_PREFIX", "ENABLE_PREFIX_CACHING (--enable-prefix-caching)"},
		// An explicit false written as vLLM's --no- flag.
		{"NO_ENFORCE_EAGER", "ENFORCE_EAGER=0 (--no-enforce-eager)"},
		// Names of flags of earlier and later versions, reordered or misspelt (their exact
		// names have warnings of their own).
		{"SPACE_SWAP", "SWAP_SPACE (--swap-space, which vLLM removed after v0.17.1)"},
		{"SCALING_ROPE", "ROPE_SCALING (--rope-scaling, which vLLM removed after v0.11.0)"},
		{"ENABLE_TRACE_REPLAYS", "ENABLE_TRACE_REPLAY (--enable-trace-replay, newer than vLLM v0.28.0)"},
		{"PREFIX_CACHE_RETENTION_INTERVALL", "PREFIX_CACHE_RETENTION_INTERVAL (--prefix-cache-retention-interval, newer than vLLM v0.28.0)"},
		// Not look-alikes: other software's names, short names, far names, lower case.
		{"NODE_NAME", ""},          // 2 from NODE_RANK, a 9-letter name: only 1 allowed
		{"SSL_CERT_FILE", ""},      // OpenSSL's, 1 from SSL_CERTFILE
		{"VLLM_MAX_MODEL_LEN", ""}, // vLLM's own variables pass through
		{"HF_TOKN", ""},
		{"CUDA_VISIBLE_DEVICE", ""},
		{"RUNPOD_POD_IDS", ""},
		{"SEEDS", ""}, // 1 from SEED: too short to guess
		{"DTYPES", ""},
		{"max_model_len", ""},
		{"ENABLE_PREFIX_CACHE", ""}, // 3 from ENABLE_PREFIX_CACHING
		{"FOO_BAR", ""},
		{"MY_MODEL_PORT_8000_TCP", ""},
	}
	for _, tt := range tests {
		l, ok := nearestLookalike(tt.name, known)
		if ok != (tt.want != "") || l.say != tt.want {
			t.Errorf("nearestLookalike(%s) = %q, %v; want %q", tt.name, l.say, ok, tt.want)
		}
	}
}

func TestLookalikeWarnings(t *testing.T) {
	c := mustLoad(t, "MODEL_NAME=m", "MAX_MODEL_LENGHT=4096", "ENFORCE_EGAER=1", "GPU_MEMORY_UTILISATION=0.9", "NODE_NAME=n")
	want := []string{
		"ENFORCE_EGAER is ignored: it is neither a variable of the worker nor a flag of vLLM v0.28.0; did you mean ENFORCE_EAGER (--enforce-eager)? VLLM_EXTRA_ARGS passes a flag the worker does not know",
		"GPU_MEMORY_UTILISATION is ignored: it is neither a variable of the worker nor a flag of vLLM v0.28.0; did you mean GPU_MEMORY_UTILIZATION (--gpu-memory-utilization)? VLLM_EXTRA_ARGS passes a flag the worker does not know",
		"MAX_MODEL_LENGHT is ignored: it is neither a variable of the worker nor a flag of vLLM v0.28.0; did you mean MAX_MODEL_LENGTH (--max-model-len)? VLLM_EXTRA_ARGS passes a flag the worker does not know",
	}
	if !slices.Equal(c.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(c.Warnings, "\n"), strings.Join(want, "\n"))
	}
	if got, want := c.EngineArgv(8123, "w"), vllm("m", withDefaults()...); !slices.Equal(got, want) {
		t.Errorf("argv %q; want %q: a look-alike passes nothing", got, want)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "ab", 2}, {"ab", "", 2}, {"SEED", "SEED", 0},
		{"LENGHT", "LENGTH", 1}, // a swap
		{"EGAER", "EAGER", 1},
		{"UTILISATION", "UTILIZATION", 1},
		{"NODE_NAME", "NODE_RANK", 3},
		{"CA", "ABC", 3}, // optimal string alignment, not full Damerau (which gives 2)
		{"KITTEN", "SITTING", 3},
	}
	var buf []int
	for _, tt := range tests {
		var got int
		if got, buf = editDistance(tt.a, tt.b, buf); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
