package relay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vllm-worker/vllm-worker/batching"
	"github.com/vllm-worker/vllm-worker/engine"
	"github.com/vllm-worker/vllm-worker/openai"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collect is a Flush that keeps every unit.
type collect struct {
	mu    sync.Mutex
	units []batching.Unit
	items int
	fail  error // returned by the next flush when set
}

func (c *collect) flush(units []batching.Unit) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.items++
	for _, u := range units {
		c.units = append(c.units, batching.Unit{Tag: u.Tag, Data: append([]byte(nil), u.Data...), Payload: append([]byte(nil), u.Payload...)})
	}
	return nil
}

func (c *collect) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, u := range c.units {
		b.Write(u.Data)
	}
	return b.String()
}

const (
	chunk   = "data: {\"choices\":[{\"text\":\"a\"}]}\n\n"
	done    = "data: [DONE]\n\n"
	errEvt  = "data: {\"error\":{\"message\":\"boom\",\"type\":\"InternalServerError\",\"param\":null,\"code\":500}}\n\n"
	flatEvt = "data: {\"object\":\"error\",\"message\":\"flat boom\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}\n\n"
	// flatEvt as the consumer gets it: in the nested envelope.
	nestedFlatEvt = "data: {\"error\":{\"message\":\"flat boom\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}}\n\n"
)

func body(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

func TestEnds(t *testing.T) {
	tests := []struct {
		name         string
		stream       string
		doneExpected bool
		want         End
		sawDone      bool
		status       int    // of the *engine.Error, when the end has one
		message      string // a part of its message
		relayed      string // what reached the consumer
	}{
		{"done", chunk + chunk + done, true, Done, true, 0, "", chunk + chunk + done},
		{"no [DONE] where none is due", "event: response.created\ndata: {}\n\n", false, Done, false, 0, "", "event: response.created\ndata: {}\n\n"},
		{"error event then [DONE]", chunk + errEvt + done, true, EngineError, true, 500, "boom", chunk + errEvt + done},
		{"error event then the end", chunk + errEvt, true, EngineError, false, 500, "boom", chunk + errEvt},
		{"flat error event", chunk + flatEvt + done, true, EngineError, true, 400, "flat boom", chunk + nestedFlatEvt + done},
		{"named error event", "event: error\ndata: {\"type\":\"error\",\"message\":\"named boom\"}\n\n", false, EngineError, false, 500, "named boom", "event: error\ndata: {\"type\":\"error\",\"message\":\"named boom\"}\n\n"},
		{"cut between events", chunk + chunk, true, Cut, false, http.StatusBadGateway, "ended unexpectedly", chunk + chunk},
		{"cut inside an event", chunk + "data: {\"cho", true, Cut, false, http.StatusBadGateway, "ended unexpectedly", chunk},
		{"cut of a stream with no [DONE]", "event: x\ndata: {", false, Cut, false, http.StatusBadGateway, "ended unexpectedly", ""},
		{"text mentioning error is no error", "data: {\"choices\":[{\"text\":\"\\\"error\\\": none\"}]}\n\n" + done, true, Done, true, 0, "", "data: {\"choices\":[{\"text\":\"\\\"error\\\": none\"}]}\n\n" + done},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c collect
			res := Run(context.Background(), body(tt.stream), Options{Policy: batching.Policy{Max: 2, Min: 1, Growth: 2}, DoneExpected: tt.doneExpected, Flush: c.flush})
			if res.End != tt.want || res.SawDone != tt.sawDone {
				t.Errorf("end %v (done %v), err %v; want %v (done %v)", res.End, res.SawDone, res.Err, tt.want, tt.sawDone)
			}
			if tt.status != 0 {
				var ee *engine.Error
				if !errors.As(res.Err, &ee) || ee.Status != tt.status || !strings.Contains(ee.Message, tt.message) {
					t.Errorf("err %v; want an engine error %d naming %q", res.Err, tt.status, tt.message)
				}
			} else if res.Err != nil {
				t.Errorf("err %v; want nil", res.Err)
			}
			if got := c.text(); got != tt.relayed {
				t.Errorf("relayed %q; want %q", got, tt.relayed)
			}
		})
	}
}

// Default units carry their event's data as the payload, and tags say which
// are errors and [DONE], so a consumer parses nothing again.
func TestUnitsCarryTheirData(t *testing.T) {
	var c collect
	Run(context.Background(), body(chunk+errEvt+done), Options{Policy: batching.Policy{Max: 50, Min: 50}, DoneExpected: true, Flush: c.flush})
	if len(c.units) != 3 {
		t.Fatalf("%d units; want 3", len(c.units))
	}
	want := []struct {
		tag     int
		payload string
	}{{TagEvent, `{"choices":[{"text":"a"}]}`}, {TagError, strings.TrimSuffix(strings.TrimPrefix(errEvt, "data: "), "\n\n")}, {TagDone, "[DONE]"}}
	for i, w := range want {
		if c.units[i].Tag != w.tag || string(c.units[i].Payload) != w.payload {
			t.Errorf("unit %d: tag %d payload %q; want %d %q", i, c.units[i].Tag, c.units[i].Payload, w.tag, w.payload)
		}
	}
}

func TestUnitsBuilder(t *testing.T) {
	var c collect
	var seen []string
	units := func(ev openai.Event, add AddFunc) error {
		seen = append(seen, string(ev.Data))
		if string(ev.Data) == "bad" {
			return errors.New("not JSON")
		}
		return add(7, []byte("tok"), nil)
	}
	res := Run(context.Background(), body(chunk+errEvt+"data: bad\n\n"+done), Options{Policy: batching.Policy{Max: 1}, DoneExpected: true, Units: units, Flush: c.flush})
	if res.End != Malformed {
		t.Fatalf("end %v (%v); want malformed", res.End, res.Err)
	}
	if len(seen) != 2 || seen[1] != "bad" {
		t.Errorf("the builder saw %q; want the chunk and the bad event, never the error event or [DONE]", seen)
	}
	if len(c.units) != 1 || c.units[0].Tag != 7 {
		t.Errorf("units %+v; want the one token", c.units)
	}
	// An error of the consumer passed back through Gone ends the stream as
	// ConsumerGone, not Malformed.
	gone := errors.New("job stopped")
	res = Run(context.Background(), body(chunk+chunk+done), Options{Policy: batching.Policy{Max: 1}, DoneExpected: true,
		Units: func(ev openai.Event, add AddFunc) error { return Gone(gone) }, Flush: c.flush})
	if res.End != ConsumerGone || !errors.Is(res.Err, gone) {
		t.Errorf("end %v (%v); want consumer gone", res.End, res.Err)
	}
}

func TestConsumerGone(t *testing.T) {
	gone := errors.New("client gone")
	c := collect{fail: gone}
	res := Run(context.Background(), body(chunk+chunk+chunk+done), Options{Policy: batching.Policy{Max: 1}, DoneExpected: true, Flush: c.flush})
	if res.End != ConsumerGone || !errors.Is(res.Err, gone) || res.Events != 1 {
		t.Errorf("end %v (%v) after %d events; want consumer gone after the first", res.End, res.Err, res.Events)
	}
}

// slowBody sends its events, then nothing until it is closed.
type slowBody struct {
	r      io.Reader
	closed chan struct{}
	once   sync.Once
}

func newSlowBody(s string) *slowBody {
	return &slowBody{r: strings.NewReader(s), closed: make(chan struct{})}
}

func (b *slowBody) Read(p []byte) (int, error) {
	if n, _ := b.r.Read(p); n > 0 {
		return n, nil
	}
	<-b.closed
	return 0, errors.New("read on closed body")
}

func (b *slowBody) Close() error { b.once.Do(func() { close(b.closed) }); return nil }

func TestIdle(t *testing.T) {
	var c collect
	b := newSlowBody(chunk)
	start := time.Now()
	res := Run(context.Background(), b, Options{Policy: batching.Policy{Max: 1}, DoneExpected: true, IdleTimeout: 50 * time.Millisecond, Flush: c.flush})
	var ee *engine.Error
	if res.End != Idle || !errors.As(res.Err, &ee) || ee.Status != http.StatusGatewayTimeout {
		t.Errorf("end %v (%v); want idle with a 504", res.End, res.Err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v; want about 50ms", d)
	}
	if c.text() != chunk {
		t.Errorf("relayed %q; want the first event", c.text())
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b := newSlowBody(chunk)
	var c collect
	go func() {
		for c.text() == "" {
			time.Sleep(time.Millisecond) // waiting for the first flush, then cancelling: not synchronising a result
		}
		cancel()
		b.Close() // as the engine client does when its request's context ends
	}()
	res := Run(ctx, b, Options{Policy: batching.Policy{Max: 1}, DoneExpected: true, Flush: c.flush})
	if res.End != Cancelled || !errors.Is(res.Err, context.Canceled) {
		t.Errorf("end %v (%v); want cancelled", res.End, res.Err)
	}
}

func TestTooLarge(t *testing.T) {
	huge := "data: " + strings.Repeat("x", openai.DefaultMaxEventBytes+10) + "\n\n"
	var c collect
	res := Run(context.Background(), body(chunk+huge+done), Options{Policy: batching.Policy{Max: 1}, DoneExpected: true, Flush: c.flush})
	if res.End != TooLarge || c.text() != chunk {
		t.Errorf("end %v (%v), relayed %q; want too large after the first event", res.End, res.Err, c.text())
	}
}

func TestDoneExpected(t *testing.T) {
	for path, want := range map[string]bool{
		"/v1/chat/completions": true, "/v1/completions": true, "/v1/completions?x=1": true,
		"/v1/responses": false, "/v1/messages": false, "/tokenize": false, "/v1/chat/completions/render": false,
	} {
		if got := DoneExpected(path); got != want {
			t.Errorf("DoneExpected(%q) = %v; want %v", path, got, want)
		}
	}
}

// TestErrorEventsNested: the consumer gets an engine's error event in the
// nested envelope an OpenAI SDK recognises: vLLM's as sent, a flat one
// rewritten with its message, status and type kept; a named event (the
// Responses API's) as sent.
func TestErrorEventsNested(t *testing.T) {
	tests := []struct{ name, stream, want string }{
		{"nested, as sent", chunk + errEvt + done, chunk + errEvt + done},
		{"flat, rewritten", chunk + flatEvt + done, chunk + nestedFlatEvt + done},
		{"named, as sent", "event: error\ndata: {\"type\":\"error\",\"message\":\"x\",\"code\":\"boom\"}\n\n",
			"event: error\ndata: {\"type\":\"error\",\"message\":\"x\",\"code\":\"boom\"}\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &collect{}
			res := Run(context.Background(), body(tt.stream), Options{Policy: batching.Policy{Max: 1, Min: 1, Growth: 1}, Flush: c.flush})
			if res.End != EngineError {
				t.Errorf("end %v (%v); want engine_error", res.End, res.Err)
			}
			if got := c.text(); got != tt.want {
				t.Errorf("relayed\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestRoleChunkRides: a chat stream's opening role chunk rides with the first
// token, so that token goes out at once in the first item, not after the time
// cap; a completions stream, with no role chunk, is as before.
func TestRoleChunkRides(t *testing.T) {
	const role = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
	const tok = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"finish_reason\":null}]}\n\n"
	pr, pw := io.Pipe()
	first := make(chan string, 1)
	var c collect
	ended := make(chan Result, 1)
	go func() {
		ended <- Run(context.Background(), pr, Options{
			Policy: batching.Policy{Max: 50, Min: 1, Growth: 3, MaxWait: time.Hour}, DoneExpected: true,
			Flush: func(units []batching.Unit) error {
				var b strings.Builder
				for _, u := range units {
					b.Write(u.Data)
				}
				select {
				case first <- b.String():
				default:
				}
				return c.flush(units)
			},
		})
	}()
	if _, err := io.WriteString(pw, role+tok); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-first:
		if got != role+tok {
			t.Errorf("first item %q; want the role chunk and the first token", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first token was held back (the time cap is an hour)")
	}
	_, _ = io.WriteString(pw, tok+done)
	pw.Close()
	if res := <-ended; res.End != Done {
		t.Errorf("end %v (%v)", res.End, res.Err)
	}
}
