// Package dashboard draws a live view of the gateway on the terminal it runs
// in: totals and rates, edge state, reloads, routes, backends and the last log
// lines. It redraws about once a second on the terminal's alternate screen
// with plain ANSI escape sequences, and gives the screen back as it was when
// it stops.
//
// It costs the request path nothing: it reads one snapshot per frame through
// the function it is given and adds no per-request hook.
package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/altair-gateway/altair/internal/stats"
)

// Escape sequences. The dashboard uses the alternate screen so that the
// terminal's scrollback is untouched, hides the cursor and turns off
// auto-wrap (lines are cut to the width, never wrapped); leaving undoes all
// three. Synchronized output (mode 2026) lets terminals that know it show a
// frame at once; others ignore it.
const (
	enterScreen = "\x1b[?1049h\x1b[?25l\x1b[?7l"
	leaveScreen = "\x1b[?7h\x1b[?25h\x1b[?1049l"
	syncBegin   = "\x1b[?2026h"
	syncEnd     = "\x1b[?2026l"
)

// DefaultInterval is the time between two frames.
const DefaultInterval = time.Second

// Options configure a Dashboard.
type Options struct {
	// Snapshot returns the gateway's state; the dashboard calls it once a
	// frame, with latency.
	Snapshot func(latency bool) stats.Snapshot
	// Out is the terminal to draw on.
	Out io.Writer
	// Size returns the terminal's width and height; called once a frame.
	// Default: the size of Out, which must then be an *os.File.
	Size func() (width, height int, err error)
	// Addr is the listen address shown in the header.
	Addr string
	// Interval is the time between frames. Default DefaultInterval.
	Interval time.Duration
	// Color draws states in colour (green, yellow, red). Without it nothing
	// but the cursor moves is written: NO_COLOR.
	Color bool
	// Logs feeds the recent-logs pane; nil shows none.
	Logs *Logs
	// HoldLogs stops Logs from writing to its output while the dashboard
	// draws, because that output is the same terminal.
	HoldLogs bool
}

// Dashboard draws frames until it is closed. Start it once.
type Dashboard struct {
	opts   Options
	cancel context.CancelFunc
	done   chan struct{}

	// Owned by the drawing goroutine.
	prev     *stats.Snapshot
	wasReady bool
	buf      bytes.Buffer
}

// New returns a Dashboard; Start begins drawing.
func New(opts Options) *Dashboard {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Size == nil {
		f, _ := opts.Out.(*os.File)
		opts.Size = func() (int, int, error) {
			if f == nil {
				return 0, 0, fmt.Errorf("dashboard output is not a terminal")
			}
			return termSize(f)()
		}
	}
	return &Dashboard{opts: opts, done: make(chan struct{})}
}

// Start switches to the alternate screen, draws the first frame and draws
// again every Interval until ctx ends or Close is called. If writing to the
// terminal fails, it stops drawing and gives the logs back to their output.
func (d *Dashboard) Start(ctx context.Context) {
	ctx, d.cancel = context.WithCancel(ctx)
	if d.opts.Logs != nil && d.opts.HoldLogs {
		d.opts.Logs.hold()
	}
	go d.run(ctx)
}

// Close stops drawing and restores the screen and the cursor, waiting until
// it is done. It is safe to call more than once, and without Start.
func (d *Dashboard) Close() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	<-d.done
}

func (d *Dashboard) run(ctx context.Context) {
	defer close(d.done)
	defer d.restore()
	if _, err := io.WriteString(d.opts.Out, enterScreen); err != nil {
		return
	}
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	for {
		if err := d.draw(); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Dashboard) restore() {
	leave := func() { _, _ = io.WriteString(d.opts.Out, leaveScreen) }
	if d.opts.Logs != nil && d.opts.HoldLogs {
		d.opts.Logs.release(leave)
		return
	}
	leave()
}

// draw writes one frame: each line at its row, cleared first, then the rest
// of the screen cleared, in one write.
func (d *Dashboard) draw() error {
	cur := d.opts.Snapshot(true)
	w, h, err := d.opts.Size()
	if err != nil || w <= 0 || h <= 0 {
		w, h = 80, 24
	}
	lines := d.render(d.prev, &cur, w, h)
	d.prev = &cur

	b := &d.buf
	b.Reset()
	b.WriteString(syncBegin)
	for i, l := range lines {
		fmt.Fprintf(b, "\x1b[%d;1H\x1b[2K", i+1)
		b.WriteString(l)
	}
	if len(lines) < h {
		fmt.Fprintf(b, "\x1b[%d;1H\x1b[J", len(lines)+1)
	}
	b.WriteString(syncEnd)
	_, err = d.opts.Out.Write(b.Bytes())
	return err
}
