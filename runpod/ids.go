package runpod

import (
	"crypto/rand"
	"fmt"
)

// Counts are RunPod's endpoint-health job counters (/health's "jobs").
type Counts struct {
	Completed  int64 `json:"completed"`
	Failed     int64 `json:"failed"`
	InProgress int64 `json:"inProgress"`
	InQueue    int64 `json:"inQueue"`
	Retried    int64 `json:"retried"`
}

// NewID returns a random UUID (version 4): a job id, or a worker id when RunPod
// gives none.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
