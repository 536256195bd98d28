package upstream

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/identity"
)

// TestRetryAimsEachAttempt retries a GET across three backends with
// different base paths: each attempt must reach its own backend at its own
// base path joined with the client's path, on the fast path (which re-aims
// its own copy of the request in place) and the general one, with and
// without a per-try timeout (under which attempts copy the request), and
// the client's request must come out of it unchanged.
func TestRetryAimsEachAttempt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		noFast bool
		perTry time.Duration
	}{
		{"fast", false, 0},
		{"fast, per-try timeout", false, time.Minute},
		{"general", true, 0},
		{"general, per-try timeout", true, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var seen []string
			backend := func(name string, status int) *httptest.Server {
				return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					seen = append(seen, name+" "+r.Host+" "+r.URL.RequestURI())
					mu.Unlock()
					w.WriteHeader(status)
				})
			}
			b1, b2, b3 := backend("b1", 503), backend("b2", 503), backend("b3", 200)
			cfg := testUpstream(b1.URL+"/one", b2.URL+"/two/", b3.URL+"/three")
			cfg.CircuitBreaker.Disabled = true
			cfg.Retry.PerTryTimeout = tc.perTry
			p := newTestPool(t, cfg)
			h := p.Handler(RouteOptions{Route: "r"}).(*routeHandler)
			h.noFast = tc.noFast

			req := httptest.NewRequest("GET", "http://client.example/a/b?q=1", nil)
			w := serve(h, req)
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", w.Code)
			}
			want := []string{ // the client's Host passes on, as with ReverseProxy
				"b1 client.example /one/a/b?q=1",
				"b2 client.example /two/a/b?q=1",
				"b3 client.example /three/a/b?q=1",
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != len(want) {
				t.Fatalf("backends saw %q, want %q", seen, want)
			}
			for i := range want {
				if seen[i] != want[i] {
					t.Errorf("attempt %d reached %q, want %q", i+1, seen[i], want[i])
				}
			}
			if req.URL.Path != "/a/b" || req.URL.Host != "client.example" || req.URL.Scheme != "http" {
				t.Errorf("client's URL changed to %s", req.URL)
			}
		})
	}
}

// TestFastRealIP checks X-Real-IP on the fast path when the edge decided
// on a client IP: the peer's own text when they are the same address, the
// decided address otherwise, in the form the general path gives.
func TestFastRealIP(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get("X-Real-Ip") })
	p := newTestPool(t, testUpstream(be.URL))
	for _, tc := range []struct{ peer, client, want string }{
		{"192.0.2.7:5555", "192.0.2.7", "192.0.2.7"},
		{"192.0.2.7:5555", "198.51.100.1", "198.51.100.1"},
		{"[2001:db8::1]:5555", "2001:db8::1", "2001:db8::1"},
		{"192.0.2.7:5555", "::ffff:192.0.2.7", "::ffff:192.0.2.7"},
		{"[::ffff:192.0.2.7]:5555", "192.0.2.7", "192.0.2.7"},
	} {
		for _, noFast := range []bool{false, true} {
			h := p.Handler(RouteOptions{}).(*routeHandler)
			h.noFast = noFast
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.peer
			req = req.WithContext(identity.WithClientIP(req.Context(), netip.MustParseAddr(tc.client)))
			if w := serve(h, req); w.Code != http.StatusOK {
				t.Fatalf("status = %d", w.Code)
			}
			if g := <-got; g != tc.want {
				t.Errorf("peer %s, client %s, noFast=%v: X-Real-IP = %q, want %q", tc.peer, tc.client, noFast, g, tc.want)
			}
		}
	}
}
