package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/openai"
)

const streamBody = `{"model":"m","prompt":"x","stream":true}`

// events is a stream the engine sends: chunks with a long line, a multi-line
// event, CRLF line ends and the [DONE] event.
var events = []string{
	"data: {\"id\":\"c1\",\"choices\":[{\"text\":\"a\"}]}\n\n",
	"data: {\"id\":\"c1\",\"choices\":[{\"text\":\"" + strings.Repeat("b", 100<<10) + "\"}]}\n\n",
	"event: delta\ndata: {\"x\":1}\ndata: {\"y\":2}\n\n",
	"data: {\"id\":\"c1\",\"choices\":[{\"text\":\"c\"}]}\r\n\r\n",
	"data: [DONE]\n\n",
}

// splitEvery cuts s into pieces of n bytes.
func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out, s = append(out, s[:n]), s[n:]
	}
	return append(out, s)
}

func TestRelayStreamWhole(t *testing.T) {
	whole := strings.Join(events, "")
	small := events[0] + events[2] + events[3] + events[4]
	tests := []struct {
		name   string
		stream string
		split  int // bytes per engine write
		policy batching.Policy
	}{
		{"one write", whole, len(whole), batching.Policy{Max: 50, Min: 1, Growth: 3}},
		{"byte by byte", small, 1, batching.Policy{Max: 2, Min: 1, Growth: 3}},
		{"odd splits", whole, 7, batching.Policy{Max: 1, Min: 1}},
		{"across events", whole, 1000, batching.Policy{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				sse(w, splitEvery(tt.stream, tt.split)...)
			}, func(d *Deps) { d.Batch = tt.policy })
			resp, body := h.do(t, http.MethodPost, "/v1/completions", streamBody)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				t.Errorf("got %d %q; want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if body != tt.stream {
				t.Errorf("got %d bytes %.80q...; want the %d bytes the engine sent", len(body), body, len(tt.stream))
			}
		})
	}
}

// TestRelayStreamFlush: the engine sends the next event only once the client
// has read the previous one, so an event held back by the relay deadlocks.
func TestRelayStreamFlush(t *testing.T) {
	tests := []struct {
		name   string
		policy batching.Policy
	}{
		{"every event", batching.Policy{Max: 1, Min: 1}},
		{"time cap", batching.Policy{Max: 50, Min: 1, Growth: 3, MaxWait: 5 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := make(chan struct{})
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for i := range 4 {
					sse(w, `data: {"i":`+string(rune('0'+i))+"}\n\n")
					select {
					case <-next:
					case <-r.Context().Done():
						return
					}
				}
				sse(w, "data: [DONE]\n\n")
			}, func(d *Deps) { d.Batch = tt.policy })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/v1/completions", strings.NewReader(streamBody))
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			er := openai.NewEventReader(resp.Body)
			for i := range 4 {
				ev, err := er.Next()
				if err != nil {
					t.Fatalf("event %d: %v (the relay held it back)", i, err)
				}
				if want := `{"i":` + string(rune('0'+i)) + "}"; string(ev.Data) != want {
					t.Errorf("event %d: got %s; want %s", i, ev.Data, want)
				}
				next <- struct{}{}
			}
			if ev, err := er.Next(); err != nil || !ev.Done() {
				t.Errorf("got %q, %v; want [DONE]", ev.Data, err)
			}
		})
	}
}

func TestRelayStreamCut(t *testing.T) {
	first := "data: {\"id\":\"c1\"}\n\n"
	tests := []struct {
		name   string
		engine http.HandlerFunc
		idle   time.Duration // StreamIdleTimeout
		code   int           // of the in-band error
	}{
		{"clean end without [DONE]", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			sse(w, first)
		}, 0, http.StatusBadGateway},
		{"connection closed mid-event", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			sse(w, first, "data: {\"id\":\"c1\",\"cho")
			panic(http.ErrAbortHandler) // the engine process died
		}, 0, http.StatusBadGateway},
		{"engine goes silent", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			sse(w, first)
			<-r.Context().Done()
		}, 50 * time.Millisecond, http.StatusGatewayTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.engine, func(d *Deps) {
				d.Batch, d.StreamIdleTimeout = batching.Policy{Max: 1, Min: 1}, tt.idle
			})
			resp, body := h.do(t, http.MethodPost, "/v1/completions", streamBody)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("got status %d; want 200 (the stream had started)", resp.StatusCode)
			}
			rest, ok := strings.CutPrefix(body, first)
			if !ok {
				t.Fatalf("got %q; want it to start with the engine's event", body)
			}
			errEvent, ok := strings.CutSuffix(rest, "data: [DONE]\n\n")
			var e envelope
			if !ok || !strings.HasPrefix(errEvent, "data: ") || strings.Count(errEvent, "\n\n") != 1 ||
				json.Unmarshal([]byte(strings.TrimPrefix(errEvent, "data: ")), &e) != nil || e.Error.Code != tt.code {
				t.Errorf("got %q after the event; want one data: {\"error\":...} event with code %d, then [DONE]", rest, tt.code)
			}
		})
	}
}

func TestRelayClientLeaves(t *testing.T) {
	engineSawCancel := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		sse(w, "data: {\"i\":0}\n\n")
		select {
		case <-r.Context().Done():
			close(engineSawCancel)
		case <-time.After(10 * time.Second):
		}
	}, func(d *Deps) { d.Batch = batching.Policy{Max: 1, Min: 1} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/v1/completions", strings.NewReader(streamBody))
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "data: {\"i\":0}\n" {
		t.Fatalf("got %q, %v; want the first event", line, err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-engineSawCancel:
	case <-time.After(5 * time.Second):
		t.Fatalf("the engine request was not cancelled when the client left")
	}
}

func TestRelayEngineErrors(t *testing.T) {
	nested := `{"error":{"message":"temperature must be >= 0","type":"BadRequestError","param":"temperature","code":400}}`
	tests := []struct {
		name, body string
		status     int
		message    string
		typ        string
	}{
		{"vllm nested", nested, 400, "temperature must be >= 0", "BadRequestError"},
		{"vllm classic flat", `{"object":"error","message":"bad n","type":"BadRequestError","param":null,"code":400}`, 400, "bad n", "BadRequestError"},
		{"fastapi detail", `{"detail":"Not Found"}`, 404, "Not Found", "NotFoundError"},
		{"fastapi validation", `{"detail":[{"loc":["body","prompt"],"msg":"Field required"}]}`, 422, "Field required", "BadRequestError"},
		{"plain text", "Internal Server Error", 500, "Internal Server Error", "InternalServerError"},
		{"empty", "", 503, "Service Unavailable", "ServiceUnavailableError"},
	}
	for _, tt := range tests {
		for mode, body := range map[string]string{"stream": streamBody, "whole": `{"model":"m","prompt":"x"}`} {
			t.Run(tt.name+" "+mode, func(t *testing.T) {
				h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tt.status)
					_, _ = io.WriteString(w, tt.body)
				}, nil)
				resp, got := h.do(t, http.MethodPost, "/v1/completions", body)
				e := checkError(t, resp, got, tt.status)
				if !strings.Contains(e.Error.Message, tt.message) || e.Error.Type != tt.typ {
					t.Errorf("got %s; want message %q and type %s", got, tt.message, tt.typ)
				}
				if tt.name == "vllm nested" && got != nested {
					t.Errorf("got %s; want vLLM's body unchanged", got)
				}
			})
		}
	}
}

func TestEngineFailures(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		h := newHarness(t, nil, nil)
		h.engine.Close() // nothing listens there any more
		resp, body := h.do(t, http.MethodPost, "/v1/completions", `{"model":"m","prompt":"x"}`)
		if e := checkError(t, resp, body, http.StatusBadGateway); strings.Contains(e.Error.Message, "127.0.0.1") {
			t.Errorf("got %q; want no internals in the message", e.Error.Message)
		}
	})
	t.Run("closes the connection", func(t *testing.T) {
		h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }, nil)
		resp, body := h.do(t, http.MethodPost, "/v1/completions", `{"model":"m","prompt":"x"}`)
		checkError(t, resp, body, http.StatusBadGateway)
	})
	t.Run("slow to answer", func(t *testing.T) {
		h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, func(d *Deps) {
			d.Engine = engine.New(engine.Options{BaseURL: d.Engine.BaseURL(), FirstByteTimeout: 50 * time.Millisecond})
			t.Cleanup(d.Engine.CloseIdle)
		})
		resp, body := h.do(t, http.MethodPost, "/v1/completions", `{"model":"m","prompt":"x"}`)
		checkError(t, resp, body, http.StatusGatewayTimeout)
	})
}
