package config

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
)

// vllmFlagsTSV is the table of every `vllm serve` flag of the vLLM version the Dockerfile pins,
// with the flags of earlier releases that version no longer has and those added after it.
// Its header says which version and commit it was read from, how, and how to make it again
// for another version; vllmflags_test.go checks that it parses, is sorted, and names the
// version of the Dockerfile's vllm/vllm-openai images.
//
//go:embed vllmflags.tsv
var vllmFlagsTSV string

// flagKind is how a `vllm serve` flag takes its value.
type flagKind int

const (
	valueFlag  flagKind = iota + 1 // --name value
	pairedBool                     // --name, or --no-name for an explicit false
	storeTrue                      // --name only: true emits it, false emits nothing
	nargsFlag                      // --name v1 v2 ...
)

// flagStatus is where a flag of the table stands against the table's version.
type flagStatus int

const (
	flagCurrent flagStatus = iota + 1 // a flag of the version
	flagRemoved                       // in an earlier release, not in the version
	flagLater                         // added to vLLM after the version
)

// vllmFlag is one row of the table.
type vllmFlag struct {
	flag   string // the long flag, --max-num-seqs
	kind   flagKind
	status flagStatus
	last   string   // flagRemoved: the last release that had it
	use    []string // flagRemoved: the flags vLLM named instead, if any
}

// flagTable is the parsed vllmflags.tsv.
type flagTable struct {
	version string              // the vLLM release, v0.28.0
	commit  string              // the vLLM commit the definitions were read at
	rows    []vllmFlag          // in file order: sorted by flag
	byEnv   map[string]vllmFlag // by UPPER_SNAKE name

	own   map[string]envClass // the worker's variables (ownVariables)
	known []lookalike         // what an unknown variable may be mistaken for (lookalikes)
}

// vllmFlags is the embedded table, parsed on first use and never changed after. It is data of
// the build, checked by the tests, so a malformed table is a bug of the build and panics.
var vllmFlags = sync.OnceValue(func() *flagTable {
	t, err := parseFlagTable(vllmFlagsTSV)
	if err != nil {
		panic("config: vllmflags.tsv: " + err.Error())
	}
	t.own = ownVariables()
	t.known = t.lookalikes()
	return t
})

// parseFlagTable reads the table's format: `#` comments, a `version` and a `commit` line, then
// one tab-separated row per flag (flag, kind, status, last, use), sorted by flag, each once.
func parseFlagTable(text string) (*flagTable, error) {
	t := &flagTable{byEnv: map[string]vllmFlag{}}
	kinds := map[string]flagKind{"value": valueFlag, "bool_pair": pairedBool, "store_true": storeTrue, "nargs": nargsFlag}
	statuses := map[string]flagStatus{"current": flagCurrent, "removed": flagRemoved, "later": flagLater}
	for i, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		bad := func(format string, args ...any) error {
			return fmt.Errorf("line %d: %s", i+1, fmt.Sprintf(format, args...))
		}
		switch {
		case f[0] == "version" && len(f) == 2 && t.version == "":
			t.version = f[1]
			continue
		case f[0] == "commit" && len(f) == 2 && t.commit == "":
			t.commit = f[1]
			continue
		case !validFlag(f[0]):
			return nil, bad("%q is not a version, commit or flag line", line)
		case len(f) < 3 || len(f) > 5:
			return nil, bad("%d columns; want 3 to 5", len(f))
		}
		f = append(f, "", "")[:5]
		r := vllmFlag{flag: f[0], kind: kinds[f[1]], status: statuses[f[2]], last: f[3]}
		if f[4] != "" {
			r.use = strings.Split(f[4], ",")
		}
		switch {
		case r.kind == 0:
			return nil, bad("%s: unknown kind %q", r.flag, f[1])
		case r.status == 0:
			return nil, bad("%s: unknown status %q", r.flag, f[2])
		case (r.status == flagRemoved) != (r.last != ""):
			return nil, bad("%s: a removed flag, and only a removed one, names the last release with it", r.flag)
		case r.status != flagRemoved && r.use != nil:
			return nil, bad("%s: only a removed flag names replacements", r.flag)
		case len(t.rows) > 0 && t.rows[len(t.rows)-1].flag >= r.flag:
			return nil, bad("%s: not after %s (rows are sorted by flag, each once)", r.flag, t.rows[len(t.rows)-1].flag)
		}
		env := envName(r.flag)
		if _, dup := t.byEnv[env]; dup {
			return nil, bad("%s: a second flag named %s", r.flag, env)
		}
		t.rows = append(t.rows, r)
		t.byEnv[env] = r
	}
	if t.version == "" || t.commit == "" {
		return nil, fmt.Errorf("no version or commit line")
	}
	for _, r := range t.rows {
		for _, u := range r.use {
			if t.byEnv[envName(u)].status != flagCurrent {
				return nil, fmt.Errorf("%s: replacement %s is not a current flag", r.flag, u)
			}
		}
	}
	return t, nil
}

// validFlag reports whether s is a long flag: --, then lower-case words joined by -.
func validFlag(s string) bool {
	name, ok := strings.CutPrefix(s, "--")
	if !ok || name == "" || name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--") {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// flagName turns an UPPER_SNAKE variable name into its vLLM flag: SEED -> --seed.
func flagName(env string) string {
	return "--" + strings.ToLower(strings.ReplaceAll(env, "_", "-"))
}

// envName turns a vLLM flag into its UPPER_SNAKE variable name: --max-num-seqs -> MAX_NUM_SEQS.
func envName(flag string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(flag, "--"), "-", "_"))
}

// envClass is what Load does with one environment variable.
type envClass int

const (
	unknownVar     envClass = iota // neither the worker's nor in the table: checked for a near miss
	workerVar                      // the worker's own variable or a reserved name: never a flag
	seedVar                        // mapped to its flag by seedFlags, in a fixed order
	flagVar                        // a flag of the table's version: mapped by genericFlags
	removedVar                     // a flag of an earlier release: a warning, nothing emitted
	laterVar                       // a flag newer than the table's version: a warning, nothing emitted
	workerOwnedVar                 // a flag that would cut the worker off the engine: a warning, nothing emitted
	legacyVar                      // worker-vllm's name for what vLLM no longer has: a warning, nothing emitted
)

// classify says what Load does with the variable name, and gives its row of the table, if any.
// The worker's variables come first: some are also flag names (HOST, PORT, API_KEY, HF_TOKEN,
// and the seed names mapped explicitly), and those never go through the generic mapping.
func (t *flagTable) classify(name string) (envClass, vllmFlag) {
	if c, ok := t.own[name]; ok {
		return c, vllmFlag{}
	}
	r, ok := t.byEnv[name]
	switch {
	case !ok && legacyHint(name) != "":
		return legacyVar, r
	case !ok:
		return unknownVar, r
	case r.status == flagRemoved:
		return removedVar, r
	case r.status == flagLater:
		return laterVar, r
	case workerOwnedFlag(r.flag):
		return workerOwnedVar, r
	}
	return flagVar, r
}

// ownVariables classifies the worker's variables (Variables, aliases included) and the names
// worker-vllm reserved: seedVar for those seedFlags maps, workerVar for the others. The
// documented vLLM flags of Variables (Generic) are left to the table.
func ownVariables() map[string]envClass {
	own := map[string]envClass{
		// worker-vllm HEAD never maps these; MODEL and CONFIG are also flags, which the worker
		// sets itself (--model) or leaves to VLLM_EXTRA_ARGS (--config <file>).
		"MODEL": workerVar, "CONFIG": workerVar, "HELP": workerVar,
	}
	for _, v := range Variables() {
		if v.Generic {
			continue
		}
		c := workerVar // HF_TOKEN among them: it reaches the engine through its environment only
		if v.VLLMFlag != "" {
			c = seedVar
		}
		for _, name := range append([]string{v.Name}, v.Aliases...) {
			own[name] = c
		}
	}
	return own
}

// workerOwnedFlag reports the flags that would cut the worker off the engine, which it reaches
// over plain HTTP on the loopback port it chose (--host and --port are the worker's HOST and
// PORT, never flags).
func workerOwnedFlag(flag string) bool {
	return flag == "--uds" || flag == "--enable-ssl-refresh" || strings.HasPrefix(flag, "--ssl-")
}

// legacyHint is the advice for a setting of worker-vllm's that vLLM no longer takes as a flag,
// whether the table knows the name (a removed flag without a replacement of vLLM's) or not
// (worker-vllm's own name); "" for any other name.
func legacyHint(name string) string {
	switch name {
	case "VLLM_CONFIG_FILE":
		return `use VLLM_EXTRA_ARGS="--config <file>"`
	case "MAX_CONTEXT_LEN_TO_CAPTURE":
		return "vLLM dropped --max-context-len-to-capture before v0.8.0"
	// worker-vllm 2.x built vLLM's speculative config from these variables.
	case "SPECULATIVE_METHOD", "SPECULATIVE_MODEL", "NUM_SPECULATIVE_TOKENS",
		"NGRAM_PROMPT_LOOKUP_MAX", "NGRAM_PROMPT_LOOKUP_MIN", "SPECULATIVE_DRAFT_TENSOR_PARALLEL_SIZE",
		"SPECULATIVE_MAX_MODEL_LEN", "SPECULATIVE_DISABLE_BY_BATCH_SIZE", "SPECULATIVE_QUANTIZATION",
		"SPECULATIVE_MODEL_REVISION", "SPECULATIVE_ENFORCE_EAGER":
		return "use SPECULATIVE_CONFIG (JSON)"
	}
	return ""
}

// removedWarning is the warning for a flag of an earlier vLLM release.
func removedWarning(name string, r vllmFlag) string {
	msg := fmt.Sprintf("%s is ignored: vLLM removed %s after %s", name, r.flag, r.last)
	switch {
	case len(r.use) > 0:
		names := make([]string, len(r.use))
		for i, u := range r.use {
			names[i] = envName(u)
		}
		msg += "; use " + strings.Join(names, " or ")
	case legacyHint(name) != "":
		msg += "; " + legacyHint(name)
	}
	return msg
}
