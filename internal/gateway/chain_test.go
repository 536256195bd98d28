package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/identity"
)

func TestMergeRateLimit(t *testing.T) {
	t.Parallel()
	base := config.RateLimit{RequestsPerSecond: 100, Burst: 200, Key: "ip"}
	tests := []struct {
		name string
		over config.RateLimit
		want config.RateLimit
	}{
		{"inherit", config.RateLimit{}, base},
		{"rate only", config.RateLimit{RequestsPerSecond: 5}, config.RateLimit{RequestsPerSecond: 5, Burst: 200, Key: "ip"}},
		{"key only", config.RateLimit{Key: "jwt_sub"}, config.RateLimit{RequestsPerSecond: 100, Burst: 200, Key: "jwt_sub"}},
		{"route off", config.RateLimit{Disabled: true}, config.RateLimit{Disabled: true, RequestsPerSecond: 100, Burst: 200, Key: "ip"}},
	}
	for _, tt := range tests {
		if got := mergeRateLimit(base, tt.over); got != tt.want {
			t.Errorf("mergeRateLimit(%s) = %+v, want %+v", tt.name, got, tt.want)
		}
	}
	// A route that sets its own limit turns it on even when the global one is off.
	off := config.RateLimit{Disabled: true, RequestsPerSecond: 100, Burst: 200, Key: "ip"}
	if got := mergeRateLimit(off, config.RateLimit{RequestsPerSecond: 1}); got.Disabled {
		t.Errorf("mergeRateLimit(global off, route rate 1) = %+v, want enabled", got)
	}
}

func TestRateKey(t *testing.T) {
	t.Parallel()
	req := func(p *identity.Principal, hdr string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.9.9.9:1000"
		ctx := identity.WithClientIP(r.Context(), netip.MustParseAddr("203.0.113.5"))
		if p != nil {
			ctx = identity.WithPrincipal(ctx, p)
		}
		if hdr != "" {
			r.Header.Set("X-Tenant", hdr)
		}
		return r.WithContext(ctx)
	}
	jwt := &identity.Principal{Method: "jwt", Name: "alice"}
	key := &identity.Principal{Method: "api_key", Name: "ci"}
	tests := []struct {
		key  string
		r    *http.Request
		want string
	}{
		{"ip", req(jwt, ""), "ip:203.0.113.5"},
		{"jwt_sub", req(jwt, ""), "jwt:alice"},
		{"jwt_sub", req(key, ""), "ip:203.0.113.5"},
		{"jwt_sub", req(&identity.Principal{Method: "jwt"}, ""), "ip:203.0.113.5"},
		{"api_key", req(key, ""), "api_key:ci"},
		{"api_key", req(nil, ""), "ip:203.0.113.5"},
		{"header:X-Tenant", req(nil, "acme"), "h:acme"},
		{"header:X-Tenant", req(nil, ""), "ip:203.0.113.5"},
		{"ip", func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			return r.WithContext(identity.WithClientIP(r.Context(), netip.MustParseAddr("2001:db8:1:2::99")))
		}(), "ip:2001:db8:1:2::"},
	}
	for _, tt := range tests {
		if got := rateKey(tt.key)(tt.r); got != tt.want {
			t.Errorf("rateKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// TestPreflightRoutedByAnnouncedMethod: a CORS preflight for POST reaches the
// POST route's CORS policy and is answered before auth; an OPTIONS request
// that is not a preflight is routed as OPTIONS.
func TestPreflightRoutedByAnnouncedMethod(t *testing.T) {
	a := echo(t, "a")
	g := newGateway(t, quiet+fmt.Sprintf(`
auth:
  api_keys:
    keys: [ { name: k, key: "0123456789abcdef0123" } ]
cors:
  allowed_origins: ["https://app.example.com"]
routes:
  - name: write
    match: { prefix: /api, methods: [POST] }
    require_auth: true
    backends: [ { url: %q } ]
`, a.URL))
	w := do(g, "OPTIONS", "/api/x", "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("preflight for POST = %d %v, want 204 from the POST route's CORS policy", w.Code, w.Header())
	}
	if w := do(g, "OPTIONS", "/api/x"); w.Code != http.StatusNotFound {
		t.Fatalf("plain OPTIONS on a POST-only route = %d, want 404", w.Code)
	}
	if w := do(g, "POST", "/api/x", "Origin", "https://app.example.com"); w.Code != http.StatusUnauthorized {
		t.Fatalf("POST without a key = %d, want 401", w.Code)
	}
	if w := do(g, "POST", "/api/x", "X-API-Key", "0123456789abcdef0123"); w.Code != http.StatusOK {
		t.Fatalf("POST with a key = %d %s, want 200", w.Code, w.Body)
	}
}

// TestPreflightOnRouteWithoutCORS: with CORS off on the route the announced
// method reaches, a preflight is a plain OPTIONS request and must not reach a
// route that does not take OPTIONS.
func TestPreflightOnRouteWithoutCORS(t *testing.T) {
	a := echo(t, "a")
	g := newGateway(t, quiet+fmt.Sprintf(`
routes:
  - name: write
    match: { prefix: /api, methods: [POST] }
    cors: { disabled: true }
    backends: [ { url: %q } ]
`, a.URL))
	w := do(g, "OPTIONS", "/api/x", "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if w.Code != http.StatusNotFound {
		t.Fatalf("preflight to a POST-only route with CORS off = %d %q, want 404 (OPTIONS is not a POST)", w.Code, w.Body)
	}
}

// TestIdentityHeadersStrippedOnEveryRoute: a client cannot tell a backend who
// it is by sending X-User-ID (a claim header) on a route without auth.
func TestIdentityHeadersStrippedOnEveryRoute(t *testing.T) {
	a := echo(t, "a")
	g := newGateway(t, quiet+fmt.Sprintf(`
auth:
  api_keys:
    keys: [ { name: k, key: "0123456789abcdef0123" } ]
routes:
  - name: open
    match: { prefix: /open }
    backends: [ { url: %[1]q } ]
  - name: fwd
    match: { prefix: /fwd }
    require_auth: true
    auth:
      methods: [api_key]
      forward: { url: "http://127.0.0.1:1", copy_headers: [X-Tenant, Authorization] }
    backends: [ { url: %[1]q } ]
`, a.URL))
	r := httptest.NewRequest("GET", "/open/x", nil)
	r.Header.Set("X-User-ID", "admin")
	r.Header.Set("X-Tenant", "other")
	r.Header.Set("Authorization", "Bearer kept-for-the-backend")
	var seen http.Header
	g2 := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { g.ServeHTTP(w, req); seen = req.Header })
	w := httptest.NewRecorder()
	g2.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("GET /open/x = %d", w.Code)
	}
	if v := seen.Get("X-User-Id"); v != "" {
		t.Errorf("client-sent X-User-ID reached an open route's backend: %q", v)
	}
	if v := seen.Get("X-Tenant"); v != "" {
		t.Errorf("client-sent X-Tenant (a forward-auth copy header) reached the backend: %q", v)
	}
	if v := seen.Get("Authorization"); v == "" {
		t.Error("Authorization was stripped on an open route; only identity headers should be")
	}
}

func TestDotParamSegmentsRefused(t *testing.T) {
	a := echo(t, "a")
	g := newGateway(t, quiet+fmt.Sprintf(`
routes:
  - name: all
    backends: [ { url: %q } ]
`, a.URL))
	tests := []struct {
		give string
		want int
	}{
		{"/api/v1/public/..;/private", http.StatusBadRequest},
		{"/api/v1/public/%2e%2e;/private", http.StatusBadRequest},
		{"/a/.;jsessionid=1/b", http.StatusBadRequest},
		{"/a/b;v=1/c", http.StatusOK},
		{"/a/...;x", http.StatusOK},
		{"/files/..data", http.StatusOK},
	}
	for _, tt := range tests {
		if w := do(g, "GET", tt.give); w.Code != tt.want {
			t.Errorf("GET %s = %d, want %d", tt.give, w.Code, tt.want)
		}
	}
}
