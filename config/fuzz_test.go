package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// FuzzLoad feeds outside input (one variable's value, and VLLM_EXTRA_ARGS) to Load: it must
// never panic, an error must be an *Error of one-line problems, and the secret never leaks.
func FuzzLoad(f *testing.F) {
	for _, seed := range [][3]string{
		{"MAX_CONCURRENCY", "abc", ""},
		{"ENFORCE_EAGER", "maybe", `--x "y z"`},
		{"MAX_MODEL_LENGTH", "25.6k", "'"},
		{"LORA_MODULES", `[{"name":"a"}]`, `a\`},
		{"DEFAULT_BATCH_SIZE_GROWTH_FACTOR", "1e309", "--a 'b' \"c\""},
		{"ENGINE_URL", "http://[::1]:80/", ""},
		{"SEED", "0", "\x00\n"},
		{"HEADLESS", "on", ""},
		{"CUDAGRAPH_CAPTURE_SIZES", "[1, 2", ""},
		{"IGNORE_PATTERNS", `["a", {"b": 1}]`, ""},
		{"LORA_MODULES", "a=/p 'b", ""},
		{"MAX_MODEL_LENGHT", "1", ""},
		{"ENABLE_TRACE_REPLAY", "1", ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, name, value, extra string) {
		const secret = "hf_FuZzSeCrEt"
		environ := []string{"MODEL_NAME=m", "HF_TOKEN=" + secret, name + "=" + value, "VLLM_EXTRA_ARGS=" + extra}
		c, err := Load(environ)
		// The token may reach output only if the fuzzer put it somewhere else too.
		leaks := func(s string) bool {
			return strings.Contains(s, secret) && !strings.Contains(name+value+extra, secret)
		}
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
				t.Fatalf("Load error %v is not an *Error with problems", err)
			}
			for _, p := range cerr.Problems {
				if strings.Contains(p, "\n") {
					t.Errorf("problem spans lines: %q", p)
				}
			}
			if leaks(err.Error()) {
				t.Errorf("HF_TOKEN in error: %q", err)
			}
			return
		}
		if argv := c.EngineArgv(1, "/self"); leaks(strings.Join(argv, " ")) {
			t.Errorf("HF_TOKEN in argv: %q", argv)
		}
		if r := fmt.Sprint(c.Redacted()); leaks(r) {
			t.Errorf("HF_TOKEN in Redacted(): %s", r)
		}
		_ = c.EngineEnv(environ)
		_ = c.ServedModelNames()
	})
}
