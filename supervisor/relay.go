package supervisor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

const (
	// maxLineBytes caps one relayed line; the rest of the line is dropped and counted.
	maxLineBytes = 16 << 10
	// progressEvery is how often a progress bar redrawn with '\r' (tqdm) is relayed; its final
	// state is always relayed when the line ends.
	progressEvery = 5 * time.Second
)

// relay owns one output pipe of the child: it reads it to the end, then closes it.
func (e *Engine) relay(wg *sync.WaitGroup, f *os.File, stream string) {
	defer wg.Done()
	defer f.Close()
	r := lineRelay{
		log:  e.log.With().Str("component", "engine").Str("stream", stream).Logger(),
		keep: e.lines.Add,
		seen: func(s string) {
			e.lastOut.Store(time.Now().UnixNano())
			e.phase.Observe(s)
		},
		now:           time.Now,
		progressEvery: progressEvery,
	}
	if err := r.copy(f); err != nil && !errors.Is(err, os.ErrClosed) {
		e.log.Warn().Err(err).Str("stream", stream).Msg("reading engine output")
	}
}

// lineRelay turns a byte stream into log lines.
type lineRelay struct {
	log           zerolog.Logger
	keep          func(line string) // every relayed line
	seen          func(text string) // every non-blank segment, progress updates included
	now           func() time.Time
	progressEvery time.Duration
}

// copy relays rd until its end. A segment ended by '\r' is a progress update: it is relayed
// at most every progressEvery, and the last one is relayed when the line ends, so that a tqdm
// bar neither floods the log nor becomes one giant line.
func (r lineRelay) copy(rd io.Reader) error {
	lr := newLineReader(rd, maxLineBytes)
	var (
		pending      string // the last progress update not relayed yet
		lastProgress time.Time
	)
	for {
		text, term, dropped, err := lr.next()
		if err != nil {
			if pending != "" {
				r.emit(pending)
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		line := string(text)
		if dropped > 0 {
			line += fmt.Sprintf(" ...[truncated %d bytes]", dropped)
		}
		blank := strings.TrimSpace(line) == ""
		if !blank {
			r.seen(line)
		}
		if term == '\r' {
			if blank {
				continue
			}
			pending = line
			if now := r.now(); now.Sub(lastProgress) >= r.progressEvery {
				r.emit(pending)
				pending, lastProgress = "", now
			}
			continue
		}
		// '\n' or the end of input: the line is complete.
		if !blank {
			r.emit(line)
		} else if pending != "" {
			r.emit(pending) // "bar\r\n": the bar's final state
		}
		pending, lastProgress = "", time.Time{}
	}
}

func (r lineRelay) emit(line string) {
	r.keep(line)
	r.log.Info().Msg(line)
}

// lineReader splits a stream at '\n' and '\r', capping each segment.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(rd io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(rd, 64<<10), max: max}
}

// next returns the next segment without its terminator, the terminator ('\n', '\r', or 0 for
// an unterminated last segment), and how many bytes past max were dropped. text is valid until
// the next call. At the end of input err is io.EOF (or the read error) and text is empty.
func (lr *lineReader) next() (text []byte, term byte, dropped int, err error) {
	lr.buf = lr.buf[:0]
	for {
		if lr.r.Buffered() == 0 {
			if _, err := lr.r.Peek(1); err != nil {
				if len(lr.buf) > 0 || dropped > 0 {
					return lr.buf, 0, dropped, nil // the error comes again on the next call
				}
				return nil, 0, 0, err
			}
		}
		chunk, _ := lr.r.Peek(lr.r.Buffered())
		i := bytes.IndexAny(chunk, "\r\n")
		n := len(chunk)
		if i >= 0 {
			n = i
		}
		keep := min(n, lr.max-len(lr.buf))
		lr.buf = append(lr.buf, chunk[:keep]...)
		dropped += n - keep
		if i >= 0 {
			term = chunk[i]
			lr.r.Discard(i + 1)
			return lr.buf, term, dropped, nil
		}
		lr.r.Discard(n)
	}
}

// ring keeps the last lines of output.
type ring struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

func newRing(n int) *ring { return &ring{lines: make([]string, n)} }

// Add appends a line, forgetting the oldest when full.
func (r *ring) Add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[r.next] = line
	r.next++
	if r.next == len(r.lines) {
		r.next, r.full = 0, true
	}
}

// Lines returns a copy of the kept lines, oldest first.
func (r *ring) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]string(nil), r.lines[:r.next]...)
	}
	out := make([]string, 0, len(r.lines))
	out = append(out, r.lines[r.next:]...)
	return append(out, r.lines[:r.next]...)
}
