package check

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Kind says what a Target is.
type Kind string

// The kinds of target.
const (
	// KindWorker is a vllm-worker reached directly (http://HOST:PORT, or a
	// worker's /v2/<ID> prefix).
	KindWorker Kind = "worker"
	// KindRunPod is a RunPod serverless endpoint (https://api.runpod.ai/v2/<ID>):
	// RunPod's API in front of workers in handler mode.
	KindRunPod Kind = "runpod"
	// KindEngine is an OpenAI-compatible server (vLLM) reached directly.
	KindEngine Kind = "engine"
)

// Target is where the checks go. Every URL it gives ends without a slash.
type Target struct {
	Kind Kind
	// Base is the URL the routes hang from: the worker's root or /v2/<ID>
	// prefix, RunPod's https://api.runpod.ai/v2/<ID>, or the engine's root.
	Base string
}

// OpenAIBase is the base URL of the OpenAI API: Base/openai/v1 for a worker or
// a RunPod endpoint (a worker serves both /v1 and /openai/v1; RunPod only the
// latter), Base/v1 for an engine.
func (t Target) OpenAIBase() string {
	if t.Kind == KindEngine {
		return t.Base + "/v1"
	}
	return t.Base + "/openai/v1"
}

// URL is Base followed by path (which starts with a slash).
func (t Target) URL(path string) string { return t.Base + path }

// ParseWorker reads the URL of a worker or a RunPod endpoint. A trailing
// /openai/v1 or /v1 (an OpenAI base URL pasted by habit) is dropped. A RunPod
// URL must name its endpoint: https://api.runpod.ai/v2/<ID>.
func ParseWorker(raw string) (Target, error) {
	u, err := parseHTTP(raw)
	if err != nil {
		return Target{}, err
	}
	path := strings.TrimSuffix(u.Path, "/")
	for _, suffix := range []string{"/openai/v1", "/v1"} {
		path = strings.TrimSuffix(path, suffix)
	}
	t := Target{Kind: KindWorker}
	if isRunPodHost(u.Hostname()) {
		t.Kind = KindRunPod
		parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
		if len(parts) != 2 || parts[0] != "v2" || parts[1] == "" {
			return Target{}, fmt.Errorf("%q: a RunPod endpoint URL is https://%s/v2/<endpoint id>", raw, u.Host)
		}
	}
	u.Path, u.RawPath = path, ""
	t.Base = u.String()
	return t, nil
}

// ParseEngine reads the root URL of an OpenAI-compatible server; a trailing
// /v1 is dropped.
func ParseEngine(raw string) (Target, error) {
	u, err := parseHTTP(raw)
	if err != nil {
		return Target{}, err
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1")
	u.RawPath = ""
	return Target{Kind: KindEngine, Base: u.String()}, nil
}

// parseHTTP parses an absolute http or https URL with a host and nothing after
// its path.
func parseHTTP(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("no URL")
	}
	if !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("%q: the URL must start with http:// or https://", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: the URL must start with http:// or https://", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%q: the URL has no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: give the API key with --api-key, not in the URL", redactUser(u))
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("%q: the URL must not have a query or a fragment", raw)
	}
	return u, nil
}

func redactUser(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// isRunPodHost reports whether host is RunPod's endpoint API.
func isRunPodHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "api.runpod.ai"
}
