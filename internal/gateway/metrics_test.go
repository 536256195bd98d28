package gateway

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape fetches /metrics (text format) through the gateway and returns every
// sample line keyed by its series ("name{labels}").
func scrape(t *testing.T, h http.Handler, hdr ...string) map[string]float64 {
	t.Helper()
	w := do(h, "GET", "/metrics", hdr...)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d, want 200: %s", w.Code, w.Body)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(w.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func seriesOf(samples map[string]float64, name string) int {
	n := 0
	for k := range samples {
		if strings.HasPrefix(k, name+"{") {
			n++
		}
	}
	return n
}

func wantSample(t *testing.T, samples map[string]float64, series string, want float64) {
	t.Helper()
	if got, ok := samples[series]; !ok || got != want {
		t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
	}
}

// deadURL is a loopback address nothing listens on: a port bound and closed.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

func TestMetricsRequests(t *testing.T) {
	be := echo(t, "a")
	g := newGateway(t, quiet+fmt.Sprintf(`
routes:
  - name: r
    match: { prefix: /api }
    backends: [ { url: %q } ]
`, be.URL))
	const n = 7
	for range n {
		if w := do(g, "GET", "/api/x"); w.Code != 200 {
			t.Fatalf("GET /api/x = %d", w.Code)
		}
	}
	do(g, "GET", "/nowhere")
	do(g, "BREW", "/api/x")

	s := scrape(t, g)
	wantSample(t, s, `http_requests_total{method="GET",route="r",status="200"}`, n)
	wantSample(t, s, `http_request_duration_seconds_count{method="GET",route="r"}`, n)
	wantSample(t, s, `http_request_duration_seconds_bucket{method="GET",route="r",le="+Inf"}`, n)
	wantSample(t, s, `http_requests_total{method="GET",route="none",status="404"}`, 1)
	wantSample(t, s, `http_requests_total{method="OTHER",route="r",status="200"}`, 1)
	wantSample(t, s, fmt.Sprintf(`upstream_request_duration_seconds_count{backend=%q}`, be.URL), n+1)
	wantSample(t, s, `config_reloads_total{result="success"}`, 1)
	wantSample(t, s, `config_reloads_total{result="failure"}`, 0)
	wantSample(t, s, `cache_hits_total`, 0)
	wantSample(t, s, `active_connections`, 0)
	wantSample(t, s, `blocked_ips_total`, 0)
	if _, ok := s[`altair_build_info{goversion="`+runtimeVersion()+`",version="test"}`]; !ok {
		t.Errorf("altair_build_info missing")
	}
	if seriesOf(s, "go_goroutines") == 0 && s["go_goroutines"] == 0 {
		t.Errorf("Go collector missing")
	}
	// Scrapes themselves are not requests of any route.
	if got := seriesOf(s, "http_requests_total"); got != 3 {
		t.Errorf("http_requests_total series = %d, want 3: %v", got, s)
	}

	// Bounded labels: raw paths never become series.
	before := seriesOf(s, "http_requests_total")
	for range 100 {
		do(g, "GET", fmt.Sprintf("/api/%x", rand.Uint64()))
		do(g, "GET", fmt.Sprintf("/%x", rand.Uint64()))
	}
	s = scrape(t, g)
	if got := seriesOf(s, "http_requests_total"); got != before {
		t.Errorf("http_requests_total series after 100 random paths = %d, want %d", got, before)
	}
	wantSample(t, s, `http_requests_total{method="GET",route="r",status="200"}`, n+100)
	wantSample(t, s, `http_requests_total{method="GET",route="none",status="404"}`, 101)
}

func runtimeVersion() string { return runtime.Version() }

func TestMetricsReloads(t *testing.T) {
	be := echo(t, "a")
	cfg := quiet + fmt.Sprintf(`
routes:
  - name: r
    match: { prefix: /api }
    backends: [ { url: %q } ]
`, be.URL)
	g := newGateway(t, cfg)
	if err := g.Apply(load(t, cfg)); err != nil {
		t.Fatal(err)
	}
	bad := load(t, cfg)
	bad.Routes[0].Upstream = "missing"
	if err := g.Apply(bad); err == nil {
		t.Fatal("Apply(bad) = nil, want an error")
	}
	s := scrape(t, g)
	wantSample(t, s, `config_reloads_total{result="success"}`, 2)
	wantSample(t, s, `config_reloads_total{result="failure"}`, 1)
}

// poll scrapes until cond holds, failing after a deadline.
func poll(t *testing.T, h http.Handler, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := scrape(t, h)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // the poll interval, not a wait for an outcome
	}
}

func TestMetricsBackendHealth(t *testing.T) {
	live := echo(t, "live")
	dead := deadURL(t)
	g := newGateway(t, fmt.Sprintf(`
edge:
  rate_limit: { disabled: true }
  ddos: { disabled: true }
defaults:
  health_check: { interval: 20ms, timeout: 10ms, fall: 1, rise: 1 }
routes:
  - name: h
    match: { prefix: /h }
    backends: [ { url: %q }, { url: %q } ]
`, live.URL, dead))
	liveKey := fmt.Sprintf(`backend_health_status{backend=%q,route="h"}`, live.URL)
	deadKey := fmt.Sprintf(`backend_health_status{backend=%q,route="h"}`, dead)
	poll(t, g, "the dead backend to be marked down", func(s map[string]float64) bool {
		v, ok := s[deadKey]
		return ok && v == 0
	})
	s := scrape(t, g)
	wantSample(t, s, liveKey, 1)
}

func TestMetricsBreakerTrip(t *testing.T) {
	dead := deadURL(t)
	g := newGateway(t, fmt.Sprintf(`
edge:
  rate_limit: { disabled: true }
  ddos: { disabled: true }
defaults:
  health_check: { disabled: true }
  passive_health: { disabled: true }
  circuit_breaker: { max_failures: 1, min_requests: 1, timeout: 1h }
  retry: { attempts: 1 }
routes:
  - name: b
    match: { prefix: /b }
    backends: [ { url: %q } ]
`, dead))
	if w := do(g, "GET", "/b"); w.Code != http.StatusBadGateway {
		t.Fatalf("GET /b = %d, want 502", w.Code)
	}
	if w := do(g, "GET", "/b"); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /b with the breaker open = %d, want 503", w.Code)
	}
	s := scrape(t, g)
	wantSample(t, s, fmt.Sprintf(`circuit_breaker_trips_total{backend=%q}`, dead), 1)
	wantSample(t, s, fmt.Sprintf(`upstream_errors_total{backend=%q,kind="connect"}`, dead), 1)
	wantSample(t, s, `http_requests_total{method="GET",route="b",status="502"}`, 1)
	wantSample(t, s, `http_requests_total{method="GET",route="b",status="503"}`, 1)
}

func TestMetricsEdge(t *testing.T) {
	be := echo(t, "a")
	g := newGateway(t, fmt.Sprintf(`
defaults:
  health_check: { disabled: true }
edge:
  ddos: { threshold: 3, block_duration: 1h }
routes:
  - name: r
    match: { prefix: /api }
    backends: [ { url: %q } ]
    rate_limit: { requests_per_second: 0.001, burst: 1 }
`, be.URL))
	for range 2 {
		do(g, "GET", "/api/x") // 200, then 429 from the route's limit
	}
	for range 5 {
		do(g, "GET", "/api/x") // over the DDoS threshold: blocked
	}
	// The scrape comes from another client so that it is not blocked (it is
	// answered before the edge guard anyway).
	s := scrape(t, g)
	wantSample(t, s, `blocked_ips_total`, 1)
	wantSample(t, s, `rate_limited_total{route="r"}`, 2)
	wantSample(t, s, `http_requests_total{method="GET",route="r",status="429"}`, 2)
	if s[`http_requests_total{method="GET",route="none",status="403"}`] < 1 {
		t.Errorf("blocked requests not counted under route none: %v", s)
	}
}

func TestMetricsOnAdmin(t *testing.T) {
	const token = "0123456789abcdef-admin"
	base := quiet + `
admin: { token: "` + token + `" }
metrics: { on_admin: true }
`
	t.Run("main listener", func(t *testing.T) {
		g := newGateway(t, base)
		if w := do(g, "GET", "/metrics"); w.Code != http.StatusUnauthorized {
			t.Errorf("GET /metrics without token = %d, want 401", w.Code)
		}
		s := scrape(t, g, "Authorization", "Bearer "+token)
		wantSample(t, s, `config_reloads_total{result="success"}`, 1)
	})
	t.Run("admin listener", func(t *testing.T) {
		g := New(Options{Version: "test", AdminListen: "127.0.0.1:9"})
		t.Cleanup(g.Close)
		cfg := strings.Replace(base, `token: "`, `listen: "127.0.0.1:9", token: "`, 1)
		if err := g.Apply(load(t, cfg)); err != nil {
			t.Fatal(err)
		}
		if w := do(g, "GET", "/metrics", "Authorization", "Bearer "+token); w.Code != http.StatusNotFound {
			t.Errorf("GET /metrics on the main listener = %d, want 404", w.Code)
		}
		if w := do(g.AdminHandler(), "GET", "/metrics"); w.Code != http.StatusUnauthorized {
			t.Errorf("GET /metrics on the admin listener without token = %d, want 401", w.Code)
		}
		scrape(t, g.AdminHandler(), "Authorization", "Bearer "+token)
	})
	t.Run("disabled", func(t *testing.T) {
		g := newGateway(t, quiet+"metrics: { disabled: true }\n")
		if w := do(g, "GET", "/metrics"); w.Code != http.StatusNotFound {
			t.Errorf("GET /metrics disabled = %d, want 404", w.Code)
		}
	})
}

// TestActiveConnections counts open client connections through a real
// server's ConnState hook.
func TestActiveConnections(t *testing.T) {
	g := newGateway(t, quiet)
	srv := httptest.NewUnstartedServer(g)
	srv.Config.ConnState = g.ConnState
	srv.Start()
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	resp, err := c.Get(srv.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body) // a drained body keeps the connection open
	resp.Body.Close()
	poll(t, g, "one open connection", func(s map[string]float64) bool { return s["active_connections"] == 1 })
	tr.CloseIdleConnections()
	poll(t, g, "no open connection", func(s map[string]float64) bool { return s["active_connections"] == 0 })
}
