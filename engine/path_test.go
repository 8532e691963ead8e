package engine

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, want string
		reason   string // a part of the refusal; "" means accepted
	}{
		{"/tokenize", "/tokenize", ""},
		{"/v1/models", "/v1/models", ""},
		{"/v1/files/a%3Fb", "/v1/files/a%3Fb", ""},
		{"/v1/tokenize?text=a%20b&x=1", "/v1/tokenize?text=a%20b&x=1", ""},
		{"/v1/x?q=%0a", "/v1/x?q=%0a", ""}, // an encoded newline in a query is data
		{"/v1/a b", "/v1/a%20b", ""},
		{`/v1/a"b`, "/v1/a%22b", ""},
		{"/v1/café", "/v1/caf%C3%A9", ""},
		{"/v1/.well-known/x", "/v1/.well-known/x", ""},
		{"/v1/...", "/v1/...", ""},
		{"/v1/a.b/c", "/v1/a.b/c", ""},
		{"/v1/x?a=..", "/v1/x?a=..", ""}, // dots in a query are not segments
		{"/", "/", ""},

		{"tokenize", "", "start with /"},
		{"", "", "start with /"},
		{"/a\u000bb", "", "control"},
		{"/a\x00b", "", "control"},
		{"/a\x7fb", "", "control"},
		{"/a\r\nHost: evil", "", "control"},
		{"/v1/x?a=\n", "", "control"},
		{"/a%0bb", "", "control"},
		{"/a%00", "", "control"},
		{"/a%7F", "", "control"},
		{"/../metrics", "", "dot segment"},
		{"/v1/../../metrics", "", "dot segment"},
		{"/v1/./models", "", "dot segment"},
		{"/v1/..", "", "dot segment"},
		{"/v1/.", "", "dot segment"},
		{"/v1/%2e%2e/metrics", "", "dot segment"},
		{"/v1/%2E./metrics", "", "dot segment"},
		{"/v1/.%2e", "", "dot segment"},
		{"/a%2Fmetrics", "", "encoded slash"},
		{"/a%2fmetrics", "", "encoded slash"},
		{"/a%5cmetrics", "", "encoded slash"},
		{`/a\metrics`, "", "backslash"},
		{"/a#frag", "", "fragment"},
		{"/a?b#frag", "", "fragment"},
		{"/a%zz", "", "percent"},
		{"/a%2", "", "percent"},
		{"/a?x=%g1", "", "percent"},
	}
	for _, tt := range tests {
		got, err := CleanPath(tt.in)
		if tt.reason == "" {
			if err != nil || got != tt.want {
				t.Errorf("CleanPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		var pe *PathError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("CleanPath(%q) = %q, %v; want a refusal naming %q", tt.in, got, err, tt.reason)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\r\n\x00\x0b") {
			t.Errorf("CleanPath(%q): the message %q carries a control character", tt.in, err)
		}
	}
}

// FuzzCleanPath: an accepted path is a clean request-target (no byte that breaks
// a request line, no dot segment, no encoded slash), cleaning it again changes
// nothing, and the engine's router (Go's URL parser standing in for it) sees the
// same segments the worker checked.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/v1/models", "/a%2e%2e/b", "/a b?c=d e", "/x/../y", "/%2F", "/é?é", "/a%0b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CleanPath(in)
		if err != nil {
			return
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c <= ' ' || c >= 0x7f || c == '#' || c == '\\' || c == '"' {
				t.Fatalf("CleanPath(%q) = %q holds byte %#x", in, out, c)
			}
		}
		again, err := CleanPath(out)
		if err != nil || again != out {
			t.Fatalf("CleanPath(%q) = %q, which cleans to %q, %v", in, out, again, err)
		}
		u, err := url.ParseRequestURI(out)
		if err != nil {
			t.Fatalf("CleanPath(%q) = %q, which is not a request-target: %v", in, out, err)
		}
		if strings.Count(u.Path, "/") != strings.Count(strings.SplitN(out, "?", 2)[0], "/") {
			t.Fatalf("CleanPath(%q) = %q decodes to %q: a hidden slash", in, out, u.Path)
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("CleanPath(%q) = %q decodes to a dot segment in %q", in, out, u.Path)
			}
		}
	})
}
