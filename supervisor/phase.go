package supervisor

import (
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Start-up phases reported by Engine.Phase, in the order they normally happen.
const (
	PhaseStarting       = "starting"
	PhaseDownloading    = "downloading"
	PhaseLoadingWeights = "loading_weights"
	PhaseCompiling      = "compiling" // torch.compile, CUDA graph capture
	PhaseReady          = "ready"     // /health answered 200; never read from the log
)

// phaseRank orders the phases; the tracker only moves forward, so a late stray keyword (a
// "Downloading" of a tokenizer file after the weights loaded) does not move it back.
func phaseRank(p string) int {
	switch p {
	case PhaseDownloading:
		return 1
	case PhaseLoadingWeights:
		return 2
	case PhaseCompiling:
		return 3
	case PhaseReady:
		return 4
	}
	return 0
}

// classify guesses the phase a line of vLLM's output belongs to, or "" if it says nothing.
// Keywords, not exact messages: vLLM rewords its logs between releases.
func classify(line string) string {
	l := strings.ToLower(line)
	// The config dump ("non-default args: {...}", "with config: ...") names every feature.
	if strings.Contains(l, "args:") || strings.Contains(l, "config:") {
		return ""
	}
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(l, w) {
				return true
			}
		}
		return false
	}
	switch {
	case has("torch.compile", "cuda graph", "cudagraph capture", "graph capturing", "capturing graph",
		"compiling a graph", "dynamo bytecode transform", "compiling model"):
		return PhaseCompiling
	case has("loading weights", "loading model weights", "load weights", "loading safetensors",
		"loading pt checkpoint", "checkpoint shards", "model loading took", "starting to load model"):
		return PhaseLoadingWeights
	case has("downloading", "fetching ", "download "):
		return PhaseDownloading
	}
	return ""
}

// phaseTracker follows the start-up phase; it is safe for concurrent use.
type phaseTracker struct {
	log   zerolog.Logger
	mu    sync.Mutex
	phase string
	since time.Time
}

func newPhaseTracker(now time.Time, log zerolog.Logger) *phaseTracker {
	return &phaseTracker{log: log, phase: PhaseStarting, since: now}
}

// Observe moves the phase forward if line announces a later one.
func (t *phaseTracker) Observe(line string) {
	if p := classify(line); p != "" {
		t.advance(p)
	}
}

// SetReady moves the phase to ready.
func (t *phaseTracker) SetReady() { t.advance(PhaseReady) }

func (t *phaseTracker) advance(p string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if phaseRank(p) <= phaseRank(t.phase) {
		return
	}
	now := time.Now()
	t.log.Info().Str("phase", p).Str("from", t.phase).Dur("after", now.Sub(t.since)).Msg("engine phase")
	t.phase, t.since = p, now
}

// Get returns the phase and when it began.
func (t *phaseTracker) Get() (string, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.phase, t.since
}

// watchStall warns, once per stall, when the engine has printed nothing for StallTimeout and
// is not ready: a download without progress or a hung NCCL/GPU init looks like this. It ends
// when the engine is ready or has exited.
func (e *Engine) watchStall() {
	limit := e.opts.StallTimeout
	tick := time.NewTicker(min(max(limit/4, 10*time.Millisecond), 5*time.Second))
	defer tick.Stop()
	var reported int64 // the lastOut value already reported
	for {
		select {
		case <-e.exited:
			return
		case <-e.ready:
			return
		case <-tick.C:
		}
		last := e.lastOut.Load()
		quiet := time.Since(time.Unix(0, last))
		if quiet < limit || last == reported {
			continue
		}
		reported = last
		phase, _ := e.Phase()
		e.log.Warn().Int("pid", e.PID()).Str("phase", phase).Dur("quiet", quiet.Round(time.Second)).
			Msg("engine printed nothing for a while and is not ready; it may be stuck")
	}
}
