package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxBytes is the largest body /bytes/N serves: 10 MiB.
	maxBytes = 10 << 20
	// maxDelay bounds /delay so a typo cannot park a connection for hours.
	maxDelay = 5 * time.Minute
	// maxEvents and maxInterval bound /sse for the same reason.
	maxEvents   = 10000
	maxInterval = time.Minute
	// maxCachedLengths caps how many distinct Content-Length (and Cache-Control)
	// values /bytes keeps precomputed; values beyond the cap still work, with one
	// small allocation.
	maxCachedLengths = 256
	// maxMaxAge bounds /bytes/N?max_age=S: one year.
	maxMaxAge = 365 * 24 * 60 * 60
)

// handler serves every demo endpoint. Everything a hot endpoint needs is computed
// in newHandler so that /bytes/N and /healthz allocate nothing beyond net/http's
// own work.
type handler struct {
	name     string
	nameJSON []byte // name as a JSON string, for SSE events

	body      []byte   // maxBytes of printable filler; /bytes/N serves body[:N]
	servedBy  []string // X-Served-By value, shared read-only across requests
	octet     []string // Content-Type values, shared read-only across requests
	textPlain []string
	jsonType  []string
	eventType []string
	noCache   []string
	okBody    []byte
	lengths   valueCache // Content-Length values by body size
	maxAges   valueCache // Cache-Control values by max_age
}

// valueCache is a bounded, copy-on-write map from an integer to a header value
// computed from it, so that hot requests share one read-only value and allocate
// nothing.
type valueCache struct {
	mu sync.Mutex                       // serialises writers of m
	m  atomic.Pointer[map[int][]string] // nil until the first store
}

// get returns the cached value for n, computing it with format and caching it
// on first use while the cache has room.
func (c *valueCache) get(n int, format func(int) string) []string {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[n]; ok {
			return v
		}
	}
	v := []string{format(n)}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[int][]string
	if m := c.m.Load(); m != nil {
		old = *m
	}
	if len(old) >= maxCachedLengths {
		return v
	}
	next := make(map[int][]string, len(old)+1)
	for k, s := range old {
		next[k] = s
	}
	next[n] = v
	c.m.Store(&next)
	return v
}

// publicMaxAge is the Cache-Control value /bytes/N?max_age=S sends.
func publicMaxAge(s int) string { return "public, max-age=" + strconv.Itoa(s) }

// newHandler returns the demo service's handler; name identifies this instance in
// responses.
func newHandler(name string) http.Handler {
	nameJSON, _ := json.Marshal(name) // a string always marshals
	h := &handler{
		name:      name,
		nameJSON:  nameJSON,
		body:      filler(maxBytes),
		servedBy:  []string{name},
		octet:     []string{"application/octet-stream"},
		textPlain: []string{"text/plain; charset=utf-8"},
		jsonType:  []string{"application/json"},
		eventType: []string{"text/event-stream"},
		noCache:   []string{"no-cache"},
		okBody:    []byte("ok"),
	}
	lengths := make(map[int][]string)
	for _, n := range []int{0, 1, 16, 64, 100, 256, 512, 1000, 1024, 2048, 4096, 8192, 10000, 16384, 65536, 102400, 1 << 20, maxBytes} {
		lengths[n] = []string{strconv.Itoa(n)}
	}
	h.lengths.m.Store(&lengths)
	return h
}

// filler returns n printable bytes in 64-byte lines, so a body is easy to eyeball
// and to check by length from a shell.
func filler(n int) []byte {
	const line = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.\n"
	b := make([]byte, n)
	for i := 0; i < n; i += len(line) {
		copy(b[i:], line)
	}
	return b
}

// ServeHTTP dispatches on the path by hand rather than through a ServeMux: it is
// the benchmark backend, and a prefix switch costs nothing.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["X-Served-By"] = h.servedBy
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/bytes/"); ok && !strings.Contains(rest, "/") {
		h.serveBytes(w, rest, r.URL.RawQuery)
		return
	}
	switch {
	case p == "/healthz":
		w.Header()["Content-Type"] = h.textPlain
		_, _ = w.Write(h.okBody)
	case strings.HasPrefix(p, "/status/") && !strings.Contains(p[len("/status/"):], "/"):
		h.serveStatus(w, p[len("/status/"):])
	case strings.HasPrefix(p, "/delay/") && !strings.Contains(p[len("/delay/"):], "/"):
		h.serveDelay(w, r, p[len("/delay/"):])
	case p == "/sse":
		h.serveSSE(w, r)
	default:
		h.serveEcho(w, r)
	}
}

// serveBytes answers with exactly n bytes taken from the precomputed filler.
// With max_age=S in the query it adds Cache-Control: public, max-age=S, so that
// a shared cache in front (the benchmark's altair-cached target) may store the
// answer; other query parameters are ignored.
func (h *handler) serveBytes(w http.ResponseWriter, arg, query string) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 0 || n > maxBytes {
		h.badRequest(w, "bytes: N must be an integer between 0 and 10485760")
		return
	}
	maxAge, ok := queryMaxAge(query)
	if !ok {
		h.badRequest(w, fmt.Sprintf("bytes: max_age must be an integer number of seconds between 0 and %d", maxMaxAge))
		return
	}
	hdr := w.Header()
	hdr["Content-Type"] = h.octet
	hdr["Content-Length"] = h.contentLength(n)
	if maxAge >= 0 {
		hdr["Cache-Control"] = h.maxAges.get(maxAge, publicMaxAge)
	}
	if n > 0 {
		_, _ = w.Write(h.body[:n])
	}
}

// contentLength returns a shared, read-only Content-Length value for n, computing
// and caching it on first use while the cache has room.
func (h *handler) contentLength(n int) []string { return h.lengths.get(n, strconv.Itoa) }

// queryMaxAge returns the max_age parameter of a raw query (the first one, if
// repeated), -1 when there is none, and false when it is not an integer between
// 0 and maxMaxAge. It scans the query by hand, so it allocates nothing.
func queryMaxAge(query string) (int, bool) {
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		if v, ok := strings.CutPrefix(kv, "max_age="); ok {
			s, err := strconv.Atoi(v)
			if err != nil || s < 0 || s > maxMaxAge {
				return 0, false
			}
			return s, true
		}
	}
	return -1, true
}

// serveStatus answers with the status in arg, and its text as the body where a
// body is allowed.
func (h *handler) serveStatus(w http.ResponseWriter, arg string) {
	code, err := strconv.Atoi(arg)
	if err != nil || code < 200 || code > 599 {
		h.badRequest(w, "status: CODE must be an integer between 200 and 599")
		return
	}
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	w.Header()["Content-Type"] = h.textPlain
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, "%d %s\n", code, http.StatusText(code))
}

// serveDelay waits for the duration in arg, or until the client goes away, then
// answers 200.
func (h *handler) serveDelay(w http.ResponseWriter, r *http.Request, arg string) {
	d, err := parseDelay(arg)
	if err != nil {
		h.badRequest(w, "delay: "+err.Error())
		return
	}
	if !sleep(r.Context(), d) {
		return // the client is gone; nobody reads an answer
	}
	w.Header()["Content-Type"] = h.textPlain
	_, _ = fmt.Fprintf(w, "waited %s\n", d)
}

// sleep waits for d and reports true, or reports false as soon as ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// parseDelay accepts a Go duration ("150ms", "2s") or a bare number of seconds
// ("2"), between 0 and maxDelay.
func parseDelay(s string) (time.Duration, error) {
	var d time.Duration
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		d = time.Duration(secs * float64(time.Second))
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("DURATION %q is not a duration such as 2s or 150ms", s)
	}
	if d < 0 || d > maxDelay {
		return 0, fmt.Errorf("DURATION %q must be between 0 and %s", s, maxDelay)
	}
	return d, nil
}

// serveSSE streams n server-sent events, interval apart, flushing each one.
func (h *handler) serveSSE(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, interval := 5, 100*time.Millisecond
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > maxEvents {
			h.badRequest(w, fmt.Sprintf("sse: n must be an integer between 0 and %d", maxEvents))
			return
		}
		n = v
	}
	if s := q.Get("interval"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 || v > maxInterval {
			h.badRequest(w, fmt.Sprintf("sse: interval must be a duration between 0 and %s", maxInterval))
			return
		}
		interval = v
	}

	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr["Content-Type"] = h.eventType
	hdr["Cache-Control"] = h.noCache
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return // the writer cannot stream; nothing more to do
	}
	for i := 1; i <= n; i++ {
		if i > 1 && !sleep(r.Context(), interval) {
			return
		}
		if _, err := fmt.Fprintf(w, "id: %d\ndata: {\"service\":%s,\"seq\":%d,\"of\":%d}\n\n", i, h.nameJSON, i, n); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// echo is the JSON body of the echo endpoint: what the request looked like on
// arrival, after any proxy in front of this service.
type echo struct {
	Service    string      `json:"service"`
	Method     string      `json:"method"`
	Path       string      `json:"path"`
	Query      url.Values  `json:"query"`
	Host       string      `json:"host"`
	Proto      string      `json:"proto"`
	Headers    http.Header `json:"headers"`
	RemoteAddr string      `json:"remote_addr"`
}

// serveEcho answers with a JSON description of the request.
func (h *handler) serveEcho(w http.ResponseWriter, r *http.Request) {
	e := echo{
		Service:    h.name,
		Method:     r.Method,
		Path:       r.URL.Path,
		Query:      r.URL.Query(),
		Host:       r.Host,
		Proto:      r.Proto,
		Headers:    r.Header,
		RemoteAddr: r.RemoteAddr,
	}
	w.Header()["Content-Type"] = h.jsonType
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(e) // a write error means the client is gone
}

// badRequest answers 400 with a one-line plain-text reason.
func (h *handler) badRequest(w http.ResponseWriter, msg string) {
	w.Header()["Content-Type"] = h.textPlain
	w.WriteHeader(http.StatusBadRequest)
	_, _ = fmt.Fprintln(w, msg)
}
