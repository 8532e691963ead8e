# syntax=docker/dockerfile:1.10
#
# vllm-worker on vLLM's official OpenAI server image. See docs/deployment.md.
#
#   docker build -t you/vllm-worker:dev .
#   docker build -t you/vllm-worker:qwen --build-arg MODEL_NAME=Qwen/Qwen2.5-7B-Instruct \
#     --build-arg BASE_PATH=/models --secret id=HF_TOKEN .
#
# Build arguments (worker-vllm's, plus VERSION):
#   MODEL_NAME, MODEL_REVISION   bake this model into the image (downloaded at build time)
#   TOKENIZER_NAME, TOKENIZER_REVISION
#                                bake this tokenizer too (its tokenizer and config files)
#   BASE_PATH                    where the Hugging Face cache lives (default /runpod-volume;
#                                use /models for a baked model, so a network volume cannot hide it)
#   QUANTIZATION                 the default QUANTIZATION of the image
#   WORKER_CUDA_VERSION          13.0 (default) or 12.9: which vllm/vllm-openai build to start from
#   VERSION                      the version vllm-worker reports
# A token for gated or private models is a BuildKit secret, never a build argument:
#   HF_TOKEN=hf_... docker build --secret id=HF_TOKEN ...

# The CUDA variant of the runtime image; the stages below name one base per variant.
ARG WORKER_CUDA_VERSION=13.0

# ---- build: the static vllm-worker binary -------------------------------------------------
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/vllm-worker ./cmd/vllm-worker

# ---- the vLLM base images, one per CUDA variant (only the chosen one is pulled) ------------
# vLLM's plain tag is its CUDA 13.0 build; -cu129 is the CUDA 12.9 build, for hosts whose
# NVIDIA driver predates CUDA 13.
FROM vllm/vllm-openai:v0.28.0 AS vllm-cuda-13.0
FROM vllm/vllm-openai:v0.28.0-cu129 AS vllm-cuda-12.9

# ---- runtime ------------------------------------------------------------------------------
FROM vllm-cuda-${WORKER_CUDA_VERSION} AS runtime

# tini is PID 1: it forwards SIGTERM to vllm-worker (which drains, then stops vLLM) and reaps
# orphaned processes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

ARG MODEL_NAME=""
ARG MODEL_REVISION=""
ARG TOKENIZER_NAME=""
ARG TOKENIZER_REVISION=""
ARG BASE_PATH=/runpod-volume
ARG QUANTIZATION=""

# The build arguments become the image's defaults, so a baked image needs no environment.
# An empty value counts as unset for vllm-worker.
ENV MODEL_NAME=${MODEL_NAME} \
    MODEL_REVISION=${MODEL_REVISION} \
    TOKENIZER_NAME=${TOKENIZER_NAME} \
    TOKENIZER_REVISION=${TOKENIZER_REVISION} \
    QUANTIZATION=${QUANTIZATION} \
    BASE_PATH=${BASE_PATH} \
    HF_HOME=${BASE_PATH}/huggingface-cache \
    HF_HUB_DISABLE_TELEMETRY=1 \
    TOKENIZERS_PARALLELISM=false

# Bake the model (and tokenizer) into $HF_HOME when MODEL_NAME is set. The token is mounted
# only for this step, as an environment variable that ends with it: it is in no layer.
RUN --mount=type=secret,id=HF_TOKEN,env=HF_TOKEN,required=false \
    if [ -z "${MODEL_NAME}" ]; then \
      echo "MODEL_NAME not set: no model baked; set MODEL_NAME when running the image"; \
    else \
      python3 -c 'import os; from huggingface_hub import snapshot_download as get; e = os.environ; \
get(e["MODEL_NAME"], revision=e.get("MODEL_REVISION") or None); \
e.get("TOKENIZER_NAME") and get(e["TOKENIZER_NAME"], revision=e.get("TOKENIZER_REVISION") or None, \
    allow_patterns=["*.json", "*.model", "*.txt", "*.tiktoken", "*.jinja"])' \
      && du -sh "${HF_HOME}"; \
    fi

# A baked image starts from its own copy, without asking the Hugging Face Hub anything
# (HF_HUB_OFFLINE=1); an image without a model downloads at start (the variable is empty).
ENV HF_HUB_OFFLINE=${MODEL_NAME:+1}

COPY --from=build /out/vllm-worker /usr/local/bin/vllm-worker

# The OpenAI and RunPod APIs, /health, /ping and /metrics (PORT; PORT_HEALTH may add another).
EXPOSE 8000
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/vllm-worker"]
CMD ["serve"]
