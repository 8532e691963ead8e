package check

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is the outcome of one check.
type Result struct {
	Name    string
	OK      bool
	Latency time.Duration // the whole check
	TTFT    time.Duration // to the first generated token, from the check's start; 0 when none
	Error   string        // why it failed
	Detail  string        // what a passing check saw worth showing
	Request *Request      // the request that showed the failure
}

// Report is the outcome of a run.
type Report struct {
	Target string // the base URL checked
	Kind   Kind
	Model  string // the model the generation checks asked for
	OK     bool   // every check passed
	// Unreachable says the target did not answer at all: Checks then holds
	// only the failed "connect" check.
	Unreachable bool
	Checks      []Result
}

// Failed counts the failed checks.
func (r *Report) Failed() int {
	n := 0
	for _, c := range r.Checks {
		if !c.OK {
			n++
		}
	}
	return n
}

type jsonResult struct {
	Name      string   `json:"name"`
	OK        bool     `json:"ok"`
	LatencyMS float64  `json:"latency_ms"`
	TTFTMS    *float64 `json:"ttft_ms"`
	Error     string   `json:"error,omitempty"`
	Detail    string   `json:"detail,omitempty"`
	Request   *Request `json:"request,omitempty"`
}

type jsonReport struct {
	Target      string       `json:"target"`
	Kind        Kind         `json:"kind"`
	Model       string       `json:"model,omitempty"`
	OK          bool         `json:"ok"`
	Unreachable bool         `json:"unreachable,omitempty"`
	Failed      int          `json:"failed"`
	Checks      []jsonResult `json:"checks"`
}

// ms is d in milliseconds, to a tenth.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*10) / 10
}

// WriteJSON writes r as one JSON document: {"target", "kind", "model", "ok",
// "failed", "checks": [{"name", "ok", "latency_ms", "ttft_ms" (null when the
// check generates nothing), "error", "detail", "request"}]}.
func (r *Report) WriteJSON(w io.Writer) error {
	out := jsonReport{Target: r.Target, Kind: r.Kind, Model: r.Model, OK: r.OK,
		Unreachable: r.Unreachable, Failed: r.Failed(), Checks: []jsonResult{}}
	for _, c := range r.Checks {
		jr := jsonResult{Name: c.Name, OK: c.OK, LatencyMS: ms(c.Latency), Error: c.Error,
			Detail: c.Detail, Request: c.Request}
		if c.TTFT > 0 {
			v := ms(c.TTFT)
			jr.TTFTMS = &v
		}
		out.Checks = append(out.Checks, jr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // request bodies stay readable
	return enc.Encode(out)
}

// WriteTable writes r for a terminal: a line saying what was checked, one row
// per check (name, result, latency, time to first token, the error or what
// the check saw), a summary, then each failure with the request that showed
// it as a curl command line.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	what := map[Kind]string{KindWorker: "worker", KindRunPod: "RunPod endpoint", KindEngine: "engine"}[r.Kind]
	fmt.Fprintf(&b, "%s %s", what, r.Target)
	if r.Model != "" {
		fmt.Fprintf(&b, ", model %s", r.Model)
	}
	b.WriteString("\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tLATENCY\tTTFT\tDETAIL")
	for _, c := range r.Checks {
		result, detail := "pass", c.Detail
		if !c.OK {
			result, detail = "FAIL", c.Error
		}
		ttft := "-"
		if c.TTFT > 0 {
			ttft = duration(c.TTFT)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, result, duration(c.Latency), ttft, short(oneLine(detail)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\n")
	switch failed := r.Failed(); {
	case r.Unreachable:
		b.WriteString("the target did not answer: no check was run\n")
	case failed == 0:
		fmt.Fprintf(&b, "all %d checks passed\n", len(r.Checks))
	default:
		fmt.Fprintf(&b, "%d of %d checks failed\n", failed, len(r.Checks))
	}
	for _, c := range r.Checks {
		if c.OK {
			continue
		}
		fmt.Fprintf(&b, "\n%s: %s\n", c.Name, c.Error)
		if c.Request != nil {
			fmt.Fprintf(&b, "  request: %s\n", c.Request.Curl)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// duration is d for a table: 850µs, 12ms, 1.25s.
func duration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// short cuts a table cell at 100 characters; a failure is shown whole below
// the table.
func short(s string) string {
	const limit = 100
	if r := []rune(s); len(r) > limit {
		return string(r[:limit-3]) + "..."
	}
	return s
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
