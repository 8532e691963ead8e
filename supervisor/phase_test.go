package supervisor

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ line, want string }{
		{"INFO 11-24 weight_utils.py:1 Downloading model.safetensors", PhaseDownloading},
		{"Fetching 4 files: 100%|██████████| 4/4", PhaseDownloading},
		{"INFO default_loader.py:1 Loading weights took 14.25 seconds", PhaseLoadingWeights},
		{"Loading safetensors checkpoint shards:  50% Completed | 2/4", PhaseLoadingWeights},
		{"INFO gpu_model_runner.py:1 Model loading took 14.99 GiB and 15.2 seconds", PhaseLoadingWeights},
		{"INFO backends.py:1 Dynamo bytecode transform time: 5.81 s", PhaseCompiling},
		{"INFO monitor.py:1 torch.compile takes 10.2 s in total", PhaseCompiling},
		{"Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%|██| 67/67", PhaseCompiling},
		{"INFO gpu_model_runner.py:1 Graph capturing finished in 5 secs", PhaseCompiling},
		{"INFO api_server.py:1 vLLM API server version 0.11.0", ""},
		{"INFO utils.py:1 non-default args: {'download_dir': '/x', 'compilation_config': {'cudagraph_capture_sizes': [1]}}", ""},
		{"INFO core.py:1 Initializing a V1 LLM engine with config: model='m', download_dir=None, load_format=auto", ""},
		{"INFO:     Application startup complete.", ""},
	} {
		if got := classify(tc.line); got != tc.want {
			t.Errorf("classify(%q) = %q; want %q", tc.line, got, tc.want)
		}
	}
}

func TestPhaseOnlyMovesForward(t *testing.T) {
	t.Parallel()
	start := time.Now()
	pt := newPhaseTracker(start, zerolog.Nop())
	for _, step := range []struct{ line, want string }{
		{"hello", PhaseStarting},
		{"Loading weights took 1 s", PhaseLoadingWeights},
		{"Downloading tokenizer.json", PhaseLoadingWeights},
		{"Capturing CUDA graphs", PhaseCompiling},
	} {
		pt.Observe(step.line)
		if got, _ := pt.Get(); got != step.want {
			t.Errorf("after %q: phase %q; want %q", step.line, got, step.want)
		}
	}
	pt.SetReady()
	pt.Observe("Loading weights took 1 s")
	if got, since := pt.Get(); got != PhaseReady || since.Before(start) {
		t.Errorf("after SetReady: %q since %v; want %q", got, since, PhaseReady)
	}
}
