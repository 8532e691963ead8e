package check

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// promSum sums the samples of the series name in a Prometheus text exposition
// whose labels include every one of labels (each written as `key="value"`).
// found is false when there is no such sample.
func promSum(text []byte, name string, labels ...string) (sum float64, found bool) {
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ' && rest[0] != '\t') {
			continue // another series, or one whose name starts with name
		}
		var set string
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			set, rest = rest[1:end], rest[end+1:]
		}
		if !hasLabels(set, labels) {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// hasLabels reports whether a label set ("a=\"1\",b=\"2\"") holds every one
// of want.
func hasLabels(set string, want []string) bool {
	for _, w := range want {
		i := strings.Index(set, w)
		// The match must be a whole label: at the start or after a comma.
		for i > 0 && set[i-1] != ',' && set[i-1] != ' ' {
			j := strings.Index(set[i+1:], w)
			if j < 0 {
				i = -1
				break
			}
			i += 1 + j
		}
		if i < 0 {
			return false
		}
	}
	return true
}
