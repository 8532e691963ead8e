package server

import (
	"encoding/json"
	"math"
	"net/http"

	"github.com/vllm-worker/vllm-worker/runpod"
)

type healthBody struct {
	Status  State         `json:"status"`
	Phase   string        `json:"phase,omitempty"`
	Elapsed *float64      `json:"elapsed_s,omitempty"`
	Detail  string        `json:"detail,omitempty"`
	Engine  engineDoc     `json:"engine"`
	Jobs    runpod.Counts `json:"jobs"`
	Workers workers       `json:"workers"`
}

type engineDoc struct {
	URL    string   `json:"url"`
	Models []string `json:"models"`
}

// workers are RunPod's endpoint-health worker counts, for this one worker.
type workers struct {
	Idle         int `json:"idle"`
	Initializing int `json:"initializing"`
	Ready        int `json:"ready"`
	Running      int `json:"running"`
	Throttled    int `json:"throttled"`
	Unhealthy    int `json:"unhealthy"`
}

// handleHealth reports the worker's state: 200 when ready, 503 otherwise.
func handleHealth(d *Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := d.Status.Status()
		body := healthBody{Status: st.State, Detail: st.Detail,
			Engine: engineDoc{URL: st.Engine, Models: d.Models.IDs()}}
		body.Jobs = d.Jobs.Counts()
		switch st.State {
		case StateStarting:
			body.Phase = st.Phase
			s := math.Round(st.Elapsed.Seconds()*10) / 10
			body.Elapsed = &s
			body.Workers.Initializing = 1
		case StateReady:
			if body.Jobs.InProgress > 0 {
				body.Workers.Running = 1
			} else {
				body.Workers.Idle = 1
			}
			body.Workers.Ready = 1
		case StateUnhealthy:
			body.Workers.Unhealthy = 1
		}
		status := http.StatusOK
		if st.State != StateReady {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
}

// handlePing is RunPod's load-balancer probe: 204 while initializing, 200 when
// ready, 503 when unhealthy or draining.
func handlePing(d *Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch d.Status.Status().State {
		case StateReady:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"status":"healthy"}`))
		case StateStarting:
			w.WriteHeader(http.StatusNoContent)
		case StateDraining:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"draining"}`))
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"unhealthy"}`))
		}
	}
}
