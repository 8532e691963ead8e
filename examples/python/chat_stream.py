"""Stream a chat completion from vllm-worker with the official OpenAI Python SDK.

    pip install openai
    VLLM_WORKER_BASE_URL=http://127.0.0.1:8000/openai/v1 python chat_stream.py

Against a RunPod endpoint, use https://api.runpod.ai/v2/<ENDPOINT_ID>/openai/v1 as the base
URL and your RunPod API key as VLLM_WORKER_API_KEY.
"""

import os

from openai import OpenAI

client = OpenAI(
    base_url=os.environ.get("VLLM_WORKER_BASE_URL", "http://127.0.0.1:8000/openai/v1"),
    api_key=os.environ.get("VLLM_WORKER_API_KEY", "unused"),  # checked only when the worker has API_KEY
)

# The worker serves one model; ask for its name instead of hard-coding it.
model = os.environ.get("VLLM_WORKER_MODEL") or client.models.list().data[0].id

stream = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Why is the sky blue?"}],
    max_tokens=50,
    stream=True,
)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
print()
