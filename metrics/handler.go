package metrics

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// engineScrapeTimeout bounds the engine's part of a scrape: a slow or dead
// engine costs a scrape at most this, and never fails it.
const engineScrapeTimeout = 2 * time.Second

// Handler serves the worker's metrics in Prometheus text format, followed by the
// engine's vllm: series fetched from engineURL()+"/metrics" at scrape time.
// Only vllm:-prefixed families are taken from the engine: its Python process_
// and http_ series would collide with the worker's own.
func (m *Metrics) Handler(engineURL func() string, client *http.Client) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		families, err := m.reg.Gather()
		if err != nil {
			http.Error(w, "gather metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if engineURL != nil {
			families = append(families, engineFamilies(r.Context(), client, engineURL())...)
		}
		format := expfmt.NewFormat(expfmt.TypeTextPlain)
		w.Header().Set("Content-Type", string(format))
		enc := expfmt.NewEncoder(w, format)
		for _, f := range families {
			if err := enc.Encode(f); err != nil {
				return // the client is gone
			}
		}
	})
}

// engineFamilies fetches and parses the engine's vllm: metric families; any
// failure yields none.
func engineFamilies(ctx context.Context, client *http.Client, base string) []*dto.MetricFamily {
	if base == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, engineScrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	parsed, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(parsed))
	for name := range parsed {
		if strings.HasPrefix(name, "vllm:") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := make([]*dto.MetricFamily, 0, len(names))
	for _, name := range names {
		out = append(out, parsed[name])
	}
	return out
}
