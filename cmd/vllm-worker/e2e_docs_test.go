package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vllm-worker/vllm-worker/server"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/api.md from the examples run against the simulated engine")

const apiDocPath = "../../docs/api.md"

// docRoute is one row of the route table of docs/api.md.
type docRoute struct {
	methods string // "GET", "GET, POST", or "any"
	path    string
	what    string
}

// docRoutes is every route of server.New except the /v2/{endpoint_id} copies; TestAPIDoc
// checks it against the router both ways.
func docRoutes() []docRoute {
	return []docRoute{
		{"GET", "/health", "The worker's and the engine's state, RunPod's job and worker counts. 200 when ready, 503 otherwise."},
		{"GET", "/ping", "RunPod's load-balancer probe: 200 ready, 204 starting, 503 unhealthy or draining."},
		{"GET", "/metrics", "Prometheus metrics: the worker's `vllm_worker_*` series, then the engine's `vllm:*` series."},
		{"GET", "/openai/v1/models", "The engine's model list."},
		{"POST", "/openai/v1/chat/completions", "Chat completions, streamed or not, forwarded to the engine."},
		{"POST", "/openai/v1/completions", "Text completions, streamed or not, forwarded to the engine."},
		{"any", "/openai/v1/*", "Any other route of the engine under `/v1/` (responses, embeddings, ...), forwarded as it is."},
		{"GET", "/v1/models", "Same as `/openai/v1/models`."},
		{"POST", "/v1/chat/completions", "Same as `/openai/v1/chat/completions`."},
		{"POST", "/v1/completions", "Same as `/openai/v1/completions`."},
		{"any", "/v1/*", "Same as `/openai/v1/*`."},
		{"POST", "/run", "Queue a job; answers at once with its id."},
		{"POST", "/runsync", "Run a job and wait for its result (up to `?wait=` ms)."},
		{"GET, POST", "/status/{id}", "A job's status, and its output once completed."},
		{"GET, POST", "/status-sync/{id}", "The same, once the job has ended (up to `?wait=` ms)."},
		{"GET, POST", "/stream/{id}", "The output items produced since the previous call."},
		{"POST", "/cancel/{id}", "Cancel a job; a running one has its engine request aborted."},
		{"POST", "/purge-queue", "Cancel every job still in the queue."},
	}
}

// TestAPIDoc runs every example of docs/api.md against workers on the simulated engine and
// checks that the file is what they produce. Run with -update-docs to rewrite it.
func TestAPIDoc(t *testing.T) {
	checkRoutesDocumented(t)

	d := newAPIDoc(t)
	w := startWorker(t, "MODEL_NAME=demo-model", "BATCH_MAX_WAIT_MS=0")
	writeAPIDoc(d, w)

	got := strings.TrimRight(d.b.String(), "\n") + "\n"
	if *updateDocs {
		if err := os.WriteFile(apiDocPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(apiDocPath)
	if err != nil {
		t.Fatalf("%v; run: go test ./cmd/vllm-worker -run TestAPIDoc -update-docs", err)
	}
	if string(want) != got {
		t.Errorf("docs/api.md differs from what the examples produce; run: go test ./cmd/vllm-worker -run TestAPIDoc -update-docs\n%s",
			firstDiff(string(want), got))
	}
}

// firstDiff shows the first line where two texts differ.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			// The generated lines that follow too: a JSON answer longer than the
			// file's spans several.
			return "line " + strconv.Itoa(i+1) + ":\n  file:      " + x + "\n  generated: " +
				strings.Join(bl[min(i, len(bl)):min(i+8, len(bl))], "\n             ")
		}
	}
	return ""
}

// checkRoutesDocumented compares docRoutes with the router.
func checkRoutesDocumented(t *testing.T) {
	t.Helper()
	routes, ok := server.New(server.Deps{}).Handler.(chi.Routes)
	if !ok {
		t.Fatal("server.New is not a chi router")
	}
	served := map[string][]string{} // path -> methods
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.ReplaceAll(route, "/*/", "/")
		if !strings.HasPrefix(route, "/v2/") {
			served[route] = append(served[route], method)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, r := range docRoutes() {
		documented[r.path] = true
		methods, ok := served[r.path]
		switch {
		case !ok:
			t.Errorf("docs/api.md documents %s, which server.New does not serve", r.path)
		case r.methods == "any":
			if len(methods) < 5 {
				t.Errorf("%s: documented for any method, served for %v", r.path, methods)
			}
		default:
			slices.Sort(methods)
			if want := strings.Split(r.methods, ", "); !slices.Equal(methods, want) {
				t.Errorf("%s: documented for %v, served for %v", r.path, want, methods)
			}
		}
	}
	for path := range served {
		if !documented[path] {
			t.Errorf("server.New serves %s, which docs/api.md does not document (add it to docRoutes)", path)
		}
	}
}

// writeAPIDoc writes docs/api.md: prose, and examples run against w (the default
// configuration, BATCH_MAX_WAIT_MS=0 so that items are cut by count alone) and two more
// workers for the settings that differ.
func writeAPIDoc(d *apiDoc, w *testWorker) {
	t := d.t
	d.md("# HTTP API",
		"",
		"<!-- Generated by cmd/vllm-worker/e2e_docs_test.go: go test ./cmd/vllm-worker -run TestAPIDoc -update-docs. Do not edit. -->",
		"",
		"Every example below is a real request to the worker of `make demo` (the simulated engine, model",
		"`demo-model`, `BATCH_MAX_WAIT_MS=0`) with the response it got; a test runs them all and checks",
		"this page against them. Values that change from run to run are shown as placeholders:",
		"`<job id>`, `<request id>`, `<suffix>` (unique to each engine request), `<unix time>`, `<ms>`, `<engine port>`. The simulated engine",
		"generates words from a fixed vocabulary, one token per word; vLLM answers with the same shapes.")
	d.md("## Conventions",
		"",
		"- Every route is served at the root and under `/v2/{endpoint_id}/`, so a client written for",
		"  `https://api.runpod.ai/v2/<ID>/...` works against a worker by changing only the host: the",
		"  OpenAI SDKs with `base_url` `http://HOST:8000/v2/<ID>/openai/v1` (or simply",
		"  `http://HOST:8000/openai/v1`), RunPod's endpoint SDKs with base URL `http://HOST:8000/v2`.",
		"- With `API_KEY` set, every route but `/health` and `/ping` needs `Authorization: Bearer <key>`;",
		"  the bare key, as RunPod sends it, is accepted too.",
		"- A request's `X-Request-Id` (or a generated one) is echoed in the response, sent to the engine",
		"  and logged with every line about the request.",
		"- Request bodies must be JSON (`Content-Type: application/json`, or none) of at most",
		"  `MAX_REQUEST_BYTES`.",
		"- With `TLS_CERT_FILE` and `TLS_KEY_FILE` set, the routes are served over HTTPS (`PORT_HEALTH`,",
		"  when it differs from `PORT`, stays plain HTTP).",
		"- With `CORS_ALLOWED_ORIGINS` set, browsers' preflights (`OPTIONS` with `Origin` and",
		"  `Access-Control-Request-Method`) are answered on every path without the key: 204 with the",
		"  `Access-Control-Allow-*` headers, or 403 for an origin, method or header not allowed; answers",
		"  to an allowed origin carry `Access-Control-Allow-Origin` and expose `X-Request-Id` and",
		"  `Retry-After` (see [deployment](deployment.md#cors-and-tls)).",
		"- Errors have the OpenAI envelope `{\"error\":{\"message\",\"type\",\"param\",\"code\"}}` and the",
		"  status says what went wrong: 400 invalid request, 401 bad key, 404 unknown model, route or job,",
		"  405 wrong method, 413 body too large, 429 over capacity (with `Retry-After`), 503 not ready or",
		"  shutting down (with `Retry-After`), 502 the engine failed, 504 the engine did not answer in",
		"  time. An error the engine returns keeps its status.")

	table := []string{"## Routes", "", "| method | path | what it does |", "|---|---|---|"}
	for _, r := range docRoutes() {
		table = append(table, "| "+r.methods+" | `"+r.path+"` | "+r.what+" |")
	}
	d.md(table...)

	// Health.
	d.md("## Health",
		"",
		"`GET /health` reports the worker's state. `status` is `ready` (200), or, with 503: `starting`",
		"(with `phase`: `starting`, `downloading`, `loading_weights` or `compiling`, read from the",
		"engine's log, and `elapsed_s`), `unhealthy` (the engine died or the HTTP server failed; with",
		"`detail`) or `draining` (shutting down). `jobs` and `workers` are RunPod's endpoint-health",
		"counts, for the jobs of `/run` and `/runsync` (plus, in handler mode, the jobs taken from",
		"RunPod) and for this one worker; `failed` counts timed-out jobs too, and `retried` is always 0.")
	d.example(w, http.StatusOK, docReq{Method: "GET", Path: "/health"})
	d.md("`GET /ping` is the probe of RunPod's load-balancer endpoints, also served on `PORT_HEALTH`",
		"when that differs from `PORT`: 200 when ready, 204 (no body) while starting, 503",
		"`{\"status\":\"unhealthy\"}` when unhealthy or draining.")
	d.example(w, http.StatusOK, docReq{Method: "GET", Path: "/ping"})
	d.md("`GET /metrics` is Prometheus' text format: the worker's own `vllm_worker_*` series, then the",
		"engine's `vllm:*` series fetched at scrape time, so one target covers both. Every worker",
		"series, its labels and their values are in [metrics](metrics.md); a scrape configuration is in",
		"[deployment](deployment.md#metrics).")

	// OpenAI.
	d.md("## OpenAI API",
		"",
		"The OpenAI SDKs work with `base_url` `http://HOST:8000/openai/v1`. For chat and completions",
		"the worker checks that the body is a JSON object and, when it names a `model`, that the engine",
		"serves it; then the body reaches the engine byte for byte, and the answer comes back as the",
		"engine sent it. Until the engine is ready these routes answer 503 with `Retry-After: 5`. At",
		"most `MAX_CONCURRENCY` requests to the engine run at once (the model list aside),",
		"`MAX_QUEUE` more wait, and the rest get 429.")
	d.md("### Models", "",
		"The ids are the engine's served names: `OPENAI_SERVED_MODEL_NAME_OVERRIDE` (or",
		"`SERVED_MODEL_NAME`) when set, else `MODEL_NAME`.")
	d.example(w, http.StatusOK, docReq{Method: "GET", Path: "/openai/v1/models"})
	d.md("### Chat completions")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/openai/v1/chat/completions",
		Body: `{"model":"demo-model","messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":8}`})
	d.md("Streamed, the engine's SSE events are relayed whole and in order. They are flushed to the",
		"client by the dynamic batch size: the first event at once, then groups of 3, 9, 27, 50 events",
		"(`DEFAULT_MIN_BATCH_SIZE`, `DEFAULT_BATCH_SIZE_GROWTH_FACTOR`, `DEFAULT_BATCH_SIZE`), and no",
		"event waits longer than `BATCH_MAX_WAIT_MS` (50 ms by default). A chat stream's opening role",
		"chunk does not count: it goes out with the first token, which is never held back. The bytes",
		"are the same either way.")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/openai/v1/chat/completions", Stream: true,
		Body: `{"model":"demo-model","messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":4,"stream":true}`})
	d.md("### Completions", "", "With `stream_options.include_usage`, the last event before `[DONE]` carries the usage.")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/openai/v1/completions", Stream: true,
		Body: `{"model":"demo-model","prompt":"The sky is","max_tokens":3,"stream":true,"stream_options":{"include_usage":true}}`})
	d.md("### Other engine routes",
		"",
		"Any other path under `/openai/v1/` or `/v1/` is forwarded to the engine's `/v1/...` with its",
		"method, query and body, and the engine's status, body and content type come back; streams are",
		"relayed event by event. What exists depends on the engine and the model: vLLM serves",
		"`/v1/responses` for generative models and `/v1/embeddings` only for pooling models, so here",
		"the engine's own 404 comes back.")
	d.example(w, http.StatusNotFound, docReq{Method: "POST", Path: "/openai/v1/embeddings",
		Body: `{"model":"demo-model","input":"Why is the sky blue?"}`})
	d.md("### Errors", "", "An unknown model is refused before anything reaches the engine:")
	d.example(w, http.StatusNotFound, docReq{Method: "POST", Path: "/openai/v1/chat/completions",
		Body: `{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}`})
	d.md("So is a body that is not JSON:")
	d.example(w, http.StatusBadRequest, docReq{Method: "POST", Path: "/openai/v1/chat/completions",
		Body: `{"model":"demo-model","messages":`})
	d.md("An error after a stream has started cannot change the status any more: it arrives as one",
		"`data: {\"error\": ...}` event followed by `data: [DONE]`. The simulated engine makes one on",
		"request (`sim_fault`, its fault injection; vLLM ignores unknown fields). A stream the engine",
		"cuts without `[DONE]` ends the same way, with the worker's own 502 error event.")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/openai/v1/completions", Stream: true,
		Body: `{"model":"demo-model","prompt":"The sky is","max_tokens":5,"stream":true,"sim_fault":"error_mid_stream"}`})

	// RunPod endpoint API.
	d.md("## RunPod endpoint API",
		"",
		"The routes of `https://api.runpod.ai/v2/<endpoint_id>/`, served by the worker itself: a job is",
		"`{\"input\": {...}, \"webhook\"?: url, \"policy\"?: {\"executionTimeout\": ms, \"ttl\": ms}}`.",
		"Jobs run in the background, at most `MAX_CONCURRENCY` at once; the others stay `IN_QUEUE`,",
		"including every job sent while the engine is still starting. Results are kept for 30 minutes.",
		"",
		"| status | meaning |",
		"|---|---|",
		"| `IN_QUEUE` | waiting for the engine or a free slot |",
		"| `IN_PROGRESS` | running; `/stream` returns its items as they come |",
		"| `COMPLETED` | done; `output` is the list of all its items |",
		"| `FAILED` | invalid input, or an engine error; `error` says which |",
		"| `CANCELLED` | by `/cancel` or `/purge-queue`, or the worker shut down |",
		"| `TIMED_OUT` | it waited longer than `policy.ttl`, or ran longer than `policy.executionTimeout` |",
		"",
		"`delayTime` is the time spent in the queue and `executionTime` the time spent running, in ms.",
		"With a `webhook`, the final status object (as `/status` returns it) is POSTed to that URL as",
		"JSON, tried up to three times on network errors, 429 and 5xx.")
	d.md("### /runsync", "",
		"Runs a job and waits for it, up to `?wait=` milliseconds (default 90000, at most 300000);",
		"a job still running then is answered with its current status, to be followed with `/status`.")

	// Job inputs.
	d.md("## Job input", "",
		"The same three shapes are accepted by `/run`, `/runsync` and handler mode. Input the worker",
		"can check (its shape, the fields' types, routes and paths) fails the job with a message naming",
		"the field, and nothing is sent to the engine; what only the engine knows (a temperature out of",
		"range, an unknown model) fails the job with the engine's own message.")
	d.md("### Native input",
		"",
		"`prompt` (a string) or `messages` (a list of `{role, content}`; wins over `prompt`),",
		"`apply_chat_template` (make the `prompt` one user message), `sampling_params` (vLLM's sampling",
		"parameters: `max_tokens` (default 16), `temperature`, `top_p`, `n`, `stop`, ...), `stream`, and",
		"the batch overrides `max_batch_size`, `min_batch_size`, `batch_size_growth_factor`. `messages`",
		"and templated prompts go to the engine's chat route, plain prompts to its completions route.",
		"",
		"Each output item is `{\"choices\": [{\"tokens\": [...]}, ...one per n], \"usage\": {\"input\": prompt",
		"tokens, \"output\": tokens so far}}`, and the last item carries the engine's final usage. An engine",
		"that reports usage only at the end of a stream (not vLLM, which the worker asks for it on every",
		"chunk; other OpenAI servers, and the sim's `no_continuous_usage` quirk) makes the items before it",
		"leave `input` out rather than say a false 0, and may add a last item with no tokens that carries",
		"the final usage. Not streamed, there is one item, whose `tokens` holds the whole text of each",
		"choice:")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/runsync",
		Body: `{"input":{"prompt":"Why is the sky blue?","sampling_params":{"max_tokens":12}}}`})
	d.md("Streamed, the unit is one token of one choice, and items grow as the batch size does: 1, 3,",
		"9, then the 3 left (`max_tokens` 16):")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/runsync",
		Body: `{"input":{"prompt":"Why is the sky blue?","sampling_params":{"max_tokens":16},"stream":true}}`})
	d.md("With `messages`, `n` and per-request batch sizes (2, then 4, capped at 4; a unit is a token",
		"of either choice):")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/runsync",
		Body: `{"input":{"messages":[{"role":"user","content":"Hi"}],"sampling_params":{"max_tokens":5,"n":2},"stream":true,"min_batch_size":2,"batch_size_growth_factor":2,"max_batch_size":4}}`})

	d.md("### OpenAI input",
		"",
		"`openai_route` (`/v1/chat/completions`, `/v1/completions`, `/v1/models`, `/v1/responses`,",
		"`/v1/messages` or `/v1/embeddings`) and `openai_input`, the OpenAI request body. Without",
		"`openai_route` the body goes to `/v1/chat/completions`; `/v1/models` takes no `openai_input`",
		"(it is a GET), the other routes need one. A body without `model` gets the served model name.",
		"Not streamed, the one item is the engine's JSON answer:")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/runsync",
		Body: `{"input":{"openai_route":"/v1/chat/completions","openai_input":{"messages":[{"role":"user","content":"Hi"}],"max_tokens":5}}}`})
	d.md("Streamed (`\"stream\": true` in `openai_input`), the unit is one whole SSE event, and with",
		"`RAW_OPENAI_OUTPUT=1` (the default) each item is one string of events: concatenated, the",
		"items are the exact SSE stream, the last one ending with `data: [DONE]`. The batch overrides",
		"apply here too.")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/runsync",
		Body: `{"input":{"openai_route":"/v1/chat/completions","openai_input":{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"stream":true}}}`})

	raw0 := startWorker(t, "MODEL_NAME=demo-model", "BATCH_MAX_WAIT_MS=0", "RAW_OPENAI_OUTPUT=0", "MAX_CONCURRENCY=1")
	d.md("With `RAW_OPENAI_OUTPUT=0` each item is a list of the parsed chunk objects, `[DONE]` left out:")
	d.example(raw0, http.StatusOK, docReq{Method: "POST", Path: "/runsync",
		Body: `{"input":{"openai_route":"/v1/completions","openai_input":{"prompt":"The sky is","max_tokens":2,"stream":true}}}`})
	d.md("The model list:")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/runsync",
		Body: `{"input":{"openai_route":"/v1/models"}}`})

	d.md("### Route input",
		"",
		"`route` (any engine path), `method` (GET, POST, PUT, PATCH or DELETE; default POST with a",
		"`body`, GET without) and `body` (a JSON object): any other engine route, such as vLLM's",
		"`/tokenize`. The answer is one item, or SSE items as for OpenAI input.")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/runsync",
		Body: `{"input":{"route":"/tokenize","body":{"prompt":"Why is the sky blue?"}}}`})

	d.md("### Failed jobs", "", "Invalid input:")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/runsync", Body: `{"input":{"prompt":42}}`})
	d.md("An error of the engine, with its status and message:")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/runsync",
		Body: `{"input":{"openai_route":"/v1/chat/completions","openai_input":{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}}}`})
	d.md("A request that is not a job at all is an HTTP error:")
	d.example(w, http.StatusBadRequest, docReq{Method: "POST", Path: "/runsync", Body: `{"prompt":"Hi"}`})

	// Background jobs.
	d.md("## Background jobs",
		"",
		"`/run` queues a job and answers at once; the examples below call its id `$ID`.")
	resp := d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/run",
		Body: `{"input":{"prompt":"Tell me a story","sampling_params":{"max_tokens":5},"stream":true}}`})
	d.vars["ID"] = d.jobID(resp)
	d.md("`/status-sync/{id}` waits until the job has ended (up to `?wait=` ms, as `/runsync`):")
	d.example(w, http.StatusOK, docReq{Method: "GET", Path: "/status-sync/$ID"})
	d.md("`/stream/{id}` returns the items produced since the previous `/stream` call for the job, each",
		"as `{\"output\": item}`, with the job's status. While the job runs and nothing new is there it",
		"waits up to 2 s for an item. Here the job has ended, so everything comes at once:")
	d.example(w, http.StatusOK, docReq{Method: "GET", Path: "/stream/$ID"})
	d.md("`/status/{id}` answers at once:")
	d.example(w, http.StatusOK, docReq{Method: "GET", Path: "/status/$ID"})
	d.md("An unknown (or expired) id:")
	d.example(w, http.StatusNotFound, docReq{Method: "GET", Path: "/status/no-such-job"})

	d.md("### Cancel and purge",
		"",
		"This worker runs one job at a time (`MAX_CONCURRENCY=1`). The first job, `$JOB1`, never",
		"ends: the simulated engine's `hang` fault stands for a long generation.")
	resp = d.example(raw0, http.StatusOK, docReq{Method: "POST", Path: "/run",
		Body: `{"input":{"prompt":"Tell me a long story","sampling_params":{"sim_fault":"hang"},"stream":true}}`})
	d.vars["JOB1"] = d.jobID(resp)
	d.waitStatus(raw0, "JOB1", "IN_PROGRESS")
	d.example(raw0, http.StatusOK, docReq{Method: "GET", Path: "/status/$JOB1"})
	d.md("A second job, `$JOB2`, waits for the slot:")
	resp = d.example(raw0, http.StatusOK, docReq{Method: "POST", Path: "/run",
		Body: `{"input":{"prompt":"Hi"}}`})
	d.vars["JOB2"] = d.jobID(resp)
	d.md("`/purge-queue` cancels every job still `IN_QUEUE`:")
	d.example(raw0, http.StatusOK, docReq{Method: "POST", Path: "/purge-queue"})
	d.example(raw0, http.StatusOK, docReq{Method: "GET", Path: "/status/$JOB2"})
	d.md("`/cancel/{id}` cancels a job; a running one has its engine request aborted. A job that has",
		"already ended is left as it is.")
	d.example(raw0, http.StatusOK, docReq{Method: "POST", Path: "/cancel/$JOB1"})

	d.md("## Under /v2/{endpoint_id}", "", "Any endpoint id is accepted:")
	d.example(w, http.StatusOK, docReq{Method: "POST", Path: "/v2/my-endpoint/runsync",
		Body: `{"input":{"prompt":"Hi","sampling_params":{"max_tokens":3}}}`})

	keyed := startWorker(t, "MODEL_NAME=demo-model", "BATCH_MAX_WAIT_MS=0", "API_KEY=my-key")
	d.md("## API key", "", "With `API_KEY=my-key`:")
	d.example(keyed, http.StatusUnauthorized, docReq{Method: "GET", Path: "/openai/v1/models"})
	d.md("The key as RunPod sends it, without `Bearer`:")
	d.example(keyed, http.StatusOK, docReq{Method: "POST", Path: "/runsync", Auth: "my-key",
		Body: `{"input":{"prompt":"Hi","sampling_params":{"max_tokens":3}}}`})

	d.md("## Handler mode",
		"",
		"On a RunPod serverless queue endpoint (`RUNPOD_WEBHOOK_GET_JOB` set) jobs come from RunPod",
		"instead of `/run`: the input shapes and output items are the ones above. Every job's items",
		"are POSTed one by one to RunPod's stream URL as they are produced (a non-streamed job has one),",
		"and the job's final result is `{\"output\": [all items]}` or `{\"error\": \"message\"}` (with",
		"`isStream=true`, as runpod-python sends it for worker-vllm), so `/stream` and `/status` on",
		"`api.runpod.ai` show what they show here. When RunPod's API is slow to answer, a streamed job's",
		"items are fewer and larger than here: what is produced while one item is on its way joins the",
		"next. See [deployment](deployment.md), [migration](migration.md#on-the-wire) and",
		"[architecture](architecture.md).")
}

// docBaseURL is the address the examples show: the worker of `make demo`.
const docBaseURL = "http://127.0.0.1:8000"

// docReq is one example request. Path is shown as written; every $NAME in it is replaced by
// vars[NAME] when the request is sent.
type docReq struct {
	Method string
	Path   string
	Body   string // compact JSON, or "" for none
	Auth   string // the Authorization header to send and show, or ""
	Stream bool   // shown as curl -N
	Raw    bool   // a body that is not JSON (shown with its Content-Type)
}

// docResp is what an example got.
type docResp struct {
	Status int
	Type   string
	Body   []byte
}

// apiDoc builds docs/api.md.
type apiDoc struct {
	t    *testing.T
	b    strings.Builder
	vars map[string]string // $NAME values for paths
}

func newAPIDoc(t *testing.T) *apiDoc { return &apiDoc{t: t, vars: map[string]string{}} }

// md appends Markdown text, followed by a blank line.
func (d *apiDoc) md(lines ...string) {
	d.b.WriteString(strings.Join(lines, "\n"))
	d.b.WriteString("\n\n")
}

// send makes the request without documenting it.
func (d *apiDoc) send(w *testWorker, r docReq) docResp {
	d.t.Helper()
	path := r.Path
	for k, v := range d.vars {
		path = strings.ReplaceAll(path, "$"+k, v)
	}
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequest(r.Method, w.URL+path, body)
	if err != nil {
		d.t.Fatal(err)
	}
	if r.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Auth != "" {
		req.Header.Set("Authorization", r.Auth)
	}
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", r.Method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatalf("%s %s: %v", r.Method, path, err)
	}
	return docResp{Status: resp.StatusCode, Type: resp.Header.Get("Content-Type"), Body: raw}
}

// example sends r, checks its status and appends the curl command and the response.
func (d *apiDoc) example(w *testWorker, wantStatus int, r docReq) docResp {
	d.t.Helper()
	resp := d.send(w, r)
	if resp.Status != wantStatus {
		d.t.Fatalf("%s %s: status %d; want %d: %s", r.Method, r.Path, resp.Status, wantStatus, resp.Body)
	}
	d.b.WriteString("```sh\n" + curlCommand(r) + "\n```\n\n")
	status := fmt.Sprintf("`%d %s`", resp.Status, http.StatusText(resp.Status))
	if len(resp.Body) == 0 {
		d.b.WriteString("Response: " + status + ", no body.\n\n")
		return resp
	}
	ctype, _, _ := strings.Cut(resp.Type, ";")
	d.b.WriteString("Response: " + status + ", `" + ctype + "`:\n\n")
	lang, text := "text", string(resp.Body)
	if ctype == "application/json" && json.Valid(resp.Body) {
		lang, text = "json", formatJSON(resp.Body, "", 0, 100)
	}
	d.b.WriteString("```" + lang + "\n" + strings.TrimRight(normalize(text), "\n") + "\n```\n\n")
	return resp
}

// jobID reads the id of a /run or /runsync answer.
func (d *apiDoc) jobID(resp docResp) string {
	d.t.Helper()
	var v struct{ ID string }
	if err := json.Unmarshal(resp.Body, &v); err != nil || v.ID == "" {
		d.t.Fatalf("no job id in %s", resp.Body)
	}
	return v.ID
}

// waitStatus polls /status/$name until the job has the status.
func (d *apiDoc) waitStatus(w *testWorker, name, status string) {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp := d.send(w, docReq{Method: http.MethodGet, Path: "/status/$" + name})
		var v struct{ Status string }
		_ = json.Unmarshal(resp.Body, &v)
		if v.Status == status {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("job %s never reached %s: %s", name, status, resp.Body)
		}
		time.Sleep(10 * time.Millisecond) // polling a state, not synchronising
	}
}

// curlCommand renders r as the curl command a user would type.
func curlCommand(r docReq) string {
	flags := "-s"
	if r.Stream {
		flags = "-sN"
	}
	parts := []string{"curl " + flags}
	if r.Method != http.MethodGet && (r.Body == "" || r.Method != http.MethodPost) {
		parts = append(parts, "-X "+r.Method)
	}
	parts = append(parts, docBaseURL+r.Path)
	if r.Auth != "" {
		parts = append(parts, "-H '"+"Authorization: "+r.Auth+"'")
	}
	if r.Body == "" {
		return strings.Join(parts, " ")
	}
	return strings.Join(parts, " ") + " -H 'Content-Type: application/json' \\\n  -d '" + r.Body + "'"
}

// The parts of a response that differ from run to run, and their placeholders.
var docNormalizers = []struct {
	re   *regexp.Regexp
	repl string
}{
	// The engine sees each id with a suffix unique to the engine request.
	{regexp.MustCompile(`(\b[0-9a-f]{12}-[0-9]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-[0-9a-f]{6}[0-9a-z]+\b`), "${1}-<suffix>"},
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), "<job id>"},
	{regexp.MustCompile(`\b[0-9a-f]{12}-[0-9]+\b`), "<request id>"},
	{regexp.MustCompile(`modelperm-[0-9a-f]+`), "modelperm-<id>"},
	{regexp.MustCompile(`(\\?"created\\?": ?)[0-9]+`), "${1}<unix time>"},
	{regexp.MustCompile(`("(?:delayTime|executionTime)": ?)[0-9]+`), "${1}<ms>"},
	{regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+`), "http://127.0.0.1:<engine port>"},
}

func normalize(s string) string {
	for _, n := range docNormalizers {
		s = n.re.ReplaceAllString(s, n.repl)
	}
	return s
}

// formatJSON indents JSON for reading: a value that fits on its line (indent, then lead
// characters already written, within width) stays compact; larger objects and arrays get
// one member per line. Key order and number and string forms are kept as they were sent.
func formatJSON(raw []byte, indent string, lead, width int) string {
	var c bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		return string(raw)
	}
	compact := c.String()
	if len(indent)+lead+len(compact) <= width || (compact[0] != '{' && compact[0] != '[') {
		return compact
	}
	dec := json.NewDecoder(strings.NewReader(compact))
	dec.UseNumber()
	open, _ := dec.Token()
	inner := indent + "  "
	var items []string
	for dec.More() {
		prefix := ""
		if open == json.Delim('{') {
			key, _ := dec.Token()
			k, _ := json.Marshal(key)
			prefix = string(k) + ": "
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return compact
		}
		items = append(items, inner+prefix+formatJSON(v, inner, len(prefix), width))
	}
	if len(items) == 0 {
		return compact
	}
	closing := "]"
	if open == json.Delim('{') {
		closing = "}"
	}
	return string(compact[0]) + "\n" + strings.Join(items, ",\n") + "\n" + indent + closing
}
