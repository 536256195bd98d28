package dashboard

import (
	"bytes"
	"io"
	"sync"
)

// maxLineBytes bounds one kept log line; a longer line is cut, so a runaway
// record cannot hold much memory.
const maxLineBytes = 2048

// Logs is the io.Writer the gateway's logger writes to when a dashboard may
// draw. It keeps the last lines for the dashboard's log pane and passes every
// write on to the real log output, except while a dashboard that shares the
// terminal with that output is drawing: raw lines would scribble over the
// screen. When that dashboard stops, writes go to the output again.
type Logs struct {
	mu      sync.Mutex
	out     io.Writer
	held    bool
	lines   []string // a ring of the last len(lines) lines
	next    int      // where the next line goes
	count   int      // lines kept, at most len(lines)
	partial []byte   // the start of a line whose newline has not come yet
}

// NewLogs returns a Logs that keeps the last n lines and writes through to out.
func NewLogs(out io.Writer, n int) *Logs {
	if n < 1 {
		n = 1
	}
	return &Logs{out: out, lines: make([]string, n)}
}

// Write keeps p's lines and, unless a dashboard holds the terminal, writes p
// to the output.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keep(p)
	if l.held || l.out == nil {
		return len(p), nil
	}
	return l.out.Write(p)
}

func (l *Logs) keep(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if room := maxLineBytes - len(l.partial); room > 0 {
				l.partial = append(l.partial, p[:min(len(p), room)]...)
			}
			return
		}
		line := p[:i]
		if len(l.partial) > 0 {
			room := max(maxLineBytes-len(l.partial), 0)
			line = append(l.partial, line[:min(len(line), room)]...)
			l.partial = l.partial[:0]
		}
		p = p[i+1:]
		if len(line) > maxLineBytes {
			line = line[:maxLineBytes]
		}
		l.lines[l.next] = string(line)
		l.next = (l.next + 1) % len(l.lines)
		l.count = min(l.count+1, len(l.lines))
	}
}

// Lines returns at most the last n complete lines, oldest first.
func (l *Logs) Lines(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, l.count)
	if n <= 0 {
		return nil
	}
	out := make([]string, n)
	start := l.next - n
	if start < 0 {
		start += len(l.lines)
	}
	for i := range out {
		out[i] = l.lines[(start+i)%len(l.lines)]
	}
	return out
}

// hold stops passing writes on to the output: a dashboard now draws on the
// same terminal.
func (l *Logs) hold() {
	l.mu.Lock()
	l.held = true
	l.mu.Unlock()
}

// release runs restore (which gives the terminal back) and passes writes on
// again, as one step: a record logged meanwhile waits, and then lands on the
// restored screen rather than on the dashboard's, which is about to vanish.
func (l *Logs) release(restore func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	restore()
	l.held = false
}

// Unkept returns a writer to the same output that is held along with l but
// keeps nothing for the pane: for the access log, whose line per request
// would push the gateway's own lines out of it.
func (l *Logs) Unkept() io.Writer { return unkept{l} }

type unkept struct{ l *Logs }

func (u unkept) Write(p []byte) (int, error) {
	u.l.mu.Lock()
	defer u.l.mu.Unlock()
	if u.l.held || u.l.out == nil {
		return len(p), nil
	}
	return u.l.out.Write(p)
}
