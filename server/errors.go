package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/metrics"
	"github.com/vllm-worker/vllm-worker/openai"
	"github.com/vllm-worker/vllm-worker/runpod/jobstore"
)

// limitError is a request refused by one of the limits of contract section 8.
type limitError struct {
	limit string // a metrics.Limit* name
	err   *openai.Error
}

func (e *limitError) Error() string { return e.err.Message }

func (e *limitError) Unwrap() error { return e.err }

// refused tags e as limit's refusal, for writeError to count and log.
func refused(limit string, e *openai.Error) error { return &limitError{limit: limit, err: e} }

// writeError answers a failed request: the error's status and message in the
// OpenAI envelope, with Retry-After when the client may try again. It is the one
// place where errors become HTTP answers: the errors of other packages are mapped
// to statuses here. A limit's refusal is also counted in
// vllm_worker_limit_rejections_total and logged once with the request id. An
// error of no known kind is a 500 whose message stays in the log.
func (d *Deps) writeError(w http.ResponseWriter, r *http.Request, err error) {
	apiErr, limit := d.classify(err)
	var known *openai.Error
	var fromEngine *engine.Error
	if !errors.As(err, &known) && !errors.As(err, &fromEngine) && limit == "" {
		d.Log.Error().Err(err).Str("request_id", RequestID(r.Context())).Str("path", r.URL.Path).Msg("request failed")
	}
	if limit != "" {
		d.Metrics.LimitHit(limit)
		d.Log.Warn().Str("request_id", RequestID(r.Context())).Str("limit", limit).
			Int("status", apiErr.Status).Str("path", r.URL.Path).Msg(apiErr.Message)
	}
	var ee *engine.Error
	if errors.As(err, &ee) && ee.Envelope != nil {
		// The engine's own error, as it wrote it (normalised to the envelope).
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(ee.Envelope)))
		w.WriteHeader(ee.Status)
		_, _ = w.Write(ee.Envelope)
		return
	}
	openai.WriteError(w, apiErr)
}

// classify maps err to the answer a client sees, and the limit it hit, if any.
func (d *Deps) classify(err error) (*openai.Error, string) {
	var le *limitError
	if errors.As(err, &le) {
		return le.err, le.limit
	}
	var ee *engine.Error
	if errors.As(err, &ee) {
		return ee.APIError(), ""
	}
	var pe *engine.PathError
	if errors.As(err, &pe) {
		return openai.NewError(http.StatusBadRequest, pe.Error()), metrics.LimitEnginePath
	}
	var re *jobstore.RequestError
	if errors.As(err, &re) {
		limit := ""
		switch re.Field {
		case "webhook":
			limit = metrics.LimitWebhook
		case "policy", "policy.executionTimeout", "policy.ttl":
			limit = metrics.LimitPolicy
		}
		return openai.NewError(http.StatusBadRequest, re.Error()).WithParam(re.Field), limit
	}
	switch {
	case errors.Is(err, openai.ErrTooDeep):
		return asAPIError(err, http.StatusBadRequest), metrics.LimitJSONDepth
	case errors.Is(err, jobstore.ErrStoreFull):
		return openai.NewError(http.StatusTooManyRequests, err.Error()).WithRetryAfter(5), metrics.LimitJobStoreJobs
	case errors.Is(err, jobstore.ErrStoreBytes):
		return openai.NewError(http.StatusTooManyRequests, err.Error()).WithRetryAfter(5), metrics.LimitJobStoreBytes
	case errors.Is(err, jobstore.ErrClosed):
		return openai.NewError(http.StatusServiceUnavailable, err.Error()).WithRetryAfter(5), ""
	}
	apiErr := asAPIError(err, http.StatusInternalServerError)
	switch apiErr.Status {
	case http.StatusRequestEntityTooLarge:
		return apiErr, metrics.LimitBodySize
	case http.StatusRequestTimeout:
		return apiErr, metrics.LimitReadTimeout
	}
	return apiErr, ""
}

// asAPIError is err's *openai.Error, or a generic one of status that does not
// show err's text.
func asAPIError(err error, status int) *openai.Error {
	var ae *openai.Error
	if errors.As(err, &ae) {
		return ae
	}
	return openai.NewError(status, http.StatusText(status))
}
