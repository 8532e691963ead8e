package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/vllm-worker/vllm-worker/check"
)

const checkUsage = `usage: vllm-worker check URL [--api-key KEY] [--model M] [--json] [--timeout D] [--total-timeout D]
       vllm-worker check --engine URL [same flags]

  URL           a worker (http://127.0.0.1:8000) or a RunPod endpoint (https://api.runpod.ai/v2/<ID>):
                exercise it the way its users do
  --engine URL  an OpenAI-compatible server's root (a vLLM release before it is deployed):
                check what the worker relies on in an engine

Exit code: 0 every check passed, 1 a check failed (or the URL did not answer), 2 bad usage.`

// runCheck is `vllm-worker check`: it runs the checks of package check against
// a worker, a RunPod endpoint or an engine and prints a table, or one JSON
// document with --json.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, checkUsage)
		fmt.Fprintln(stderr, "\nflags:")
		fs.PrintDefaults()
	}
	engineURL := fs.String("engine", "", "check an OpenAI-compatible engine at this root URL instead of a worker")
	apiKey := fs.String("api-key", "", "sent as Authorization: Bearer KEY")
	model := fs.String("model", "", "the model to ask for (default: the first of /models)")
	asJSON := fs.Bool("json", false, "print one JSON document instead of a table")
	timeout := fs.Duration("timeout", check.DefaultTimeout, "time limit of each check")
	total := fs.Duration("total-timeout", check.DefaultTotalTimeout, "time limit of the whole run")
	// The URL may come before, between or after the flags.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return &exitError{code: 2, msg: err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	usageErr := func(msg string) error {
		fmt.Fprintln(stderr, checkUsage)
		return &exitError{code: 2, msg: "check: " + msg}
	}
	var (
		target check.Target
		err    error
	)
	switch {
	case len(positional) > 1:
		return usageErr(fmt.Sprintf("one URL, not %d", len(positional)))
	case len(positional) == 1 && *engineURL != "":
		return usageErr("a worker URL or --engine URL, not both")
	case len(positional) == 1:
		target, err = check.ParseWorker(positional[0])
	case *engineURL != "":
		target, err = check.ParseEngine(*engineURL)
	default:
		return usageErr("no URL")
	}
	if err != nil {
		return usageErr(err.Error())
	}
	if *timeout <= 0 || *total <= 0 {
		return usageErr("--timeout and --total-timeout must be positive")
	}
	report := check.Run(ctx, target, check.Options{
		APIKey: *apiKey, Model: *model, Timeout: *timeout, TotalTimeout: *total,
	})
	if *asJSON {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteTable(stdout)
	}
	if err != nil {
		return err
	}
	switch {
	case report.Unreachable:
		return &exitError{code: 1, msg: "check: " + report.Checks[0].Error}
	case !report.OK:
		return &exitError{code: 1, msg: fmt.Sprintf("check: %d of %d checks failed", report.Failed(), len(report.Checks))}
	}
	return nil
}
