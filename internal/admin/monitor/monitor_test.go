package monitor

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/stats"
	"github.com/altair-gateway/altair/internal/testclock"
)

// fakeClock is a settable clock.
type fakeClock = testclock.Clock

// countingSource serves 100 more requests on every snapshot and counts the
// snapshots taken.
type countingSource struct {
	calls    atomic.Int64
	requests atomic.Uint64
	clock    *fakeClock
}

func (s *countingSource) Snapshot(latency bool) stats.Snapshot {
	s.calls.Add(1)
	n := s.requests.Add(100)
	snap := stats.Snapshot{Time: s.clock.Now(), Requests: n, Responses: [6]uint64{2: n}}
	if latency {
		snap.Latency = hist(n, n, n, n)
	}
	return snap
}

func newTestMonitor(t *testing.T) (*Monitor, *countingSource, *fakeClock) {
	t.Helper()
	clock := testclock.New(t0)
	src := &countingSource{clock: clock}
	m := New(Options{Source: src.Snapshot, Now: clock.Now, DiskPath: t.TempDir()})
	return m, src, clock
}

func getReport(t *testing.T, h http.Handler) report {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", APIPath, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200", APIPath, rec.Code)
	}
	var r report
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("decode %s: %v\n%s", APIPath, err, rec.Body)
	}
	return r
}

func TestSamplingWindow(t *testing.T) {
	t.Parallel()
	m, src, clock := newTestMonitor(t)
	h := m.Handler(nil)

	r := getReport(t, h)
	if r.Window != nil || r.Traffic.RequestRate != nil {
		t.Fatalf("first answer: window %v, rate %v; want null (one sample)", r.Window, r.Traffic.RequestRate)
	}
	// A viewer within minInterval gets the same answer; no new snapshot.
	clock.Advance(200 * time.Millisecond)
	getReport(t, h)
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("snapshots after two calls 200ms apart = %d, want 1", n)
	}
	// 600 ms: a new sample, but none is a second old yet.
	clock.Advance(400 * time.Millisecond)
	if r := getReport(t, h); r.Window != nil {
		t.Fatalf("window at 600ms = %v, want null", *r.Window)
	}
	// 1.5 s: measured from the first sample (100 requests per sample).
	clock.Advance(900 * time.Millisecond)
	r = getReport(t, h)
	if r.Window == nil || !near(*r.Window, 1.5) || r.Traffic.RequestRate == nil || !near(*r.Traffic.RequestRate, 200/1.5) {
		t.Fatalf("at 1.5s: window %v, rate %v; want 1.5, %v", r.Window, r.Traffic.RequestRate, 200/1.5)
	}
	if r.Traffic.Latency.P50 == nil {
		t.Error("no latency percentiles with requests in the window")
	}
	// Polled every second for 30 s: the window stays at most 10 s.
	for range 30 {
		clock.Advance(time.Second)
		r = getReport(t, h)
	}
	if r.Window == nil || *r.Window > window.Seconds() || *r.Window < window.Seconds()-1 {
		t.Fatalf("window after 30 polls = %v, want about %v", r.Window, window.Seconds())
	}
	m.mu.Lock()
	n := len(m.samples)
	m.mu.Unlock()
	if n > int(keep/time.Second)+2 {
		t.Errorf("samples kept = %d, want at most %d", n, int(keep/time.Second)+2)
	}
	// A viewer back after five minutes: measured from the last sample.
	clock.Advance(5 * time.Minute)
	r = getReport(t, h)
	if r.Window == nil || !near(*r.Window, 300) {
		t.Fatalf("window after a pause = %v, want 300", r.Window)
	}
}

func TestConcurrentViewers(t *testing.T) {
	t.Parallel()
	src := &countingSource{clock: testclock.New(t0)}
	m := New(Options{Source: src.Snapshot, DiskPath: t.TempDir()})
	h := m.Handler(nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", APIPath, nil))
				if rec.Code != 200 || !json.Valid(rec.Body.Bytes()) {
					t.Errorf("GET = %d %q", rec.Code, rec.Body)
				}
			}
		})
	}
	wg.Wait()
	// 160 requests within well under minInterval share a few snapshots.
	if n := src.calls.Load(); n > 10 {
		t.Errorf("snapshots for 160 concurrent calls = %d, want a few", n)
	}
}

func TestHandlers(t *testing.T) {
	t.Parallel()
	m, _, _ := newTestMonitor(t)
	protect := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer ok" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	tests := []struct {
		name        string
		method      string
		path        string
		auth        string
		protect     bool
		wantStatus  int
		wantType    string
		wantCSP     bool
		wantCache   string
		wantBodyHas string
	}{
		{name: "page", path: "/monitor", wantStatus: 200, wantType: "text/html; charset=utf-8", wantCSP: true, wantCache: "no-cache", wantBodyHas: `src="monitor/app.js"`},
		{name: "script", path: "/monitor/app.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantCSP: true, wantBodyHas: "api/system-metrics"},
		{name: "style", path: "/monitor/style.css", wantStatus: 200, wantType: "text/css; charset=utf-8", wantCSP: true},
		{name: "icon", path: "/monitor/icon.svg", wantStatus: 200, wantType: "image/svg+xml", wantCSP: true},
		{name: "api", path: APIPath, wantStatus: 200, wantType: "application/json", wantCache: "no-store", wantBodyHas: `"requests_per_second"`},
		{name: "head api", method: "HEAD", path: APIPath, wantStatus: 200, wantType: "application/json", wantCache: "no-store"},
		{name: "post api", method: "POST", path: APIPath, wantStatus: 405},
		{name: "post page", method: "POST", path: "/monitor", wantStatus: 405},
		{name: "unknown asset", path: "/monitor/nope.js", wantStatus: 404},
		{name: "index is the page only", path: "/monitor/index.html", wantStatus: 404},
		{name: "trailing slash", path: "/monitor/", wantStatus: 301},
		{name: "protected api without token", path: APIPath, protect: true, wantStatus: 401},
		{name: "protected api with token", path: APIPath, protect: true, auth: "Bearer ok", wantStatus: 200, wantType: "application/json"},
		{name: "page is not protected", path: "/monitor", protect: true, wantStatus: 200, wantCSP: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p func(http.Handler) http.Handler
			if tt.protect {
				p = protect
			}
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req := httptest.NewRequest(method, tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			m.Handler(p).ServeHTTP(rec, req)
			h := rec.Header()
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s = %d, want %d", method, tt.path, rec.Code, tt.wantStatus)
			}
			if tt.wantType != "" && h.Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", h.Get("Content-Type"), tt.wantType)
			}
			if got := h.Get("Content-Security-Policy"); tt.wantCSP && got != ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy = %q, want %q", got, ContentSecurityPolicy)
			}
			if tt.wantCache != "" && h.Get("Cache-Control") != tt.wantCache {
				t.Errorf("Cache-Control = %q, want %q", h.Get("Cache-Control"), tt.wantCache)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBodyHas) {
				t.Errorf("body does not contain %q", tt.wantBodyHas)
			}
			if method == "HEAD" && rec.Body.Len() != 0 {
				t.Errorf("HEAD body = %d bytes, want none", rec.Body.Len())
			}
			if tt.wantStatus == 405 && h.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", h.Get("Allow"))
			}
			if tt.wantStatus == 301 && h.Get("Location") != "../monitor" {
				t.Errorf("Location = %q, want ../monitor", h.Get("Location"))
			}
		})
	}
}

func TestPageCSPAllowsOnlySelf(t *testing.T) {
	t.Parallel()
	for _, d := range strings.Split(ContentSecurityPolicy, ";") {
		f := strings.Fields(d)
		if len(f) < 2 {
			t.Fatalf("directive %q has no source", d)
		}
		for _, src := range f[1:] {
			if src != "'self'" && src != "'none'" {
				t.Errorf("directive %q allows %s; only 'self' and 'none' are allowed", d, src)
			}
		}
		if f[0] == "script-src" && f[1] != "'self'" {
			t.Errorf("script-src = %v", f[1:])
		}
	}
	if !strings.Contains(ContentSecurityPolicy, "default-src 'none'") {
		t.Error("no default-src 'none'")
	}
}

func TestAssetETag(t *testing.T) {
	t.Parallel()
	m, _, _ := newTestMonitor(t)
	h := m.Handler(nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/monitor/app.js", nil))
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req := httptest.NewRequest("GET", "/monitor/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("GET with If-None-Match = %d, want 304", rec.Code)
	}
}

// svgNamespace is an XML namespace name, never fetched.
const svgNamespace = "http://www.w3.org/2000/svg"

// TestAssetsLoadNothingFromElsewhere scans every embedded file for absolute
// and protocol-relative URLs: the page must work with no network but the
// gateway's.
func TestAssetsLoadNothingFromElsewhere(t *testing.T) {
	t.Parallel()
	absolute := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.\-\[]`)
	files := 0
	err := fs.WalkDir(assetFS, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := assetFS.ReadFile(path)
		if err != nil {
			return err
		}
		s := strings.ReplaceAll(string(b), svgNamespace, "")
		for _, loc := range absolute.FindAllStringIndex(s, -1) {
			// "//" starts a comment in JS and CSS unless it follows a quote,
			// "(" or "=" (a URL) or a scheme.
			prev := byte(' ')
			if loc[0] > 0 {
				prev = s[loc[0]-1]
			}
			match := s[loc[0]:loc[1]]
			if strings.HasPrefix(strings.ToLower(match), "http") || strings.ContainsRune(`"'(=`+"`", rune(prev)) {
				t.Errorf("%s: external URL at byte %d: %q", path, loc[0], s[max(0, loc[0]-20):min(len(s), loc[1]+30)])
			}
		}
		for _, bad := range []string{"@import", "<iframe", "<object", "<embed", "eval(", "new Function", "innerHTML", "document.write"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 {
		t.Fatalf("scanned %d files, want the page, script, style sheet and icon", files)
	}
}

// TestPageHasNoInlineCodeAndItsLinksResolve checks the page against its CSP:
// no inline scripts, styles or handlers, and every local reference served.
func TestPageHasNoInlineCodeAndItsLinksResolve(t *testing.T) {
	t.Parallel()
	m, _, _ := newTestMonitor(t)
	page := string(m.assets[PagePath].body)
	if page == "" {
		t.Fatal("no page")
	}
	for _, re := range []string{`<script(\s[^>]*)?>[^<]`, `<style`, `\sstyle=`, `\son[a-z]+=`, `javascript:`} {
		if loc := regexp.MustCompile(re).FindStringIndex(page); loc != nil {
			t.Errorf("page has inline code matching %s: %q", re, page[loc[0]:min(len(page), loc[1]+40)])
		}
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("page references %d files, want at least the script, style sheet and icon", len(refs))
	}
	for _, ref := range refs {
		// Relative to /monitor: "monitor/x" is /monitor/x.
		p := "/" + ref[1]
		if _, ok := m.assets[p]; !ok {
			t.Errorf("page references %q, which is not served (%s)", ref[1], p)
		}
	}
	js := string(m.assets[AssetsPath+"app.js"].body)
	if !strings.Contains(js, `"`+strings.TrimPrefix(APIPath, "/")+`"`) {
		t.Errorf("app.js does not fetch %s relative to the page", APIPath)
	}
}

func TestIsPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give string
		want bool
	}{
		{"/monitor", true},
		{"/monitor/", true},
		{"/monitor/app.js", true},
		{"/api/system-metrics", true},
		{"/monitoring", false},
		{"/api/system-metrics/x", false},
		{"/api", false},
		{"/", false},
	}
	for _, tt := range tests {
		if got := IsPath(tt.give); got != tt.want {
			t.Errorf("IsPath(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}
