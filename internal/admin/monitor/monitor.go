// Package monitor serves the system-monitor page (GET /monitor) and the JSON
// it refreshes itself from (GET /api/system-metrics): the machine's and the
// process's CPU, memory and disk, the Go runtime, and the gateway's traffic,
// latency percentiles, error rate, backends and breakers.
//
// The page, its script and its style sheet are embedded and fetch nothing
// from anywhere else. Samples are taken only when the API is called, so a
// gateway nobody is watching pays nothing; rates compare the newest sample
// with one at least a second older.
package monitor

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/altair-gateway/altair/internal/httperr"
	"github.com/altair-gateway/altair/internal/stats"
)

// Paths the monitor answers.
const (
	PagePath   = "/monitor"
	AssetsPath = "/monitor/"
	APIPath    = "/api/system-metrics"
)

// ContentSecurityPolicy is sent with the page and its assets: everything
// from the gateway itself, nothing inline, nothing from elsewhere.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Sampling: a new sample at most every minInterval (viewers in between get
// the last answer); rates over the oldest sample between minWindow and
// window old; samples kept for keep, at most maxSamples of them.
const (
	minInterval = 500 * time.Millisecond
	minWindow   = time.Second
	window      = 10 * time.Second
	keep        = 2 * window
	maxSamples  = 64
)

// IsPath reports whether the monitor answers the cleaned path p.
func IsPath(p string) bool {
	return p == PagePath || p == APIPath || strings.HasPrefix(p, AssetsPath)
}

//go:embed assets
var assetFS embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Options configure a Monitor.
type Options struct {
	// Source returns the gateway's state; with latency, its latency
	// histogram too. Required.
	Source func(latency bool) stats.Snapshot
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// DiskPath is a path on the file system whose usage is shown; empty
	// means the working directory.
	DiskPath string
}

// Monitor serves the page and the metrics API. It holds the recent samples,
// so one Monitor should live as long as the process: rates then carry over
// config reloads.
type Monitor struct {
	source     func(latency bool) stats.Snapshot
	now        func() time.Time
	readSystem func() systemSample
	assets     map[string]asset // by request path

	mu      sync.Mutex
	samples []*sample // oldest first
	body    []byte    // the answer for the newest sample
}

// New returns a Monitor.
func New(o Options) *Monitor {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DiskPath == "" {
		o.DiskPath, _ = os.Getwd()
	}
	disk := o.DiskPath
	return &Monitor{
		source:     o.Source,
		now:        o.Now,
		readSystem: func() systemSample { return readSystem(disk) },
		assets:     loadAssets(),
	}
}

// loadAssets maps request paths to the embedded files: index.html is the
// page at /monitor, every other file is under /monitor/.
func loadAssets() map[string]asset {
	types := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	entries, _ := assetFS.ReadDir("assets")
	out := make(map[string]asset, len(entries))
	for _, e := range entries {
		b, err := assetFS.ReadFile("assets/" + e.Name())
		if err != nil {
			continue
		}
		sum := sha256.Sum256(b)
		a := asset{body: b, contentType: types[path.Ext(e.Name())], etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		if e.Name() == "index.html" {
			out[PagePath] = a
		} else {
			out[AssetsPath+e.Name()] = a
		}
	}
	return out
}

// Handler serves every monitor path. protect, when not nil, wraps the
// metrics API (the admin token); the page and its assets hold no data and
// are served to anyone who reaches them, so a browser can load the page and
// ask for the token.
func (m *Monitor) Handler(protect func(http.Handler) http.Handler) http.Handler {
	var api http.Handler = http.HandlerFunc(m.serveAPI)
	if protect != nil {
		api = protect(api)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == APIPath {
			api.ServeHTTP(w, r)
			return
		}
		m.serveAsset(w, r)
	})
}

func allowRead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	httperr.Write(w, r, http.StatusMethodNotAllowed, "method_not_allowed")
	return false
}

func (m *Monitor) serveAsset(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	if r.URL.Path == AssetsPath {
		// Relative links on the page resolve against /monitor, not /monitor/.
		h.Set("Location", "../monitor")
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	a, ok := m.assets[r.URL.Path]
	if !ok {
		httperr.Write(w, r, http.StatusNotFound, httperr.CodeNotFound)
		return
	}
	if !allowRead(w, r) {
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	// Revalidated on every load: a new binary may bring new assets.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func (m *Monitor) serveAPI(w http.ResponseWriter, r *http.Request) {
	if !allowRead(w, r) {
		return
	}
	body := m.current()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// current returns the JSON for a sample taken now, or for the newest one if
// it is recent enough. The lock serialises viewers of the monitor only; the
// request path never takes it.
func (m *Monitor) current() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if n := len(m.samples); n > 0 && m.body != nil && now.Sub(m.samples[n-1].at) < minInterval {
		return m.body
	}
	cur := &sample{at: now, snap: m.source(true), sys: m.readSystem()}
	base := m.baseline(now)
	m.samples = append(m.samples, cur)
	m.prune(now)
	b, err := json.Marshal(buildReport(cur, base))
	if err != nil {
		// Only NaN or infinities could fail; keep the previous answer.
		if m.body != nil {
			return m.body
		}
		b = []byte("{}")
	}
	m.body = append(b, '\n')
	return m.body
}

// baseline picks the sample that rates are measured from: the oldest one no
// older than window and at least minWindow old, else the youngest one at
// least minWindow old (a viewer that was away), else none.
func (m *Monitor) baseline(now time.Time) *sample {
	var fallback *sample
	for _, s := range m.samples {
		age := now.Sub(s.at)
		if age < minWindow {
			break
		}
		if age <= window {
			return s
		}
		fallback = s
	}
	return fallback
}

// prune drops samples older than keep, and the oldest beyond maxSamples,
// keeping the newest.
func (m *Monitor) prune(now time.Time) {
	drop := 0
	for drop < len(m.samples)-1 && (now.Sub(m.samples[drop].at) > keep || len(m.samples)-drop > maxSamples) {
		drop++
	}
	if drop > 0 {
		m.samples = append(m.samples[:0], m.samples[drop:]...)
	}
}
