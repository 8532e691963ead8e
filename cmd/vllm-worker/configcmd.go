package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// runConfig prints the effective configuration (secrets redacted) and the exact
// engine command line.
func runConfig(args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	cfg, err := loadConfig(environ, stderr)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		self = "vllm-worker"
	}
	argv := cfg.EngineArgv(port, self)
	if cfg.Engine.URL != "" {
		argv = []string{} // an external engine: no child process
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // "<redacted>" stays readable
		return enc.Encode(map[string]any{"config": cfg.Redacted(), "engine_argv": argv, "warnings": cfg.Warnings})
	}
	red := cfg.Redacted()
	sections := make([]string, 0, len(red))
	for k := range red {
		if k != "warnings" { // printed after the sections
			sections = append(sections, k)
		}
	}
	sort.Strings(sections)
	for _, s := range sections {
		fmt.Fprintf(stdout, "[%s]\n", s)
		printSection(stdout, red[s])
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stdout, "warning:", w)
	}
	if cfg.Engine.URL != "" {
		fmt.Fprintln(stdout, "\nengine: external at", cfg.Engine.URL, "(no child process)")
		return nil
	}
	fmt.Fprintln(stdout, "\nengine command:")
	fmt.Fprintln(stdout, "  "+shellJoin(argv))
	return nil
}

func printSection(w io.Writer, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		fmt.Fprintf(w, "  %v\n", v)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(m[k])
		fmt.Fprintf(w, "  %s = %s\n", k, strings.TrimSpace(b.String()))
	}
}

// shellJoin quotes argv so it can be pasted into a shell.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`!*?[](){}<>|&;#~") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
