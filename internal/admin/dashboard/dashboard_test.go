package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/altair-gateway/altair/internal/stats"
	"github.com/altair-gateway/altair/internal/upstream"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

var bounds = []float64{.001, .0025, .005, .01, .025, .05, .1}

// snapshots returns two snapshots two seconds apart: 200 requests, 10 of
// them 5xx, half in (1ms, 2.5ms] and half in (25ms, 50ms].
func snapshots() (prev, cur *stats.Snapshot) {
	prev = &stats.Snapshot{
		Time:     t0,
		Version:  "v1.2.3",
		Ready:    true,
		Requests: 1000,
		Routes: []stats.Route{
			{Name: "users", Upstream: "users-pool", Requests: 900},
			{Name: "web", Upstream: "web", Requests: 100},
		},
		Responses: [6]uint64{0, 0, 990, 0, 5, 5},
		Latency:   stats.Histogram{Bounds: bounds, Counts: []uint64{0, 1000, 1000, 1000, 1000, 1000, 1000}, Count: 1000},
	}
	cur = &stats.Snapshot{
		Time:        t0.Add(2 * time.Second),
		Version:     "v1.2.3",
		Uptime:      3*time.Hour + 4*time.Minute + 5*time.Second,
		Ready:       true,
		Connections: 7,
		Requests:    1200,
		InFlight:    3,
		Responses:   [6]uint64{0, 0, 1180, 2, 3 + 5, 5 + 10},
		Routes: []stats.Route{
			{Name: "users", Upstream: "users-pool", Requests: 1050, Responses: [6]uint64{0, 0, 1040, 0, 0, 10}},
			{Name: "web", Upstream: "web", Requests: 150},
			{Name: "new-in-reload", Upstream: "web", Requests: 0},
		},
		Upstreams: []upstream.PoolStatus{
			{Name: "users-pool", Backends: []upstream.BackendStatus{
				{URL: "http://10.0.0.11:8080", Healthy: true, Breaker: "closed", InFlight: 2, Failures: 0},
				{URL: "http://10.0.0.12:8080", Healthy: false, Breaker: "open", Failures: 17},
				{URL: "http://10.0.0.13:8080", Healthy: true, Ejected: true, Breaker: "half-open", Failures: 5},
			}},
			{Name: "web", Backends: []upstream.BackendStatus{
				{URL: "http://10.0.0.20:3000", Healthy: true, Breaker: "closed", InFlight: 1},
			}},
		},
		Edge:    stats.Edge{AllowEntries: 1, DenyEntries: 4, BlockedIPs: 2, BlocksTotal: 12345, RateLimitKeys: 9},
		Reloads: stats.Reloads{Success: 3, Failure: 1, LastError: "routes[0].upstream (line 4): unknown upstream \"nope\""},
		Latency: stats.Histogram{Bounds: bounds, Counts: []uint64{0, 1100, 1100, 1100, 1100, 1200, 1200}, Count: 1200},
	}
	return prev, cur
}

func TestMeasure(t *testing.T) {
	prev, cur := snapshots()
	w := measure(prev, cur)
	if !w.ok || w.seconds != 2 {
		t.Fatalf("measure() = ok %v over %vs, want ok over 2s", w.ok, w.seconds)
	}
	if w.reqRate != 100 {
		t.Errorf("reqRate = %v, want 100 (200 requests in 2s)", w.reqRate)
	}
	// Responses in the window: 190 2xx, 2 3xx, 3 4xx and 10 5xx.
	if want := 10.0 / 205; !w.errOK || math.Abs(w.errRate-want) > 1e-9 {
		t.Errorf("errRate = %v (ok %v), want %v", w.errRate, w.errOK, want)
	}
	// 100 in (1ms, 2.5ms], 100 in (25ms, 50ms]: p50 is the top of the first,
	// p99 near the top of the second.
	if !w.latOK || math.Abs(w.p50-0.0025) > 1e-9 || w.p99 < 0.049 || w.p99 > 0.05 {
		t.Errorf("p50, p99 = %v, %v (ok %v), want 0.0025 and ~0.0495", w.p50, w.p99, w.latOK)
	}
	if got := w.routeRate["users"]; got != 75 {
		t.Errorf("routeRate[users] = %v, want 75", got)
	}
	if got := w.routeRate["web"]; got != 25 {
		t.Errorf("routeRate[web] = %v, want 25", got)
	}
	if _, ok := w.routeRate["new-in-reload"]; ok {
		t.Errorf("routeRate has a rate for a route the earlier snapshot did not have")
	}

	if w := measure(nil, cur); w.ok || w.latOK || w.errOK {
		t.Errorf("measure(nil, cur) = %+v, want no rates on the first frame", w)
	}
	if w := measure(cur, cur); w.ok {
		t.Errorf("measure(cur, cur) over 0s reports rates")
	}
	// No traffic in the window: no error rate and no latency, not 0%.
	same := *cur
	same.Time = cur.Time.Add(time.Second)
	if w := measure(cur, &same); !w.ok || w.reqRate != 0 || w.errOK || w.latOK {
		t.Errorf("measure over an idle second = %+v, want rate 0 and no error rate or latency", w)
	}
	// A counter that goes back (it should not) is not a huge rate.
	back := *cur
	back.Time = cur.Time.Add(time.Second)
	back.Requests = 10
	if w := measure(cur, &back); w.reqRate != 0 {
		t.Errorf("reqRate after the counter went back = %v, want 0", w.reqRate)
	}
}

var escape = regexp.MustCompile("\x1b\\[[0-9;?]*[a-zA-Z]")

// visible strips colour codes.
func visible(s string) string { return escape.ReplaceAllString(s, "") }

func renderText(t *testing.T, d *Dashboard, prev, cur *stats.Snapshot, w, h int) []string {
	t.Helper()
	lines := d.render(prev, cur, w, h)
	if len(lines) > h {
		t.Errorf("render at %dx%d gave %d lines", w, h, len(lines))
	}
	for i, l := range lines {
		if n := utf8.RuneCountInString(visible(l)); n > w {
			t.Errorf("line %d is %d columns wide, more than %d: %q", i, n, w, visible(l))
		}
	}
	return lines
}

func TestRenderContent(t *testing.T) {
	prev, cur := snapshots()
	logs := NewLogs(nil, 10)
	fmt.Fprintln(logs, `{"time":"2026-11-23T10:00:01.5Z","level":"INFO","msg":"altair started","subsystem":"gateway","addr":"127.0.0.1:9777"}`)
	fmt.Fprintln(logs, `{"time":"2026-11-23T10:00:02Z","level":"WARN","msg":"backend down","backend":"http://10.0.0.12:8080"}`)
	d := New(Options{Addr: "127.0.0.1:9777", Logs: logs, Color: true})
	d.render(nil, prev, 120, 40) // the first frame: no rates
	lines := renderText(t, d, prev, cur, 120, 40)
	screen := visible(strings.Join(lines, "\n"))

	for _, want := range []string{
		"Altair v1.2.3", "up 3h4m5s", "listening on 127.0.0.1:9777", "ready",
		"Requests 1,200", "req/s 100 ", "in flight 3", "connections 7",
		"2xx 1,180", "3xx 2", "4xx 8", "5xx 15", "errors 4.9%", "p50 2.5ms", "p99 49.",
		"blocked IPs 2", "blocks 12,345", "rate-limit keys 9", "allow 1", "deny 4",
		"ok 3", "failed 1", `last error: routes[0].upstream (line 4): unknown upstream "nope"`,
		"10:00:01 INFO altair started subsystem=gateway addr=127.0.0.1:9777",
		"10:00:02 WARN backend down backend=http://10.0.0.12:8080",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	// Table rows, by their columns.
	for _, re := range []string{
		`(?m)^users\s+users-pool\s+1,050\s+75\.0\s+10$`,
		`(?m)^web\s+web\s+150\s+25\.0\s+0$`,
		`(?m)^new-in-reload\s+web\s+0\s+-\s+0$`,
		`(?m)^users-pool\s+http://10\.0\.0\.11:8080\s+up\s+closed\s+2\s+0$`,
		`(?m)^\s+http://10\.0\.0\.12:8080\s+down\s+open\s+0\s+17$`,
		`(?m)^\s+http://10\.0\.0\.13:8080\s+ejected\s+half-open\s+0\s+5$`,
		`(?m)^web\s+http://10\.0\.0\.20:3000\s+up\s+closed\s+1\s+0$`,
	} {
		if !regexp.MustCompile(re).MatchString(screen) {
			t.Errorf("screen has no line matching %s:\n%s", re, screen)
		}
	}
	// States are coloured: down and open red, up green, ejected yellow.
	raw := strings.Join(lines, "\n")
	for _, want := range []string{red + "down", red + "open", green + "up", yellow + "ejected", yellow + "half-open"} {
		if !strings.Contains(raw, want) {
			t.Errorf("screen lacks the coloured %q", visible(want))
		}
	}

	// A second frame on a stopped gateway says it is draining.
	cur.Ready = false
	screen = visible(strings.Join(renderText(t, d, prev, cur, 120, 40), "\n"))
	if !strings.Contains(screen, "draining") {
		t.Errorf("not-ready after ready: header lacks draining:\n%s", screen)
	}
	if screen := strings.Join(New(Options{}).render(nil, cur, 120, 40), "\n"); !strings.Contains(screen, "starting") {
		t.Errorf("not-ready at first: header lacks starting:\n%s", screen)
	}
}

func TestRenderNoColor(t *testing.T) {
	prev, cur := snapshots()
	logs := NewLogs(nil, 10)
	fmt.Fprintln(logs, `{"level":"ERROR","msg":"listener failed"}`)
	d := New(Options{Logs: logs, Color: false})
	for _, l := range renderText(t, d, prev, cur, 120, 40) {
		if strings.Contains(l, "\x1b") {
			t.Errorf("without colour, line has an escape sequence: %q", l)
		}
	}
}

func TestRenderNarrowAndShort(t *testing.T) {
	prev, cur := snapshots()
	logs := NewLogs(nil, 50)
	for i := range 30 {
		fmt.Fprintf(logs, `{"level":"INFO","msg":"line %d"}`+"\n", i)
	}
	for _, size := range [][2]int{{120, 40}, {80, 24}, {40, 12}, {20, 8}, {8, 3}, {1, 1}} {
		w, h := size[0], size[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			d := New(Options{Logs: logs, Color: true})
			lines := renderText(t, d, prev, cur, w, h)
			if h >= 12 && len(lines) != h {
				t.Errorf("render at %dx%d filled %d lines, want all %d", w, h, len(lines), h)
			}
		})
	}

	d := New(Options{Logs: logs})
	// 40 columns: lines are cut, ending in "…", never wrapped.
	lines := renderText(t, d, prev, cur, 40, 40)
	if !strings.HasSuffix(lines[2], "…") || utf8.RuneCountInString(lines[2]) != 40 {
		t.Errorf("a long line at 40 columns = %q, want it cut to 40 with …", lines[2])
	}
	// A short screen shares rows: each table keeps its heading, a cut table
	// says how many rows it hides, and the logs keep their newest lines.
	screen := strings.Join(renderText(t, d, prev, cur, 120, 17), "\n")
	for _, want := range []string{"ROUTE", "POOL", "RECENT LOGS", "… 3 more", "line 29"} {
		if !strings.Contains(screen, want) {
			t.Errorf("120x17 screen lacks %q:\n%s", want, screen)
		}
	}
	// Shorter still: backend health is what stays.
	screen = strings.Join(renderText(t, d, prev, cur, 120, 10), "\n")
	if !strings.Contains(screen, "POOL") || strings.Contains(screen, "ROUTE") || strings.Contains(screen, "RECENT LOGS") {
		t.Errorf("120x10 screen should keep the backends table alone:\n%s", screen)
	}
	screen = strings.Join(renderText(t, d, prev, cur, 120, 17), "\n")
	if strings.Contains(screen, "line 0\n") {
		t.Errorf("120x17 screen shows the oldest log line rather than the newest:\n%s", screen)
	}
}

func TestRenderCleansControlCharacters(t *testing.T) {
	_, cur := snapshots()
	cur.Reloads.LastError = "bad\x1b[2Jfile\nline"
	lines := New(Options{}).render(nil, cur, 200, 40)
	for _, l := range lines {
		if strings.ContainsAny(l, "\x1b\n") {
			t.Fatalf("line with a control character from the snapshot: %q", l)
		}
	}
	if !strings.Contains(strings.Join(lines, "\n"), "bad?[2Jfile?line") {
		t.Errorf("the cleaned last error is missing")
	}
}

func TestCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give uint64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {123456, "123,456"}, {1234567, "1,234,567"}}
	for _, tt := range tests {
		if got := count(tt.give); got != tt.want {
			t.Errorf("count(%d) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestLogsRing(t *testing.T) {
	var out bytes.Buffer
	l := NewLogs(&out, 3)
	if got := l.Lines(10); len(got) != 0 {
		t.Errorf("Lines of an empty ring = %q", got)
	}
	fmt.Fprint(l, "one\ntwo\n")
	fmt.Fprint(l, "thr")
	fmt.Fprint(l, "ee\nfour\nfive\n")
	if got, want := l.Lines(10), []string{"three", "four", "five"}; !equal(got, want) {
		t.Errorf("Lines(10) = %q, want %q", got, want)
	}
	if got, want := l.Lines(2), []string{"four", "five"}; !equal(got, want) {
		t.Errorf("Lines(2) = %q, want %q", got, want)
	}
	if got, want := out.String(), "one\ntwo\nthree\nfour\nfive\n"; got != want {
		t.Errorf("output = %q, want every write passed on: %q", got, want)
	}
	// A huge line is kept cut, not whole.
	fmt.Fprintln(l, strings.Repeat("x", 10*maxLineBytes))
	if got := l.Lines(1)[0]; len(got) != maxLineBytes {
		t.Errorf("a long line is kept with %d bytes, want %d", len(got), maxLineBytes)
	}
	fmt.Fprint(l, strings.Repeat("y", 3*maxLineBytes))
	fmt.Fprint(l, strings.Repeat("y", 3*maxLineBytes)+"\n")
	if got := l.Lines(1)[0]; len(got) != maxLineBytes {
		t.Errorf("a long line in pieces is kept with %d bytes, want %d", len(got), maxLineBytes)
	}
}

func TestLogsHoldAndRelease(t *testing.T) {
	var out bytes.Buffer
	l := NewLogs(&out, 10)
	access := l.Unkept()
	fmt.Fprintln(l, "before")
	fmt.Fprintln(access, "access 1")
	l.hold()
	fmt.Fprintln(l, "while drawing")
	fmt.Fprintln(access, "access 2")
	l.release(func() { out.WriteString("[restored]") })
	fmt.Fprintln(l, "after")
	fmt.Fprintln(access, "access 3")
	if got, want := out.String(), "before\naccess 1\n[restored]after\naccess 3\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	if got, want := l.Lines(10), []string{"before", "while drawing", "after"}; !equal(got, want) {
		t.Errorf("Lines = %q, want %q", got, want)
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// terminal records what the dashboard writes.
type terminal struct {
	mu     sync.Mutex
	b      bytes.Buffer
	frames int
	fail   error
}

func (t *terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fail != nil {
		return 0, t.fail
	}
	if bytes.Contains(p, []byte(syncBegin)) {
		t.frames++
	}
	return t.b.Write(p)
}

func (t *terminal) state() (string, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String(), t.frames
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDashboardDrawsAndRestores(t *testing.T) {
	var stderr bytes.Buffer
	logs := NewLogs(&stderr, 10)
	term := &terminal{}
	var mu sync.Mutex
	calls, width := 0, 100
	_, cur := snapshots()
	d := New(Options{
		Snapshot: func(latency bool) stats.Snapshot {
			if !latency {
				t.Errorf("Snapshot(false): the dashboard needs latency")
			}
			mu.Lock()
			defer mu.Unlock()
			calls++
			s := *cur
			s.Time = t0.Add(time.Duration(calls) * time.Second)
			return s
		},
		Size: func() (int, int, error) {
			mu.Lock()
			defer mu.Unlock()
			return width, 30, nil
		},
		Out:      term,
		Interval: 10 * time.Millisecond,
		Logs:     logs,
		HoldLogs: true,
	})
	fmt.Fprintln(logs, "before start")
	d.Start(context.Background())
	fmt.Fprintln(logs, "held")
	waitUntil(t, "three frames", func() bool { _, n := term.state(); return n >= 3 })
	// A resize is followed on the next frame.
	mu.Lock()
	width = 30
	mu.Unlock()
	_, n := term.state()
	waitUntil(t, "a frame after the resize", func() bool { _, m := term.state(); return m >= n+2 })
	d.Close()
	d.Close() // twice is fine
	fmt.Fprintln(logs, "after close")

	screen, _ := term.state()
	if !strings.HasPrefix(screen, enterScreen) {
		t.Errorf("output does not start by entering the alternate screen: %q", screen[:min(len(screen), 40)])
	}
	if !strings.HasSuffix(screen, leaveScreen) {
		t.Errorf("output does not end by leaving the alternate screen and showing the cursor: %q", screen[max(len(screen)-40, 0):])
	}
	if !strings.Contains(screen, "held") {
		t.Errorf("the log pane does not show a line logged while drawing")
	}
	frames := strings.Split(screen, syncBegin)
	last := visible(frames[len(frames)-1])
	for _, row := range regexp.MustCompile(`\x1b\[\d+;1H\x1b\[2K([^\x1b]*)`).FindAllStringSubmatch(frames[len(frames)-1], -1) {
		if n := utf8.RuneCountInString(visible(row[1])); n > 30 {
			t.Errorf("after the resize to 30 columns a row is %d wide: %q", n, row[1])
		}
	}
	if !strings.Contains(last, "Requests 1,200") {
		t.Errorf("last frame lacks the totals: %q", last)
	}
	if got, want := stderr.String(), "before start\nafter close\n"; got != want {
		t.Errorf("stderr = %q, want %q: nothing while the dashboard drew", got, want)
	}
}

func TestDashboardStopsWhenTheTerminalFails(t *testing.T) {
	var stderr bytes.Buffer
	logs := NewLogs(&stderr, 10)
	term := &terminal{}
	_, cur := snapshots()
	d := New(Options{
		Snapshot: func(bool) stats.Snapshot { return *cur },
		Size:     func() (int, int, error) { return 0, 0, errors.New("no size") },
		Out:      term, Interval: 5 * time.Millisecond, Logs: logs, HoldLogs: true,
	})
	d.Start(context.Background())
	waitUntil(t, "a frame", func() bool { _, n := term.state(); return n >= 1 })
	term.mu.Lock()
	term.fail = errors.New("terminal gone")
	term.mu.Unlock()
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the dashboard kept running after its terminal failed")
	}
	fmt.Fprintln(logs, "logs flow again")
	if got := stderr.String(); got != "logs flow again\n" {
		t.Errorf("stderr = %q, want the logs given back", got)
	}
	d.Close()
}
