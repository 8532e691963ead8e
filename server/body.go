package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vllm-worker/vllm-worker/openai"
)

// readJSONBody reads a request body of at most limit bytes. Like vLLM it accepts
// only application/json (or no Content-Type at all).
func readJSONBody(d *Deps, w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" { // what SDKs send, without parsing
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, openai.NewError(http.StatusBadRequest,
				"Unsupported Media Type: Only 'application/json' is allowed (got "+strconv.Quote(ct)+")")
		}
	}
	return readBody(d, w, r)
}

// firstAlloc bounds the buffer allocated up front for a body of declared
// length: a client that announces 32 MiB and sends a byte must not cost 32 MiB.
const firstAlloc = 256 << 10

// readBody reads a request body of any type, of at most d.maxBody() bytes.
func readBody(d *Deps, w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := d.maxBody()
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	var body []byte
	var err error
	if n := r.ContentLength; n > 0 {
		// The length is known and within the limit: no growing up to firstAlloc.
		body, err = readN(r.Body, n)
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, tooLarge(limit)
		case errors.Is(err, errReadTimeout):
			return nil, openai.NewError(http.StatusRequestTimeout, "the request body made no progress for "+
				d.RequestReadTimeout.Round(time.Millisecond).String()+" (REQUEST_READ_TIMEOUT_SECONDS)")
		}
		return nil, openai.NewError(http.StatusBadRequest, "could not read the request body")
	}
	return body, nil
}

// readN reads exactly n bytes, growing its buffer as they arrive.
func readN(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, min(n, firstAlloc))
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, err
		case int64(got) == n:
			return buf, nil
		}
		next := int(min(n, 2*int64(len(buf))))
		buf = slices.Grow(buf, next-len(buf))[:next]
	}
}

func tooLarge(limit int64) *openai.Error {
	return openai.NewError(http.StatusRequestEntityTooLarge,
		"request body is larger than the limit of "+strconv.FormatInt(limit, 10)+" bytes (MAX_REQUEST_BYTES)")
}
