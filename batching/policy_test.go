package batching

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// defaults are worker-vllm's DEFAULT_BATCH_SIZE, MIN_BATCH_SIZE and
// BATCH_SIZE_GROWTH_FACTOR.
var defaults = Policy{Max: 50, Min: 1, Growth: 3}

func TestDynamic(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want bool
	}{
		{"defaults", defaults, true},
		{"growth 1", Policy{Max: 50, Min: 1, Growth: 1}, false},
		{"growth below 1", Policy{Max: 50, Min: 1, Growth: 0.5}, false},
		{"growth 1.5", Policy{Max: 50, Min: 1, Growth: 1.5}, true},
		{"growth NaN", Policy{Max: 50, Min: 1, Growth: math.NaN()}, false},
		{"min 0", Policy{Max: 50, Min: 0, Growth: 3}, false},
		{"min negative", Policy{Max: 50, Min: -1, Growth: 3}, false},
		{"min equals max", Policy{Max: 5, Min: 5, Growth: 3}, false},
		{"min above max", Policy{Max: 5, Min: 10, Growth: 3}, false},
		{"max 2 min 1", Policy{Max: 2, Min: 1, Growth: 3}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Dynamic(); got != tt.want {
				t.Errorf("%+v.Dynamic() = %v; want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		n    int
		want []int
	}{
		// runpod.md D: defaults, 100 tokens.
		{"defaults 100", defaults, 100, []int{1, 3, 9, 27, 50, 10}},
		// runpod.md D: role chunk + 100 content chunks + [DONE].
		{"defaults 102", defaults, 102, []int{1, 3, 9, 27, 50, 12}},
		{"defaults long", defaults, 200, []int{1, 3, 9, 27, 50, 50, 50, 10}},
		{"max 5", Policy{Max: 5, Min: 1, Growth: 3}, 20, []int{1, 3, 5, 5, 5, 1}},
		{"max 1", Policy{Max: 1, Min: 1, Growth: 3}, 3, []int{1, 1, 1}},
		{"growth 1 fixed at max", Policy{Max: 50, Min: 1, Growth: 1}, 120, []int{50, 50, 20}},
		{"growth 0.5 fixed at max", Policy{Max: 4, Min: 1, Growth: 0.5}, 9, []int{4, 4, 1}},
		// 1, 1.5, 2.25, 3.375, 5.06, 7.59, 11.39, 17.09: fractions round up.
		{"growth 1.5", Policy{Max: 50, Min: 1, Growth: 1.5}, 60, []int{1, 2, 3, 4, 6, 8, 12, 18, 6}},
		{"growth 2.5 capped", Policy{Max: 10, Min: 2, Growth: 2.5}, 30, []int{2, 5, 10, 10, 3}},
		{"min 3", Policy{Max: 50, Min: 3, Growth: 3}, 100, []int{3, 9, 27, 50, 11}},
		{"min above max fixed", Policy{Max: 5, Min: 10, Growth: 3}, 12, []int{5, 5, 2}},
		{"min equals max fixed", Policy{Max: 5, Min: 5, Growth: 3}, 11, []int{5, 5, 1}},
		{"min 0 fixed", Policy{Max: 4, Min: 0, Growth: 3}, 10, []int{4, 4, 2}},
		{"growth +Inf jumps to max", Policy{Max: 50, Min: 1, Growth: math.Inf(1)}, 60, []int{1, 50, 9}},
		{"growth NaN fixed", Policy{Max: 4, Min: 1, Growth: math.NaN()}, 5, []int{4, 1}},
		{"max 0 one per item", Policy{Max: 0, Min: 1, Growth: 3}, 2, []int{1, 1}},
		{"max negative one per item", Policy{Max: -3}, 2, []int{1, 1}},
		{"huge max", Policy{Max: math.MaxInt, Min: 1, Growth: 1}, 7, []int{7}},
		{"one unit", defaults, 1, []int{1}},
		{"no units", defaults, 0, nil},
		{"negative units", defaults, -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sizes(tt.p, tt.n)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Sizes(%+v, %d) mismatch (-want +got):\n%s", tt.p, tt.n, diff)
			}
		})
	}
}

// TestSizesCumulative checks worker-vllm's usage.output column for the
// defaults and 100 tokens.
func TestSizesCumulative(t *testing.T) {
	var got []int
	total := 0
	for _, k := range Sizes(defaults, 100) {
		total += k
		got = append(got, total)
	}
	want := []int{1, 4, 13, 40, 90, 100}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cumulative sizes mismatch (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want []string // substrings of the error; none means valid
	}{
		{"defaults", defaults, nil},
		{"with max wait", Policy{Max: 50, Min: 1, Growth: 3, MaxWait: time.Second}, nil},
		{"growth below 1 is valid", Policy{Max: 50, Min: 1, Growth: 0.5}, nil},
		{"min above max is valid", Policy{Max: 5, Min: 10, Growth: 3}, nil},
		{"max 0", Policy{Max: 0, Min: 1, Growth: 3}, []string{"max batch size"}},
		{"min 0", Policy{Max: 50, Min: 0, Growth: 3}, []string{"min batch size"}},
		{"growth 0", Policy{Max: 50, Min: 1, Growth: 0}, []string{"growth factor"}},
		{"growth negative", Policy{Max: 50, Min: 1, Growth: -2}, []string{"growth factor"}},
		{"growth NaN", Policy{Max: 50, Min: 1, Growth: math.NaN()}, []string{"growth factor"}},
		{"growth Inf", Policy{Max: 50, Min: 1, Growth: math.Inf(1)}, []string{"growth factor"}},
		{"max wait negative", Policy{Max: 50, Min: 1, Growth: 3, MaxWait: -time.Millisecond}, []string{"max wait"}},
		{"zero value reports all", Policy{MaxWait: -1}, []string{"max batch size", "min batch size", "growth factor", "max wait"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want an error mentioning %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q; want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestOverride(t *testing.T) {
	base := Policy{Max: 50, Min: 1, Growth: 3, MaxWait: 40 * time.Millisecond}
	tests := []struct {
		name      string
		max, min  int
		growth    float64
		want      Policy
		wantField string // non-empty: an error naming this field
	}{
		{"zeros keep defaults", 0, 0, 0, base, ""},
		{"max only", 5, 0, 0, Policy{Max: 5, Min: 1, Growth: 3, MaxWait: base.MaxWait}, ""},
		{"min only", 0, 4, 0, Policy{Max: 50, Min: 4, Growth: 3, MaxWait: base.MaxWait}, ""},
		{"growth only", 0, 0, 1.5, Policy{Max: 50, Min: 1, Growth: 1.5, MaxWait: base.MaxWait}, ""},
		{"all", 10, 2, 2, Policy{Max: 10, Min: 2, Growth: 2, MaxWait: base.MaxWait}, ""},
		{"growth 1 allowed", 0, 0, 1, Policy{Max: 50, Min: 1, Growth: 1, MaxWait: base.MaxWait}, ""},
		{"min above max allowed", 3, 9, 0, Policy{Max: 3, Min: 9, Growth: 3, MaxWait: base.MaxWait}, ""},
		{"limit allowed", 1 << 20, 1 << 20, 1 << 20, Policy{Max: 1 << 20, Min: 1 << 20, Growth: 1 << 20, MaxWait: base.MaxWait}, ""},
		{"max negative", -1, 0, 0, Policy{}, "max_batch_size"},
		{"max huge", 1<<20 + 1, 0, 0, Policy{}, "max_batch_size"},
		{"min negative", 0, -5, 0, Policy{}, "min_batch_size"},
		{"min huge", 0, math.MaxInt, 0, Policy{}, "min_batch_size"},
		{"growth negative", 0, 0, -0.5, Policy{}, "batch_size_growth_factor"},
		{"growth NaN", 0, 0, math.NaN(), Policy{}, "batch_size_growth_factor"},
		{"growth +Inf", 0, 0, math.Inf(1), Policy{}, "batch_size_growth_factor"},
		{"growth -Inf", 0, 0, math.Inf(-1), Policy{}, "batch_size_growth_factor"},
		{"growth huge", 0, 0, 1e300, Policy{}, "batch_size_growth_factor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := base.Override(tt.max, tt.min, tt.growth)
			if tt.wantField != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.wantField {
					t.Fatalf("Override(%d, %d, %v) error = %v; want a *FieldError for %s", tt.max, tt.min, tt.growth, err, tt.wantField)
				}
				if !strings.HasPrefix(err.Error(), tt.wantField+" ") {
					t.Errorf("error %q does not start with the field name %q", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("Override(%d, %d, %v) error = %v; want nil", tt.max, tt.min, tt.growth, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Override(%d, %d, %v) mismatch (-want +got):\n%s", tt.max, tt.min, tt.growth, diff)
			}
		})
	}
}
