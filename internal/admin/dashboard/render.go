package dashboard

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/altair-gateway/altair/internal/stats"
)

// Colours; every state is also a word, so the screen reads the same without
// them.
const (
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	red    = "\x1b[31m"
	bold   = "\x1b[1m"
	dim    = "\x1b[2m"
	reset  = "\x1b[0m"
)

// window is what happened between two snapshots.
type window struct {
	ok      bool    // there is an earlier snapshot
	seconds float64 // between the two
	reqRate float64 // routed requests per second
	// errRate is the share of 5xx among the responses of the window; errOK
	// is false when there were none.
	errRate float64
	errOK   bool
	// p50 and p99 are request durations in seconds; latOK is false when no
	// request finished in the window.
	p50, p99 float64
	latOK    bool
	// routeRate is requests per second by route name; a route missing from
	// the earlier snapshot (new in a reload) has none.
	routeRate map[string]float64
}

// measure compares cur with the earlier snapshot prev (nil: none yet).
func measure(prev, cur *stats.Snapshot) window {
	var w window
	if prev == nil {
		return w
	}
	w.seconds = cur.Time.Sub(prev.Time).Seconds()
	if w.seconds <= 0 {
		return w
	}
	w.ok = true
	w.reqRate = perSecond(prev.Requests, cur.Requests, w.seconds)
	var all, errs uint64
	for i := range cur.Responses {
		d := sub(prev.Responses[i], cur.Responses[i])
		all += d
		if i == 5 {
			errs = d
		}
	}
	if all > 0 {
		w.errOK, w.errRate = true, float64(errs)/float64(all)
	}
	if cur.Latency.Count > prev.Latency.Count {
		w.latOK = true
		w.p50 = cur.Latency.Quantile(prev.Latency, 0.5)
		w.p99 = cur.Latency.Quantile(prev.Latency, 0.99)
	}
	before := make(map[string]uint64, len(prev.Routes))
	for _, r := range prev.Routes {
		before[r.Name] = r.Requests
	}
	w.routeRate = make(map[string]float64, len(cur.Routes))
	for _, r := range cur.Routes {
		if n, ok := before[r.Name]; ok {
			w.routeRate[r.Name] = perSecond(n, r.Requests, w.seconds)
		}
	}
	return w
}

// sub is b-a for counters, 0 if the counter went back (it should not).
func sub(a, b uint64) uint64 {
	if b < a {
		return 0
	}
	return b - a
}

func perSecond(a, b uint64, seconds float64) float64 {
	return float64(sub(a, b)) / seconds
}

// line builds one screen line of at most width visible columns; what does not
// fit is cut, the last visible column then showing "…".
type line struct {
	b     strings.Builder
	left  int
	color bool
}

func (d *Dashboard) newLine(width int) *line {
	return &line{left: width, color: d.opts.Color}
}

// put adds s, in colour c if colours are on.
func (l *line) put(s, c string) {
	if l.left <= 0 || s == "" {
		return
	}
	s = clean(s)
	if n := utf8.RuneCountInString(s); n > l.left {
		s = cut(s, l.left-1) + "…"
		l.left = 0
	} else {
		l.left -= n
	}
	if c != "" && l.color {
		l.b.WriteString(c)
		l.b.WriteString(s)
		l.b.WriteString(reset)
		return
	}
	l.b.WriteString(s)
}

// cell adds s in a column of width w: cut with "…" if longer, padded if
// shorter, on the right if right.
func (l *line) cell(s string, w int, right bool, c string) {
	s = clean(s)
	n := utf8.RuneCountInString(s)
	switch {
	case n > w:
		s = cut(s, w-1) + "…"
	case right:
		l.put(strings.Repeat(" ", w-n), "")
	default:
		defer l.put(strings.Repeat(" ", w-n), "")
	}
	l.put(s, c)
}

func (l *line) String() string { return l.b.String() }

// cut returns the first n runes of s.
func cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// clean replaces control characters (and bad UTF-8) so that text from a
// config or a log cannot move the cursor or change the terminal.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// count formats n with thousands separators.
func count(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

func rateText(r float64) string {
	if r >= 100 {
		return strconv.FormatFloat(r, 'f', 0, 64)
	}
	return strconv.FormatFloat(r, 'f', 1, 64)
}

// seconds formats a duration given in seconds.
func seconds(s float64) string {
	switch {
	case s < 0.001:
		return fmt.Sprintf("%.0fµs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.1fms", s*1e3)
	}
	return fmt.Sprintf("%.2fs", s)
}

func uptime(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d >= 24*time.Hour {
		days := d / (24 * time.Hour)
		return fmt.Sprintf("%dd%s", days, (d - days*24*time.Hour).Truncate(time.Minute))
	}
	return d.String()
}

// render returns the lines of one frame for cur, with rates against prev
// (nil on the first frame): at most height lines of at most width columns.
func (d *Dashboard) render(prev, cur *stats.Snapshot, width, height int) []string {
	win := measure(prev, cur)
	var out []string
	add := func(l *line) { out = append(out, l.String()) }

	// Header.
	l := d.newLine(width)
	l.put("Altair "+cur.Version, bold)
	l.put("  up "+uptime(cur.Uptime), "")
	if d.opts.Addr != "" {
		l.put("  listening on "+d.opts.Addr, "")
	}
	l.put("  ", "")
	switch {
	case cur.Ready:
		l.put("ready", green)
		d.wasReady = true
	case d.wasReady:
		l.put("draining", yellow)
	default:
		l.put("starting", yellow)
	}
	l.put("   Ctrl-C stops", dim)
	add(l)

	// Totals.
	l = d.newLine(width)
	l.put("Requests ", bold)
	l.put(count(cur.Requests), "")
	l.put("   req/s ", "")
	if win.ok {
		l.put(rateText(win.reqRate), "")
	} else {
		l.put("-", "")
	}
	l.put(fmt.Sprintf("   in flight %d   connections %d", cur.InFlight, cur.Connections), "")
	add(l)

	l = d.newLine(width)
	l.put("Responses", bold)
	for i := 2; i <= 5; i++ {
		c := ""
		if i == 5 && cur.Responses[5] > 0 {
			c = red
		}
		l.put("   "+stats.ClassNames[i]+" ", "")
		l.put(count(cur.Responses[i]), c)
	}
	l.put("   errors ", "")
	switch {
	case !win.errOK:
		l.put("-", "")
	case win.errRate > 0:
		l.put(fmt.Sprintf("%.1f%%", win.errRate*100), red)
	default:
		l.put("0%", "")
	}
	if win.latOK {
		l.put("   p50 "+seconds(win.p50)+"   p99 "+seconds(win.p99), "")
	} else {
		l.put("   p50 -   p99 -", "")
	}
	add(l)

	l = d.newLine(width)
	e := cur.Edge
	l.put("Edge     ", bold)
	c := ""
	if e.BlockedIPs > 0 {
		c = yellow
	}
	l.put(" blocked IPs ", "")
	l.put(strconv.Itoa(e.BlockedIPs), c)
	l.put(fmt.Sprintf("   blocks %s   rate-limit keys %d   allow %d   deny %d",
		count(e.BlocksTotal), e.RateLimitKeys, e.AllowEntries, e.DenyEntries), "")
	add(l)

	l = d.newLine(width)
	rl := cur.Reloads
	l.put("Reloads  ", bold)
	l.put(" ok "+count(rl.Success)+"   failed ", "")
	c = ""
	if rl.Failure > 0 {
		c = red
	}
	l.put(count(rl.Failure), c)
	if rl.LastError != "" {
		l.put("   last error: ", "")
		l.put(rl.LastError, red)
	}
	add(l)

	// The tables and the log pane share what is left of the height; each
	// takes a blank line and a heading.
	routes := d.routeRows(cur, &win, width)
	backends := d.backendRows(cur, width)
	var logs []string
	if d.opts.Logs != nil {
		logs = d.logRows(d.opts.Logs.Lines(max(height, 1)), width)
	}
	sections := []struct {
		head string
		rows []string
		tail bool // keep the last rows rather than the first
	}{
		{d.routeHead(cur, width), routes, false},
		{d.backendHead(cur, width), backends, false},
	}
	if d.opts.Logs != nil {
		head := d.newLine(width)
		head.put("RECENT LOGS", bold)
		sections = append(sections, struct {
			head string
			rows []string
			tail bool
		}{head.String(), logs, true})
	}
	// Too short for all three: the logs go first, then the routes; backend
	// health stays longest.
	avail := height - len(out)
	for len(sections) > 0 && avail-2*len(sections) < len(sections) {
		if len(sections) == 3 || len(sections) == 1 {
			sections = sections[:len(sections)-1]
		} else {
			sections = sections[1:]
		}
	}
	needs := make([]int, len(sections))
	for i, s := range sections {
		needs[i] = len(s.rows)
	}
	got := share(avail-2*len(sections), needs)
	for i, s := range sections {
		out = append(out, "", s.head)
		rows := s.rows
		if len(rows) > got[i] {
			if s.tail {
				rows = rows[len(rows)-got[i]:]
			} else {
				more := d.newLine(width)
				more.put(fmt.Sprintf("… %d more", len(rows)-got[i]+1), dim)
				rows = append(rows[:got[i]-1:got[i]-1], more.String())
			}
		}
		out = append(out, rows...)
	}
	if len(out) > height {
		out = out[:height]
	}
	return out
}

// share hands out avail rows one at a time to each section that still wants
// one, so that a long table cannot crowd the others out.
func share(avail int, needs []int) []int {
	got := make([]int, len(needs))
	for avail > 0 {
		gave := false
		for i := range needs {
			if avail > 0 && got[i] < needs[i] {
				got[i]++
				avail--
				gave = true
			}
		}
		if !gave {
			break
		}
	}
	return got
}

// Column widths of the routes table; name columns grow to their content up
// to a cap.
const (
	numW  = 10
	rateW = 9
)

func nameWidth(head string, names []string, limit int) int {
	w := len(head)
	for _, n := range names {
		w = max(w, utf8.RuneCountInString(n))
	}
	return min(w, limit)
}

func routeWidths(cur *stats.Snapshot) (name, up int) {
	names := make([]string, 0, len(cur.Routes))
	ups := make([]string, 0, len(cur.Routes))
	for _, r := range cur.Routes {
		names = append(names, r.Name)
		ups = append(ups, r.Upstream)
	}
	return nameWidth("ROUTE", names, 28), nameWidth("UPSTREAM", ups, 24)
}

func (d *Dashboard) routeHead(cur *stats.Snapshot, width int) string {
	nw, uw := routeWidths(cur)
	l := d.newLine(width)
	l.cell("ROUTE", nw, false, bold)
	l.put("  ", "")
	l.cell("UPSTREAM", uw, false, bold)
	l.cell("REQUESTS", numW+2, true, bold)
	l.cell("REQ/S", rateW+2, true, bold)
	l.cell("5XX", numW+2, true, bold)
	return l.String()
}

func (d *Dashboard) routeRows(cur *stats.Snapshot, win *window, width int) []string {
	if len(cur.Routes) == 0 {
		l := d.newLine(width)
		l.put("no routes configured", yellow)
		return []string{l.String()}
	}
	nw, uw := routeWidths(cur)
	rows := make([]string, 0, len(cur.Routes))
	for _, r := range cur.Routes {
		l := d.newLine(width)
		l.cell(r.Name, nw, false, "")
		l.put("  ", "")
		l.cell(r.Upstream, uw, false, "")
		l.cell(count(r.Requests), numW+2, true, "")
		rate := "-"
		if rr, ok := win.routeRate[r.Name]; ok {
			rate = rateText(rr)
		}
		l.cell(rate, rateW+2, true, "")
		c := ""
		if r.Responses[5] > 0 {
			c = red
		}
		l.cell(count(r.Responses[5]), numW+2, true, c)
		rows = append(rows, l.String())
	}
	return rows
}

func backendWidths(cur *stats.Snapshot) (pool, url int) {
	var pools, urls []string
	for _, p := range cur.Upstreams {
		name := p.Name
		if p.Panic {
			name += " (panic)"
		}
		pools = append(pools, name)
		for _, b := range p.Backends {
			urls = append(urls, b.URL)
		}
	}
	return nameWidth("POOL", pools, 24), nameWidth("BACKEND", urls, 40)
}

func (d *Dashboard) backendHead(cur *stats.Snapshot, width int) string {
	pw, uw := backendWidths(cur)
	l := d.newLine(width)
	l.cell("POOL", pw, false, bold)
	l.put("  ", "")
	l.cell("BACKEND", uw, false, bold)
	l.put("  ", "")
	l.cell("HEALTH", 7, false, bold)
	l.put("  ", "")
	l.cell("BREAKER", 9, false, bold)
	l.cell("IN FLIGHT", numW+2, true, bold)
	l.cell("FAILURES", numW+2, true, bold)
	return l.String()
}

func (d *Dashboard) backendRows(cur *stats.Snapshot, width int) []string {
	var rows []string
	pw, uw := backendWidths(cur)
	for _, p := range cur.Upstreams {
		for i, b := range p.Backends {
			l := d.newLine(width)
			name, c := "", ""
			if i == 0 {
				name = p.Name
				if p.Panic {
					name, c = name+" (panic)", yellow
				}
			}
			l.cell(name, pw, false, c)
			l.put("  ", "")
			l.cell(b.URL, uw, false, "")
			l.put("  ", "")
			switch {
			case !b.Healthy:
				l.cell("down", 7, false, red)
			case b.Ejected:
				l.cell("ejected", 7, false, yellow)
			default:
				l.cell("up", 7, false, green)
			}
			l.put("  ", "")
			switch b.Breaker {
			case "open":
				c = red
			case "half-open":
				c = yellow
			default:
				c = green
			}
			l.cell(b.Breaker, 9, false, c)
			l.cell(strconv.FormatInt(b.InFlight, 10), numW+2, true, "")
			c = ""
			if b.Failures > 0 {
				c = red
			}
			l.cell(count(b.Failures), numW+2, true, c)
			rows = append(rows, l.String())
		}
	}
	if len(rows) == 0 {
		l := d.newLine(width)
		l.put("no upstreams", yellow)
		rows = append(rows, l.String())
	}
	return rows
}

func (d *Dashboard) logRows(lines []string, width int) []string {
	rows := make([]string, 0, len(lines))
	for _, s := range lines {
		text, level := formatLog(s)
		c := ""
		switch strings.ToUpper(level) {
		case "ERROR":
			c = red
		case "WARN":
			c = yellow
		}
		l := d.newLine(width)
		l.put(text, c)
		rows = append(rows, l.String())
	}
	return rows
}

// formatLog shortens a JSON log record to "15:04:05 INFO msg key=value ...",
// keys in the record's order, and returns its level. Anything else (the text
// format) is shown as it is.
func formatLog(s string) (text, level string) {
	if !strings.HasPrefix(s, "{") {
		for _, lv := range []string{"ERROR", "WARN"} {
			if strings.Contains(s, "level="+lv) {
				return s, lv
			}
		}
		return s, ""
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return s, ""
	}
	var at, msg string
	var rest []string
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return s, ""
		}
		k, _ := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return s, ""
		}
		var str string
		isStr := json.Unmarshal(raw, &str) == nil
		val := string(raw)
		if isStr {
			val = str
		}
		switch k {
		case "time":
			if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
				at = t.Format("15:04:05")
			}
		case "level":
			level = val
		case "msg":
			msg = val
		default:
			if isStr && (str == "" || strings.ContainsAny(str, " =\"")) {
				val = strconv.Quote(str)
			}
			rest = append(rest, k+"="+val)
		}
	}
	parts := make([]string, 0, 3+len(rest))
	for _, p := range []string{at, level, msg} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(append(parts, rest...), " "), level
}
