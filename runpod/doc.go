// Package runpod holds RunPod's job semantics: the job input shapes (native
// prompt/messages, openai_route, route) and the job runner that turns one input
// into an engine request and output items, re-chunked by the dynamic batch size
// through package relay. Its two users are package jobstore (the local /run,
// /status, ... API) and package serverless (RunPod's handler mode).
//
// It talks to the engine only through package engine, never writes HTTP
// responses, and knows nothing of how jobs arrive or where their items go.
package runpod
