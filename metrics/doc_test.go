package metrics

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var update = flag.Bool("update", false, "rewrite docs/metrics.md from the registry")

const metricsDoc = "../docs/metrics.md"

// runTimeLabels describes the label values that exist only once something is
// recorded (a route, a status code, ...), by "family label". Every other label
// has its values made up front, and the doc lists them from the registry.
// TestMetricsDoc fails on a label the registry has that is missing here, and on
// an entry here that no registered family has.
func runTimeLabels() map[string]string {
	route := "the route pattern, without the `/v2/{endpoint_id}` prefix: `/openai/v1/chat/completions`, " +
		"`/v1/*` (the pass-through), `/status/{id}`, `/health`, ...; `preflight` for a CORS preflight " +
		"(answered before routing), `unmatched` for a path no route serves"
	return map[string]string{
		"vllm_worker_requests_total route": route,
		"vllm_worker_requests_total code": "the HTTP status answered; `499` when the client left, or read nothing for " +
			"`CLIENT_WRITE_TIMEOUT_SECONDS`, before the end of its answer",
		"vllm_worker_request_duration_seconds route": route,
		"vllm_worker_time_to_first_token_seconds route": "the route pattern of the streamed OpenAI request " +
			"(`/openai/v1/chat/completions`, `/v1/completions`, `/v1/*`, ...)",
		"vllm_worker_jobs_total outcome": "the job's final status: `COMPLETED`, `FAILED`, `CANCELLED` or `TIMED_OUT`",
	}
}

// family is one vllm_worker_* metric family as the doc shows it.
type family struct {
	name, typ, help string
	labels          []string            // label names, sorted
	values          map[string][]string // label -> values made up front (const labels included)
	buckets         []float64           // a histogram's upper bounds
	handlerOnly     bool                // registered by WatchHandler: handler mode only
}

func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "vllm_worker_") {
			out[f.GetName()] = f
		}
	}
	return out
}

// described is the name of every vllm_worker_* family registered on reg,
// whether or not it has a series yet, read from the registry's descriptors.
func described(reg *prometheus.Registry) []string {
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	fqName := regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil && strings.HasPrefix(m[1], "vllm_worker_") && !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	sort.Strings(names)
	return names
}

// catalog reads every vllm_worker_* family from the registry of a Metrics
// that went through every registration path (New, then WatchHandler, as the
// worker does in handler mode). The label values present before anything is
// recorded are the ones made up front; then each recording method runs once,
// so that the vectors whose series are made at run time show their labels.
func catalog(t *testing.T) []family {
	t.Helper()
	m := New()
	base := described(m.reg)
	m.WatchHandler(func() HandlerCounters { return HandlerCounters{} })
	upFront := gather(t, m)
	m.Request("/v1/chat/completions", 200, time.Millisecond)
	m.FirstEvent("/v1/chat/completions", time.Millisecond)
	m.Batch("sse", 1)
	m.Job("COMPLETED")
	all := gather(t, m)

	for _, name := range described(m.reg) {
		if all[name] == nil {
			t.Errorf("%s is registered but has no series in the doc's scrape: record once on it in catalog", name)
		}
	}
	var out []family
	for _, name := range slices.Sorted(maps.Keys(all)) {
		f := all[name]
		fam := family{name: name, typ: strings.ToLower(f.GetType().String()), help: f.GetHelp(),
			values: map[string][]string{}, handlerOnly: !slices.Contains(base, name)}
		for _, s := range f.GetMetric() {
			for _, lp := range s.GetLabel() {
				if !slices.Contains(fam.labels, lp.GetName()) {
					fam.labels = append(fam.labels, lp.GetName())
				}
			}
			if fam.buckets == nil && s.GetHistogram() != nil {
				for _, b := range s.GetHistogram().GetBucket() {
					fam.buckets = append(fam.buckets, b.GetUpperBound())
				}
			}
		}
		sort.Strings(fam.labels)
		if pre := upFront[name]; pre != nil {
			for _, s := range pre.GetMetric() {
				for _, lp := range s.GetLabel() {
					if !slices.Contains(fam.values[lp.GetName()], lp.GetValue()) {
						fam.values[lp.GetName()] = append(fam.values[lp.GetName()], lp.GetValue())
					}
				}
			}
		}
		out = append(out, fam)
	}
	return out
}

// metricsMarkdown is docs/metrics.md: metricsIntro, then one row per family.
func metricsMarkdown(t *testing.T) string {
	t.Helper()
	docs := runTimeLabels()
	used := map[string]bool{}
	var b strings.Builder
	b.WriteString(metricsIntro)
	b.WriteString("\n| series | type | labels | meaning |\n|---|---|---|---|\n")
	for _, f := range catalog(t) {
		var labels []string
		for _, l := range f.labels {
			key := f.name + " " + l
			switch {
			case len(f.values[l]) > 0:
				labels = append(labels, fmt.Sprintf("`%s`: `%s`", l, strings.Join(f.values[l], "`, `")))
			case docs[key] != "":
				used[key] = true
				labels = append(labels, fmt.Sprintf("`%s`: %s", l, docs[key]))
			default:
				t.Errorf("label %s of %s has values made at run time: describe them in runTimeLabels", l, f.name)
			}
		}
		meaning := f.help
		if f.handlerOnly {
			meaning += " Only in handler mode (`RUNPOD_WEBHOOK_GET_JOB`)."
		}
		if len(f.buckets) > 0 {
			bs := make([]string, len(f.buckets))
			for i, v := range f.buckets {
				bs[i] = strconv.FormatFloat(v, 'g', -1, 64)
			}
			meaning += " Buckets: " + strings.Join(bs, ", ") + " (as `_bucket{le}`, with `_sum` and `_count`)."
		}
		labelCell := "none"
		if len(labels) > 0 {
			labelCell = strings.Join(labels, "; ")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.name, f.typ, cell(labelCell), cell(meaning))
	}
	for key := range docs {
		if !used[key] {
			t.Errorf("runTimeLabels describes %q, which no registered family has", key)
		}
	}
	return b.String()
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// TestMetricsDoc checks that docs/metrics.md is what the registry gives.
func TestMetricsDoc(t *testing.T) {
	want := metricsMarkdown(t)
	if t.Failed() {
		return
	}
	if *update {
		if err := os.WriteFile(metricsDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatalf("%v; run: go test ./metrics -run TestMetricsDoc -update", err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date with the metrics registry; run: go test ./metrics -run TestMetricsDoc -update", metricsDoc)
	}
}

const metricsIntro = `# Metrics

<!-- Generated from the metrics registry by: go test ./metrics -run TestMetricsDoc -update. Do not edit. -->

` + "`GET /metrics`" + ` (on ` + "`PORT`" + `, with the ` + "`API_KEY`" + ` when one is set) answers in Prometheus' text
format, in this order:

1. the worker's own ` + "`vllm_worker_*`" + ` series, listed below;
2. the Go runtime's ` + "`go_*`" + ` and the worker process's ` + "`process_*`" + ` series (Prometheus' standard
   collectors; ` + "`process_*`" + ` is the worker's process, not vLLM's);
3. the engine's ` + "`vllm:*`" + ` series, fetched from its own ` + "`/metrics`" + ` at scrape time (at most 2 s; a
   slow or dead engine leaves them out and never fails the scrape). Those are vLLM's own
   (` + "`vllm:num_requests_running`, `vllm:time_to_first_token_seconds`, `vllm:kv_cache_usage_perc`" + `, ...),
   documented in [vLLM's metrics documentation](https://docs.vllm.ai/en/latest/usage/metrics/);
   only the ` + "`vllm:`" + ` families are taken, because vLLM's Python ` + "`process_*`" + ` and ` + "`http_*`" + ` series
   would collide with the worker's.

One scrape target thus covers the worker and the engine; [deployment](deployment.md#metrics)
has a scrape configuration. Counters start at 0 when the worker starts; a series with labels
made at run time (a route, a status) appears once it has something to count.

Below, every ` + "`vllm_worker_*`" + ` family the worker registers: the list is generated from the
worker's metrics registry, and a test fails when it is out of date.
`
