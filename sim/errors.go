package sim

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/vllm-worker/vllm-worker/openai"
)

// vLLM's error answers come from a few origins (notes/vllm-validation.md 1.2),
// each with its own type and message form:
//
//   - pydantic's request validation (FastAPI's RequestValidationError): 400, type
//     "Bad Request", the message "N validation error(s):" and one Python repr of an
//     error dict per line, param the first error's location;
//   - vLLM's own checks (VLLMValidationError): 400 "BadRequestError", the message
//     followed by " (parameter=P, value=V)" for the parts that are set;
//   - errors a handler returns (unknown model, ...): any status and type, the
//     message as it is;
//   - a raw ValueError or TypeError: 400 "BadRequestError", param null;
//   - any other exception: 500 "InternalServerError".
//
// *openai.Error carries all of them; the writers below render them as vLLM does.

// errHTTPBadBody is FastAPI's answer to a body it cannot decode at all (not UTF-8,
// nested too deep), through vLLM's HTTPException handler.
func errHTTPBadBody() *openai.Error {
	return &openai.Error{Status: http.StatusBadRequest, Type: "Bad Request", Message: "There was an error parsing the body"}
}

// errVLLM is a VLLMValidationError. param and value are omitted when empty
// (value is already in Python's str() form).
func errVLLM(msg, param, value string) *openai.Error {
	var parts []string
	if param != "" {
		parts = append(parts, "parameter="+param)
	}
	if value != "" {
		parts = append(parts, "value="+value)
	}
	if len(parts) > 0 {
		msg += " (" + strings.Join(parts, ", ") + ")"
	}
	return &openai.Error{Status: http.StatusBadRequest, Type: "BadRequestError", Message: msg, Param: param}
}

// errValue is a raw ValueError or TypeError: 400 BadRequestError, param null.
func errValue(msg string) *openai.Error {
	return &openai.Error{Status: http.StatusBadRequest, Type: "BadRequestError", Message: msg}
}

// errInternal is an unexpected exception (a KeyError, say): 500.
func errInternal(msg string) *openai.Error {
	return &openai.Error{Status: http.StatusInternalServerError, Type: "InternalServerError", Message: msg}
}

// errModel is vLLM's 404 for a model it does not serve.
func errModel(model string) *openai.Error {
	return &openai.Error{Status: http.StatusNotFound, Type: "NotFoundError", Param: "model",
		Message: "The model `" + model + "` does not exist."}
}

// The sanitizer vLLM runs over every error message (exception_handling/utils.py):
// memory addresses, traceback frames and file paths are cut out. It rewrites user
// input quoted in a message too.
var (
	sanitizeAddr  = regexp.MustCompile(` at 0x[0-9a-f]+>`)
	sanitizeFrame = regexp.MustCompile(`\n?\s*File "[^"]+", line \d+, in \S+(\n\s+.*)?`)
	sanitizeRoot  = regexp.MustCompile(`/(?:home|usr|opt|var|tmp|root|lib|mnt|srv)(?:/[\p{L}\p{N}_.\-]+)+`)
	sanitizeFile  = regexp.MustCompile(`(?:/[\p{L}\p{N}_\-]+)+/[\p{L}\p{N}_\-]+\.[\p{L}\p{N}_]+`)
)

func sanitize(msg string) string {
	if strings.IndexByte(msg, '/') < 0 && !strings.Contains(msg, " at 0x") && !strings.Contains(msg, "File \"") {
		return strings.TrimSpace(msg) // the common case, without a regular expression
	}
	msg = sanitizeAddr.ReplaceAllString(msg, ">")
	msg = sanitizeFrame.ReplaceAllString(msg, "")
	msg = sanitizeRoot.ReplaceAllString(msg, "<path>")
	msg = sanitizeFile.ReplaceAllString(msg, "<path>")
	return strings.TrimSpace(msg)
}

// appendErrorObject appends e's fields as one JSON object's members, with
// json.dumps' separators when spaced and its \u escapes when ascii.
func appendErrorObject(dst []byte, e *openai.Error, flat, spaced, ascii bool) []byte {
	colon, comma := ":", ","
	if spaced {
		colon, comma = ": ", ", "
	}
	if flat {
		dst = append(dst, `"object"`+colon+`"error"`+comma...)
	}
	dst = append(dst, `"message"`+colon...)
	dst = appendPyJSON(dst, sanitize(e.Message), ascii)
	dst = append(dst, comma+`"type"`+colon...)
	typ := e.Type
	if typ == "" {
		typ = openai.TypeFor(e.Status)
	}
	dst = appendPyJSON(dst, typ, ascii)
	dst = append(dst, comma+`"param"`+colon...)
	if e.Param == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendPyJSON(dst, e.Param, ascii)
	}
	dst = append(dst, comma+`"code"`+colon...)
	return strconv.AppendInt(dst, int64(e.Status), 10)
}

// errorBody is e as vLLM's JSONResponse writes it: compact, non-ASCII as is,
// nested in "error" (or flat with the flat_errors quirk).
func (s *Server) errorBody(e *openai.Error) []byte {
	flat := s.quirks.has(QuirkFlatErrors)
	b := make([]byte, 0, 96+len(e.Message))
	if flat {
		b = append(b, '{')
		b = appendErrorObject(b, e, true, false, false)
		return append(b, '}')
	}
	b = append(b, `{"error":{`...)
	b = appendErrorObject(b, e, false, false, false)
	return append(b, "}}"...)
}

// errorEvent appends the in-band error event of a chat or completions stream:
// vLLM writes it with json.dumps' defaults (spaces after ':' and ',', \u escapes).
func (s *Server) errorEvent(dst []byte, e *openai.Error) []byte {
	dst = append(dst, "data: {"...)
	if s.quirks.has(QuirkFlatErrors) {
		dst = appendErrorObject(dst, e, true, true, true)
	} else {
		dst = append(dst, `"error": {`...)
		dst = appendErrorObject(dst, e, false, true, true)
		dst = append(dst, '}')
	}
	return append(dst, "}\n\n"...)
}

// endErrorStream appends what follows an in-band error: [DONE], unless the
// error_without_done quirk (or the fault error_no_done) ends the stream there.
func (s *Server) endErrorStream(dst []byte, noDone bool) []byte {
	if noDone || s.quirks.has(QuirkErrorWithoutDone) {
		return dst
	}
	return append(dst, openai.DoneEvent...)
}

// writeError writes e as a JSON response with its status.
func (s *Server) writeError(w http.ResponseWriter, e *openai.Error) {
	writeJSON(w, e.Status, s.errorBody(e))
}

// reject writes an error found before generation.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, e *openai.Error) {
	s.logf("%s %s: %d %s", r.Method, r.URL.Path, e.Status, firstLine(e.Message))
	s.writeError(w, e)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
