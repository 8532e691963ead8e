// Package sim is the simulated vLLM engine: an in-process HTTP server that looks
// like vLLM's OpenAI server on the wire (/health, /v1/models, /v1/chat/completions,
// /v1/completions, /v1/responses, /tokenize, /metrics; vLLM's response, SSE and
// error shapes) but generates deterministic words instead of running a model. It
// stands in for vLLM in every test, in `make demo` and in the proxy benchmarks, so
// it must be cheap: with zero latency knobs it is the fastest upstream the worker
// can have.
//
// It validates requests as vLLM v0.28 does (its pydantic request models, its
// before-validators, SamplingParams and the engine's checks, each with vLLM's
// status, type, param and message), and calls tools as vLLM does with the hermes
// tool parser. docs/sim-fidelity.md lists what it does as vLLM does, what it does
// not, and the vLLM sources each behaviour was checked against.
//
// It must not read the environment or flags (the caller fills Options), must not
// depend on any other package of ours but openai, and must not grow features vLLM
// does not have, except the fault injection selected per request by "sim_fault"
// and the Quirks that make it behave like other OpenAI-compatible servers.
package sim
