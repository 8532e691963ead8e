package serverless

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vllm-worker/vllm-worker/runpod"
)

// nopRunner is a jobRunner that is never meant to run.
type nopRunner struct{}

func (nopRunner) Run(context.Context, string, *runpod.Input, runpod.Emit) ([]json.RawMessage, error) {
	return nil, errors.New("not for running")
}

func TestNewHandlerValidates(t *testing.T) {
	good := HandlerOptions{
		Runner:  nopRunner{},
		TakeURL: "https://api.runpod.ai/v2/ep/job-take/$RUNPOD_POD_ID?gpu=x",
		DoneURL: "https://api.runpod.ai/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=x",
		APIKey:  "very-secret",
	}
	tests := []struct {
		name    string
		edit    func(*HandlerOptions)
		wantErr string
	}{
		{"ok", func(*HandlerOptions) {}, ""},
		{"no take", func(o *HandlerOptions) { o.TakeURL = "" }, "RUNPOD_WEBHOOK_GET_JOB is required"},
		{"no done", func(o *HandlerOptions) { o.DoneURL = "" }, "RUNPOD_WEBHOOK_POST_OUTPUT is required"},
		{"bad done", func(o *HandlerOptions) { o.DoneURL = "JOB_DONE_URL" }, "RUNPOD_WEBHOOK_POST_OUTPUT"},
		{"bad stream", func(o *HandlerOptions) { o.StreamURL = "ftp://x/$ID" }, "RUNPOD_WEBHOOK_POST_STREAM"},
		{"bad ping", func(o *HandlerOptions) { o.PingURL = "://" }, "RUNPOD_WEBHOOK_PING"},
		{"no runner", func(o *HandlerOptions) { o.Runner = nil }, "runner"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.edit(&o)
			_, err := NewHandler(o)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("NewHandler = %v; want error %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), o.APIKey) {
				t.Errorf("the error shows the API key: %v", err)
			}
		})
	}
}

func TestHandlerURLs(t *testing.T) {
	h, err := NewHandler(HandlerOptions{
		Runner:   nopRunner{},
		TakeURL:  "http://rp/v2/ep/job-take/$ID",
		DoneURL:  "http://rp/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=a",
		PingURL:  "http://rp/v2/ep/ping/$RUNPOD_POD_ID",
		WorkerID: "w1",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{
		"single": h.takeURL(1),
		"batch":  h.takeURL(5),
		"stop":   h.stop,
		"ping":   addQuery(h.ping, "job_id", "a,b", "runpod_version", "1.0"),
		"done":   addQuery(expandURL(h.o.DoneURL, "w1", "job 7"), "isStream", "true"),
	}
	want := map[string]string{
		"single": "http://rp/v2/ep/job-take/w1?job_in_progress=0",
		"batch":  "http://rp/v2/ep/job-take-batch/w1?batch_size=5&job_in_progress=0",
		"stop":   "http://rp/v2/ep/job-stop/w1",
		"ping":   "http://rp/v2/ep/ping/w1?job_id=a%2Cb&runpod_version=1.0",
		"done":   "http://rp/v2/ep/job-done/w1/job%207?gpu=a&isStream=true",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("URLs (-want +got):\n%s", diff)
	}

	h, err = NewHandler(HandlerOptions{Runner: nopRunner{}, TakeURL: "http://rp/take?x=1", DoneURL: "http://rp/done"})
	if err != nil {
		t.Fatal(err)
	}
	if h.takeBatch != "" || h.stop != "" || h.takeURL(4) != "http://rp/take?x=1&job_in_progress=0" {
		t.Errorf("without /job-take/: batch %q, stop %q, take %q; want single takes only", h.takeBatch, h.stop, h.takeURL(4))
	}
	if h.o.WorkerID == "" {
		t.Error("no random worker id")
	}
}

func TestParseTaken(t *testing.T) {
	tests := []struct {
		body    string
		want    []takenJob
		wantErr bool
	}{
		{``, nil, false},
		{`  `, nil, false},
		{`{"id":"a","input":{"prompt":"x"}}`, []takenJob{{"a", json.RawMessage(`{"prompt":"x"}`)}}, false},
		{`{"id":"a"}`, []takenJob{{"a", nil}}, false},
		{`{"input":{}}`, nil, true},
		{`[{"id":"a","input":1},{"id":7,"input":2}]`, []takenJob{{"a", json.RawMessage(`1`)}, {"7", json.RawMessage(`2`)}}, false},
		{`[{"id":"a","input":1},{"input":2},"x"]`, []takenJob{{"a", json.RawMessage(`1`)}}, true},
		{`[]`, nil, false},
		{`"job"`, nil, true},
		{`[{"id":"a"`, nil, true},
	}
	for _, tt := range tests {
		got, err := parseTaken([]byte(tt.body))
		if (err != nil) != tt.wantErr {
			t.Errorf("parseTaken(%s) error = %v; want error %v", tt.body, err, tt.wantErr)
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(takenJob{})); diff != "" {
			t.Errorf("parseTaken(%s) (-want +got):\n%s", tt.body, diff)
		}
	}
}

func TestParseJobsToStop(t *testing.T) {
	tests := map[string][]string{
		`{"jobsToStop":["a","b"]}`:    {"a", "b"},
		`{"jobsToStop":["a",5,null]}`: {"a"},
		`{"jobsToStop":"a"}`:          nil,
		`[]`:                          nil,
		``:                            nil,
	}
	for body, want := range tests {
		if got := parseJobsToStop([]byte(body)); !cmp.Equal(got, want) {
			t.Errorf("parseJobsToStop(%s) = %v; want %v", body, got, want)
		}
	}
}

func TestResultBody(t *testing.T) {
	tests := []struct {
		items   []json.RawMessage
		err     error
		stopPod bool
		want    string
	}{
		{nil, nil, false, `{"output":[]}`},
		{[]json.RawMessage{json.RawMessage(`{"a": 1}`), json.RawMessage(`"s"`)}, nil, false, `{"output":[{"a":1},"s"]}`},
		{nil, errors.New(`bad "thing"`), false, `{"error":"bad \"thing\""}`},
		{nil, errors.New("engine died"), true, `{"error":"engine died","stopPod":true}`},
		{[]json.RawMessage{json.RawMessage(`1`)}, nil, true, `{"output":[1],"stopPod":true}`},
	}
	for _, tt := range tests {
		if got := string(resultBody(tt.items, tt.err, tt.stopPod)); got != tt.want {
			t.Errorf("resultBody = %s; want %s", got, tt.want)
		}
	}
}

// FuzzParseTaken: any job-take answer parses without panicking, and every job it
// yields has an id to report its result under.
func FuzzParseTaken(f *testing.F) {
	for _, s := range []string{``, `{"id":"a","input":{}}`, `[{"id":1},{"id":null}]`, `[{"id":"a"},"x",[]]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		jobs, _ := parseTaken(body)
		for _, j := range jobs {
			if j.id == "" {
				t.Fatalf("parseTaken(%q) yielded a job without id", body)
			}
		}
	})
}
