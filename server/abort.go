package server

import (
	"net/http"

	"github.com/vllm-worker/vllm-worker/metrics"
)

// noteAbort records, once per request, that its answer was cut before its end
// and why (a metrics.Abort reason): counted in
// vllm_worker_requests_aborted_total{reason}, and written on the request's
// access-log line. The first reason stands: a write timeout is also a client
// whose writes then fail.
func (d *Deps) noteAbort(r *http.Request, reason string) {
	info := infoOf(r.Context())
	if info.abort != "" {
		return
	}
	info.abort = reason
	d.Metrics.Aborted(reason)
}

// clientLeft records the abort of an answer whose client is gone: it left, or
// the worker cut its connection at the end of the drain (Server.Cut).
func (d *Deps) clientLeft(r *http.Request) {
	if d.cutting != nil && d.cutting.Load() {
		d.noteAbort(r, metrics.AbortShutdown)
		return
	}
	d.noteAbort(r, metrics.AbortClientGone)
}
