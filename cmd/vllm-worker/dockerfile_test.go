package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vllm-worker/vllm-worker/config"
)

// No container engine runs here, so the Dockerfile is checked as text: its structure, its
// pins and the handling of HF_TOKEN.

// instruction is one Dockerfile instruction, continuation lines joined, comments dropped.
type instruction struct {
	line int    // where it starts, 1-based
	cmd  string // upper-case keyword
	args string
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			cur.WriteString(body)
			continue
		}
		cur.WriteString(line)
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		cmd, args, _ := strings.Cut(text, " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
	}
	if cur.Len() > 0 {
		t.Fatalf("%s ends inside a continued instruction", path)
	}
	return out
}

// stage is one FROM: its image (or earlier stage) and its name.
type stage struct {
	from, name string
	body       []instruction
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "../../Dockerfile")

	globalArgs := map[string]string{} // ARGs before the first FROM, with their defaults
	var stages []*stage
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			s := &stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		case len(stages) == 0 && in.cmd == "ARG":
			name, def, _ := strings.Cut(in.args, "=")
			globalArgs[name] = strings.Trim(def, `"`)
		case len(stages) == 0:
			t.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		default:
			s := stages[len(stages)-1]
			s.body = append(s.body, in)
		}
	}
	named := 0
	for _, s := range stages {
		if s.name != "" {
			named++
		}
	}
	if len(stages) < 2 || named < 2 {
		t.Fatalf("want a multi-stage build (FROM ... AS ...), got %d stages, %d named", len(stages), named)
	}
	byName := map[string]*stage{}
	for _, s := range stages {
		byName[s.name] = s
	}
	expand := func(s string) string {
		return regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(s, func(m string) string {
			return globalArgs[m[2:len(m)-1]]
		})
	}

	t.Run("pinned Go builder", func(t *testing.T) {
		b := byName["build"]
		if b == nil {
			t.Fatal("no stage named build")
		}
		if !regexp.MustCompile(`^golang:1\.\d+\.\d+(-[a-z0-9]+)?$`).MatchString(b.from) {
			t.Errorf("build stage FROM %s; want golang pinned to a release tag such as golang:1.26.8-bookworm", b.from)
		}
		var build string
		for _, in := range b.body {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				build = in.args
			}
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X main.version=", "./cmd/vllm-worker"} {
			if !strings.Contains(build, want) {
				t.Errorf("the go build RUN lacks %q: %q", want, build)
			}
		}
	})

	final := stages[len(stages)-1]
	t.Run("runtime is a pinned vllm/vllm-openai", func(t *testing.T) {
		pinned := regexp.MustCompile(`^vllm/vllm-openai:v\d+\.\d+\.\d+(-[a-z0-9]+)?$`)
		vllmStages := 0
		for _, s := range stages {
			if strings.HasPrefix(s.from, "vllm/vllm-openai") {
				vllmStages++
				if !pinned.MatchString(s.from) {
					t.Errorf("FROM %s: want vllm/vllm-openai pinned to a release tag", s.from)
				}
			}
			if byName[expand(s.from)] != nil {
				continue // an earlier stage
			}
			_, tag, ok := strings.Cut(s.from, ":")
			if !ok || tag == "latest" || strings.Contains(tag, "nightly") || strings.Contains(s.from, "$") {
				t.Errorf("FROM %s is not pinned to a tag", s.from)
			}
		}
		if vllmStages == 0 {
			t.Fatal("no stage FROM vllm/vllm-openai")
		}
		// The runtime stage starts from a vLLM stage chosen by WORKER_CUDA_VERSION.
		base := byName[expand(final.from)]
		if base == nil || !pinned.MatchString(base.from) {
			t.Errorf("the runtime stage FROM %s (%s) does not resolve to a pinned vllm/vllm-openai stage", final.from, expand(final.from))
		}
		if !strings.Contains(final.from, "${WORKER_CUDA_VERSION}") {
			t.Errorf("the runtime stage FROM %s does not depend on WORKER_CUDA_VERSION", final.from)
		}
	})

	t.Run("seed build args", func(t *testing.T) {
		args := map[string]string{}
		for _, in := range final.body {
			if in.cmd == "ARG" {
				name, def, _ := strings.Cut(in.args, "=")
				args[name] = strings.Trim(def, `"`)
			}
		}
		if _, ok := globalArgs["WORKER_CUDA_VERSION"]; !ok {
			t.Error("no global ARG WORKER_CUDA_VERSION")
		}
		for _, name := range []string{"MODEL_NAME", "MODEL_REVISION", "BASE_PATH", "QUANTIZATION", "TOKENIZER_NAME", "TOKENIZER_REVISION"} {
			if _, ok := args[name]; !ok {
				t.Errorf("the runtime stage has no ARG %s", name)
			}
		}
		if want := variableDefault(t, "BASE_PATH"); args["BASE_PATH"] != want {
			t.Errorf("ARG BASE_PATH=%q; want the configuration's default %q", args["BASE_PATH"], want)
		}
	})

	t.Run("environment", func(t *testing.T) {
		known := map[string]bool{"HF_HOME": true, "HF_HUB_OFFLINE": true, "HF_HUB_DISABLE_TELEMETRY": true, "TOKENIZERS_PARALLELISM": true}
		for _, v := range config.Variables() {
			known[v.Name] = true
		}
		env := map[string]string{}
		for _, in := range final.body {
			if in.cmd != "ENV" {
				continue
			}
			for _, kv := range strings.Fields(in.args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Errorf("line %d: ENV %q: use the KEY=value form", in.line, kv)
				}
				if !known[k] {
					t.Errorf("line %d: ENV %s is neither a vllm-worker variable nor a Hugging Face one", in.line, k)
				}
				env[k] = v
			}
		}
		for k, want := range map[string]string{
			"MODEL_NAME":     "${MODEL_NAME}",
			"BASE_PATH":      "${BASE_PATH}",
			"HF_HOME":        "${BASE_PATH}/huggingface-cache",
			"HF_HUB_OFFLINE": "${MODEL_NAME:+1}",
		} {
			if env[k] != want {
				t.Errorf("ENV %s=%q; want %q", k, env[k], want)
			}
		}
		exposed := false
		for _, in := range final.body {
			exposed = exposed || (in.cmd == "EXPOSE" && slices.Contains(strings.Fields(in.args), "8000"))
		}
		if !exposed {
			t.Error("no EXPOSE 8000")
		}
	})

	t.Run("HF_TOKEN only as a build secret", func(t *testing.T) {
		mounted := false
		for _, in := range ins {
			if !strings.Contains(in.args, "HF_TOKEN") {
				continue
			}
			switch {
			case in.cmd == "ARG" || in.cmd == "ENV" || in.cmd == "LABEL":
				t.Errorf("line %d: %s mentions HF_TOKEN: it would be stored in the image", in.line, in.cmd)
			case in.cmd != "RUN" || !strings.Contains(in.args, "--mount=type=secret,id=HF_TOKEN"):
				t.Errorf("line %d: %s mentions HF_TOKEN outside a RUN --mount=type=secret,id=HF_TOKEN", in.line, in.cmd)
			default:
				mounted = true
			}
		}
		if !mounted {
			t.Error("no RUN --mount=type=secret,id=HF_TOKEN: gated models cannot be baked")
		}
	})

	t.Run("model download", func(t *testing.T) {
		var dl string
		for _, in := range final.body {
			if in.cmd == "RUN" && strings.Contains(in.args, "snapshot_download") {
				dl = in.args
			}
		}
		for _, want := range []string{`MODEL_NAME`, `MODEL_REVISION`, `TOKENIZER_NAME`, `TOKENIZER_REVISION`} {
			if !strings.Contains(dl, want) {
				t.Errorf("the download RUN does not use %s", want)
			}
		}
	})

	t.Run("entrypoint", func(t *testing.T) {
		var entry []string
		copied := false
		for _, in := range final.body {
			switch in.cmd {
			case "ENTRYPOINT":
				entry = nil
				if err := json.Unmarshal([]byte(in.args), &entry); err != nil {
					t.Errorf("ENTRYPOINT %s: want the exec (JSON) form: %v", in.args, err)
				}
			case "COPY":
				copied = copied || (strings.Contains(in.args, "--from=build") && strings.Contains(in.args, "vllm-worker"))
			}
		}
		if len(entry) < 2 || !strings.HasSuffix(entry[0], "/tini") || !strings.HasSuffix(entry[len(entry)-1], "vllm-worker") {
			t.Errorf("ENTRYPOINT %q: want tini as PID 1 running vllm-worker", entry)
		}
		if !copied {
			t.Error("the runtime stage does not COPY --from=build the vllm-worker binary")
		}
	})
}

func TestDockerignore(t *testing.T) {
	raw, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	for _, want := range []string{".git", "bin", "**/node_modules"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd", "*.go"} {
		if slices.Contains(lines, keep) {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
}

func variableDefault(t *testing.T, name string) string {
	t.Helper()
	for _, v := range config.Variables() {
		if v.Name == name {
			return v.Default
		}
	}
	t.Fatalf("no variable %s", name)
	return ""
}
