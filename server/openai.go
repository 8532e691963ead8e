package server

import (
	"net/http"
	"strings"

	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/openai"
)

// handlerFunc is a handler that returns its failure, for writeError to answer.
// It returns nil once it has answered, or when there is nobody left to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts h to net/http.
func (d *Deps) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			d.writeError(w, r, err)
		}
	}
}

// handleGenerate serves chat and text completions: the body is checked (JSON
// object, known model), then sent to the engine unchanged at enginePath.
func handleGenerate(d *Deps, enginePath string) http.HandlerFunc {
	return d.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := ready(d); err != nil {
			return err
		}
		body, err := readJSONBody(d, w, r)
		if err != nil {
			return err
		}
		fields, apiErr := openai.Peek(body)
		if apiErr != nil {
			return apiErr
		}
		if fields.HasModel && !d.Models.Has(r.Context(), fields.Model) {
			return unknownModel(fields.Model)
		}
		release, err := d.limit.acquire(r)
		if err != nil || release == nil {
			return err
		}
		defer release()
		return forward(d, w, r, upstream{method: http.MethodPost, path: enginePath, body: body})
	})
}

func unknownModel(model string) *openai.Error {
	return openai.NewError(http.StatusNotFound, "The model `"+model+"` does not exist.").WithParam("model")
}

// handleModels relays the engine's model list.
func handleModels(d *Deps) http.HandlerFunc {
	return d.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := ready(d); err != nil {
			return err
		}
		return forward(d, w, r, upstream{method: http.MethodGet, path: "/v1/models"})
	})
}

// handlePassthrough forwards any other OpenAI-style route (embeddings, responses,
// tokenize, ...) as it is: method, query, body and status.
func handlePassthrough(d *Deps) http.HandlerFunc {
	return d.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := ready(d); err != nil {
			return err
		}
		path, err := passthroughPath(r)
		if err != nil {
			return err
		}
		var body []byte
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if body, err = readBody(d, w, r); err != nil {
				return err
			}
			if ct := r.Header.Get("Content-Type"); ct == "" || strings.HasPrefix(ct, "application/json") {
				// Forwarded as it is, but never so deep that it could crash the
				// engine's own (recursive) JSON parser.
				if err := openai.CheckDepth(body); err != nil {
					return openai.JSONError(err)
				}
			}
		}
		release, err := d.limit.acquire(r)
		if err != nil || release == nil {
			return err
		}
		defer release()
		// Any body, as it came: e.g. a multipart audio upload.
		return forward(d, w, r, upstream{method: r.Method, path: path, contentType: r.Header.Get("Content-Type"), body: body})
	})
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

// ready is nil while the engine serves, and a 503 with Retry-After otherwise.
func ready(d *Deps) error {
	st := d.Status.Status()
	if st.State == StateReady {
		return nil
	}
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
	return openai.NewError(http.StatusServiceUnavailable, msg).WithRetryAfter(5)
}

// upstream is the engine request of one client request.
type upstream struct {
	method, path string
	contentType  string // "" means application/json
	body         []byte
}

// forward sends one request to the engine and relays its answer. The engine
// request ends with the client's request, which aborts the generation.
func forward(d *Deps, w http.ResponseWriter, r *http.Request, up upstream) error {
	ctx := r.Context()
	ct := up.contentType
	if ct == "" {
		ct = "application/json"
	}
	resp, err := d.Engine.DoContent(ctx, up.method, up.path, ct, up.body, RequestID(ctx))
	if err != nil {
		if ctx.Err() != nil {
			d.clientLeft(r) // nobody to answer; the engine request was aborted
			return nil
		}
		d.Log.Warn().Err(err).Str("request_id", RequestID(ctx)).Str("path", up.path).Msg("engine request failed")
		return err
	}
	defer resp.Body.Close()
	return relayAnswer(d, w, r, resp, up.path)
}
