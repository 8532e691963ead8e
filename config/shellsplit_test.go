package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestShellSplit(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "   \t\n ", want: nil},
		{in: "--a 1  --b\t2", want: []string{"--a", "1", "--b", "2"}},
		{in: `--chat-template "{{ a }} {{ b }}"`, want: []string{"--chat-template", "{{ a }} {{ b }}"}},
		{in: `--x='y z' --j '{"k": "v w"}'`, want: []string{"--x=y z", "--j", `{"k": "v w"}`}},
		{in: `a'b'"c"d`, want: []string{"abcd"}},
		{in: `'' ""`, want: []string{"", ""}},
		{in: `a\ b \"c\"`, want: []string{"a b", `"c"`}},
		{in: `"say \"hi\" \\ \n"`, want: []string{`say "hi" \ \n`}},
		{in: `'single \ keeps "all"'`, want: []string{`single \ keeps "all"`}},
		{in: "héllo wörld", want: []string{"héllo", "wörld"}},
		{in: "#not-a-comment", want: []string{"#not-a-comment"}},
		{in: `--x 'y`, wantErr: "unbalanced single quote"},
		{in: `--x "y`, wantErr: "unbalanced double quote"},
		{in: `"a\"`, wantErr: "unbalanced double quote"},
		{in: `a\`, wantErr: "ends with a lone backslash"},
	}
	for _, tt := range tests {
		got, err := shellSplit(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("shellSplit(%q) = %q, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("shellSplit(%q): unexpected error %v", tt.in, err)
		default:
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("shellSplit(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		}
	}
}
