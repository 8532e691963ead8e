package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/vllm-worker/vllm-worker/openai"
)

// readJSONBody reads a request body of at most limit bytes. Like vLLM it accepts
// only application/json (or no Content-Type at all).
func readJSONBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *openai.Error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, openai.NewError(http.StatusBadRequest,
				"Unsupported Media Type: Only 'application/json' is allowed (got "+strconv.Quote(ct)+")")
		}
	}
	return readBody(w, r, limit)
}

// readBody reads a request body of any type, of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *openai.Error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	var body []byte
	var err error
	if n := r.ContentLength; n > 0 {
		// The length is known (and within the limit): one allocation, no growing.
		body = make([]byte, n)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, openai.NewError(http.StatusBadRequest, "could not read the request body")
	}
	return body, nil
}

func tooLarge(limit int64) *openai.Error {
	return openai.NewError(http.StatusRequestEntityTooLarge,
		"request body is larger than the limit of "+strconv.FormatInt(limit, 10)+" bytes (MAX_REQUEST_BYTES)")
}
