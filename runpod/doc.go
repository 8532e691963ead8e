// Package runpod holds RunPod's job semantics: the job input shapes (native
// prompt/messages, openai_route, route), the job runner that turns one input into
// engine requests and output items re-chunked by the dynamic batch size, the local
// job store behind /run, /runsync, /status, /stream and /cancel, and the serverless
// handler-mode loop.
//
// It talks to the engine only through package engine and never writes HTTP
// responses itself; the routes live in package server.
package runpod
