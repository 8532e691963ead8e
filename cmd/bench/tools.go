package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// installBudget bounds apt-get update plus install.
const installBudget = 3 * time.Minute

// findTool returns the path of a program the bench measures against (nginx) or
// with (wrk): explicit when given, else what look finds, else, when install is
// set, the first of Debian's pkgs that apt-get installs. On failure it returns
// "" and a note saying why, for the report: the bench then runs without it.
func findTool(ctx context.Context, name, explicit string, install bool, pkgs []string, look func() string, log io.Writer) (path, note string) {
	if explicit != "" {
		return explicit, ""
	}
	if p := look(); p != "" {
		return p, ""
	}
	if !install {
		return "", name + " is not installed (-install-tools=false)"
	}
	if os.Geteuid() != 0 {
		return "", name + " is not installed and the bench is not root, so it cannot apt-get install it"
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", name + " is not installed and there is no apt-get"
	}
	fmt.Fprintf(log, "bench: %s is missing; installing it with apt-get (%s)\n", name, strings.Join(pkgs, ", else "))
	ctx, cancel := context.WithTimeout(ctx, installBudget)
	defer cancel()
	var out tail
	out.max = 2 << 10
	apt := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = &out, &out
		return cmd.Run()
	}
	if err := apt("update"); err != nil {
		return "", fmt.Sprintf("apt-get update failed (%v): %s", err, lastLine(out.String()))
	}
	for _, pkg := range pkgs {
		if err := apt("install", "-y", "--no-install-recommends", pkg); err == nil {
			if p := look(); p != "" {
				return p, ""
			}
		}
	}
	return "", fmt.Sprintf("apt-get install %s failed: %s", strings.Join(pkgs, " / "), lastLine(out.String()))
}
