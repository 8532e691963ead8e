package sim

import (
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// pydantic's lax coercions of JSON values into the request models' types: what
// the validators accept, and the Python value a field holds once it has.

// parsePyFloat parses a string as pydantic parses it into a float.
func parsePyFloat(s string) (float64, bool) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(strings.TrimLeft(t, "+-")) {
	case "inf", "infinity", "nan":
	default:
		if t == "" || strings.ContainsAny(t, "_xXpP") {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil && !strings.Contains(err.Error(), "range") {
		return 0, false
	}
	return f, true
}

// parsePyIntStr parses a string as pydantic parses it into an int: digits with an
// optional sign, and an optional fraction of zeros.
func parsePyIntStr(s string) (*big.Int, bool) {
	t := strings.TrimSpace(s)
	if whole, frac, ok := strings.Cut(t, "."); ok && frac != "" && strings.Trim(frac, "0") == "" {
		t = whole
	}
	if strings.ContainsAny(t, "_ ") || t == "" {
		return nil, false
	}
	i, ok := new(big.Int).SetString(t, 10)
	return i, ok
}

// floatOf is float(value) of a value that passed vFloat.
func floatOf(v gjson.Result) (float64, bool) {
	if v.Type == gjson.String {
		return parsePyFloat(v.Str)
	}
	return pyNumber(v)
}

// intOf is int(value) of a value that passed vInt (0 for anything else).
func intOf(v gjson.Result) *big.Int {
	switch {
	case v.Type == gjson.True:
		return big.NewInt(1)
	case isIntLiteral(v):
		return bigInt(v)
	case v.Type == gjson.Number && !math.IsInf(v.Num, 0) && !math.IsNaN(v.Num):
		i, _ := new(big.Float).SetFloat64(v.Num).Int(nil)
		return i
	case v.Type == gjson.String:
		if i, ok := parsePyIntStr(v.Str); ok {
			return i
		}
	}
	return new(big.Int)
}

// clampInt is i as an int, clamped to ±2^40 (more than any context length).
func clampInt(i *big.Int) int {
	const limit = 1 << 40
	switch {
	case i.Cmp(big.NewInt(limit)) > 0:
		return limit
	case i.Cmp(big.NewInt(-limit)) < 0:
		return -limit
	}
	return int(i.Int64())
}

// boolOf is bool(value) of a value pydantic accepts for a bool field.
func boolOf(v gjson.Result) (bool, bool) {
	switch v.Type {
	case gjson.True:
		return true, true
	case gjson.False:
		return false, true
	case gjson.Number:
		switch v.Num {
		case 0:
			return false, true
		case 1:
			return true, true
		}
	case gjson.String:
		switch strings.ToLower(v.Str) {
		case "0", "off", "f", "false", "n", "no":
			return false, true
		case "1", "on", "t", "true", "y", "yes":
			return true, true
		}
	}
	return false, false
}
