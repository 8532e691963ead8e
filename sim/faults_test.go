package sim

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

const faultChat = `{"messages":[{"role":"user","content":"x"}],"max_tokens":10,`

func TestFaultsBeforeFirstByte(t *testing.T) {
	s, ts := newTest(t, Options{})
	for _, tt := range []struct{ fault, msg string }{
		{"error_before", "simulated engine error"},
		{"cuda_error", "CUDA error: an illegal memory access was encountered"},
	} {
		for _, stream := range []string{"true", "false"} {
			resp, b := postRead(t, ts.URL+"/v1/chat/completions", faultChat+`"stream":`+stream+`,"sim_fault":"`+tt.fault+`"}`)
			wantError(t, resp, b, 500, "InternalServerError", "")
			if msg := gjson.GetBytes(b, "error.message").Str; !strings.Contains(msg, tt.msg) {
				t.Errorf("%s: message %q", tt.fault, msg)
			}
		}
	}
	if st := s.Stats(); st.Faults != 4 || st.Running != 0 {
		t.Errorf("stats = %+v; want 4 faults", st)
	}
}

func TestFaultErrorMidStream(t *testing.T) {
	_, ts := newTest(t, Options{})
	for _, tt := range []struct {
		after string
		want  int
	}{{"", 2}, {`,"sim_fault_after":3`, 3}, {`,"sim_fault_after":0`, 0}, {`,"sim_fault_after":50`, 10}} {
		_, raw := postRead(t, ts.URL+"/v1/chat/completions", faultChat+`"stream":true,"sim_fault":"error_mid_stream"`+tt.after+`}`)
		evs := events(t, raw)
		if n := len(evs); n < 3 || evs[n-1] != "[DONE]" {
			t.Fatalf("events %q; want ... error, [DONE]", evs)
		}
		e := gjson.Get(evs[len(evs)-2], "error")
		if e.Get("code").Int() != 500 || e.Get("type").Str != "InternalServerError" {
			t.Errorf("error event %s", evs[len(evs)-2])
		}
		if got := strings.Count(string(raw), `"content":"`) - 1; got != tt.want { // minus the role chunk
			t.Errorf("after %q: %d content chunks before the error; want %d", tt.after, got, tt.want)
		}
	}
	resp, b := postRead(t, ts.URL+"/v1/completions", `{"prompt":"x","sim_fault":"error_mid_stream"}`)
	wantError(t, resp, b, 500, "InternalServerError", "")
}

// error_no_done: the error event, then a clean end of the stream with no [DONE],
// as servers other than vLLM end an error.
func TestFaultErrorNoDone(t *testing.T) {
	_, ts := newTest(t, Options{})
	resp := post(t, context.Background(), ts.URL+"/v1/chat/completions", faultChat+`"stream":true,"sim_fault":"error_no_done"}`)
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read: %v; want a clean end", err)
	}
	evs := events(t, raw)
	if n := len(evs); n < 2 || evs[n-1] == "[DONE]" || !gjson.Get(evs[n-1], "error.message").Exists() {
		t.Errorf("events %q; want ... then the error event last, no [DONE]", evs)
	}
}

func TestFaultCutMidStream(t *testing.T) {
	s, ts := newTest(t, Options{})
	resp := post(t, context.Background(), ts.URL+"/v1/completions", `{"prompt":"x","stream":true,"max_tokens":10,"sim_fault":"cut_mid_stream"}`)
	raw, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read err = %v; want unexpected EOF", err)
	}
	if strings.Contains(string(raw), "[DONE]") || strings.Count(string(raw), `"text":`) != 2 {
		t.Errorf("cut stream = %q; want 2 chunks, no [DONE]", raw)
	}
	// Non-stream: the connection closes with no response at all.
	_, err = ts.Client().Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x","sim_fault":"cut_mid_stream"}`))
	if err == nil {
		t.Error("non-stream cut_mid_stream answered; want a dropped connection")
	}
	eventually(t, "2 faults", func() bool { st := s.Stats(); return st.Faults == 2 && st.Running == 0 })
}

func TestFaultHang(t *testing.T) {
	s, ts := newTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := post(t, ctx, ts.URL+"/v1/chat/completions", faultChat+`"stream":true,"n":2,"sim_fault":"hang"}`)
	r := bufio.NewReader(resp.Body)
	for i := range 2 {
		line, err := r.ReadString('\n')
		if err != nil || !strings.Contains(line, `"role":"assistant"`) {
			t.Fatalf("event %d = %q, %v; want a role chunk", i, line, err)
		}
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Running != 1 || st.Aborts != 0 {
		t.Errorf("stats while hanging = %+v", st)
	}
	cancel()
	eventually(t, "the hang to end as an abort", func() bool { st := s.Stats(); return st.Aborts == 1 && st.Running == 0 })
}

func TestFaultExit(t *testing.T) {
	var code atomic.Int64
	code.Store(-1)
	s, ts := newTest(t, Options{Exit: func(c int) { code.Store(int64(c)) }})
	_, err := ts.Client().Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(faultChat+`"stream":true,"sim_fault":"exit"}`))
	if err == nil {
		t.Error("exit fault answered; want a dropped connection")
	}
	if code.Load() != 1 {
		t.Errorf("Exit called with %d; want 1", code.Load())
	}
	eventually(t, "the fault to be counted", func() bool { return s.Stats().Faults == 1 })
}

func TestFaultSlowFirstByte(t *testing.T) {
	_, ts := newTest(t, Options{SlowFirstByte: 150 * time.Millisecond})
	start := time.Now()
	resp := post(t, context.Background(), ts.URL+"/v1/completions", `{"prompt":"x","stream":true,"sim_fault":"slow_first_byte"}`)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("headers after %v; want at least 150ms", d)
	}
	raw, _ := io.ReadAll(resp.Body)
	if evs := events(t, raw); evs[len(evs)-1] != "[DONE]" {
		t.Errorf("stream after the slow first byte did not finish: %q", tail(raw))
	}
}
