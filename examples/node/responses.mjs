// The OpenAI Responses API through a vllm-worker, with the official openai npm SDK:
// one answer whole, then the same question streamed event by event. vLLM serves
// /v1/responses; the worker passes it through (a stream of named events, with no
// [DONE]).
//
//   cd examples/node && npm ci
//   VLLM_WORKER_BASE_URL=http://127.0.0.1:8000/openai/v1 node responses.mjs
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.VLLM_WORKER_BASE_URL || "http://127.0.0.1:8000/openai/v1",
  apiKey: process.env.VLLM_WORKER_API_KEY || "unused", // checked only when the worker has API_KEY
});

let model = process.env.VLLM_WORKER_MODEL;
if (!model) {
  for await (const m of client.models.list()) {
    model = m.id;
    break;
  }
}

const input = "Name three colours of the sky.";
const whole = await client.responses.create({ model, input, max_output_tokens: 20 });
console.log(`whole: ${whole.output_text}`);
console.log(`status: ${whole.status}, output tokens: ${whole.usage?.output_tokens}`);

const stream = await client.responses.create({ model, input, max_output_tokens: 20, stream: true });
let streamed = "";
for await (const event of stream) {
  if (event.type === "response.output_text.delta") {
    process.stdout.write(event.delta);
    streamed += event.delta;
  }
  if (event.type === "response.completed" || event.type === "response.incomplete") {
    console.log(`\nstreamed: ${event.response.status}, same text as whole: ${streamed === whole.output_text}`);
  }
}
