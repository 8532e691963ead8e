// List the models of a vllm-worker and stream a chat completion, with the official
// openai npm SDK. Only the base URL differs from talking to OpenAI.
//
//   cd examples/node && npm ci
//   VLLM_WORKER_BASE_URL=http://127.0.0.1:8000/openai/v1 node chat.mjs
//
// Against a RunPod endpoint, use https://api.runpod.ai/v2/<ENDPOINT_ID>/openai/v1 as the base
// URL and your RunPod API key as VLLM_WORKER_API_KEY.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.VLLM_WORKER_BASE_URL || "http://127.0.0.1:8000/openai/v1",
  apiKey: process.env.VLLM_WORKER_API_KEY || "unused", // checked only when the worker has API_KEY
});

const models = [];
for await (const m of client.models.list()) models.push(m.id);
console.log("models:", models.join(", "));

const stream = await client.chat.completions.create({
  model: process.env.VLLM_WORKER_MODEL || models[0],
  messages: [{ role: "user", content: "Why is the sky blue?" }],
  max_tokens: 50,
  stream: true,
});
let finish = null;
for await (const chunk of stream) {
  const choice = chunk.choices[0];
  if (!choice) continue;
  process.stdout.write(choice.delta.content ?? "");
  finish = choice.finish_reason ?? finish;
}
console.log(`\nfinish_reason: ${finish}`);
