package fakerunpod

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// call makes one request as the worker would and returns status and body.
func call(t *testing.T, s *Server, method, tmpl, job, body string) (int, string) {
	t.Helper()
	u := strings.ReplaceAll(strings.ReplaceAll(tmpl, "$RUNPOD_POD_ID", s.Options().WorkerID), "$ID", job)
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", s.Options().APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	s := New(t, Options{LongPoll: 20 * time.Millisecond})
	if env := s.Env(); len(env) != 7 || !strings.Contains(env[0], "/job-take/$RUNPOD_POD_ID?gpu=test") {
		t.Errorf("Env = %q", env)
	}
	for i, id := range []string{"a", "b", "c"} {
		s.Enqueue(id, json.RawMessage(`{"n":`+string(rune('0'+i))+`}`))
	}
	batch := strings.Replace(s.TakeURL(), "/job-take/", "/job-take-batch/", 1)
	if code, body := call(t, s, "GET", batch+"&batch_size=2&job_in_progress=0", "", ""); code != 200 || body != `[{"id":"a","input":{"n":0}},{"id":"b","input":{"n":1}}]` {
		t.Errorf("batch take = %d %s", code, body)
	}
	if code, body := call(t, s, "GET", s.TakeURL()+"&job_in_progress=1", "", ""); code != 200 || body != `{"id":"c","input":{"n":2}}` {
		t.Errorf("take = %d %s", code, body)
	}
	if code, _ := call(t, s, "GET", s.TakeURL(), "", ""); code != http.StatusNoContent {
		t.Errorf("empty take = %d; want 204", code)
	}
	s.FailTakes(http.StatusTooManyRequests, 1)
	if code, _ := call(t, s, "GET", s.TakeURL(), "", ""); code != http.StatusTooManyRequests {
		t.Errorf("failed take = %d; want 429", code)
	}
	if s.InFlight() != 3 || s.MaxInFlight() != 3 {
		t.Errorf("in flight %d (max %d); want 3", s.InFlight(), s.MaxInFlight())
	}

	s.SetFaults(Faults{StreamFail: 1})
	if code, _ := call(t, s, "POST", s.StreamURL(), "a", `{"output":1}`); code != 500 {
		t.Errorf("faulted stream POST = %d; want 500", code)
	}
	if code, _ := call(t, s, "POST", s.StreamURL(), "a", `{"output":1}`); code != 200 {
		t.Errorf("stream POST retried = %d; want 200 (a fault hits once)", code)
	}
	if code, _ := call(t, s, "POST", s.DoneURL()+"&isStream=true", "a", `{"output":[1]}`); code != 200 {
		t.Errorf("done POST = %d", code)
	}
	if got := s.Stream("a"); len(got) != 1 || string(got[0]) != "1" {
		t.Errorf("Stream = %s", got)
	}
	if d := s.Dones("a"); len(d) != 1 || !d[0].IsStream || len(d[0].Output) != 1 {
		t.Errorf("Dones = %+v", d)
	}

	s.Stop("b")
	if code, body := call(t, s, "GET", strings.Replace(s.TakeURL(), "/job-take/", "/job-stop/", 1), "", ""); code != 200 || body != `{"jobsToStop":["b"]}` {
		t.Errorf("job-stop = %d %s", code, body)
	}
	if s.InFlight() != 1 {
		t.Errorf("in flight %d; want 1 (c)", s.InFlight())
	}
	call(t, s, "GET", s.PingURL()+"&job_id=c,d&runpod_version=v", "", "")
	if p := s.Pings(); len(p) != 1 || strings.Join(p[0].JobIDs, " ") != "c d" || p[0].Version != "v" {
		t.Errorf("Pings = %+v", p)
	}

	if code, _ := call(t, s, "GET", strings.Replace(s.TakeURL(), "$RUNPOD_POD_ID", "other", 1), "", ""); code != 404 {
		t.Errorf("take by another worker = %d; want 404", code)
	}
	req, _ := http.NewRequest("GET", strings.ReplaceAll(s.PingURL(), "$RUNPOD_POD_ID", "worker-test"), nil)
	req.Header.Set("Authorization", "Bearer "+s.Options().APIKey)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("Bearer key: %v %v; want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	if s.Unauthorized() != 1 {
		t.Errorf("Unauthorized = %d; want 1", s.Unauthorized())
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.WaitDone(ctx, 1); err != nil {
		t.Error(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.WaitDone(ctx, 2); err == nil {
		t.Error("WaitDone(2) = nil with one job done")
	}
}

// TestServerNoLongPoll: with a negative LongPoll, take and job-stop answer 204 at
// once when there is no work.
func TestServerNoLongPoll(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	s := New(t, Options{LongPoll: -1})
	stop := strings.Replace(s.TakeURL(), "/job-take/", "/job-stop/", 1)
	for _, u := range []string{s.TakeURL(), stop} {
		start := time.Now()
		if code, _ := call(t, s, "GET", u, "", ""); code != http.StatusNoContent {
			t.Errorf("%s = %d; want 204", u, code)
		}
		if d := time.Since(start); d > 150*time.Millisecond {
			t.Errorf("%s answered after %v; want at once", u, d)
		}
	}
	s.Enqueue("a", json.RawMessage(`{}`))
	if code, body := call(t, s, "GET", s.TakeURL(), "", ""); code != 200 || body != `{"id":"a","input":{}}` {
		t.Errorf("take = %d %s", code, body)
	}
}
