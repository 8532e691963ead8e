package serverless

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/vllm-worker/vllm-worker/runpod"
)

// RunLocal is the --test_input mode: it runs one job {"id"?, "input": {...}}
// against the engine, writes each streamed item as one JSON line to out, then
// the final result {"output":[...]} or {"error":"..."} as the last line. It
// returns an error when the job has no input or failed. Unlike RunPod's SDK,
// streamed jobs really run.
func RunLocal(ctx context.Context, r jobRunner, job json.RawMessage, out io.Writer) error {
	var j struct {
		ID    json.RawMessage `json:"id"`
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(job, &j); err != nil {
		return fmt.Errorf("test input: must be a JSON object {\"input\": {...}}: %w", err)
	}
	if in := bytes.TrimSpace(j.Input); len(in) == 0 || string(in) == "null" {
		return errors.New(`test input: the job has no "input"`)
	}
	id, ok := takenJobID(j.ID)
	if !ok {
		id = "local_test"
	}
	in, err := runpod.ParseInput(j.Input)
	var items []json.RawMessage
	if err == nil {
		var emit runpod.Emit
		if in.Stream {
			emit = func(item json.RawMessage) error { return writeJSONLine(out, item) }
		}
		items, err = r.Run(ctx, id, in, emit)
	}
	if err != nil {
		if werr := writeJSONLine(out, resultBody(nil, err, false)); werr != nil {
			return fmt.Errorf("write result: %w", werr)
		}
		return fmt.Errorf("job %s failed: %w", id, err)
	}
	if err := writeJSONLine(out, resultBody(items, nil, false)); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// writeJSONLine writes v compacted onto one line.
func writeJSONLine(w io.Writer, v []byte) error {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return fmt.Errorf("encode item: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}
