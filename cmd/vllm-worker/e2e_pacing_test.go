package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vllm-worker/vllm-worker/internal/fakerunpod"
)

// pacedJobs enqueues n streamed and n plain native jobs of tokens tokens each:
// streamed job i and plain job i have the same prompt, so the same text.
func pacedJobs(fake *fakerunpod.Server, n, tokens int) (streamed, plain []string) {
	for i := range n {
		for _, stream := range []bool{true, false} {
			id := fmt.Sprintf("plain-%d", i)
			if stream {
				id = fmt.Sprintf("streamed-%d", i)
				streamed = append(streamed, id)
			} else {
				plain = append(plain, id)
			}
			fake.Enqueue(id, json.RawMessage(fmt.Sprintf(
				`{"prompt":"tell story number %d","sampling_params":{"max_tokens":%d},"stream":%v}`, i, tokens, stream)))
		}
	}
	return streamed, plain
}

// decodeItems parses a job's native items.
func decodeItems(t *testing.T, id string, raw []json.RawMessage) []nativeItem {
	t.Helper()
	items := make([]nativeItem, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &items[i]); err != nil {
			t.Fatalf("%s: item %d: %v: %s", id, i, err, r)
		}
	}
	return items
}

// TestHandlerStreamPacedByRunPod: in handler mode against a RunPod whose POSTs
// take 80 ms, with the default batch settings, three streamed and three plain
// 400-token jobs at 5 ms a token run side by side. Each streamed job's items
// arrive in order, one POST at a time, and joined are the job's final output,
// with the same text as the plain job of the same prompt; and a streamed job
// ends within two POST latencies of a plain one (the items are paced by RunPod,
// so the stream never falls behind the generation). The figures go to
// `make bench`; this checks the behaviour, with slack for a loaded machine.
func TestHandlerStreamPacedByRunPod(t *testing.T) {
	const latency = 80 * time.Millisecond
	const tokens = 400
	fake := fakerunpod.New(t, fakerunpod.Options{LongPoll: 100 * time.Millisecond, PostLatency: latency})
	streamed, plain := pacedJobs(fake, 3, tokens)
	startWorker(t, append(fake.Env(), "SIM_ITL_MS=5")...)
	waitFake(t, 60*time.Second, "every result", func(ctx context.Context) error { return fake.WaitDone(ctx, len(streamed)+len(plain)) })

	took := func(ids []string) (mean time.Duration) {
		for _, id := range ids {
			tm := fake.Times(id)
			mean += tm.Done.Sub(tm.Taken) / time.Duration(len(ids))
		}
		return mean
	}
	for i, id := range streamed {
		d := fake.Dones(id)
		if len(d) != 1 || d[0].Error != "" {
			t.Fatalf("%s: results %+v; want one completed result", id, d)
		}
		posted := fake.Stream(id)
		if normalise(posted) != normalise(d[0].Output) {
			t.Errorf("%s: the stream items joined differ from the final output:\n%s\n%s", id, normalise(posted), normalise(d[0].Output))
		}
		if n := fake.MaxStreamPostsAtOnce(id); n != 1 {
			t.Errorf("%s: %d stream POSTs at once; want one after another", id, n)
		}
		items := decodeItems(t, id, posted)
		last := items[len(items)-1].Usage
		if last.Output != tokens {
			t.Errorf("%s: the last item's usage.output is %d; want %d", id, last.Output, tokens)
		}
		want := decodeItems(t, plain[i], fake.Dones(plain[i])[0].Output)
		if got := text(items, 0); got != text(want, 0) {
			t.Errorf("%s: streamed text differs from the plain job's of the same prompt:\n%q\n%q", id, got, text(want, 0))
		}
		t.Logf("%s: %d items for %d tokens", id, len(items), tokens)
	}
	ts, tp := took(streamed), took(plain)
	t.Logf("take to done at %v per POST: streamed %v, plain %v (x%.2f)", latency, ts, tp, float64(ts)/float64(tp))
	// Two POSTs of slack by design, and as much again for a loaded test machine.
	if limit := tp + 4*latency; ts > limit {
		t.Errorf("streamed jobs took %v take to done, plain ones %v: more than two POST latencies (%v) behind, with slack", ts, tp, 2*latency)
	}
}

// TestNativeUsageWithoutContinuousUsage: against an engine that ignores
// continuous_usage_stats (SIM_QUIRKS=no_continuous_usage, as llm-d's simulator
// and other OpenAI servers), native items never say a usage the engine's final
// one contradicts: no "input": 0 for a non-empty prompt (the count is left out
// until the engine says it), output never above the final count, and the last
// item says exactly the engine's final usage, for a streamed job and a plain one.
func TestNativeUsageWithoutContinuousUsage(t *testing.T) {
	w := startWorker(t, "SIM_QUIRKS=no_continuous_usage", "BATCH_MAX_WAIT_MS=0")
	const prompt = "the five words of it"
	var final struct {
		Usage struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	postJSON(t, w.URL+"/v1/completions", `{"model":"test-model","prompt":"`+prompt+`","max_tokens":40}`, &final)
	if final.Usage.PromptTokens == 0 || final.Usage.CompletionTokens != 40 {
		t.Fatalf("the engine's own usage: %+v", final.Usage)
	}
	for _, stream := range []bool{true, false} {
		res := runSync(t, w, fmt.Sprintf(`{"prompt":%q,"sampling_params":{"max_tokens":40},"stream":%v}`, prompt, stream))
		if res.Status != "COMPLETED" || len(res.Output) == 0 {
			t.Fatalf("stream=%v: %s %s", stream, res.Status, res.Error)
		}
		for i, raw := range res.Output {
			var item struct {
				Usage map[string]int64 `json:"usage"`
			}
			if err := json.Unmarshal(raw, &item); err != nil {
				t.Fatal(err)
			}
			in, hasIn := item.Usage["input"]
			switch {
			case hasIn && in != final.Usage.PromptTokens:
				t.Errorf("stream=%v item %d: usage %v; the engine's prompt has %d tokens", stream, i, item.Usage, final.Usage.PromptTokens)
			case item.Usage["output"] > final.Usage.CompletionTokens:
				t.Errorf("stream=%v item %d: usage %v; the engine made %d tokens", stream, i, item.Usage, final.Usage.CompletionTokens)
			}
			if i == len(res.Output)-1 && (in != final.Usage.PromptTokens || item.Usage["output"] != final.Usage.CompletionTokens) {
				t.Errorf("stream=%v: the last item's usage %v; want the engine's final %+v", stream, item.Usage, final.Usage)
			}
		}
		if stream && len(res.Output) < 4 {
			t.Errorf("%d items; want the dynamic batches (1, 3, 9, 27)", len(res.Output))
		}
	}
}
