package upstream

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
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
			// Each attempt's body was closed, through the one wrapper the
			// attempts share: nothing is left in flight.
			for _, b := range p.backends {
				if n := b.state.inFlight.Load(); n != 0 {
					t.Errorf("backend %s: %d requests still in flight", b.name, n)
				}
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

// TestFastLate1xxIgnored: a 1xx a transport reports once the attempts are
// over (net/http's does so from its own goroutine when a request is cut
// short) leaves the client's response alone.
func TestFastLate1xxIgnored(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	fs := &fastState{w: w}
	if err := fs.got1xx(http.StatusEarlyHints, map[string][]string{"Link": {"</a.css>; rel=preload"}}); err != nil {
		t.Fatal(err)
	}
	if w.Header().Get("Link") != "" {
		t.Fatalf("the 1xx's fields stayed on the final answer: %v", w.Header())
	}
	fs.tripped = true
	w.Header().Set("X-Final", "1")
	if err := fs.got1xx(http.StatusEarlyHints, map[string][]string{"Link": {"</b.css>; rel=preload"}}); err != nil {
		t.Fatal(err)
	}
	if got := w.Header(); len(got) != 1 || got.Get("X-Final") != "1" {
		t.Fatalf("a late 1xx changed the answer's fields: %v", got)
	}
}

// TestFastPerTryTimeoutFires: on the fast path, a per-try timeout cuts an
// attempt to a backend that does not answer, and the next backend serves the
// request.
func TestFastPerTryTimeoutFires(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	var stuckHits atomic.Int32
	stuck := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		stuckHits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ok := okBackend(t, "ok")
	cfg := testUpstream(stuck.URL, ok.URL)
	cfg.CircuitBreaker.Disabled = true
	cfg.Retry.PerTryTimeout = 50 * time.Millisecond
	p := newTestPool(t, cfg)
	h := p.Handler(RouteOptions{Route: "r", Timeout: time.Minute}).(*routeHandler)
	// Round-robin: of two requests, one goes to the stuck backend first.
	for i := range 2 {
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- serve(h, httptest.NewRequest("GET", "/x", nil)) }()
		select {
		case w := <-done:
			if w.Code != http.StatusOK || w.Body.String() != "ok" {
				t.Fatalf("request %d: answer = %d %q, want 200 from the live backend", i, w.Code, w.Body.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the per-try timeout did not cut the stuck attempt")
		}
	}
	if stuckHits.Load() == 0 {
		t.Fatal("no request tried the stuck backend")
	}
}
