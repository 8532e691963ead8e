// CORS as a web page using the official openai npm SDK meets it: the worker
// (started by the Go test TestTLS with CORS_ALLOWED_ORIGINS) must allow, in its
// preflight, every header the SDK sends, and answer the SDK's requests with
// Access-Control-Allow-Origin, streams included. Node does not enforce CORS, so
// the test records what the SDK sends and what the worker answers, and sends
// the preflight a browser would send for it.
//
// VLLM_WORKER_BASE_URL, VLLM_WORKER_MODEL, VLLM_WORKER_API_KEY as for
// sdk.test.mjs; VLLM_WORKER_ORIGIN is the page's origin, one the worker allows.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";

const baseURL = process.env.VLLM_WORKER_BASE_URL;
const model = process.env.VLLM_WORKER_MODEL;
const origin = process.env.VLLM_WORKER_ORIGIN;
if (!baseURL || !model || !origin) {
  throw new Error("set VLLM_WORKER_BASE_URL, VLLM_WORKER_MODEL and VLLM_WORKER_ORIGIN");
}

// Headers a browser sets itself, or lets a page send without a preflight.
const notInPreflight = new Set(["origin", "accept", "content-length"]);

// exchanges records each request the SDK makes (its header names) and the
// worker's answer (its headers). A browser adds Origin itself; here the
// recording fetch does.
const exchanges = [];
const client = new OpenAI({
  baseURL,
  apiKey: process.env.VLLM_WORKER_API_KEY || "unused",
  maxRetries: 0,
  fetch: async (url, init) => {
    const headers = new Headers(init.headers);
    const sent = [...headers.keys()].filter((h) => !notInPreflight.has(h));
    headers.set("Origin", origin);
    const res = await fetch(url, { ...init, headers });
    exchanges.push({ url: String(url), method: init.method, sent, headers: res.headers });
    return res;
  },
});

const messages = [{ role: "user", content: "Why is the sky blue?" }];

// preflight sends what a browser sends before the SDK's request.
async function preflight(ex) {
  return fetch(ex.url, {
    method: "OPTIONS",
    headers: {
      Origin: origin,
      "Access-Control-Request-Method": ex.method.toUpperCase(),
      "Access-Control-Request-Headers": ex.sent.join(","),
    },
  });
}

// checkAllowed checks that the worker's answer to ex is readable by the page.
function checkAllowed(ex) {
  assert.equal(ex.headers.get("access-control-allow-origin"), origin, `${ex.method} ${ex.url}`);
  const exposed = (ex.headers.get("access-control-expose-headers") ?? "").toLowerCase();
  assert.match(exposed, /x-request-id/);
  assert.match(exposed, /retry-after/);
}

test("the preflight of a chat completion allows every header the SDK sends", async () => {
  exchanges.length = 0;
  const res = await client.chat.completions.create({ model, messages, max_tokens: 4 });
  assert.equal(res.object, "chat.completion");
  const [ex] = exchanges;
  assert.ok(ex.sent.includes("authorization") && ex.sent.some((h) => h.startsWith("x-stainless-")), `sent ${ex.sent}`);
  checkAllowed(ex);

  const pre = await preflight(ex);
  assert.equal(pre.status, 204, await pre.text());
  assert.equal(pre.headers.get("access-control-allow-origin"), origin);
  assert.equal(pre.headers.get("access-control-allow-methods"), "POST");
  const allowed = pre.headers.get("access-control-allow-headers").toLowerCase().split(/,\s*/);
  for (const h of ex.sent) assert.ok(allowed.includes(h), `${h} is not in Access-Control-Allow-Headers ${allowed}`);
});

test("a streamed chat completion is readable cross-origin", async () => {
  exchanges.length = 0;
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 6, stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  assert.ok(text.length > 0);
  checkAllowed(exchanges[0]);
});

test("models.list and its preflight, GET", async () => {
  exchanges.length = 0;
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [model]);
  const [ex] = exchanges;
  checkAllowed(ex);
  const pre = await preflight(ex);
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-methods"), "GET");
});

test("an error is readable cross-origin too", async () => {
  exchanges.length = 0;
  await assert.rejects(
    client.chat.completions.create({ model: "no-such-model", messages }),
    (err) => err instanceof OpenAI.APIError && err.status === 404,
  );
  checkAllowed(exchanges[0]);
});
