package runpod

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
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
	Policy  *struct {
		ExecutionTimeout int64 `json:"executionTimeout,omitempty"` // ms
		TTL              int64 `json:"ttl,omitempty"`              // ms
	} `json:"policy,omitempty"`
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

// Counts are RunPod's endpoint-health job counters.
type Counts struct {
	Completed  int64 `json:"completed"`
	Failed     int64 `json:"failed"`
	InProgress int64 `json:"inProgress"`
	InQueue    int64 `json:"inQueue"`
	Retried    int64 `json:"retried"`
}

// job is one job of the store. Every field but the immutable ones is guarded by
// the store's mutex.
type job struct {
	id      string
	input   json.RawMessage
	webhook string
	ttl     time.Duration
	timeout time.Duration

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

// newJobID returns a random UUID (version 4).
func newJobID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
