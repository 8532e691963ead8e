package fakerunpod

import (
	"encoding/json"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Faults are injected into stream and done POSTs. Each POST (a job and body) is
// faulted at most once, so its retry succeeds; which POSTs are hit is a
// deterministic function of the job id and body.
type Faults struct {
	StreamFail float64 // fraction of stream POSTs answered 500
	DoneFail   float64 // fraction of done POSTs answered 500
	StreamDrop float64 // fraction of stream POSTs whose connection is closed unanswered
	DoneDrop   float64 // fraction of done POSTs whose connection is closed unanswered
}

// SetFaults sets the faults of the POSTs to come.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// SetPostLatency sets how long the stream and done POSTs to come take.
func (s *Server) SetPostLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// FailStreamForGood answers the nth distinct stream POST of a job (1-based, by
// body: its retries carry the same body) with 500 on every try: a stream item
// that can never be delivered.
func (s *Server) FailStreamForGood(jobID string, nth int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.permanent[jobID] = nth
}

// delay waits the POST latency, or until the client leaves.
func (s *Server) delay(r *http.Request) bool {
	s.mu.Lock()
	d := s.latency
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// FailTakes answers the next n job-take calls (single or batch) with status,
// e.g. 429 (with Retry-After) or 400, instead of jobs.
func (s *Server) FailTakes(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.takeErr.status, s.takeErr.n = status, n
}

func (s *Server) handleTake(w http.ResponseWriter, r *http.Request, batch bool) {
	q := r.URL.Query()
	size := 1
	if batch {
		n, err := strconv.Atoi(q.Get("batch_size"))
		if err != nil || n < 1 {
			http.Error(w, "batch_size must be a positive integer", http.StatusBadRequest)
			return
		}
		size = n
	}
	take := Take{Batch: batch, BatchSize: size, JobInProgress: q.Get("job_in_progress")}
	s.mu.Lock()
	if s.takeErr.n > 0 {
		s.takeErr.n--
		status := s.takeErr.status
		take.Status = status
		s.takes = append(s.takes, take)
		s.notifyLocked()
		s.mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", s.o.RetryAfter)
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	s.mu.Unlock()

	deadline := s.longPoll()
	defer stopTimer(deadline)
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			n := min(size, len(s.queue))
			jobs := s.queue[:n:n]
			s.queue = s.queue[n:]
			for _, j := range jobs {
				s.taken[j.ID] = true
				s.order = append(s.order, j.ID)
				s.times[j.ID] = &JobTimes{Taken: time.Now()}
			}
			s.flight += n
			s.maxFl = max(s.maxFl, s.flight)
			take.Status, take.Jobs = http.StatusOK, n
			s.takes = append(s.takes, take)
			s.notifyLocked()
			s.mu.Unlock()
			writeJobs(w, jobs, batch)
			return
		}
		ch := s.changed
		s.mu.Unlock()
		if !waitChange(r, ch, deadline) {
			s.mu.Lock()
			take.Status = http.StatusNoContent
			s.takes = append(s.takes, take)
			s.notifyLocked()
			s.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
}

// writeJobs answers a take: one job object, or a list for a batch take.
func writeJobs(w http.ResponseWriter, jobs []Job, batch bool) {
	objs := make([]map[string]json.RawMessage, len(jobs))
	for i, j := range jobs {
		id, _ := json.Marshal(j.ID)
		objs[i] = map[string]json.RawMessage{"id": id}
		if j.Input != nil {
			objs[i]["input"] = j.Input
		}
	}
	var body []byte
	var err error
	if batch {
		body, err = json.Marshal(objs)
	} else {
		body, err = json.Marshal(objs[0])
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	deadline := s.longPoll()
	defer stopTimer(deadline)
	for {
		s.mu.Lock()
		if len(s.stops) > 0 {
			ids := s.stops
			s.stops = nil
			for _, id := range ids {
				if s.taken[id] {
					s.taken[id] = false
					s.flight--
				}
			}
			s.notifyLocked()
			s.mu.Unlock()
			body, _ := json.Marshal(map[string][]string{"jobsToStop": ids})
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
			return
		}
		ch := s.changed
		s.mu.Unlock()
		if !waitChange(r, ch, deadline) {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
}

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := Ping{Version: q.Get("runpod_version"), At: time.Now(), HasJobID: q.Has("job_id")}
	if ids := q.Get("job_id"); ids != "" {
		p.JobIDs = strings.Split(ids, ",")
	}
	s.mu.Lock()
	s.pings = append(s.pings, p)
	s.notifyLocked()
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request, job string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.posting[job]++
	s.maxPost[job] = max(s.maxPost[job], s.posting[job])
	nth := slices.Index(s.bodies[job], string(body)) + 1
	if nth == 0 {
		s.bodies[job] = append(s.bodies[job], string(body))
		nth = len(s.bodies[job])
	}
	failForGood := s.permanent[job] == nth
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.posting[job]--
		s.mu.Unlock()
	}()
	if !s.delay(r) {
		return
	}
	if failForGood {
		http.Error(w, "injected permanent fault", http.StatusInternalServerError)
		return
	}
	if s.fault(w, "stream", job, body) {
		return
	}
	var v struct {
		Output json.RawMessage `json:"output"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Output == nil {
		http.Error(w, `the body must be {"output": ...}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.streams[job] = append(s.streams[job], streamItem{output: v.Output, isStream: r.URL.Query().Get("isStream")})
	if t := s.times[job]; t != nil {
		t.StreamPosts = append(t.StreamPosts, time.Now())
	}
	s.notifyLocked()
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleDone(w http.ResponseWriter, r *http.Request, job string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if !s.delay(r) {
		return
	}
	if s.fault(w, "done", job, body) {
		return
	}
	d := Done{IsStream: r.URL.Query().Get("isStream") == "true", Body: body}
	var v struct {
		Output  json.RawMessage `json:"output"`
		Error   string          `json:"error"`
		StopPod bool            `json:"stopPod"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		http.Error(w, "the body must be a JSON object", http.StatusBadRequest)
		return
	}
	d.Error, d.StopPod = v.Error, v.StopPod
	if v.Output != nil {
		_ = json.Unmarshal(v.Output, &d.Output) // stays nil when output is no list
	}
	s.mu.Lock()
	s.dones[job] = append(s.dones[job], d)
	if t := s.times[job]; t != nil && t.Done.IsZero() {
		t.Done = time.Now()
	}
	if s.taken[job] {
		s.taken[job] = false
		s.flight--
	}
	s.notifyLocked()
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// fault injects the configured fault into a POST, once per job and body. It
// reports whether the request was answered (or dropped) by it.
func (s *Server) fault(w http.ResponseWriter, route, job string, body []byte) bool {
	key := route + "\x00" + job + "\x00" + string(body)
	s.mu.Lock()
	fail, drop := s.faults.DoneFail, s.faults.DoneDrop
	if route == "stream" {
		fail, drop = s.faults.StreamFail, s.faults.StreamDrop
	}
	hit := ""
	if !s.faulted[key] {
		switch {
		case fraction(key, "fail") < fail:
			hit = "fail"
		case fraction(key, "drop") < drop:
			hit = "drop"
		}
	}
	if hit != "" {
		s.faulted[key] = true
		s.nFaults++
		s.notifyLocked()
	}
	s.mu.Unlock()
	switch hit {
	case "fail":
		http.Error(w, "injected fault", http.StatusInternalServerError)
		return true
	case "drop":
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	}
	return false
}

// fraction maps key and salt to [0, 1) deterministically.
func fraction(key, salt string) float64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, salt)
	_, _ = io.WriteString(h, key)
	return float64(h.Sum64()%10000) / 10000
}

// longPoll is the deadline of one long poll; nil when long polls are off.
func (s *Server) longPoll() *time.Timer {
	if s.o.LongPoll < 0 {
		return nil
	}
	return time.NewTimer(s.o.LongPoll)
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
