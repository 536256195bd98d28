package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/altair-gateway/altair/internal/admin/monitor"
)

// systemMetrics is the part of /api/system-metrics these tests read.
type systemMetrics struct {
	Traffic struct {
		Requests uint64 `json:"requests_total"`
	} `json:"traffic"`
	Routes []struct {
		Name     string `json:"name"`
		Requests uint64 `json:"requests"`
	} `json:"routes"`
	Upstreams []struct {
		Name     string `json:"name"`
		Backends []struct {
			URL     string `json:"url"`
			Healthy bool   `json:"healthy"`
			Breaker string `json:"breaker"`
		} `json:"backends"`
	} `json:"upstreams"`
	Runtime struct {
		Goroutines int `json:"goroutines"`
	} `json:"runtime"`
}

func TestMonitorServedBeforeRouting(t *testing.T) {
	t.Parallel()
	b := echo(t, "b")
	g := newGateway(t, quiet+`
routes:
  - name: all
    match: { prefix: / }
    backends: [{ url: "`+b.URL+`" }]
`)
	for range 3 {
		if w := do(g, "GET", "/x"); w.Code != 200 {
			t.Fatalf("GET /x = %d", w.Code)
		}
	}

	page := do(g, "GET", "/monitor")
	if page.Code != 200 || page.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /monitor = %d %q, want the page", page.Code, page.Header().Get("Content-Type"))
	}
	h := page.Header()
	if got := h.Get("Content-Security-Policy"); got != monitor.ContentSecurityPolicy {
		t.Errorf("page CSP = %q, want the monitor's %q", got, monitor.ContentSecurityPolicy)
	}
	// The gateway's own security headers and request id still apply.
	if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Request-ID") == "" {
		t.Errorf("page headers = %v, want security headers and a request id", h)
	}
	if w := do(g, "GET", "/monitor/app.js"); w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /monitor/app.js = %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	// A path that only looks like the monitor's is routed.
	if w := do(g, "GET", "/monitoring"); w.Code != 200 || !strings.HasPrefix(w.Body.String(), "b GET /monitoring") {
		t.Errorf("GET /monitoring = %d %q, want the backend", w.Code, w.Body)
	}
	// A cleaned path reaches the monitor too.
	if w := do(g, "GET", "/x/../monitor"); w.Code != 200 || w.Header().Get("Content-Security-Policy") != monitor.ContentSecurityPolicy {
		t.Errorf("GET /x/../monitor = %d, want the page", w.Code)
	}

	w := do(g, "GET", "/api/system-metrics")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /api/system-metrics = %d %v", w.Code, w.Header())
	}
	var m systemMetrics
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	// Four requests were routed (/x three times, /monitoring); the monitor's
	// own paths are not counted.
	if m.Traffic.Requests != 4 || len(m.Routes) != 1 || m.Routes[0].Name != "all" || m.Routes[0].Requests != 4 {
		t.Errorf("traffic = %+v, routes = %+v; want 4 requests on route all", m.Traffic, m.Routes)
	}
	if len(m.Upstreams) != 1 || len(m.Upstreams[0].Backends) != 1 || m.Upstreams[0].Backends[0].URL != b.URL ||
		!m.Upstreams[0].Backends[0].Healthy || m.Upstreams[0].Backends[0].Breaker != "closed" {
		t.Errorf("upstreams = %+v, want the backend, healthy, breaker closed", m.Upstreams)
	}
	if m.Runtime.Goroutines <= 0 {
		t.Errorf("goroutines = %d", m.Runtime.Goroutines)
	}
}

func TestMonitorDisabledPathsAreRouted(t *testing.T) {
	t.Parallel()
	b := echo(t, "b")
	g := newGateway(t, quiet+`
monitor: { disabled: true }
routes:
  - name: all
    match: { prefix: / }
    backends: [{ url: "`+b.URL+`" }]
`)
	for _, p := range []string{"/monitor", "/monitor/app.js", "/api/system-metrics"} {
		if w := do(g, "GET", p); w.Code != 200 || !strings.HasPrefix(w.Body.String(), "b GET "+p) {
			t.Errorf("GET %s with the monitor disabled = %d %q, want the backend", p, w.Code, w.Body)
		}
	}
}

func TestMonitorOnAdmin(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef-admin"
	base := quiet + `
admin: { token: "` + token + `" }
monitor: { on_admin: true }
`
	t.Run("main listener", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, base)
		if w := do(g, "GET", "/api/system-metrics"); w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("GET /api/system-metrics without token = %d, want 401 with WWW-Authenticate", w.Code)
		}
		if w := do(g, "GET", "/api/system-metrics", "Authorization", "Bearer wrong-token-0123456"); w.Code != http.StatusUnauthorized {
			t.Errorf("GET /api/system-metrics with a wrong token = %d, want 401", w.Code)
		}
		if w := do(g, "GET", "/api/system-metrics", "Authorization", "Bearer "+token); w.Code != 200 || !json.Valid(w.Body.Bytes()) {
			t.Errorf("GET /api/system-metrics with the token = %d", w.Code)
		}
		// The page holds no data: a browser loads it, then asks for the token.
		if w := do(g, "GET", "/monitor"); w.Code != 200 {
			t.Errorf("GET /monitor = %d, want 200", w.Code)
		}
	})
	t.Run("admin listener", func(t *testing.T) {
		t.Parallel()
		g := New(Options{Version: "test", AdminListen: "127.0.0.1:9"})
		t.Cleanup(g.Close)
		cfg := strings.Replace(base, `token: "`, `listen: "127.0.0.1:9", token: "`, 1)
		if err := g.Apply(load(t, cfg)); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/monitor", "/api/system-metrics"} {
			if w := do(g, "GET", p, "Authorization", "Bearer "+token); w.Code != http.StatusNotFound {
				t.Errorf("GET %s on the main listener = %d, want 404 (routed, no route)", p, w.Code)
			}
		}
		admin := g.AdminHandler()
		if w := do(admin, "GET", "/monitor"); w.Code != 200 || w.Header().Get("Content-Security-Policy") != monitor.ContentSecurityPolicy {
			t.Errorf("GET /monitor on the admin listener = %d, want the page", w.Code)
		}
		if w := do(admin, "GET", "/api/system-metrics"); w.Code != http.StatusUnauthorized {
			t.Errorf("GET /api/system-metrics on the admin listener without token = %d, want 401", w.Code)
		}
		if w := do(admin, "GET", "/api/system-metrics", "Authorization", "Bearer "+token); w.Code != 200 {
			t.Errorf("GET /api/system-metrics on the admin listener with the token = %d, want 200", w.Code)
		}
	})
	t.Run("admin listener, not on_admin", func(t *testing.T) {
		t.Parallel()
		g := New(Options{Version: "test", AdminListen: "127.0.0.1:9"})
		t.Cleanup(g.Close)
		if err := g.Apply(load(t, quiet+`admin: { listen: "127.0.0.1:9", token: "`+token+`" }`+"\n")); err != nil {
			t.Fatal(err)
		}
		if w := do(g, "GET", "/api/system-metrics"); w.Code != 200 {
			t.Errorf("GET /api/system-metrics on the main listener = %d, want 200", w.Code)
		}
		if w := do(g.AdminHandler(), "GET", "/monitor"); w.Code != http.StatusNotFound {
			t.Errorf("GET /monitor on the admin listener = %d, want 404", w.Code)
		}
	})
}
