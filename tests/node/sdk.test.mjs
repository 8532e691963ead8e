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
// The simulated engine's quirks (SIM_QUIRKS) the worker runs on: the worker hides
// what it can; an engine that ignores n (no_n) is the one thing it must not hide
// by inventing choices.
const quirks = (process.env.VLLM_WORKER_SIM_QUIRKS || "").split(",").filter(Boolean);
const choicesFor2 = quirks.includes("no_n") ? 1 : 2;
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
  if (choicesFor2 === 2) {
    assert.ok(text[0].length > 0 && text[1].length > 0);
    assert.deepEqual(finish, { 0: "length", 1: "length" });
  } else {
    assert.ok(text[0].length > 0 && text[1] === "", "an engine that ignores n gives one choice, never an invented second");
    assert.deepEqual(finish, { 0: "length" });
  }
  assert.equal(usage.completion_tokens, 8 * choicesFor2);
});

test("an engine error mid-stream raises the engine's message", async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 10, stream: true, sim_fault: "error_mid_stream",
  });
  let text = "";
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    })(),
    (err) => err instanceof OpenAI.APIError && /sim_fault=error_mid_stream/.test(err.message),
  );
  assert.ok(text.length > 0, "the deltas before the error arrive");
});

test("responses.create, whole and streamed, agree", async () => {
  const input = "Name three colours of the sky.";
  const whole = await client.responses.create({ model, input, max_output_tokens: 12 });
  assert.equal(whole.object, "response");
  assert.equal(whole.status, "incomplete");
  assert.equal(whole.usage.output_tokens, 12);
  assert.ok(whole.output_text.length > 0);
  const stream = await client.responses.create({ model, input, max_output_tokens: 12, stream: true });
  let text = "";
  const events = [];
  for await (const event of stream) {
    events.push(event);
    if (event.type === "response.output_text.delta") text += event.delta;
  }
  assert.equal(events[0].type, "response.created");
  // vLLM ends every stream with response.completed, whose response says the status.
  assert.match(events.at(-1).type, /^response\.(completed|incomplete)$/);
  assert.equal(events.at(-1).response.status, whole.status);
  assert.equal(text, whole.output_text);
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
