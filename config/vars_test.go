package config

import (
	"flag"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from Variables")

const configurationDoc = "../docs/configuration.md"

// envTag is one `env:"..."` tag of the raw environment structs.
type envTag struct {
	def    string
	hasDef bool
}

// envTags collects every variable Load reads, by walking the raw structs' tags.
func envTags(t *testing.T) map[string]envTag {
	t.Helper()
	tags := map[string]envTag{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, ok := f.Tag.Lookup("env")
			if !ok {
				if f.Type.Kind() == reflect.Struct {
					walk(f.Type)
					continue
				}
				t.Errorf("field %s.%s has no env tag", rt.Name(), f.Name)
				continue
			}
			if _, dup := tags[name]; dup {
				t.Errorf("env tag %s appears twice", name)
			}
			def, hasDef := f.Tag.Lookup("envDefault")
			tags[name] = envTag{def: def, hasDef: hasDef}
		}
	}
	walk(reflect.TypeFor[rawEnv]()) // rawSim, which LoadSim reads alone, is a field of it
	return tags
}

// TestVariablesMatchEnv checks that every variable Load reads is documented, and that every
// documented variable is read (by a field, or by the generic vLLM flag mapping).
func TestVariablesMatchEnv(t *testing.T) {
	tags := envTags(t)
	table := vllmFlags()
	documented := map[string]bool{}
	groups := variableGroups()
	for _, v := range Variables() {
		for _, name := range append([]string{v.Name}, v.Aliases...) {
			if documented[name] {
				t.Errorf("%s is documented twice", name)
			}
			documented[name] = true
		}
		if !slices.Contains(groups, v.Group) {
			t.Errorf("%s: unknown group %q", v.Name, v.Group)
		}
		if strings.TrimSpace(v.Description) == "" || strings.Contains(v.Description, "|") {
			t.Errorf("%s: the description must be non-empty and free of '|'", v.Name)
		}
		if v.Generic {
			if _, ok := tags[v.Name]; ok {
				t.Errorf("%s is marked Generic but is a field of the raw environment", v.Name)
			}
			if c, _ := table.classify(v.Name); c != flagVar {
				t.Errorf("%s is marked Generic but the generic mapping does not pass it (class %d)", v.Name, c)
			}
			if v.VLLMFlag != flagName(v.Name) {
				t.Errorf("%s: VLLMFlag %q; want %q", v.Name, v.VLLMFlag, flagName(v.Name))
			}
			continue
		}
		for _, name := range append([]string{v.Name}, v.Aliases...) {
			if _, ok := tags[name]; !ok {
				t.Errorf("%s is documented but Load does not read it", name)
			}
		}
		if tag := tags[v.Name]; tag.hasDef && v.Default != tag.def {
			t.Errorf("%s: documented default %q; the env tag's is %q", v.Name, v.Default, tag.def)
		}
		for _, a := range v.Aliases {
			if tags[a].hasDef {
				t.Errorf("alias %s has an envDefault: Load could not tell whether it was set", a)
			}
		}
		// A variable that becomes a flag is mapped by seedFlags; any other is never a flag.
		for _, name := range append([]string{v.Name}, v.Aliases...) {
			switch c, _ := table.classify(name); {
			case v.VLLMFlag != "" && c != seedVar:
				t.Errorf("%s is documented as %s but is not one of the explicitly mapped variables (class %d)", name, v.VLLMFlag, c)
			case v.VLLMFlag == "" && c != workerVar:
				t.Errorf("%s is documented as the worker's own but the flag mapping sees it (class %d)", name, c)
			}
		}
	}
	for name := range tags {
		if !documented[name] {
			t.Errorf("%s is read by Load but missing from Variables", name)
		}
	}
}

// TestVariablesFlags checks the documented vLLM flag of each variable against the engine
// command line Load produces when that variable alone is set.
func TestVariablesFlags(t *testing.T) {
	sample := map[string]string{
		"MAX_MODEL_LENGTH":             "100",
		"DISTRIBUTED_EXECUTOR_BACKEND": "ray",
		"GPU_MEMORY_UTILIZATION":       "0.5",
		"OPENAI_RESPONSE_ROLE":         "bot",
		"DISABLE_LOG_REQUESTS":         "0",
		"TOOL_CALL_PARSER":             "hermes",
		"REASONING_PARSER":             "qwen3",
		"LORA_MODULES":                 "a=/p",
	}
	for _, v := range Variables() {
		if v.VLLMFlag == "" || v.Name == "MODEL_NAME" {
			continue
		}
		value, ok := sample[v.Name]
		if !ok {
			value = "1" // a count or a boolean; any string flag takes it too
		}
		c, err := Load([]string{"MODEL_NAME=m", v.Name + "=" + value})
		if err != nil {
			t.Errorf("%s=%s: %v", v.Name, value, err)
			continue
		}
		argv := c.EngineArgv(8001, "vllm-worker")
		if !slices.Contains(argv, v.VLLMFlag) {
			t.Errorf("%s=%s: engine argv %q lacks %s", v.Name, value, argv, v.VLLMFlag)
		}
	}
}

// TestConfigurationDoc checks that docs/configuration.md is ConfigurationMarkdown's output.
func TestConfigurationDoc(t *testing.T) {
	want := ConfigurationMarkdown()
	if *update {
		if err := os.WriteFile(configurationDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(configurationDoc)
	if err != nil {
		t.Fatalf("%v; run: go test ./config -run TestConfigurationDoc -update", err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date with config/vars.go; run: go test ./config -run TestConfigurationDoc -update", configurationDoc)
	}
}
