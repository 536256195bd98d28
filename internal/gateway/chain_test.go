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
		{"api_key", req(key, ""), "api_key:ci"},
		{"api_key", req(nil, ""), "ip:203.0.113.5"},
		{"header:X-Tenant", req(nil, "acme"), "h:acme"},
		{"header:X-Tenant", req(nil, ""), "ip:203.0.113.5"},
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
