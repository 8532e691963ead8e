package runpod

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Webhook returns a deliverer of final results to a job's webhook URL: a JSON
// POST of the job's snapshot, tried up to three times (1 s, then 2 s apart) on
// network errors and 5xx answers.
func Webhook(client *http.Client) func(ctx context.Context, url string, result Snapshot) error {
	return func(ctx context.Context, url string, result Snapshot) error {
		body, err := json.Marshal(result)
		if err != nil {
			return fmt.Errorf("encode webhook body: %w", err)
		}
		var last error
		for attempt, wait := 0, time.Second; attempt < 3; attempt, wait = attempt+1, wait*2 {
			if attempt > 0 {
				select {
				case <-time.After(wait / 2):
				case <-ctx.Done():
					return fmt.Errorf("webhook %s: %w (last: %v)", url, ctx.Err(), last)
				}
			}
			last = postOnce(ctx, client, url, body)
			if last == nil {
				return nil
			}
			if _, permanent := last.(permanentError); permanent {
				return last
			}
		}
		return last
	}
}

type permanentError struct{ error }

func postOnce(ctx context.Context, client *http.Client, url string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return permanentError{fmt.Errorf("webhook %q: %w", url, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("webhook %s: status %d", url, resp.StatusCode)
	default:
		return permanentError{fmt.Errorf("webhook %s: status %d", url, resp.StatusCode)}
	}
}
