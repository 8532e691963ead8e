package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// Kind says where an engine error came from.
type Kind int

// The kinds of Error.
const (
	// KindAnswer: the engine answered with an error status (400, 404, 500, ...).
	KindAnswer Kind = iota
	// KindEvent: an error event in the engine's stream, after its first byte.
	KindEvent
	// KindUnreachable: no answer: the engine refused the connection or closed it
	// before answering (502).
	KindUnreachable
	// KindTimeout: the engine did not answer, or went quiet mid-stream, for
	// longer than allowed (504).
	KindTimeout
	// KindBroken: the engine's answer broke off or could not be read: a stream
	// cut before its end, an event larger than the limit, a chunk that is not
	// JSON (502).
	KindBroken
)

// Error is the one error type of the engine: an error it answered with, an
// error event in its stream, or a failure to reach it or to read it. Status,
// Message, Type and Param are what a client is shown (the OpenAI envelope);
// for an error the engine wrote, they are the engine's own.
type Error struct {
	Status  int
	Message string
	Type    string
	Param   string
	Kind    Kind
	// Envelope is the error as the engine wrote it, normalised to the OpenAI
	// envelope (nil for an error of the worker's own): relayed byte for byte.
	Envelope []byte
	// Err is the underlying transport error, if any; never shown to a client.
	Err   error
	fatal bool
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("engine error (%d %s): %s", e.Status, e.Type, e.Message)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Fatal reports an error after which the engine cannot be trusted to serve
// again: vLLM reports a CUDA failure (an illegal memory access, a device-side
// assert, ...) as an ordinary 500 with the CUDA runtime's message, and the GPU
// is then in an unknown state. It is decided once, here, from the message the
// engine wrote.
func (e *Error) Fatal() bool { return e.fatal }

// APIError is the error as a client sees it.
func (e *Error) APIError() *openai.Error {
	return &openai.Error{Status: e.Status, Message: e.Message, Type: e.Type, Param: e.Param, Err: e}
}

// cudaMarkers are the texts of CUDA runtime failures in vLLM's error messages.
var cudaMarkers = []string{"CUDA error", "CUDA out of memory", "cudaError", "CUBLAS_STATUS_", "device-side assert"}

func isFatalMessage(msg string) bool {
	for _, m := range cudaMarkers {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// maxErrorBody bounds how much of an engine error body is read.
const maxErrorBody = 1 << 20

// ReadError reads an engine answer with an error status (>= 400) into an Error
// of KindAnswer: vLLM's envelope, its classic flat form, FastAPI's
// {"detail":...} and plain text alike.
func ReadError(resp *http.Response) *Error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return envelopeError(KindAnswer, openai.NormalizeError(resp.StatusCode, raw))
}

// EventError is the Error of an in-band error event, or nil when the event is
// no error. An error event is one whose data is {"error":{...}} (vLLM's) or the
// classic flat {"object":"error",...}, or one named "error" (the Responses API's
// and Anthropic's streams). A cheap test rejects ordinary chunks before any
// parse.
func EventError(name, payload []byte) *Error {
	if string(name) == "error" {
		if openai.CheckJSON(payload) != nil {
			return envelopeError(KindEvent, openai.NormalizeError(http.StatusInternalServerError, nil))
		}
		status := int(gjson.GetBytes(payload, "code").Int())
		if status < 400 || status > 599 {
			status = http.StatusInternalServerError
		}
		return envelopeError(KindEvent, openai.NormalizeError(status, payload))
	}
	if len(payload) == 0 || payload[0] != '{' || !strings.Contains(string(payload), `"error"`) {
		return nil
	}
	if openai.CheckJSON(payload) != nil {
		return nil
	}
	root := gjson.ParseBytes(payload)
	e := root.Get("error")
	flat := root.Get("object").Str == "error"
	if !e.IsObject() && !(e.Type == gjson.String) && !flat {
		return nil
	}
	status := int(root.Get("error.code").Int())
	if flat {
		status = int(root.Get("code").Int())
	}
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	return envelopeError(KindEvent, openai.NormalizeError(status, payload))
}

// envelopeError builds an Error from a normalised OpenAI envelope.
func envelopeError(kind Kind, envelope []byte) *Error {
	e := gjson.GetBytes(envelope, "error")
	err := &Error{
		Status:   int(e.Get("code").Int()),
		Message:  e.Get("message").Str,
		Type:     e.Get("type").Str,
		Param:    e.Get("param").Str,
		Kind:     kind,
		Envelope: envelope,
	}
	if err.Status < 400 || err.Status > 599 {
		err.Status = http.StatusBadGateway
	}
	if err.Type == "" {
		err.Type = openai.TypeFor(err.Status)
	}
	if err.Message == "" {
		err.Message = "the engine reported an error"
	}
	err.fatal = isFatalMessage(err.Message)
	return err
}

// Broken is an Error of KindBroken: the engine's answer broke off or was not
// what it must be.
func Broken(message string, cause error) *Error {
	return &Error{Status: http.StatusBadGateway, Message: message, Type: openai.TypeFor(http.StatusBadGateway), Kind: KindBroken, Err: cause}
}

// TimedOut is an Error of KindTimeout.
func TimedOut(message string) *Error {
	return &Error{Status: http.StatusGatewayTimeout, Message: message, Type: openai.TypeFor(http.StatusGatewayTimeout), Kind: KindTimeout}
}

// transportError translates a failure to reach the engine: 504 when it did not
// answer in time, 502 otherwise. A cancelled ctx gives ctx's error as it is:
// the caller left, and there is nobody to answer.
func transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		e := TimedOut("the engine did not answer in time")
		e.Err = err
		return e
	}
	msg := "the engine closed the connection without answering"
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		msg = "the engine is unreachable"
	}
	return &Error{Status: http.StatusBadGateway, Message: msg, Type: openai.TypeFor(http.StatusBadGateway), Kind: KindUnreachable, Err: err}
}

// FatalError is a failure after which the engine cannot serve: it died, or it
// reported a CUDA error (Error.Fatal). The worker exits on it, so that the
// platform replaces it.
type FatalError struct {
	Reason string // what happened, for the log and for running jobs' errors
	Err    error
}

func (e *FatalError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *FatalError) Unwrap() error { return e.Err }
