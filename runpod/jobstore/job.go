package jobstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Status is a job's state, as RunPod names it.
type Status string

// The job statuses of RunPod's endpoint API.
const (
	StatusInQueue    Status = "IN_QUEUE"
	StatusInProgress Status = "IN_PROGRESS"
	StatusCompleted  Status = "COMPLETED"
	StatusFailed     Status = "FAILED"
	StatusCancelled  Status = "CANCELLED"
	StatusTimedOut   Status = "TIMED_OUT"
)

// Terminal reports whether s is a final status.
func (s Status) Terminal() bool {
	return s != StatusInQueue && s != StatusInProgress
}

// Request is a job as /run and /runsync receive it.
type Request struct {
	Input   json.RawMessage `json:"input"`
	Webhook string          `json:"webhook,omitempty"`
	Policy  *Policy         `json:"policy,omitempty"`
}

// Policy is a job's execution policy. Its times are milliseconds, kept as they
// came so that any number is refused with a message instead of overflowing;
// Store.Submit checks them against RunPod's limits.
type Policy struct {
	ExecutionTimeout json.RawMessage `json:"executionTimeout,omitempty"`
	TTL              json.RawMessage `json:"ttl,omitempty"`
}

// RunPod's limits of a job policy (docs: executionTimeout at least 5 s, ttl at
// least 10 s, both at most 7 days). Zero or absent means "not set".
const (
	minExecutionTimeout = 5 * time.Second
	minTTL              = 10 * time.Second
	maxPolicyTime       = 7 * 24 * time.Hour
)

// durations checks the policy's times and returns them (zero: not set), each
// millisecond of the request worth unit (time.Millisecond but in tests).
func (p *Policy) durations(unit time.Duration) (timeout, ttl time.Duration, err error) {
	if p == nil {
		return 0, 0, nil
	}
	if timeout, err = policyTime("policy.executionTimeout", p.ExecutionTimeout, minExecutionTimeout, unit); err != nil {
		return 0, 0, err
	}
	ttl, err = policyTime("policy.ttl", p.TTL, minTTL, unit)
	return timeout, ttl, err
}

// policyTime reads one policy time in whole milliseconds, within [least,
// maxPolicyTime], or 0 (not set).
func policyTime(field string, raw json.RawMessage, least, unit time.Duration) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	bad := &RequestError{Field: field, Message: fmt.Sprintf("must be whole milliseconds from %d to %d (RunPod's limits), or 0 for none",
		least.Milliseconds(), maxPolicyTime.Milliseconds())}
	var ms float64
	if err := json.Unmarshal(raw, &ms); err != nil || ms != math.Trunc(ms) {
		return 0, bad
	}
	if ms == 0 {
		return 0, nil
	}
	// Compared as milliseconds, before any multiplication that could overflow.
	if ms < float64(least.Milliseconds()) || ms > float64(maxPolicyTime.Milliseconds()) {
		return 0, bad
	}
	return time.Duration(ms) * unit, nil
}

// Snapshot is a job's state as /status reports it.
type Snapshot struct {
	ID            string            `json:"id"`
	Status        Status            `json:"status"`
	Output        []json.RawMessage `json:"output,omitempty"`
	Error         string            `json:"error,omitempty"`
	DelayTime     int64             `json:"delayTime"`     // ms in the queue
	ExecutionTime int64             `json:"executionTime"` // ms running
}

// StreamItem wraps one item in /stream's answer.
type StreamItem struct {
	Output json.RawMessage `json:"output"`
}

// StreamSnapshot is /stream's answer: the items since the previous call.
type StreamSnapshot struct {
	ID     string       `json:"id"`
	Status Status       `json:"status"`
	Stream []StreamItem `json:"stream"`
	Error  string       `json:"error,omitempty"`
}

// job is one job of the store. Every field but the immutable ones is guarded by
// the store's mutex.
type job struct {
	id      string
	webhook string
	ttl     time.Duration
	timeout time.Duration

	input       json.RawMessage // until runJob has parsed it
	inputBytes  int64           // counted in Store.bytes until the job starts
	outputBytes int64           // its items and error, counted until it is evicted

	status   Status
	items    []json.RawMessage
	streamed int // items already returned by /stream
	err      string
	created  time.Time
	started  time.Time
	finished time.Time

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when the job is final
	changed chan struct{} // closed and replaced whenever items or status change
}

func (j *job) snapshot() Snapshot {
	s := Snapshot{ID: j.id, Status: j.status, Error: j.err}
	if j.status == StatusCompleted {
		s.Output = j.items
		if s.Output == nil {
			s.Output = []json.RawMessage{}
		}
	}
	now := time.Now()
	switch {
	case j.started.IsZero() && j.finished.IsZero():
		s.DelayTime = now.Sub(j.created).Milliseconds()
	case j.started.IsZero():
		s.DelayTime = j.finished.Sub(j.created).Milliseconds()
	default:
		s.DelayTime = j.started.Sub(j.created).Milliseconds()
		end := now
		if !j.finished.IsZero() {
			end = j.finished
		}
		s.ExecutionTime = end.Sub(j.started).Milliseconds()
	}
	return s
}

// notify wakes every waiter of the job.
func (j *job) notify() {
	close(j.changed)
	j.changed = make(chan struct{})
}
