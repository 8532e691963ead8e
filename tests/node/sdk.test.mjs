// End-to-end checks of vllm-worker with the official openai npm SDK, pointed at a
// running worker by VLLM_WORKER_BASE_URL (e.g. http://127.0.0.1:8000/openai/v1)
// and VLLM_WORKER_MODEL. The Go test in cmd/vllm-worker starts the worker on the
// simulated engine and runs this file with `node --test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";

const baseURL = process.env.VLLM_WORKER_BASE_URL;
const model = process.env.VLLM_WORKER_MODEL;
if (!baseURL || !model) {
  throw new Error("set VLLM_WORKER_BASE_URL and VLLM_WORKER_MODEL");
}
const client = new OpenAI({ baseURL, apiKey: process.env.VLLM_WORKER_API_KEY || "unused", maxRetries: 0 });
const messages = [{ role: "user", content: "Why is the sky blue?" }];

test("models.list returns the served model", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [model]);
});

test("chat completion, non-streaming, with usage", async () => {
  const res = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0 });
  assert.equal(res.object, "chat.completion");
  assert.equal(res.choices.length, 1);
  assert.equal(res.choices[0].message.role, "assistant");
  assert.ok(res.choices[0].message.content.length > 0);
  assert.equal(res.choices[0].finish_reason, "length");
  assert.equal(res.usage.completion_tokens, 12);
  assert.equal(res.usage.prompt_tokens, 5);
});

test("chat completion, streaming, n=2, include_usage", async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 8, n: 2, stream: true, stream_options: { include_usage: true },
  });
  const text = { 0: "", 1: "" };
  const finish = {};
  let usage = null;
  let ids = new Set();
  for await (const chunk of stream) {
    ids.add(chunk.id);
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text[c.index] += c.delta.content ?? "";
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  assert.equal(ids.size, 1, "one id per stream");
  assert.ok(text[0].length > 0 && text[1].length > 0);
  assert.deepEqual(finish, { 0: "length", 1: "length" });
  assert.equal(usage.completion_tokens, 16);
});

test("completion, streaming and not, agree", async () => {
  const prompt = "Runpod is the best platform because";
  const whole = await client.completions.create({ model, prompt, max_tokens: 10, temperature: 0 });
  assert.equal(whole.object, "text_completion");
  const stream = await client.completions.create({ model, prompt, max_tokens: 10, temperature: 0, stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
  assert.equal(text, whole.choices[0].text);
});

test("unknown model is a 404 APIError", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "no-such-model", messages }),
    (err) => err instanceof OpenAI.APIError && err.status === 404 && /does not exist/.test(err.message),
  );
});
