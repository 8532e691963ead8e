package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/openai"
)

// handleGenerate serves chat and text completions: the body is checked (JSON
// object, known model), then sent to the engine unchanged at enginePath.
func handleGenerate(d *Deps, enginePath string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !ready(d, w) {
			return
		}
		body, apiErr := readJSONBody(w, r, d.maxBody())
		if apiErr != nil {
			openai.WriteError(w, apiErr)
			return
		}
		fields, apiErr := openai.Peek(body)
		if apiErr != nil {
			openai.WriteError(w, apiErr)
			return
		}
		if fields.HasModel && !d.Models.Has(r.Context(), fields.Model) {
			openai.WriteError(w, unknownModel(fields.Model))
			return
		}
		release, ok := d.limit.acquire(w, r)
		if !ok {
			return
		}
		defer release()
		forward(d, w, r, upstream{method: http.MethodPost, path: enginePath, body: body, expectDone: fields.Stream})
	}
}

func unknownModel(model string) *openai.Error {
	return openai.NewError(http.StatusNotFound, "The model `"+model+"` does not exist.").WithParam("model")
}

// handleModels relays the engine's model list.
func handleModels(d *Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !ready(d, w) {
			return
		}
		forward(d, w, r, upstream{method: http.MethodGet, path: "/v1/models"})
	}
}

// handlePassthrough forwards any other OpenAI-style route (embeddings, responses,
// tokenize, ...) as it is: method, query, body and status.
func handlePassthrough(d *Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !ready(d, w) {
			return
		}
		path, err := passthroughPath(r)
		if err != nil {
			openai.WriteError(w, openai.NewError(http.StatusBadRequest, err.Error()))
			return
		}
		var body []byte
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			var apiErr *openai.Error
			body, apiErr = readBody(w, r, d.maxBody())
			if apiErr != nil {
				openai.WriteError(w, apiErr)
				return
			}
		}
		release, ok := d.limit.acquire(w, r)
		if !ok {
			return
		}
		defer release()
		// Any body, as it came: e.g. a multipart audio upload.
		forward(d, w, r, upstream{method: r.Method, path: path, contentType: r.Header.Get("Content-Type"), body: body})
	}
}

// passthroughPath is the engine path of a /v1/* or /openai/v1/* request: the
// path as the client sent it (escapes kept, so that an escaped ? reaches the
// engine as sent), checked by engine.CleanPath, then stripped of /v2/{id} and
// /openai by segment (an endpoint id may itself be "v1").
func passthroughPath(r *http.Request) (string, error) {
	raw := r.URL.RawPath // set when the sent escaping differs from Go's own
	if raw == "" {
		raw = r.URL.EscapedPath()
	}
	if r.URL.RawQuery != "" {
		raw += "?" + r.URL.RawQuery
	}
	path, err := engine.CleanPath(raw)
	if err != nil {
		return "", err
	}
	if rest, ok := strings.CutPrefix(path, "/v2/"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			path = rest[i:] // drop /v2/{endpoint_id}
		}
	}
	return strings.TrimPrefix(path, "/openai"), nil
}

// ready answers 503 with Retry-After while the engine is not serving.
func ready(d *Deps, w http.ResponseWriter) bool {
	st := d.Status.Status()
	if st.State == StateReady {
		return true
	}
	w.Header().Set("Retry-After", "5")
	msg := "the engine is not ready"
	switch st.State {
	case StateStarting:
		msg = "the engine is starting"
		if st.Phase != "" {
			msg += " (" + st.Phase + ")"
		}
	case StateDraining:
		msg = "the worker is shutting down"
	case StateUnhealthy:
		msg = "the engine is unhealthy"
	}
	openai.WriteError(w, openai.NewError(http.StatusServiceUnavailable, msg))
	return false
}

// upstream is the engine request of one client request.
type upstream struct {
	method, path string
	contentType  string // "" means application/json
	body         []byte
	// expectDone: the answer is an OpenAI stream, which ends with [DONE]; an
	// end without it is a cut. Other streams (the Responses API) have none.
	expectDone bool
}

// forward sends one request to the engine and relays its answer. The engine
// request ends with the client's request, which aborts the generation.
func forward(d *Deps, w http.ResponseWriter, r *http.Request, up upstream) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ct := up.contentType
	if ct == "" {
		ct = "application/json"
	}
	resp, err := d.Engine.DoContent(ctx, up.method, up.path, ct, up.body, RequestID(ctx))
	if err != nil {
		if apiErr := engine.AsAPIError(ctx, err); apiErr != nil {
			d.Log.Warn().Err(err).Str("request_id", RequestID(ctx)).Str("path", up.path).Msg("engine request failed")
			openai.WriteError(w, apiErr)
		}
		return
	}
	defer resp.Body.Close()
	relay(d, w, r, resp, cancel, up.expectDone)
}
