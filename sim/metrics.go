package sim

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// metrics are the few vLLM metrics the worker and the tests read, written in the
// Prometheus text format (0.0.4) by hand: lock-free atomics on the hot path and no
// global registry. (client_golang's transitive modules are not in go.sum, and the
// exposition below is all a scraper needs.)
type metrics struct {
	labels string // `model_name="m",engine="0"`, as vLLM labels its metrics
	srv    *Server

	promptTokens, generationTokens atomic.Int64
	success                        [len(finishReasons)]atomic.Int64
	ttft                           histogram
}

// finishReasons are the request_success_total label values, in exposition order.
var finishReasons = [...]string{"stop", "length", "abort"}

const (
	finishStop = iota
	finishLength
	finishAbort
)

// ttftBuckets are vLLM's bucket bounds for vllm:time_to_first_token_seconds.
var ttftBuckets = [...]float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
	0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}

func newMetrics(model string, srv *Server) *metrics {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return &metrics{labels: `model_name="` + esc.Replace(model) + `",engine="0"`, srv: srv}
}

// finished counts one choice that ended with reason ("stop" or "length").
func (m *metrics) finished(reason string) {
	if reason == "stop" {
		m.success[finishStop].Add(1)
	} else {
		m.success[finishLength].Add(1)
	}
}

// histogram is a cumulative-on-read Prometheus histogram over ttftBuckets.
type histogram struct {
	counts  [len(ttftBuckets) + 1]atomic.Uint64 // per bucket, not cumulative; last is +Inf
	sumBits atomic.Uint64                       // float64 bits of the sum
}

func (h *histogram) observe(d time.Duration) {
	v := d.Seconds()
	i := 0
	for i < len(ttftBuckets) && v > ttftBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// serve writes the exposition.
func (m *metrics) serve(w http.ResponseWriter) {
	b := make([]byte, 0, 4096)
	gauge := func(name, help string, v float64) {
		b = append(b, "# HELP "+name+" "+help+"\n# TYPE "+name+" gauge\n"+name+"{"+m.labels+"} "...)
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
		b = append(b, '\n')
	}
	counter := func(name, help string, v int64) {
		b = append(b, "# HELP "+name+" "+help+"\n# TYPE "+name+" counter\n"+name+"{"+m.labels+"} "...)
		b = strconv.AppendInt(b, v, 10)
		b = append(b, '\n')
	}
	running := m.srv.running.Load()
	gauge("vllm:num_requests_running", "Number of requests in model execution batches.", float64(running))
	gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", float64(m.srv.waiting.Load()))
	usage := 0.0
	if n := m.srv.o.MaxNumSeqs; n > 0 {
		usage = float64(running) / float64(n)
	}
	gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage)
	counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", m.promptTokens.Load())
	counter("vllm:generation_tokens_total", "Number of generation tokens processed.", m.generationTokens.Load())

	const success = "vllm:request_success_total"
	b = append(b, "# HELP "+success+" Count of successfully processed requests.\n# TYPE "+success+" counter\n"...)
	for i, reason := range finishReasons {
		b = append(b, success+"{"+m.labels+`,finished_reason="`+reason+`"} `...)
		b = strconv.AppendInt(b, m.success[i].Load(), 10)
		b = append(b, '\n')
	}

	const ttft = "vllm:time_to_first_token_seconds"
	b = append(b, "# HELP "+ttft+" Histogram of time to first token in seconds.\n# TYPE "+ttft+" histogram\n"...)
	var cum uint64
	for i := range m.ttft.counts {
		cum += m.ttft.counts[i].Load()
		le := "+Inf"
		if i < len(ttftBuckets) {
			le = strconv.FormatFloat(ttftBuckets[i], 'f', -1, 64)
		}
		b = append(b, ttft+"_bucket{"+m.labels+`,le="`+le+`"} `...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	b = append(b, ttft+"_count{"+m.labels+"} "...)
	b = strconv.AppendUint(b, cum, 10)
	b = append(b, "\n"+ttft+"_sum{"+m.labels+"} "...)
	b = strconv.AppendFloat(b, math.Float64frombits(m.ttft.sumBits.Load()), 'g', -1, 64)
	b = append(b, '\n')

	h := w.Header()
	h.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
