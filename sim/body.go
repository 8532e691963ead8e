package sim

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// maxBodyBytes bounds a request body; vLLM has no such limit, but a test that
// sends gigabytes to the simulator has a bug.
const maxBodyBytes = 64 << 20

// readBody reads a JSON request body the way FastAPI and vLLM's route dependency
// do, in their order: the body is decoded as JSON when the Content-Type is absent
// or JSON-like (a decode error is a "json_invalid" validation error); then the
// Content-Type must be exactly application/json; then the body must be present
// and a JSON object. It returns the top-level object and the parsed body.
func readBody(w http.ResponseWriter, r *http.Request) (*object, gjson.Result, *openai.Error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return nil, gjson.Result{}, openai.NewError(http.StatusRequestEntityTooLarge, "request body too large")
		}
		return nil, gjson.Result{}, errHTTPBadBody()
	}
	return decodeBody(r.Header.Get("Content-Type"), body)
}

// decodeBody is readBody once the bytes are read.
func decodeBody(contentType string, body []byte) (*object, gjson.Result, *openai.Error) {
	var root gjson.Result
	decoded := false
	if len(body) > 0 && decodesAsJSON(contentType) {
		if !utf8.Valid(body) {
			return nil, root, errHTTPBadBody() // json.loads' UnicodeDecodeError
		}
		body = bytes.TrimPrefix(body, []byte("\ufeff")) // json.loads of bytes strips a BOM
		if e := pyJSONCheck(body); e != nil {
			if e.tooDeep {
				return nil, root, errHTTPBadBody() // RecursionError
			}
			ctx := append(pyStrRepr([]byte("{'error': "), e.msg), '}')
			return nil, root, errValidation([]pydErr{{typ: "json_invalid", loc: []any{"body", e.pos},
				msg: "JSON decode error", input: []byte("{}"), ctx: ctx}})
		}
		root, decoded = gjson.ParseBytes(body), true
	}
	// vLLM's validate_json_request: the media type before any ';', lower-cased but
	// not trimmed, must be exactly application/json; a missing one fails too.
	mt, _, _ := strings.Cut(contentType, ";")
	if strings.ToLower(mt) != "application/json" {
		return nil, root, errValidation([]pydErr{{plain: "Unsupported Media Type: Only 'application/json' is allowed"}})
	}
	if !decoded || root.Type == gjson.Null {
		return nil, root, errValidation([]pydErr{{typ: "missing", loc: []any{"body"}, msg: "Field required", input: []byte("None")}})
	}
	if !root.IsObject() {
		return nil, root, errValidation([]pydErr{{typ: "model_attributes_type", loc: []any{"body"},
			msg: "Input should be a valid dictionary or object to extract fields from", input: pyRepr(nil, root)}})
	}
	return newObject(root), root, nil
}

// decodesAsJSON is FastAPI's test for decoding a body as JSON: no Content-Type, or
// an application/json or application/*+json one.
func decodesAsJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, _ := strings.Cut(contentType, ";")
	main, sub, ok := strings.Cut(strings.ToLower(strings.TrimSpace(mt)), "/")
	return ok && main == "application" && (sub == "json" || strings.HasSuffix(sub, "+json"))
}
