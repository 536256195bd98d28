package cache

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// echo answers with max-age=60 (plus fields) and a body naming the origin
// request.
func echo(fields ...string) func(w http.ResponseWriter, r *http.Request, n int) {
	return reply(200, append([]string{"Cache-Control", "max-age=60"}, fields...)...)
}

func TestVary(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.setHandler(echo("Vary", "Accept-Language", "Vary", "X-Tenant"))
	steps := []struct {
		header    []string
		wantCache string
		wantBody  string
	}{
		{[]string{"Accept-Language", "en"}, "MISS", "v1"},
		{[]string{"Accept-Language", "fr"}, "MISS", "v2"},
		{[]string{"Accept-Language", "en"}, "HIT", "v1"},
		{[]string{"Accept-Language", "fr"}, "HIT", "v2"},
		{nil, "MISS", "v3"}, // absent matches only absent
		{[]string{"Accept-Language", ""}, "MISS", "v4"},
		{nil, "HIT", "v3"},
		{[]string{"Accept-Language", "en", "X-Tenant", "a"}, "MISS", "v5"},
		{[]string{"Accept-Language", "en", "X-Tenant", "b"}, "MISS", "v6"},
		{[]string{"Accept-Language", "en", "X-Tenant", "a"}, "HIT", "v5"},
		// Field lines are combined and whitespace around them trimmed.
		{[]string{"Accept-Language", "de", "Accept-Language", "it"}, "MISS", "v7"},
		{[]string{"Accept-Language", "  de, it "}, "HIT", "v7"},
		{[]string{"Accept-Language", "de,it"}, "MISS", "v8"},
	}
	for i, s := range steps {
		resp := h.get("/api/v", s.header...)
		if got := resp.header.Get("X-Cache"); got != s.wantCache || resp.body != s.wantBody {
			t.Errorf("step %d %q: X-Cache, body = %s, %q, want %s, %q", i, s.header, got, resp.body, s.wantCache, s.wantBody)
		}
	}
}

// TestContentEncodingVaries: an origin that compresses without saying
// Vary: Accept-Encoding still gets one variant per Accept-Encoding.
func TestContentEncodingVaries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.setHandler(func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "x-custom") {
			w.Header().Set("Content-Encoding", "x-custom")
		}
		fmt.Fprintf(w, "v%d", n)
	})
	if resp := h.get("/e", "Accept-Encoding", "x-custom"); resp.header.Get("Content-Encoding") != "x-custom" {
		t.Fatalf("first response not encoded: %v", resp.header)
	}
	resp := h.get("/e", "Accept-Encoding", "identity")
	if resp.header.Get("X-Cache") != "MISS" || resp.header.Get("Content-Encoding") != "" {
		t.Errorf("client without the coding got X-Cache %s, Content-Encoding %q; want MISS and none",
			resp.header.Get("X-Cache"), resp.header.Get("Content-Encoding"))
	}
	if resp := h.get("/e", "Accept-Encoding", "x-custom"); resp.header.Get("X-Cache") != "HIT" || resp.body != "v1" {
		t.Errorf("same coding: X-Cache %s body %q, want HIT v1", resp.header.Get("X-Cache"), resp.body)
	}
}

// TestPartitions: a response is never served across credentials:
// Authorization values, API keys, cookies, or their absence.
func TestPartitions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.setHandler(reply(200, "Cache-Control", "public, max-age=60"))
	steps := []struct {
		header    []string
		wantCache string
		wantBody  string
	}{
		{[]string{"Authorization", "Bearer alice"}, "MISS", "v1"},
		{[]string{"Authorization", "Bearer alice"}, "HIT", "v1"},
		{[]string{"Authorization", "Bearer bob"}, "MISS", "v2"},
		{nil, "MISS", "v3"},
		{nil, "HIT", "v3"},
		{[]string{"Authorization", "Bearer bob"}, "HIT", "v2"},
		{[]string{"X-Api-Key", "k1"}, "MISS", "v4"},
		{[]string{"X-Api-Key", "k2"}, "MISS", "v5"},
		{[]string{"X-Api-Key", "k1"}, "HIT", "v4"},
		{[]string{"Cookie", "s=1"}, "MISS", "v6"},
		{[]string{"Cookie", "s=2"}, "MISS", "v7"},
		{[]string{"Cookie", "s=1"}, "HIT", "v6"},
		{[]string{"Authorization", "Bearer alice", "Cookie", "s=1"}, "MISS", "v8"},
		// The same value in another field is another credential.
		{[]string{"X-Api-Key", "Bearer alice"}, "MISS", "v9"},
		{[]string{"Authorization", "Bearer alice"}, "HIT", "v1"},
		{nil, "HIT", "v3"},
	}
	for i, s := range steps {
		resp := h.get("/api/me", s.header...)
		if got := resp.header.Get("X-Cache"); got != s.wantCache || resp.body != s.wantBody {
			t.Errorf("step %d %q: X-Cache, body = %s, %q, want %s, %q", i, s.header, got, resp.body, s.wantCache, s.wantBody)
		}
	}
	if r := h.lastRequest(); r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" {
		t.Errorf("origin got credentials %v: the test's auth step should have removed them", r.Header)
	}
}

// TestNeverStored asserts on the store's contents.
func TestNeverStored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fields []string
		header []string
		stored bool
	}{
		{"no-store", []string{"Cache-Control", "public, max-age=60, no-store"}, nil, false},
		{"no-store on a second line", []string{"Cache-Control", "public, max-age=60", "Cache-Control", "no-store"}, nil, false},
		{"NO-STORE in capitals", []string{"Cache-Control", "max-age=60, NO-STORE"}, nil, false},
		{"private", []string{"Cache-Control", "max-age=60, private"}, nil, false},
		{"private with field names", []string{"Cache-Control", `max-age=60, private="Foo, Bar"`}, nil, false},
		{"Set-Cookie", []string{"Cache-Control", "public, max-age=60", "Set-Cookie", "a=b"}, nil, false},
		{"Authorization without public", []string{"Cache-Control", "max-age=60"}, []string{"Authorization", "Basic x"}, false},
		{"request no-store", []string{"Cache-Control", "max-age=60"}, []string{"Cache-Control", "no-store"}, false},
		{"public with Authorization", []string{"Cache-Control", "public, max-age=60"}, []string{"Authorization", "Basic x"}, true},
		{"max-age", []string{"Cache-Control", "max-age=60"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{})
			h.setHandler(reply(200, tt.fields...))
			h.get("/p", tt.header...)
			if got := len(h.stored("/p")) > 0; got != tt.stored {
				t.Errorf("stored = %v, want %v", got, tt.stored)
			}
		})
	}
}

// TestCoalescing: concurrent misses for one key make one upstream request,
// counted at the origin.
func TestCoalescing(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	h := newHarness(t, harnessOptions{gate: gate})
	open := opener(t, gate)
	const n = 20
	var wg sync.WaitGroup
	resps := make([]response, n)
	for i := range n {
		wg.Go(func() { resps[i], _ = h.try(http.MethodGet, "/api/hot") })
	}
	waitFor(t, "one origin request and the others waiting", func() bool {
		return h.hits.Load() == 1 && h.waiters("/api/hot") == n-1
	})
	open()
	wg.Wait()
	if got := h.hits.Load(); got != 1 {
		t.Errorf("origin requests = %d, want 1", got)
	}
	counts := map[string]int{}
	for _, r := range resps {
		counts[r.header.Get("X-Cache")]++
		if r.body != "response 1" {
			t.Errorf("body = %q, want %q", r.body, "response 1")
		}
	}
	if counts["MISS"] != 1 || counts["HIT"] != n-1 {
		t.Errorf("X-Cache counts = %v, want 1 MISS and %d HIT", counts, n-1)
	}
}

// TestCoalescingUnstorable: a response that may not be stored is not
// shared: every waiter goes upstream itself.
func TestCoalescingUnstorable(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	h := newHarness(t, harnessOptions{gate: gate})
	open := opener(t, gate)
	h.setHandler(reply(200, "Cache-Control", "private, max-age=60"))
	const n = 5
	var wg sync.WaitGroup
	resps := make([]response, n)
	for i := range n {
		wg.Go(func() { resps[i], _ = h.try(http.MethodGet, "/api/private") })
	}
	waitFor(t, "one origin request and the others waiting", func() bool {
		return h.hits.Load() == 1 && h.waiters("/api/private") == n-1
	})
	open()
	wg.Wait()
	if got := h.hits.Load(); got != n {
		t.Errorf("origin requests = %d, want %d", got, n)
	}
	seen := map[string]bool{}
	for _, r := range resps {
		if seen[r.body] {
			t.Errorf("body %q served twice", r.body)
		}
		seen[r.body] = true
	}
}

// TestCoalescingTimeout: a waiter gives up after CoalesceTimeout and goes
// upstream itself.
func TestCoalescingTimeout(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	h := newHarness(t, harnessOptions{Options: Options{CoalesceTimeout: 20 * time.Millisecond}})
	open := opener(t, gate)
	h.setHandler(func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			<-gate
		}
		echo()(w, r, n)
	})
	done := make(chan struct{})
	go func() { _, _ = h.try(http.MethodGet, "/slow"); close(done) }()
	waitFor(t, "the first request at the origin", func() bool { return h.hits.Load() == 1 })
	resp := h.get("/slow")
	if resp.body != "v2" || resp.header.Get("X-Cache") != "MISS" {
		t.Errorf("waiter: X-Cache %s body %q, want MISS v2", resp.header.Get("X-Cache"), resp.body)
	}
	open()
	<-done
}

// TestStaleWhileRevalidate: a stale response is served at once, one
// background revalidation refreshes it, and the next request sees the
// refreshed entry.
func TestStaleWhileRevalidate(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	h := newHarness(t, harnessOptions{})
	open := opener(t, gate)
	h.setHandler(func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			<-gate
		}
		reply(200, "Cache-Control", "max-age=10, stale-while-revalidate=30", "X-Seen", r.Header.Get("X-Custom"))(w, r, n)
	})
	h.get("/swr")
	h.clock.Advance(15 * time.Second)
	for range 3 {
		if resp := h.get("/swr", "X-Custom", "kept"); resp.header.Get("X-Cache") != "STALE" || resp.body != "v1" {
			t.Fatalf("stale: X-Cache %s body %q, want STALE v1", resp.header.Get("X-Cache"), resp.body)
		}
	}
	waitFor(t, "the background revalidation at the origin", func() bool { return h.hits.Load() == 2 })
	open()
	waitFor(t, "the refreshed entry", func() bool {
		es := h.stored("/swr")
		return len(es) == 1 && string(es[0].Body) == "v2"
	})
	resp := h.get("/swr")
	if resp.header.Get("X-Cache") != "HIT" || resp.body != "v2" || resp.header.Get("X-Seen") != "kept" {
		t.Errorf("after revalidation: X-Cache %s body %q X-Seen %q, want HIT v2 kept",
			resp.header.Get("X-Cache"), resp.body, resp.header.Get("X-Seen"))
	}
	if got := h.hits.Load(); got != 2 {
		t.Errorf("origin requests = %d, want 2 (one background revalidation)", got)
	}
}

// TestStaleIfErrorConnectionRefused: the origin is gone (its port bound and
// closed); the stale response answers within stale-if-error.
func TestStaleIfErrorConnectionRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.setHandler(reply(200, "Cache-Control", "max-age=10, stale-if-error=60"))
	h.get("/sie")
	h.origin.Close()
	h.clock.Advance(20 * time.Second)
	resp := h.get("/sie")
	if resp.status != 200 || resp.header.Get("X-Cache") != "STALE" || resp.body != "v1" {
		t.Errorf("origin down: %d X-Cache %s body %q, want 200 STALE v1", resp.status, resp.header.Get("X-Cache"), resp.body)
	}
	h.clock.Advance(60 * time.Second)
	if resp := h.get("/sie"); resp.status != http.StatusBadGateway {
		t.Errorf("past stale-if-error: status %d, want 502", resp.status)
	}
}

// TestUpstreamHeaders: the origin gets the client's header fields
// unchanged, plus only the cache's own conditionals on revalidation, and a
// 304 to those never reaches the client.
func TestUpstreamHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.setHandler(validating(`"e1"`, "Mon, 02 Jan 2006 15:04:05 GMT", "Cache-Control", "max-age=10"))
	client := []string{"X-Custom", "a", "Accept", "text/plain", "Cache-Control", "max-stale=0"}
	h.get("/u", client...)
	first := h.lastRequest()
	for _, k := range []string{"If-None-Match", "If-Modified-Since"} {
		if v := first.Header.Get(k); v != "" {
			t.Errorf("miss sent %s: %q", k, v)
		}
	}
	h.clock.Advance(11 * time.Second)
	resp := h.get("/u", client...)
	if resp.status != 200 || resp.body != "v1" {
		t.Errorf("revalidated: status %d body %q, want 200 v1 (a 304 to the cache's conditional must not reach the client)", resp.status, resp.body)
	}
	second := h.lastRequest()
	want := map[string]string{
		"X-Custom": "a", "Accept": "text/plain", "Cache-Control": "max-stale=0",
		"If-None-Match": `"e1"`, "If-Modified-Since": "Mon, 02 Jan 2006 15:04:05 GMT",
	}
	for k, v := range want {
		if got := second.Header.Get(k); got != v {
			t.Errorf("revalidation %s = %q, want %q", k, got, v)
		}
	}
	if second.URL.Path != "/v1/u" {
		t.Errorf("revalidation path %q, want /v1/u", second.URL.Path)
	}
}

// TestGatewayFields: the fields the gateway sets per request are its own on
// a hit, never the stored request's; the origin's are stored and added
// after them as the proxy adds them.
func TestGatewayFields(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.setHandler(echo("X-Request-Id", "origin-id", "Vary", "Accept"))
	miss := h.get("/g")
	hit := h.get("/g")
	if got := miss.header.Values("X-Request-Id"); len(got) != 2 || got[1] != "origin-id" {
		t.Errorf("miss X-Request-Id = %q, want the gateway's and the origin's", got)
	}
	if got := hit.header.Values("X-Request-Id"); len(got) != 1 || got[0] == miss.header.Values("X-Request-Id")[0] {
		t.Errorf("hit X-Request-Id = %q, want only this request's gateway id", got)
	}
	for _, r := range []response{miss, hit} {
		if got := r.header.Values("Vary"); strings.Join(got, ",") != "Origin,Accept" {
			t.Errorf("%s Vary = %q, want [Origin Accept]", r.header.Get("X-Cache"), got)
		}
		if got := r.header.Values("X-Frame-Options"); len(got) != 1 {
			t.Errorf("%s X-Frame-Options = %q, want one", r.header.Get("X-Cache"), got)
		}
	}
}

// TestLargeBody: a body over MaxBodyBytes streams to the client whole and
// is not stored; one at the limit is.
func TestLargeBody(t *testing.T) {
	t.Parallel()
	const limit = 1024
	h := newHarness(t, harnessOptions{Options: Options{MaxBodyBytes: limit, MaxMemoryBytes: 1 << 20}})
	h.setHandler(func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		size := limit
		if strings.HasSuffix(r.URL.Path, "big") {
			size = 4 * limit
		}
		if strings.Contains(r.URL.Path, "chunked") {
			w.(http.Flusher).Flush() // no Content-Length
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(size))
		}
		w.Write([]byte(strings.Repeat("x", size)))
	})
	for _, path := range []string{"/big", "/chunked/big"} {
		resp := h.get(path)
		if len(resp.body) != 4*limit {
			t.Errorf("%s: client got %d bytes, want %d", path, len(resp.body), 4*limit)
		}
		if es := h.stored(path); len(es) != 0 {
			t.Errorf("%s: stored %d entries, want none", path, len(es))
		}
		if resp := h.get(path); resp.header.Get("X-Cache") != "MISS" {
			t.Errorf("%s again: X-Cache %s, want MISS", path, resp.header.Get("X-Cache"))
		}
	}
	for _, path := range []string{"/fits", "/chunked/fits"} {
		h.get(path)
		if resp := h.get(path); resp.header.Get("X-Cache") != "HIT" || len(resp.body) != limit {
			t.Errorf("%s: X-Cache %s, %d bytes; want HIT, %d", path, resp.header.Get("X-Cache"), len(resp.body), limit)
		}
	}
}

// TestInvalidation: an unsafe request invalidates the target URI and the
// same-host Location and Content-Location, across partitions and variants,
// and across routes.
func TestInvalidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.setHandler(func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == http.MethodPost {
			w.Header().Set("Location", "/api/items/7")
			w.Header().Set("Content-Location", "http://elsewhere.example/api/items/8")
			w.WriteHeader(http.StatusCreated)
			return
		}
		reply(200, "Cache-Control", "public, max-age=60", "Vary", "Accept")(w, r, n)
	})
	paths := []string{"/api/items", "/api/items/7", "/api/items/8"}
	for _, p := range paths {
		h.get(p)
		h.get(p, "Authorization", "Bearer a")
		h.get(p, "Accept", "text/csv")
	}
	if got := len(h.stored("/api/items")); got != 3 {
		t.Fatalf("stored %d entries for /api/items, want 3", got)
	}
	// The write goes through another route, with the cache disabled.
	other := httptest.NewServer(CaptureCredentials("")(h.cache.Handler(RouteOptions{Name: "writer", Disabled: true}, proxyTo(t, h.origin.URL))))
	defer other.Close()
	req, _ := http.NewRequest(http.MethodPost, other.URL+"/api/items", strings.NewReader("{}"))
	req.Host = strings.TrimPrefix(h.front.URL, "http://")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Cache") != "" {
		t.Errorf("disabled route said X-Cache %q", resp.Header.Get("X-Cache"))
	}
	for p, want := range map[string]int{"/api/items": 0, "/api/items/7": 0, "/api/items/8": 3} {
		if got := len(h.stored(p)); got != want {
			t.Errorf("%s: %d entries after the POST, want %d", p, got, want)
		}
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	paths := []string{"/api/a", "/api/a?x=1", "/api/a/b", "/api/ab", "/other"}
	for _, p := range paths {
		h.get(p)
	}
	host := strings.TrimPrefix(h.front.URL, "http://")
	n, err := h.cache.PurgePrefix(context.Background(), host, "/api/a")
	if err != nil || n != 3 {
		t.Errorf("PurgePrefix(/api/a) = %d, %v; want 3, nil", n, err)
	}
	for p, want := range map[string]string{"/api/a": "MISS", "/api/a?x=1": "MISS", "/api/a/b": "MISS", "/api/ab": "HIT", "/other": "HIT"} {
		if got := h.get(p).header.Get("X-Cache"); got != want {
			t.Errorf("after PurgePrefix: %s X-Cache = %s, want %s", p, got, want)
		}
	}
	if n, err := h.cache.Purge(context.Background(), Key(host, "/other", "")); err != nil || n != 1 {
		t.Errorf("Purge(/other) = %d, %v; want 1, nil", n, err)
	}
	if got := h.get("/other").header.Get("X-Cache"); got != "MISS" {
		t.Errorf("after Purge: X-Cache = %s, want MISS", got)
	}
	if _, err := h.cache.PurgePrefix(context.Background(), "", "/"); err != ErrHostRequired {
		t.Errorf("PurgePrefix without host: %v, want ErrHostRequired", err)
	}
	if n, _ := h.cache.PurgePrefix(context.Background(), strings.ToUpper(host), "/"); n != 5 {
		t.Errorf("PurgePrefix(/) = %d, want 5 (host is case-insensitive)", n)
	}
}

// TestRecordAndMetrics: the result goes to the access-log record and to the
// route's counter.
func TestRecordAndMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{route: RouteOptions{Name: "r1"}})
	for _, want := range []string{"MISS", "HIT"} {
		h.get("/m")
		if rec := <-h.records; rec.Cache != want {
			t.Errorf("Record.Cache = %q, want %q", rec.Cache, want)
		}
	}
	h.do(http.MethodPost, "/m")
	if rec := <-h.records; rec.Cache != "BYPASS" {
		t.Errorf("Record.Cache = %q, want BYPASS", rec.Cache)
	}
	for r, want := range map[Result]int{Miss: 1, Hit: 1, Bypass: 1, Stale: 0} {
		if got := h.metrics.count("r1", r); got != want {
			t.Errorf("count(%s) = %d, want %d", r, got, want)
		}
	}
}

// TestWithoutCredentialsMarker: a chain without CaptureCredentials cannot
// know whose a request is, so nothing is served or stored.
func TestWithoutCredentialsMarker(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	front := httptest.NewServer(h.cache.Handler(RouteOptions{Name: "bare"}, proxyTo(t, h.origin.URL)))
	defer front.Close()
	for range 2 {
		resp, err := h.client.Get(front.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Cache"); got != "BYPASS" {
			t.Errorf("X-Cache = %q, want BYPASS", got)
		}
	}
	if got := h.hits.Load(); got != 2 {
		t.Errorf("origin requests = %d, want 2", got)
	}
}

// TestPerRouteTTL: a route's TTL overrides the default, zero meaning
// strict.
func TestPerRouteTTL(t *testing.T) {
	t.Parallel()
	zero := time.Duration(0)
	h := newHarness(t, harnessOptions{Options: Options{DefaultTTL: time.Hour}, route: RouteOptions{Name: "strict", TTL: &zero}})
	h.setHandler(reply(200))
	h.get("/t")
	if got := h.get("/t").header.Get("X-Cache"); got != "MISS" {
		t.Errorf("strict route: X-Cache = %s, want MISS", got)
	}
}

// TestCloseStopsBackground: Close cancels a background revalidation and
// waits for it.
func TestCloseStopsBackground(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	h := newHarness(t, harnessOptions{})
	opener(t, gate)
	h.setHandler(func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			select {
			case <-gate:
			case <-r.Context().Done():
			}
		}
		reply(200, "Cache-Control", "max-age=1, stale-while-revalidate=60")(w, r, n)
	})
	h.get("/c")
	h.clock.Advance(2 * time.Second)
	h.get("/c")
	waitFor(t, "the background revalidation", func() bool { return h.hits.Load() == 2 })
	closed := make(chan struct{})
	go func() { h.cache.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	h.clock.Advance(2 * time.Second)
	h.get("/c") // serves stale, starts nothing
	if got := h.hits.Load(); got != 2 {
		t.Errorf("origin requests after Close = %d, want 2", got)
	}
}

// failingStore fails every operation.
type failingStore struct{}

var errDown = fmt.Errorf("store down")

func (failingStore) Get(context.Context, string, string) ([]*Entry, error) { return nil, errDown }
func (failingStore) Set(context.Context, string, string, *Entry, time.Duration) error {
	return errDown
}
func (failingStore) Delete(context.Context, string) (int, error)       { return 0, errDown }
func (failingStore) DeletePrefix(context.Context, string) (int, error) { return 0, errDown }

// TestStoreDown: a failing store makes the cache a pass-through, counted,
// and logged once.
func TestStoreDown(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	h := newHarness(t, harnessOptions{Options: Options{Store: failingStore{}, Logger: logger}})
	for range 3 {
		if resp := h.get("/d"); resp.status != 200 || resp.header.Get("X-Cache") != "MISS" {
			t.Errorf("status %d X-Cache %s, want 200 MISS", resp.status, resp.header.Get("X-Cache"))
		}
	}
	if got := h.hits.Load(); got != 3 {
		t.Errorf("origin requests = %d, want 3", got)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if n := strings.Count(out, "cache store unavailable"); n != 1 {
		t.Errorf("logged the outage %d times, want once:\n%s", n, out)
	}
	h.metrics.mu.Lock()
	defer h.metrics.mu.Unlock()
	if h.metrics.errs["get"] != 3 || h.metrics.errs["set"] != 3 {
		t.Errorf("store errors = %v, want 3 get and 3 set", h.metrics.errs)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestCoalescingReleasesEarly: waiters learn that the leader's response
// will not be stored as soon as its header arrives, not when its body ends.
func TestCoalescingReleasesEarly(t *testing.T) {
	t.Parallel()
	gate, body := make(chan struct{}), make(chan struct{})
	h := newHarness(t, harnessOptions{Options: Options{CoalesceTimeout: time.Minute}})
	openGate, openBody := opener(t, gate), opener(t, body)
	h.setHandler(func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "no-store")
		if n == 1 {
			<-gate
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-body
		}
		fmt.Fprintf(w, "v%d", n)
	})
	leader := make(chan struct{})
	go func() { _, _ = h.try(http.MethodGet, "/stream"); close(leader) }()
	waitFor(t, "the leader at the origin", func() bool { return h.hits.Load() == 1 })
	waiter := make(chan response, 1)
	go func() { r, _ := h.try(http.MethodGet, "/stream"); waiter <- r }()
	waitFor(t, "the waiter", func() bool { return h.waiters("/stream") == 1 })
	openGate()
	select {
	case r := <-waiter:
		if r.body != "v2" {
			t.Errorf("waiter body %q, want v2", r.body)
		}
	case <-time.After(3 * time.Second):
		t.Error("the waiter waited for the leader's whole body")
	}
	openBody()
	<-leader
}

// TestRevalidatedFields: a response served after a 304 has each stored
// field once, updated by the 304, and none of the 304's own framing.
func TestRevalidatedFields(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.setHandler(validating(`"e1"`, "", "Cache-Control", "max-age=10", "X-Extra", "x"))
	h.get("/f")
	h.clock.Advance(11 * time.Second)
	resp := h.get("/f")
	if resp.header.Get("X-Cache") != "REVALIDATED" {
		t.Fatalf("X-Cache = %s, want REVALIDATED", resp.header.Get("X-Cache"))
	}
	for _, k := range []string{"Etag", "Cache-Control", "Date", "X-Extra", "Age", "X-Cache", "X-Request-Id", "X-Frame-Options", "Content-Length"} {
		if got := resp.header.Values(k); len(got) != 1 {
			t.Errorf("%s = %q, want one value", k, got)
		}
	}
}

// TestRevalidationReplacedByUnstorable: when revalidation brings a new
// response that may not be stored, the outdated stored one goes too, so
// that max-stale or stale-if-error cannot serve it later.
func TestRevalidationReplacedByUnstorable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.setHandler(func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			w.Header().Set("Cache-Control", "no-store")
			fmt.Fprintf(w, "v%d", n)
			return
		}
		reply(200, "Cache-Control", "max-age=10, stale-if-error=600", "ETag", `"e1"`)(w, r, n)
	})
	h.get("/n")
	h.clock.Advance(11 * time.Second)
	if resp := h.get("/n"); resp.body != "v2" || resp.header.Get("X-Cache") != "MISS" {
		t.Fatalf("revalidation: X-Cache %s body %q, want MISS v2", resp.header.Get("X-Cache"), resp.body)
	}
	if es := h.stored("/n"); len(es) != 0 {
		t.Errorf("the outdated entry is still stored")
	}
	if resp := h.get("/n", "Cache-Control", "max-stale"); resp.body != "v3" {
		t.Errorf("max-stale got %q, want a fresh v3", resp.body)
	}
}

// TestEarlyHints: an informational response reaches the client, and the
// final response is stored with the origin's fields only (the proxy clears
// the header map after a 1xx, so the snapshot starts over).
func TestEarlyHints(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.setHandler(func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		reply(200, "Cache-Control", "max-age=60")(w, r, n)
	})
	if resp := h.get("/hints"); resp.status != 200 || resp.header.Get("X-Cache") != "MISS" {
		t.Fatalf("first: %d %s", resp.status, resp.header.Get("X-Cache"))
	}
	es := h.stored("/hints")
	if len(es) != 1 {
		t.Fatalf("stored %d entries, want 1", len(es))
	}
	if es[0].Header.Get("Link") == "" || es[0].Header.Get("X-Frame-Options") != "" || es[0].Header.Get("Vary") != "" {
		t.Errorf("stored fields %v, want the origin's only", es[0].Header)
	}
	resp := h.get("/hints")
	if resp.header.Get("X-Cache") != "HIT" || len(resp.header.Values("X-Frame-Options")) != 1 || resp.header.Get("Link") == "" {
		t.Errorf("hit: %v", resp.header)
	}
}
