package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// countingBackend answers with a body naming the request's Authorization
// and API key and a counter, with the Cache-Control it is given.
func countingBackend(t *testing.T, cacheControl string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"n":%d,"auth":%q,"key":%q,"pad":%q}`, i, r.Header.Get("Authorization"),
			r.Header.Get("X-Api-Key"), strings.Repeat("x", 2048))
	}))
	t.Cleanup(s.Close)
	return s, &n
}

func TestCacheRoute(t *testing.T) {
	b, n := countingBackend(t, "public, max-age=60")
	out := &syncBuf{}
	g := New(Options{Version: "test", AccessLog: out, LogFormat: "json"})
	t.Cleanup(g.Close)
	if err := g.Apply(load(t, quiet+fmt.Sprintf(`
admin:
  token: "0123456789abcdef0123"
routes:
  - name: cached
    match: { prefix: /c }
    cache: { enabled: true }
    backends: [ { url: %[1]q } ]
  - name: plain
    match: { prefix: /p }
    backends: [ { url: %[1]q } ]
`, b.URL))); err != nil {
		t.Fatal(err)
	}

	first := do(g, "GET", "/c/x", "Host", "api.test")
	second := do(g, "GET", "/c/x", "Host", "api.test")
	if n.Load() != 1 || first.Header().Get("X-Cache") != "MISS" || second.Header().Get("X-Cache") != "HIT" ||
		second.Body.String() != first.Body.String() || second.Header().Get("Age") == "" {
		t.Fatalf("origin hit %d times; X-Cache %q then %q (Age %q)", n.Load(),
			first.Header().Get("X-Cache"), second.Header().Get("X-Cache"), second.Header().Get("Age"))
	}
	// A client that accepts compression gets the cached body compressed.
	if w := do(g, "GET", "/c/x", "Host", "api.test", "Accept-Encoding", "gzip"); w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("X-Cache") != "HIT" || n.Load() != 1 {
		t.Fatalf("gzip client: %v (origin hits %d)", w.Header(), n.Load())
	}
	// Another credential is another partition, never the first one's entry.
	a := do(g, "GET", "/c/x", "Host", "api.test", "Authorization", "Bearer alice-token")
	bb := do(g, "GET", "/c/x", "Host", "api.test", "Authorization", "Bearer bob-token")
	a2 := do(g, "GET", "/c/x", "Host", "api.test", "Authorization", "Bearer alice-token")
	if !strings.Contains(a.Body.String(), "alice") || !strings.Contains(bb.Body.String(), "bob") || a2.Body.String() != a.Body.String() || n.Load() != 3 {
		t.Fatalf("credential partitions: alice %q, bob %q, alice again %q, origin hits %d",
			a.Body.String()[:40], bb.Body.String()[:40], a2.Body.String()[:40], n.Load())
	}
	// A route without cache passes everything through.
	do(g, "GET", "/p/x")
	do(g, "GET", "/p/x")
	if n.Load() != 5 {
		t.Fatalf("plain route: origin hits %d, want 5", n.Load())
	}
	// An unsafe request on the URL invalidates it.
	do(g, "POST", "/c/x", "Host", "api.test")
	if w := do(g, "GET", "/c/x", "Host", "api.test"); w.Header().Get("X-Cache") != "MISS" {
		t.Fatalf("after POST: X-Cache %q, want MISS", w.Header().Get("X-Cache"))
	}
	// Purge through the admin API.
	if w := do(g, "GET", "/c/x", "Host", "api.test"); w.Header().Get("X-Cache") != "HIT" {
		t.Fatalf("before purge: X-Cache %q", w.Header().Get("X-Cache"))
	}
	w := do(g, "DELETE", "/admin/cache?url=http://api.test/c/x", "Authorization", "Bearer 0123456789abcdef0123")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"purged":`) {
		t.Fatalf("purge: %d %s", w.Code, w.Body.String())
	}
	if w := do(g, "GET", "/c/x", "Host", "api.test"); w.Header().Get("X-Cache") != "MISS" {
		t.Fatalf("after purge: X-Cache %q, want MISS", w.Header().Get("X-Cache"))
	}
	do(g, "GET", "/c/y/1", "Host", "api.test")
	do(g, "GET", "/c/y/2", "Host", "api.test")
	w = do(g, "DELETE", "/admin/cache?host=api.test&prefix=/c/y", "Authorization", "Bearer 0123456789abcdef0123")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"purged":2`) {
		t.Fatalf("purge prefix: %d %s", w.Code, w.Body.String())
	}

	samples := scrape(t, g)
	wantSample(t, samples, `cache_requests_total{result="hit",route="cached"}`, 4)
	wantSample(t, samples, `cache_requests_total{result="miss",route="cached"}`, 7)
	if samples["cache_hits_total"] != 4 || samples["cache_misses_total"] != 7 {
		t.Errorf("cache_hits_total %v, cache_misses_total %v", samples["cache_hits_total"], samples["cache_misses_total"])
	}
	var st statsReport
	decode(t, do(g, "GET", "/stats"), &st)
	if !st.Features["caching"] {
		t.Error("stats features: caching false")
	}
	lines := accessLines(t, g, out)
	hits := 0
	for _, l := range lines {
		if l["cache"] == "HIT" {
			hits++
		}
	}
	if hits != 4 {
		t.Errorf("%d access lines say HIT, want 4", hits)
	}
}

// TestCacheDefaultTTLAndStrict: with ENABLE_CACHING's setting, a response
// that states no freshness is cached for cache.ttl; in strict mode (0s)
// it is not.
func TestCacheDefaultTTLAndStrict(t *testing.T) {
	b, n := countingBackend(t, "")
	g := newGateway(t, quiet+fmt.Sprintf(`
cache: { enabled: true }
routes:
  - name: ttl
    match: { prefix: /ttl }
    backends: [ { url: %[1]q } ]
  - name: strict
    match: { prefix: /strict }
    cache: { ttl: 0s }
    backends: [ { url: %[1]q } ]
  - name: off
    match: { prefix: /off }
    cache: { enabled: false }
    backends: [ { url: %[1]q } ]
`, b.URL))
	do(g, "GET", "/ttl")
	if w := do(g, "GET", "/ttl"); w.Header().Get("X-Cache") != "HIT" || n.Load() != 1 {
		t.Fatalf("default ttl: X-Cache %q, origin hits %d", w.Header().Get("X-Cache"), n.Load())
	}
	do(g, "GET", "/strict")
	if w := do(g, "GET", "/strict"); w.Header().Get("X-Cache") == "HIT" || n.Load() != 3 {
		t.Fatalf("strict: X-Cache %q, origin hits %d", w.Header().Get("X-Cache"), n.Load())
	}
	do(g, "GET", "/off")
	if w := do(g, "GET", "/off"); w.Header().Get("X-Cache") != "" || n.Load() != 5 {
		t.Fatalf("route off: X-Cache %q, origin hits %d", w.Header().Get("X-Cache"), n.Load())
	}
}

// TestCacheForwardAuthPartition: a forward-auth service may know the caller
// by a field the credentials partition does not cover (here X-Session). One
// user's cached answer is never served to another: what the service copies
// onto the request partitions the cache, and an answer that does not say it
// may be shared is not stored at all (RFC 9111 §3.5, as with
// Authorization).
func TestCacheForwardAuthPartition(t *testing.T) {
	authSvc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, ok := map[string]string{"alice-session": "alice", "bob-session": "bob"}[r.Header.Get("X-Session")]
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-User", user)
	}))
	t.Cleanup(authSvc.Close)
	var n atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if strings.HasPrefix(r.URL.Path, "/shared") {
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		fmt.Fprintf(w, "data of %s", r.Header.Get("X-User"))
	}))
	t.Cleanup(be.Close)
	g := newGateway(t, quiet+fmt.Sprintf(`
cache: { enabled: true }
routes:
  - name: me
    match: { prefix: /me }
    require_auth: true
    auth: { methods: [forward], forward: { url: %[1]q, copy_headers: [X-User] } }
    backends: [ { url: %[2]q } ]
  - name: shared
    match: { prefix: /shared }
    require_auth: true
    auth: { methods: [forward], forward: { url: %[1]q, copy_headers: [X-User] } }
    backends: [ { url: %[2]q } ]
`, authSvc.URL, be.URL))

	// No Cache-Control: cache.ttl would apply to an anonymous request; an
	// authenticated one is not stored.
	do(g, "GET", "/me", "X-Session", "alice-session")
	if w := do(g, "GET", "/me", "X-Session", "bob-session"); w.Body.String() != "data of bob" || w.Header().Get("X-Cache") != "MISS" {
		t.Fatalf("bob got %q (X-Cache %s)", w.Body.String(), w.Header().Get("X-Cache"))
	}
	if w := do(g, "GET", "/me", "X-Session", "alice-session"); w.Header().Get("X-Cache") != "MISS" || n.Load() != 3 {
		t.Fatalf("unshareable answer stored: X-Cache %s, origin hits %d", w.Header().Get("X-Cache"), n.Load())
	}
	// public: stored, but each identity the service names has its own.
	n.Store(0)
	do(g, "GET", "/shared", "X-Session", "alice-session")
	if w := do(g, "GET", "/shared", "X-Session", "bob-session"); w.Body.String() != "data of bob" {
		t.Fatalf("bob got %q (X-Cache %s)", w.Body.String(), w.Header().Get("X-Cache"))
	}
	if w := do(g, "GET", "/shared", "X-Session", "alice-session"); w.Body.String() != "data of alice" || w.Header().Get("X-Cache") != "HIT" || n.Load() != 2 {
		t.Fatalf("alice again: %q X-Cache %s, origin hits %d", w.Body.String(), w.Header().Get("X-Cache"), n.Load())
	}
}

// TestCacheSchemePartition: behind a TLS-terminating balancer (a trusted
// proxy), an origin that redirects plain HTTP to HTTPS must not have that
// redirect served from the cache to HTTPS clients (a redirect loop for
// everyone, set off by any one http:// request).
func TestCacheSchemePartition(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Forwarded-Proto") != "https" {
			http.Redirect(w, r, "https://"+r.Host+r.URL.Path, http.StatusMovedPermanently)
			return
		}
		fmt.Fprint(w, "page")
	}))
	t.Cleanup(be.Close)
	// httptest requests come from 192.0.2.1.
	g := newGateway(t, quiet+fmt.Sprintf(`
server: { trusted_proxies: [192.0.2.0/24] }
cache: { enabled: true }
routes:
  - name: site
    match: { prefix: / }
    backends: [ { url: %q } ]
`, be.URL))
	if w := do(g, "GET", "/x", "Host", "site.test", "X-Forwarded-Proto", "http"); w.Code != http.StatusMovedPermanently {
		t.Fatalf("http: %d", w.Code)
	}
	if w := do(g, "GET", "/x", "Host", "site.test", "X-Forwarded-Proto", "https"); w.Code != http.StatusOK {
		t.Fatalf("https: %d (Location %q, X-Cache %s)", w.Code, w.Header().Get("Location"), w.Header().Get("X-Cache"))
	}
	if w := do(g, "GET", "/x", "Host", "site.test", "X-Forwarded-Proto", "https"); w.Code != http.StatusOK || w.Header().Get("X-Cache") != "HIT" {
		t.Fatalf("https again: %d X-Cache %s", w.Code, w.Header().Get("X-Cache"))
	}
}
