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
  health_check: { interval: 150ms, timeout: 150ms, fall: 1, rise: 1 }
routes:
  - name: h
    match: { prefix: /h }
    backends: [ { url: %q }, { url: %q } ]
`, live.URL, dead))
	liveKey := fmt.Sprintf(`backend_health_status{backend=%q,route="h"}`, live.URL)
	deadKey := fmt.Sprintf(`backend_health_status{backend=%q,route="h"}`, dead)
	// Both at once: under load a single slow probe may briefly mark the live
	// backend down too; what must hold is that the two are told apart.
	poll(t, g, "the dead backend down and the live one up", func(s map[string]float64) bool {
		d, okd := s[deadKey]
		l, okl := s[liveKey]
		return okd && okl && d == 0 && l == 1
	})
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

// TestMetricsReviewFixes covers the counting edge cases a review found:
// upgrades, aborted responses, unknown status codes, duplicate backend
// labels, and backend series after a reload.
func TestMetricsReviewFixes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
		case "/abort":
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			w.Write([]byte("short"))
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		case "/weird":
			w.WriteHeader(599)
		}
	}))
	defer up.Close()
	cfg := func(backends string) string {
		return quiet + fmt.Sprintf(`
routes:
  - name: r
    backends: [ %s ]
`, backends)
	}
	g := newGateway(t, cfg(fmt.Sprintf(`{ url: %[1]q }, { url: %[1]q }`, up.URL)))
	srv := httptest.NewServer(g)
	defer srv.Close()

	// An upgrade through a real server.
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	c.Close()
	// A response the backend cuts short.
	if resp, err := http.Get(srv.URL + "/abort"); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// An unknown status code.
	if resp, err := http.Get(srv.URL + "/weird"); err == nil {
		resp.Body.Close()
	}

	s := poll(t, g, "the three requests counted", func(s map[string]float64) bool {
		return s[`http_requests_total{method="GET",route="r",status="101"}`] == 1 &&
			s[`http_requests_total{method="GET",route="r",status="200"}`] == 1 &&
			s[`http_requests_total{method="GET",route="r",status="other"}`] == 1
	})
	if n := seriesOf(s, "backend_health_status"); n != 1 {
		t.Errorf("backend_health_status series for one URL listed twice = %d, want 1", n)
	}
	if n := seriesOf(s, "circuit_breaker_trips_total"); n != 1 {
		t.Errorf("circuit_breaker_trips_total series before reload = %d, want 1", n)
	}

	// A reload to another backend drops the old backend's series.
	other := echo(t, "b")
	if err := g.Apply(load(t, cfg(fmt.Sprintf(`{ url: %q }`, other.URL)))); err != nil {
		t.Fatal(err)
	}
	s = scrape(t, g)
	for _, name := range []string{"circuit_breaker_trips_total", "upstream_errors_total", "upstream_request_duration_seconds_count"} {
		for k := range s {
			if strings.HasPrefix(k, name+"{") && strings.Contains(k, up.URL) {
				t.Errorf("after the reload a series of the removed backend remains: %s", k)
			}
		}
	}
}

func TestDeadRouteCreatesNoSeries(t *testing.T) {
	g := newGateway(t, quiet)
	rm := g.metrics.route("gone")
	rm.dead.Store(true)
	g.metrics.forget("gone")
	rm.observe("GET", 200, time.Millisecond)
	if n := seriesOf(scrape(t, g), "http_requests_total"); n != 0 {
		t.Fatalf("a request on a route removed by a reload created %d series, want 0", n)
	}
}

func TestMetricsRetriesAndErrorKinds(t *testing.T) {
	live := echo(t, "live")
	dead := deadURL(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	g := newGateway(t, quiet+fmt.Sprintf(`
upstreams:
  pair:
    load_balancing: round-robin
    passive_health: { disabled: true }
    circuit_breaker: { disabled: true }
    backends: [ { url: %q }, { url: %q } ]
routes:
  - name: retry
    match: { prefix: /retry }
    upstream: pair
  - name: slow
    match: { prefix: /slow }
    timeout: 50ms
    backends: [ { url: %q } ]
`, dead, live.URL, slow.URL))
	for range 4 {
		if w := do(g, "GET", "/retry/x"); w.Code != 200 {
			t.Fatalf("GET /retry/x = %d, want 200 after a retry", w.Code)
		}
	}
	if w := do(g, "GET", "/slow/x"); w.Code != http.StatusGatewayTimeout {
		t.Fatalf("GET /slow/x = %d, want 504", w.Code)
	}
	s := scrape(t, g)
	// Round-robin over [dead, live]: the requests that start on the dead
	// backend are retried once each.
	if v := s[`upstream_retries_total{route="retry"}`]; v < 1 {
		t.Errorf(`upstream_retries_total{route="retry"} = %v, want >= 1`, v)
	}
	if v := s[fmt.Sprintf(`upstream_errors_total{backend=%q,kind="connect"}`, dead)]; v < 1 {
		t.Errorf("connect errors of the dead backend = %v, want >= 1", v)
	}
	wantSample(t, s, fmt.Sprintf(`upstream_errors_total{backend=%q,kind="timeout"}`, slow.URL), 1)
	wantSample(t, s, `http_requests_total{method="GET",route="slow",status="504"}`, 1)
}
