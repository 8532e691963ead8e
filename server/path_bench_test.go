package server

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/metrics"
	"github.com/vllm-worker/vllm-worker/runpod/jobstore"
)

// The whole request path of an OpenAI request, for its allocations and CPU: the
// router, the middleware (request id, access log, recoverer, guard, the key),
// the limiter, the metrics, the engine client over loopback TCP, and the relay,
// in front of a canned engine whose answers are prebuilt bytes. The client side
// is a reused request and a discarding ResponseWriter, so that what is counted
// is the worker's (and the canned engine's fixed share: its net/http server).

// cannedChat is an 8-token chat completion as vLLM answers it.
var cannedChat = []byte(`{"id":"chatcmpl-b1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":" alpha beta gamma delta epsilon zeta eta theta","tool_calls":[]},"logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":{"prompt_tokens":5,"total_tokens":13,"completion_tokens":8},"prompt_logprobs":null}`)

// cannedStream is a 16-token chat stream with include_usage, as vLLM sends it.
var cannedStream = func() []byte {
	var b bytes.Buffer
	b.WriteString(`data: {"id":"chatcmpl-b2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	for i := range 16 {
		b.WriteString(`data: {"id":"chatcmpl-b2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" w` + strconv.Itoa(i) + `"},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	}
	b.WriteString(`data: {"id":"chatcmpl-b2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"length","stop_reason":null}]}` + "\n\n")
	b.WriteString(`data: {"id":"chatcmpl-b2","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"total_tokens":21,"completion_tokens":16}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}()

// cannedEngine serves the canned answers on loopback: a stream when the body
// asks for one, the chat completion otherwise; GET /v1/models for the model list.
func cannedEngine(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	models := []byte(`{"object":"list","data":[{"id":"m","object":"model"}]}`)
	chatLen, streamLen := strconv.Itoa(len(cannedChat)), strconv.Itoa(len(cannedStream))
	buf := make([]byte, 8<<10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.ReadFull(r.Body, buf)
		h := w.Header()
		switch {
		case r.Method == http.MethodGet:
			h["Content-Type"] = []string{"application/json"}
			_, _ = w.Write(models)
		case bytes.Contains(buf[:n], []byte(`"stream":true`)):
			h["Content-Type"] = []string{"text/event-stream; charset=utf-8"}
			h["Content-Length"] = []string{streamLen}
			_, _ = w.Write(cannedStream)
		default:
			h["Content-Type"] = []string{"application/json"}
			h["Content-Length"] = []string{chatLen}
			_, _ = w.Write(cannedChat)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// pathWorker is the worker's whole HTTP surface in front of the canned engine,
// with the production middleware and metrics and the default limits.
func pathWorker(tb testing.TB) http.Handler {
	tb.Helper()
	client := engine.New(engine.Options{BaseURL: cannedEngine(tb)})
	tb.Cleanup(client.CloseIdle)
	d := Deps{
		Engine: client, Models: engine.NewModels(client, []string{"m"}),
		Status: &fakeStatus{st: Status{State: StateReady}}, Log: zerolog.New(io.Discard).Level(zerolog.InfoLevel).With().Timestamp().Logger(), Metrics: metrics.New(),
		Batch:          batching.Policy{Max: 50, Min: 1, Growth: 3, MaxWait: 50 * time.Millisecond},
		MaxConcurrency: 100, MaxQueue: 1000, StreamIdleTimeout: 10 * time.Minute,
		RequestReadTimeout: 30 * time.Second, ClientWriteTimeout: 30 * time.Second,
	}
	d.Jobs = newStore(tb, jobstore.StoreOptions{Runner: &fakeRunner{}})
	return New(d)
}

// resetBody is a request body read again for every request.
type resetBody struct{ bytes.Reader }

func (*resetBody) Close() error { return nil }

// discard is a ResponseWriter that keeps nothing but the status.
type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(code int)        { d.status = code }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) Flush()                      {}

// The deadlines of a real connection, which the guard sets on every request.
func (d *discard) SetReadDeadline(time.Time) error  { return nil }
func (d *discard) SetWriteDeadline(time.Time) error { return nil }

// pathRequest makes the one request a benchmark sends again and again, and the
// function that sends it once.
func pathRequest(tb testing.TB, h http.Handler, body string) func() {
	tb.Helper()
	rb := &resetBody{}
	req, err := http.NewRequest(http.MethodPost, "http://worker/openai/v1/chat/completions", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	payload := []byte(body)
	w := &discard{h: http.Header{}}
	return func() {
		rb.Reset(payload)
		req.Body = rb
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			tb.Fatalf("status %d", w.status)
		}
	}
}

const (
	pathChatBody   = `{"model":"m","messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":8}`
	pathStreamBody = `{"model":"m","messages":[{"role":"user","content":"Why is the sky blue?"}],"max_tokens":16,"stream":true,"stream_options":{"include_usage":true}}`
)

// BenchmarkRequestPath measures one relayed request, non-streamed and streamed
// (18 events flushed by the default batch policy), end to end in the process.
func BenchmarkRequestPath(b *testing.B) {
	h := pathWorker(b)
	for _, bc := range []struct{ name, body string }{{"chat", pathChatBody}, {"stream", pathStreamBody}} {
		b.Run(bc.name, func(b *testing.B) {
			send := pathRequest(b, h, bc.body)
			send() // the first request dials the engine
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				send()
			}
		})
	}
}
