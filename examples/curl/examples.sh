#!/usr/bin/env bash
# The README's curl examples against a running vllm-worker, each checked: any HTTP status
# but 200, or a job that does not complete, stops the script with an error.
#
#   make demo                     # in another terminal: the worker on the simulated engine
#   examples/curl/examples.sh
#
# VLLM_WORKER_URL      the worker's root URL (default http://127.0.0.1:8000); for a RunPod
#                      endpoint, https://api.runpod.ai/v2/<ENDPOINT_ID>
# VLLM_WORKER_API_KEY  sent as "Authorization: Bearer <key>" when set
# VLLM_WORKER_MODEL    the model to ask for (default: the first of /openai/v1/models)
set -euo pipefail

base="${VLLM_WORKER_URL:-http://127.0.0.1:8000}"
base="${base%/}"
auth=()
if [[ -n "${VLLM_WORKER_API_KEY:-}" ]]; then
  auth=(-H "Authorization: Bearer ${VLLM_WORKER_API_KEY}")
fi
body_file="$(mktemp)"
trap 'rm -f "$body_file"' EXIT

# call METHOD PATH [JSON]: prints the response body; exits unless the status is 200.
call() {
  local method="$1" path="$2" data="${3:-}" status
  local args=(-sS -N -o "$body_file" -w '%{http_code}' -X "$method" ${auth[@]+"${auth[@]}"})
  if [[ -n "$data" ]]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$data")
  fi
  status="$(curl "${args[@]}" "${base}${path}")"
  if [[ "$status" != 200 ]]; then
    echo "FAIL: $method $path: HTTP $status" >&2
    cat "$body_file" >&2
    echo >&2
    exit 1
  fi
  cat "$body_file"
}

# expect TEXT PATTERN WHAT: exits unless TEXT contains PATTERN.
expect() {
  if [[ "$1" != *"$2"* ]]; then
    echo "FAIL: $3: no $2 in:" >&2
    echo "$1" >&2
    exit 1
  fi
}

section() { printf '\n== %s\n' "$*"; }

section "health"
call GET /health
echo

section "models"
models="$(call GET /openai/v1/models)"
echo "$models"
model="${VLLM_WORKER_MODEL:-$(sed -n 's/^{"object":"list","data":\[{"id":"\([^"]*\)".*/\1/p' <<<"$models")}"
if [[ -z "$model" ]]; then
  echo "FAIL: no model in the list; set VLLM_WORKER_MODEL" >&2
  exit 1
fi

section "OpenAI chat, streamed"
out="$(call POST /openai/v1/chat/completions \
  '{"model":"'"$model"'","messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":30,"stream":true}')"
echo "$out"
expect "$out" 'data: [DONE]' "chat stream"

section "OpenAI completion"
out="$(call POST /openai/v1/completions '{"model":"'"$model"'","prompt":"The sky is blue because","max_tokens":20}')"
echo "$out"
expect "$out" '"object":"text_completion"' "completion"

section "RunPod job, native input, streamed in batches of 1, 3, 9, 27, 50 tokens"
out="$(call POST /runsync '{"input":{"prompt":"Why is the sky blue?","sampling_params":{"max_tokens":100},"stream":true}}')"
echo "$out"
expect "$out" '"status":"COMPLETED"' "/runsync native"

section "RunPod job, OpenAI input"
out="$(call POST /runsync \
  '{"input":{"openai_route":"/v1/chat/completions","openai_input":{"messages":[{"role":"user","content":"Hi"}],"max_tokens":10}}}')"
echo "$out"
expect "$out" '"status":"COMPLETED"' "/runsync openai_route"

section "Background job: /run, then /stream until it ends, then /status"
out="$(call POST /run '{"input":{"prompt":"Tell me a story","sampling_params":{"max_tokens":200},"stream":true}}')"
echo "$out"
id="$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$out")"
if [[ -z "$id" ]]; then
  echo "FAIL: no job id in the answer of /run" >&2
  exit 1
fi
while :; do
  out="$(call GET "/stream/$id")"
  echo "$out"
  case "$out" in
    *'"status":"IN_QUEUE"'* | *'"status":"IN_PROGRESS"'*) ;;
    *) break ;;
  esac
done
out="$(call GET "/status/$id")"
echo "$out"
expect "$out" '"status":"COMPLETED"' "/status"

printf '\nall examples passed\n'
