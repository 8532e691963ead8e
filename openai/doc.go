// Package openai is the OpenAI/vLLM wire level: the error envelope, peeking at the
// few request fields the worker needs without re-encoding the body, and reading and
// writing server-sent events as whole events.
//
// It knows nothing about HTTP routing, the engine process or RunPod; it must never
// decode and re-encode a request body that is forwarded upstream.
package openai
