package check

import "testing"

func TestPromSum(t *testing.T) {
	text := []byte(`# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 1.0
vllm:num_requests_running{engine="1",model_name="m"} 2
vllm:num_requests_running_extra{engine="0"} 100
vllm:request_success_total{engine="0",finished_reason="abort",model_name="m"} 3
vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 7
vllm:request_success_total{engine="0",model_name="m",finished_reason="stop"} 1
vllm:request_success_total{engine="0",not_finished_reason="stop"} 50
plain_metric 4.5
`)
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
		found  bool
	}{
		{"vllm:num_requests_running", nil, 3, true},
		{"vllm:request_success_total", []string{`finished_reason="abort"`}, 3, true},
		{"vllm:request_success_total", []string{`finished_reason="stop"`}, 1, true},
		{"vllm:request_success_total", []string{`finished_reason="stop"`, `model_name="m"`}, 1, true},
		{"vllm:request_success_total", []string{`finished_reason="other"`}, 0, false},
		{"plain_metric", nil, 4.5, true},
		{"vllm:num_requests_waiting", nil, 0, false},
	} {
		got, found := promSum(text, tt.name, tt.labels...)
		if got != tt.want || found != tt.found {
			t.Errorf("promSum(%s, %v) = %v, %v; want %v, %v", tt.name, tt.labels, got, found, tt.want, tt.found)
		}
	}
}
