package openai

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Error is an API error in vLLM's (and OpenAI's) envelope:
// {"error":{"message":...,"type":...,"param":...,"code":<HTTP status>}}.
// As in recent vLLM, Code is the integer HTTP status.
type Error struct {
	Status  int    // HTTP status; also written as "code"
	Message string // safe to show to a client: never internals
	Type    string // e.g. BadRequestError; derived from Status when empty
	Param   string // the offending request field, if any
	// RetryAfter, when positive, is sent as the Retry-After header (seconds):
	// the client may try again then (429, 503).
	RetryAfter int
	// Err is the cause, for errors.Is and errors.As; it is never shown.
	Err error
}

// NewError returns an Error with the type that belongs to status.
func NewError(status int, message string) *Error {
	return &Error{Status: status, Message: message, Type: TypeFor(status)}
}

// WithParam returns a copy of e naming the offending request field.
func (e *Error) WithParam(param string) *Error {
	c := *e
	c.Param = param
	return &c
}

// WithRetryAfter returns a copy of e that tells the client to retry in seconds.
func (e *Error) WithRetryAfter(seconds int) *Error {
	c := *e
	c.RetryAfter = seconds
	return &c
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// TypeFor is the error type vLLM-style servers report for an HTTP status.
func TypeFor(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusMethodNotAllowed:
		return "BadRequestError"
	case http.StatusUnauthorized:
		return "AuthenticationError"
	case http.StatusForbidden:
		return "PermissionDeniedError"
	case http.StatusNotFound:
		return "NotFoundError"
	case http.StatusTooManyRequests:
		return "RateLimitError"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailableError"
	case http.StatusBadGateway:
		return "BadGatewayError"
	case http.StatusGatewayTimeout:
		return "GatewayTimeoutError"
	default:
		if status >= 500 {
			return "InternalServerError"
		}
		return "BadRequestError"
	}
}

type errorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    int     `json:"code"`
}

// JSON returns the error envelope as JSON.
func (e *Error) JSON() []byte {
	body := errorBody{Message: e.Message, Type: e.Type, Code: e.Status}
	if body.Type == "" {
		body.Type = TypeFor(e.Status)
	}
	if e.Param != "" {
		body.Param = &e.Param
	}
	b, err := json.Marshal(struct {
		Error errorBody `json:"error"`
	}{body})
	if err != nil { // cannot happen: only strings and ints
		return []byte(`{"error":{"message":"internal error","type":"InternalServerError","param":null,"code":500}}`)
	}
	return b
}

// SSE returns the error as one in-band server-sent event, for errors found after
// the first byte of a stream. The caller follows it with the [DONE] event.
func (e *Error) SSE() []byte {
	return AppendEvent(nil, e.JSON())
}

// JSONError is the 400 for a body CheckJSON refused.
func JSONError(err error) *Error {
	e := NewError(http.StatusBadRequest, "request body is not valid JSON: "+err.Error())
	if errors.Is(err, ErrTooDeep) {
		e.Message = "request body is nested deeper than " + strconv.Itoa(MaxJSONDepth) + " levels"
	}
	e.Err = err
	return e
}

// WriteError writes e as a JSON response with its status.
func WriteError(w http.ResponseWriter, e *Error) {
	body := e.JSON()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// NormalizeError turns an upstream error body into the nested envelope, keeping
// the upstream status. vLLM's recent nested form passes through unchanged; its
// classic flat form, FastAPI's {"detail": ...} and plain text are wrapped.
func NormalizeError(status int, body []byte) []byte {
	// The engine is outside input too: only a document CheckJSON accepts is
	// handed to gjson, whose parser recurses.
	root := gjson.ParseBytes(body)
	if CheckJSON(body) == nil && root.IsObject() {
		if e := root.Get("error"); e.IsObject() && e.Get("message").Type == gjson.String {
			if e.Get("type").Type == gjson.String && e.Get("code").Exists() {
				return body // vLLM's own envelope, complete
			}
			return (&Error{Status: status, Message: e.Get("message").Str, Type: e.Get("type").Str, Param: e.Get("param").Str}).JSON()
		}
		if m := root.Get("message"); m.Type == gjson.String {
			return (&Error{Status: status, Message: m.Str, Type: root.Get("type").Str, Param: root.Get("param").Str}).JSON()
		}
		if d := root.Get("detail"); d.Exists() && d.Type != gjson.Null {
			msg := d.Str
			if d.Type != gjson.String {
				msg = d.Raw
			}
			return NewError(status, msg).JSON()
		}
		if e := root.Get("error"); e.Type == gjson.String {
			return NewError(status, e.Str).JSON()
		}
		return NewError(status, http.StatusText(status)).JSON() // an object that says nothing
	}
	msg := strings.ToValidUTF8(strings.TrimSpace(string(body)), "\uFFFD")
	if len(msg) > 1024 {
		cut := 1024
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut-- // never split a character
		}
		msg = msg[:cut] + "..."
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return NewError(status, msg).JSON()
}
