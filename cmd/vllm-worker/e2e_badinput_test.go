package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
)

// badRequest is one entry of testdata/bad_requests.jsonl.
type badRequest struct {
	Name   string `json:"name"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// Headers are sent as they are ({{KEY}} is the worker's API key). A body is
	// sent as application/json unless Headers say otherwise.
	Headers map[string]string `json:"headers"`
	// Auth is the Authorization header: absent means "Bearer <the right key>",
	// "" means none; {{KEY}} is the right key.
	Auth *string `json:"auth"`
	// Body is the request body; BodyBase64, when set, replaces it (for bytes that
	// are not UTF-8). Repeat > 0 replaces {{REPEAT}} in Body with RepeatUnit
	// (default "x") repeated Repeat times, to build oversized bodies.
	Body       *string `json:"body"`
	BodyBase64 string  `json:"body_base64"`
	Repeat     int     `json:"repeat"`
	RepeatUnit string  `json:"repeat_unit"`
	// Chunked sends the body without a Content-Length.
	Chunked bool `json:"chunked"`

	Status int `json:"status"`
	// JobStatus, for /run and /runsync, expects HTTP 200 and a job ending in this
	// status, with Message in its "error" (an invalid job input fails the job).
	JobStatus string `json:"job_status"`
	Param     string `json:"param"`   // the error's param, when it names one
	Message   string `json:"message"` // a substring of the error message (any case)
}

const corpusKey = "corpus-key-3f9c2a"

func loadBadRequests(t *testing.T) []badRequest {
	t.Helper()
	f, err := os.Open("testdata/bad_requests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []badRequest
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var br badRequest
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&br); err != nil {
			t.Fatalf("bad_requests.jsonl line %d: %v", n, err)
		}
		if br.Name == "" || br.Method == "" || br.Path == "" || br.Status == 0 || br.Message == "" || seen[br.Name] {
			t.Fatalf("bad_requests.jsonl line %d: every entry needs a unique name, a method, a path, a status and a message", n)
		}
		seen[br.Name] = true
		out = append(out, br)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// request builds the HTTP request of a corpus entry.
func (br badRequest) request(t *testing.T, base string) *http.Request {
	t.Helper()
	var body []byte
	switch {
	case br.BodyBase64 != "":
		b, err := base64.StdEncoding.DecodeString(br.BodyBase64)
		if err != nil {
			t.Fatalf("body_base64: %v", err)
		}
		body = b
	case br.Body != nil:
		s := *br.Body
		if br.Repeat > 0 {
			unit := br.RepeatUnit
			if unit == "" {
				unit = "x"
			}
			s = strings.Replace(s, "{{REPEAT}}", strings.Repeat(unit, br.Repeat), 1)
		}
		body = []byte(s)
	}
	var rd io.Reader = bytes.NewReader(body)
	if br.Chunked {
		rd = io.MultiReader(rd) // no length: sent chunked
	}
	if body == nil {
		rd = nil
	}
	req, err := http.NewRequest(br.Method, base+br.Path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range br.Headers {
		req.Header.Set(k, strings.ReplaceAll(v, "{{KEY}}", corpusKey))
	}
	switch {
	case br.Auth == nil:
		req.Header.Set("Authorization", "Bearer "+corpusKey)
	case *br.Auth != "":
		req.Header.Set("Authorization", strings.ReplaceAll(*br.Auth, "{{KEY}}", corpusKey))
	}
	return req
}

// TestBadRequestCorpus runs every request of testdata/bad_requests.jsonl against
// one worker process (API_KEY set, MAX_REQUEST_BYTES=16 MiB, no race detector):
// each gets its status and the OpenAI error envelope
// {"error":{"message","type","param","code"}} with a message naming the problem
// (or, for an invalid job input, a FAILED job whose error names the field).
// Afterwards the worker still serves normal requests, in under 100 MB of RSS:
// no request of the corpus (10,000,000 open brackets, 17 MB bodies, ...) took it
// down or made it keep what it read.
func TestBadRequestCorpus(t *testing.T) {
	corpus := loadBadRequests(t)
	if len(corpus) < 60 {
		t.Fatalf("the corpus has %d requests; want at least 60", len(corpus))
	}
	proc, url := startPlainProcess(t, baseEnv("API_KEY="+corpusKey, "MAX_REQUEST_BYTES=16777216"))
	w := &testWorker{URL: url, Log: proc.Log}
	c := &http.Client{Timeout: 30 * time.Second}

	for _, br := range corpus {
		t.Run(br.Name, func(t *testing.T) {
			resp, err := c.Do(br.request(t, w.URL))
			if err != nil {
				t.Fatal(err)
			}
			raw := readAll(t, resp)
			if resp.StatusCode != br.Status {
				t.Fatalf("%s %s: status %d; want %d: %.300s", br.Method, br.Path, resp.StatusCode, br.Status, raw)
			}
			if br.JobStatus != "" {
				checkFailedJob(t, c, w.URL, br, raw)
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q; want application/json", ct)
			}
			e := checkEnvelope(t, raw, br.Status)
			if !strings.Contains(strings.ToLower(e.Message), strings.ToLower(br.Message)) {
				t.Errorf("message %q does not name the problem (want %q in it)", e.Message, br.Message)
			}
			if br.Param != "" && (e.Param == nil || *e.Param != br.Param) {
				t.Errorf("param %v; want %q", e.Param, br.Param)
			}
		})
	}

	t.Run("still serving", func(t *testing.T) {
		cfg := goopenai.DefaultConfig(corpusKey)
		cfg.BaseURL = w.URL + "/v1"
		chat, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{
			Model: testModel, Messages: chatMessages, MaxCompletionTokens: 4})
		if err != nil || len(chat.Choices) != 1 || chat.Choices[0].Message.Content == "" {
			t.Errorf("chat after the corpus: %+v %v", chat, err)
		}
		_, raw := post(t, c, w.URL+"/runsync", `{"input":{"prompt":"still here"}}`, "Authorization", "Bearer "+corpusKey)
		var res jobResult
		if err := json.Unmarshal(raw, &res); err != nil || res.Status != "COMPLETED" {
			t.Errorf("job after the corpus: %s", raw)
		}
		resp, err := http.Get(w.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/health %d after the corpus", resp.StatusCode)
		}
		if mb := rssMB(t, proc.cmd.Process.Pid); mb >= 100 {
			t.Errorf("the worker holds %.0f MB of RSS after the corpus; want under 100", mb)
		} else {
			t.Logf("worker RSS after the corpus: %.1f MB", mb)
		}
	})
}

// checkFailedJob checks a job answer: /runsync's directly, /run's by waiting on
// /status-sync.
func checkFailedJob(t *testing.T, c *http.Client, base string, br badRequest, raw []byte) {
	t.Helper()
	var res jobResult
	if err := json.Unmarshal(raw, &res); err != nil || res.ID == "" {
		t.Fatalf("not a job answer: %.300s", raw)
	}
	if strings.HasSuffix(br.Path, "/run") {
		req, _ := http.NewRequest(http.MethodGet, base+"/status-sync/"+res.ID+"?wait=10000", nil)
		req.Header.Set("Authorization", "Bearer "+corpusKey)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw = readAll(t, resp)
		res = jobResult{}
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatalf("status-sync: %.300s", raw)
		}
	}
	if res.Status != br.JobStatus {
		t.Fatalf("job %s; want %s: %.300s", res.Status, br.JobStatus, raw)
	}
	if !strings.Contains(res.Error, br.Message) {
		t.Errorf("job error %q does not name %q", res.Error, br.Message)
	}
	if len(res.Output) != 0 {
		t.Errorf("a failed job has output: %.300s", raw)
	}
}
