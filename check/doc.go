// Package check is `vllm-worker check`: it exercises a running worker, or a
// RunPod endpoint in front of workers, the way their users do, or an
// OpenAI-compatible engine (a vLLM release about to be deployed) the way the
// worker does, and reports one Result per check with the request that showed
// each failure.
//
// Every check is bounded by its own time limit and all of them by a total one,
// so a run never hangs; one failing check never stops the others. The package
// only sends requests a user could send: a job it starts it lets finish or
// cancels. It imports nothing of this module but batching, whose policy the
// job checks hold items to.
package check
