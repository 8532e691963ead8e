package serverless

import (
	"context"
	"strings"
	"time"
)

// heartbeat pings RunPod every PingInterval with the ids of the jobs in flight,
// until ctx ends. It runs on its own, so slow jobs never delay it.
func (h *Handler) heartbeat(ctx context.Context) {
	interval := h.o.PingInterval
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if err := h.pingOnce(ctx, 2*interval); err != nil && ctx.Err() == nil {
			h.o.Log.Warn().Err(err).Msg("heartbeat ping failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// pingOnce sends one heartbeat: GET <ping>?job_id=a,b&runpod_version=V (job_id
// left out when no job is in flight).
func (h *Handler) pingOnce(ctx context.Context, timeout time.Duration) error {
	var q []string
	if ids := h.InProgress(); len(ids) > 0 {
		q = append(q, "job_id", strings.Join(ids, ","))
	}
	q = append(q, "runpod_version", ProtocolVersion)
	u := addQuery(h.ping, q...)
	return h.rpc().Get(ctx, u, shownURL(h.ping), timeout)
}
