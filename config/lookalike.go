package config

import (
	"slices"
	"strings"
)

// A variable that is neither the worker's nor in the flag table passes nothing to vLLM. When
// its name looks like a setting, it is most likely a typo or a flag of another vLLM version, so
// Load warns, naming the nearest name. The rule, in order:
//
//  1. Only UPPER_SNAKE names ([A-Z][A-Z0-9_]*) are considered, and not those of other software
//     that shares the environment: see otherSoftware.
//  2. The same words in another order as a known name (MODEL_LEN_MAX: MAX_MODEL_LEN).
//  3. Otherwise the nearest known name by edit distance (insertions, deletions, substitutions
//     and swaps of two neighbouring letters each count 1): at most 1 from a name of 8 to 12
//     characters, at most 2 from a longer one; shorter names must match exactly. Ties go to
//     the name first in the list below.
//
// The known names are, in this order: the flags of the table's version (by flag), the worker's
// own variables and aliases (by name), NO_<flag> for a boolean pair (its explicit false is
// <flag>=0), and the flags the table lists as removed or later (by flag).

// lookalike is one known name a variable may be mistaken for.
type lookalike struct {
	name  string   // the UPPER_SNAKE name, NO_ENFORCE_EAGER
	say   string   // how the warning suggests it: ENFORCE_EAGER=0 (--no-enforce-eager)
	words []string // name's words, sorted
}

// lookalikes lists the known names in the order of the rule's tie-break.
func (t *flagTable) lookalikes() []lookalike {
	var flags, own, no, other []lookalike
	for _, r := range t.rows {
		env := envName(r.flag)
		if _, ok := t.own[env]; ok {
			continue // the worker's (HOST, HF_TOKEN, MAX_MODEL_LEN, ...): listed below as such
		}
		switch r.status {
		case flagCurrent:
			flags = append(flags, lookalike{name: env, say: env + " (" + r.flag + ")"})
			if r.kind == pairedBool {
				no = append(no, lookalike{name: "NO_" + env, say: env + "=0 (--no-" + r.flag[2:] + ")"})
			}
		case flagRemoved:
			other = append(other, lookalike{name: env, say: env + " (" + r.flag + ", which vLLM removed after " + r.last + ")"})
		case flagLater:
			other = append(other, lookalike{name: env, say: env + " (" + r.flag + ", newer than vLLM " + t.version + ")"})
		}
	}
	for _, v := range Variables() {
		if v.Generic {
			continue // a flag of the table, listed above
		}
		say := " (the worker's)"
		if v.VLLMFlag != "" {
			say = " (" + v.VLLMFlag + ")"
		}
		for _, name := range append([]string{v.Name}, v.Aliases...) {
			own = append(own, lookalike{name: name, say: name + say})
		}
	}
	slices.SortFunc(own, func(a, b lookalike) int { return strings.Compare(a.name, b.name) })
	all := slices.Concat(flags, own, no, other)
	for i := range all {
		all[i].words = sortedWords(all[i].name)
	}
	return all
}

// lookalikeWarning is the warning for a variable that looks like l, under the table of version.
func lookalikeWarning(name, version string, l lookalike) string {
	return name + " is ignored: it is neither a variable of the worker nor a flag of vLLM " + version +
		"; did you mean " + l.say + "? VLLM_EXTRA_ARGS passes a flag the worker does not know"
}

// nearestLookalike applies the rule to name; ok is false when it looks like none of known.
func nearestLookalike(name string, known []lookalike) (lookalike, bool) {
	if !upperSnake(name) || otherSoftware(name) {
		return lookalike{}, false
	}
	words := sortedWords(name)
	for _, k := range known {
		if len(words) > 1 && k.name != name && slices.Equal(words, k.words) {
			return k, true
		}
	}
	best, bestDist := lookalike{}, 3
	var rows []int // editDistance's table rows, reused
	for _, k := range known {
		limit := editLimit(len(k.name))
		if d := len(name) - len(k.name); d > limit || -d > limit {
			continue // too far in length alone
		}
		var d int
		if d, rows = editDistance(name, k.name, rows); d <= limit && d < bestDist {
			best, bestDist = k, d
		}
	}
	return best, bestDist < 3
}

// editLimit is the largest edit distance to a known name of n characters that counts as a
// look-alike. Short names are left out: too many unrelated variables are a letter or two
// from SEED, DTYPE or NNODES.
func editLimit(n int) int {
	switch {
	case n < 8:
		return 0
	case n <= 12:
		return 1
	}
	return 2
}

// upperSnake reports whether name is an UPPER_SNAKE variable name.
func upperSnake(name string) bool {
	if name == "" || name[0] < 'A' || name[0] > 'Z' {
		return false
	}
	for _, c := range []byte(name) {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// otherSoftware reports the variables of other software that shares the worker's environment
// (the container image, CUDA, Python, Hugging Face, vLLM's own VLLM_* variables, Kubernetes,
// RunPod, ...), which are never taken for a misspelt setting of the worker or vLLM.
func otherSoftware(name string) bool {
	for _, p := range []string{
		"VLLM_", "CUDA_", "CUDNN_", "NVIDIA_", "NV_", "NCCL_", "HF_", "HUGGINGFACE_", "HUGGING_FACE_",
		"TRANSFORMERS_", "TOKENIZERS_", "TORCH", "PYTORCH_", "TRITON_", "PYTHON", "PIP_", "UV_",
		"CONDA_", "LD_", "LC_", "XDG_", "SSH_", "KUBERNETES_", "RUNPOD_", "OMP_", "MKL_",
		"RAY_", "OTEL_", "AWS_", "GOOGLE_", "AZURE_",
	} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	switch name {
	case "SSL_CERT_FILE", "SSL_CERT_DIR": // OpenSSL's, beside vLLM's --ssl-certfile
		return true
	}
	// Kubernetes service links: FOO_SERVICE_HOST, FOO_SERVICE_PORT_HTTP, FOO_PORT_8000_TCP_ADDR.
	if strings.Contains(name, "_SERVICE_") {
		return true
	}
	if _, rest, ok := strings.Cut(name, "_PORT_"); ok {
		digits, _, _ := strings.Cut(rest, "_")
		if digits != "" && strings.Trim(digits, "0123456789") == "" {
			return true
		}
	}
	return false
}

// sortedWords is name's words (split at _), sorted.
func sortedWords(name string) []string {
	w := strings.FieldsFunc(name, func(r rune) bool { return r == '_' })
	slices.Sort(w)
	return w
}

// editDistance is the optimal string alignment distance between a and b: the fewest
// insertions, deletions, substitutions and swaps of two neighbouring bytes that turn a into b.
// buf is scratch space, returned for the next call.
func editDistance(a, b string, buf []int) (int, []int) {
	// Three rows of the usual table: two back (for swaps), the previous and the current.
	n := len(b) + 1
	if cap(buf) < 3*n {
		buf = make([]int, 3*n)
	}
	prev2, prev, cur := buf[:n], buf[n:2*n], buf[2*n:3*n]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)], buf
}
