package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxSeconds bounds durations given in seconds so that they fit a time.Duration (~292 years)
// with room to spare.
const maxSeconds = 100_000_000

// checker type-checks raw values and collects every problem and warning, so that Load can
// report them all at once. A bad value yields the zero value and a problem naming the variable.
type checker struct {
	env      map[string]string // the environment, blank values removed
	secrets  []string          // values never to quote
	problems []string
	warnings []string
}

func newChecker(environ []string) *checker {
	k := &checker{env: envMap(environ)}
	for _, name := range []string{"HF_TOKEN", "API_KEY", "RUNPOD_AI_API_KEY"} {
		if v := k.env[name]; v != "" {
			k.secrets = append(k.secrets, v)
		}
	}
	return k
}

// set reports whether the variable was given a (non-blank) value.
func (k *checker) set(name string) bool {
	_, ok := k.env[name]
	return ok
}

// bad records a problem with a variable's value: `NAME="value": reason`.
func (k *checker) bad(name, value, reason string) {
	k.problems = append(k.problems, fmt.Sprintf("%s=%s: %s", name, k.quote(value), reason))
}

func (k *checker) warn(format string, args ...any) {
	k.warnings = append(k.warnings, fmt.Sprintf(format, args...))
}

// alias picks between a seed name and its alias: the seed name wins, with a warning when both
// are set and differ. It returns the name the value came from (for messages) and the value.
func (k *checker) alias(seedName, seedValue, aliasName, aliasValue string) (string, string) {
	switch {
	case seedValue == "":
		return aliasName, aliasValue
	case aliasValue != "" && strings.TrimSpace(aliasValue) != strings.TrimSpace(seedValue):
		k.warn("%s and %s are both set and differ; using %s=%s", seedName, aliasName, seedName, k.quote(seedValue))
	}
	return seedName, seedValue
}

// integer parses a whole number that must be at least min.
func (k *checker) integer(name, value string, min int) int {
	n, err := strconv.Atoi(strings.TrimSpace(value))
	switch {
	case errors.Is(err, strconv.ErrRange):
		k.bad(name, value, "out of range")
		return 0
	case err != nil:
		k.bad(name, value, "not an integer")
		return 0
	case n < min:
		k.bad(name, value, fmt.Sprintf("must be >= %d", min))
		return 0
	}
	return n
}

// optInteger is integer for a variable without a default: "" is 0 (not set).
func (k *checker) optInteger(name, value string, min int) int {
	if value == "" {
		return 0
	}
	return k.integer(name, value, min)
}

// number parses a finite float.
func (k *checker) number(name, value string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		k.bad(name, value, "not a finite number")
		return 0, false
	}
	return f, true
}

// boolean accepts 0/1/true/false/yes/no/on/off in any case.
func (k *checker) boolean(name, value string) bool {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	k.bad(name, value, "not a boolean (use 1/0, true/false, yes/no or on/off)")
	return false
}

// optBool is boolean for a variable without a default: nil when not set.
func (k *checker) optBool(name, value string) *bool {
	if value == "" {
		return nil
	}
	b := k.boolean(name, value)
	return &b
}

// millis parses a whole number of milliseconds, at least min.
func (k *checker) millis(name, value string, min int) time.Duration {
	n := k.integer(name, value, min)
	if n > maxSeconds*1000 {
		k.bad(name, value, "too large")
		return 0
	}
	return time.Duration(n) * time.Millisecond
}

// seconds parses a non-negative number of seconds, fractions allowed; positive if nonzero.
func (k *checker) seconds(name, value string, nonzero bool) time.Duration {
	f, ok := k.number(name, value)
	switch {
	case !ok:
		return 0
	case f < 0:
		k.bad(name, value, "must be >= 0")
		return 0
	case nonzero && f == 0:
		k.bad(name, value, "must be > 0")
		return 0
	case f > maxSeconds:
		k.bad(name, value, "too large")
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// oneOf checks value against the allowed words (case-insensitive) and returns it lower-cased.
func (k *checker) oneOf(name, value string, allowed ...string) string {
	v := strings.ToLower(strings.TrimSpace(value))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	k.bad(name, value, "must be one of "+strings.Join(allowed, ", "))
	return ""
}

// quote quotes a value for a one-line message, secrets replaced (a token pasted into
// VLLM_EXTRA_ARGS, say) before it is cut short if long.
func (k *checker) quote(s string) string {
	const max = 80
	s = scrub(s, k.secrets)
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "..."
	}
	return strconv.Quote(s)
}

// humanInt parses an integer the way vLLM's human_readable_int does: "8192", "32k" (decimal
// multiples, decimals allowed: "25.6k" = 25600) or "32K" (binary multiples, whole numbers only).
func humanInt(s string) (int, error) {
	const limit = math.MaxInt32 // far beyond any context length, and safe from overflow
	if s == "" {
		return 0, errors.New("empty")
	}
	mult := 0.0
	binary := false
	switch last := s[len(s)-1]; last {
	case 'k', 'm', 'g', 't':
		mult = math.Pow(1000, float64(strings.IndexByte("kmgt", last)+1))
	case 'K', 'M', 'G', 'T':
		mult = math.Pow(1024, float64(strings.IndexByte("KMGT", last)+1))
		binary = true
	}
	if mult == 0 {
		n, err := strconv.Atoi(s)
		if err != nil || n > limit {
			return 0, errors.New("use digits, optionally with a k/m/g or K/M/G suffix")
		}
		return n, nil
	}
	num := s[:len(s)-1]
	for _, r := range num {
		if (r < '0' || r > '9') && (r != '.' || binary) {
			return 0, errors.New("use digits, optionally with a k/m/g or K/M/G suffix; no decimals with K/M/G")
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*mult > limit {
		return 0, errors.New("use digits, optionally with a k/m/g or K/M/G suffix")
	}
	return int(f * mult), nil
}
