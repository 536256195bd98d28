package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/edge"
	"github.com/altair-gateway/altair/internal/server/http1"
)

// laneServer serves g on the HTTP/1 server, with the direct lane when
// direct is set; answered counts the requests the lane answered.
func laneServer(t testing.TB, g *Gateway, direct bool) (base string, answered *atomic.Int64) {
	t.Helper()
	answered = new(atomic.Int64)
	s := &http1.Server{Handler: g}
	if direct {
		s.Direct = func(w http.ResponseWriter, r *http.Request, ctl http1.DirectControl) bool {
			ok := g.ServeDirect(w, r, ctl)
			if ok {
				answered.Add(1)
			}
			return ok
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String(), answered
}

// reflector is a backend that answers with what it received (method, URI,
// Host and every header but the request id, whose presence it reports) and
// with headers the gateway must filter or keep: a security header, a CORS
// header, hop-by-hop ones. ?status= picks the status, ?sleep= a delay.
func reflector(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s host=%s\n", r.Method, r.RequestURI, r.Host)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if k == "X-Request-Id" {
				fmt.Fprintf(&b, "%s: (%d)\n", k, len(r.Header[k]))
				continue
			}
			fmt.Fprintf(&b, "%s: %q\n", k, r.Header[k])
		}
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Frame-Options", "SAMEORIGIN")
		h.Set("Access-Control-Allow-Origin", "https://evil.example")
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "1")
		h.Add("Vary", "Cookie")
		h.Set("X-Upstream-Drop", "secret")
		status := http.StatusOK
		if s := r.URL.Query().Get("status"); s != "" {
			fmt.Sscan(s, &status)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, b.String())
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// laneCase is one request sent to both servers; lane says whether the
// direct lane must answer it.
type laneCase struct {
	name   string
	method string
	target string
	hdr    []string // name, value pairs
	lane   bool
}

// answer is a response with what may differ between two equal answers (the
// Date and a generated request id) taken out.
func answer(t *testing.T, base string, c laneCase) string {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	return answerOn(t, tr, base, c)
}

// answerOn is answer over tr, whose connections may carry other requests.
func answerOn(t *testing.T, tr *http.Transport, base string, c laneCase) string {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["User-Agent"] = nil // no default User-Agent: tests set their own
	for i := 0; i+1 < len(c.hdr); i += 2 {
		if c.hdr[i] == "Host" {
			req.Host = c.hdr[i+1]
			continue
		}
		req.Header.Add(c.hdr[i], c.hdr[i+1])
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: body: %v", c.name, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", resp.Status)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := resp.Header[k]
		switch k {
		case "Date":
			v = []string{"(date)"}
		case "X-Request-Id":
			if len(v) != 1 || !validRequestID(v[0]) {
				t.Errorf("%s: X-Request-Id %q", c.name, v)
			}
			if c.hdr == nil || !slices.Contains(c.hdr, "X-Request-Id") {
				v = []string{"(generated)"}
			}
		}
		fmt.Fprintf(&b, "%s: %q\n", k, v)
	}
	text := string(body)
	if id := resp.Header.Get("X-Request-Id"); id != "" {
		text = strings.ReplaceAll(text, id, "(id)") // error answers carry it
	}
	fmt.Fprintf(&b, "\n%s", text)
	// The two servers listen on different ports.
	return strings.ReplaceAll(b.String(), strings.TrimPrefix(base, "http://"), "(gateway)")
}

// TestDirectLaneMatchesChain sends the same requests to a gateway served
// with and without the direct lane, and wants the same answers (and the
// same requests at the backend), with the lane answering exactly the
// requests it should.
func TestDirectLaneMatchesChain(t *testing.T) {
	up := reflector(t)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()

	cfg := quiet + fmt.Sprintf(`
server:
  trusted_proxies: [10.9.0.0/16]
cors:
  allowed_origins: ["https://app.example"]
  allow_credentials: true
routes:
  - name: api
    match: { prefix: /api }
    strip_prefix: true
    backends: [ { url: %[1]q } ]
  - name: users
    match: { path: "/users/{id}" }
    rewrite: "/u/{id}/profile"
    backends: [ { url: %[1]q } ]
  - name: ops
    match: { prefix: /ops }
    backends: [ { url: %[1]q } ]
    request_headers:
      remove: [X-Remove]
      set: { X-Set: fixed }
      add: { X-Added: one }
    response_headers:
      remove: [X-Upstream-Drop]
      set: { X-Route: ops }
      add: { X-Frame-Options: from-route, Strict-Transport-Security: max-age=1 }
    security_headers:
      frame_options: SAMEORIGIN
  - name: nocors
    match: { prefix: /nocors }
    backends: [ { url: %[1]q } ]
    cors: { disabled: true }
    compression: { disabled: true }
  - name: slow
    match: { prefix: /slow }
    backends: [ { url: %[1]q } ]
    timeout: 100ms
  - name: down
    match: { prefix: /down }
    backends: [ { url: %[2]q } ]
  - name: authed
    match: { prefix: /authed }
    backends: [ { url: %[1]q } ]
    require_auth: true
auth:
  api_keys:
    keys: [ { name: k, key: secret-key-0123456789 } ]
`, up, deadURL)
	g := newGateway(t, cfg)
	lane, answered := laneServer(t, g, true)
	chain, _ := laneServer(t, g, false)

	cases := []laneCase{
		{name: "plain GET", method: "GET", target: "/api/items?q=1&r=2", hdr: []string{"User-Agent", "t"}, lane: true},
		{name: "no User-Agent", method: "GET", target: "/api/x", lane: true},
		{name: "HEAD", method: "HEAD", target: "/api/items", lane: true},
		{name: "OPTIONS, no preflight", method: "OPTIONS", target: "/api/items", hdr: []string{"Origin", "https://app.example"}, lane: true},
		{name: "allowed Origin", method: "GET", target: "/api/o", hdr: []string{"Origin", "https://app.example"}, lane: true},
		{name: "other Origin", method: "GET", target: "/api/o", hdr: []string{"Origin", "https://evil.example"}, lane: true},
		{name: "client request id", method: "GET", target: "/api/id", hdr: []string{"X-Request-Id", "client-id-7"}, lane: true},
		{name: "hop-by-hop and Connection names", method: "GET", target: "/api/h",
			hdr: []string{"Connection", "X-Private, Te", "X-Private", "p", "Te", "trailers", "Keep-Alive", "timeout=5", "Proxy-Authorization", "x"}, lane: true},
		{name: "forwarding headers from an untrusted peer", method: "GET", target: "/api/f",
			hdr: []string{"X-Forwarded-For", "1.2.3.4", "X-Forwarded-Host", "evil", "X-Forwarded-Proto", "https", "X-Real-Ip", "5.6.7.8", "Forwarded", "for=1.2.3.4"}, lane: true},
		{name: "path parameters and rewrite", method: "GET", target: "/users/42?x=y", lane: true},
		{name: "header operations and route security", method: "GET", target: "/ops/a", hdr: []string{"X-Remove", "gone", "X-Set", "client", "X-Added", "client"}, lane: true},
		{name: "CORS and compression off", method: "GET", target: "/nocors/a", hdr: []string{"Origin", "https://app.example"}, lane: true},
		{name: "dot segments", method: "GET", target: "/api/a/../b/./c", lane: true},
		{name: "Host header", method: "GET", target: "/api/host", hdr: []string{"Host", "Example.COM:8080"}, lane: true},
		{name: "backend 500", method: "GET", target: "/api/e?status=500", lane: true},
		{name: "backend 304", method: "GET", target: "/api/e?status=304", lane: true},
		{name: "backend 204", method: "GET", target: "/api/e?status=204", lane: true},
		{name: "route timeout", method: "GET", target: "/slow/s?sleep=2s", lane: true},
		{name: "backend down", method: "GET", target: "/down/x", lane: true},
		{name: "request id named by Connection, backend down", method: "GET", target: "/down/y",
			hdr: []string{"X-Request-Id", "abc-1", "Connection", "X-Request-Id"}, lane: true},
		{name: "request id named by Connection", method: "GET", target: "/api/c", hdr: []string{"X-Request-Id", "abc-2", "Connection", "X-Request-Id"}, lane: true},
		{name: "User-Agent named by Connection", method: "GET", target: "/api/ua", hdr: []string{"User-Agent", "curl/8", "Connection", "User-Agent"}, lane: true},
		{name: "gRPC content type named by Connection", method: "GET", target: "/down/g",
			hdr: []string{"Content-Type", "application/grpc", "Connection", "Content-Type"}, lane: true},

		{name: "compression accepted", method: "GET", target: "/api/gz", hdr: []string{"Accept-Encoding", "gzip"}},
		{name: "preflight", method: "OPTIONS", target: "/api/p", hdr: []string{"Origin", "https://app.example", "Access-Control-Request-Method", "PUT"}},
		{name: "no route", method: "GET", target: "/nowhere"},
		{name: "ready", method: "GET", target: "/ready?x"},
		{name: "auth route", method: "GET", target: "/authed/x", hdr: []string{"X-API-Key", "secret-key-0123456789"}},
		{name: "auth route refused", method: "GET", target: "/authed/x"},
		{name: "dot-param segment", method: "GET", target: "/api/..;/x"},
		{name: "identity header", method: "GET", target: "/api/x", hdr: []string{"X-Client-Cert-Subject", "CN=me"}},
		{name: "POST", method: "POST", target: "/api/x"},
		{name: "upgrade", method: "GET", target: "/api/x", hdr: []string{"Connection", "Upgrade", "Upgrade", "foo"}},
	}
	for _, c := range cases {
		before := answered.Load()
		got := answer(t, lane, c)
		took := answered.Load() != before
		want := answer(t, chain, c)
		if took != c.lane {
			t.Errorf("%s: direct lane answered = %v, want %v", c.name, took, c.lane)
		}
		if got != want {
			t.Errorf("%s: direct lane answered\n%s\nthe chain\n%s", c.name, got, want)
		}
	}
	if t.Failed() {
		return
	}
	// The answers are the same; make sure they are what they should be, so
	// that the comparison compared something.
	got := answer(t, lane, cases[0])
	for _, want := range []string{"200 OK", `GET /items?q=1&r=2 host=(gateway)`, `X-Forwarded-For: ["127.0.0.1"]`,
		`X-Frame-Options: ["DENY"]`, `Vary: ["Origin" "Cookie" "Accept-Encoding"]`, `X-Request-Id: (1)`} {
		if !strings.Contains(got, want) {
			t.Errorf("plain GET: answer lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"Access-Control-Allow-Origin", "X-Hop", "SAMEORIGIN"} {
		if strings.Contains(got, bad) {
			t.Errorf("plain GET: answer has %q:\n%s", bad, got)
		}
	}
	// The route's own security set first, then what its response header
	// operations add under the same names; the global set's X-Frame-Options
	// not at all.
	ops := answer(t, lane, laneCase{name: "ops", method: "GET", target: "/ops/a"})
	for _, want := range []string{`X-Frame-Options: ["SAMEORIGIN" "from-route"]`,
		`Strict-Transport-Security: ["max-age=31536000; includeSubDomains" "max-age=1"]`, `X-Content-Type-Options: ["nosniff"]`} {
		if !strings.Contains(ops, want) {
			t.Errorf("route with its own security set: answer lacks %q:\n%s", want, ops)
		}
	}
	if got := answer(t, lane, laneCase{name: "timeout", method: "GET", target: "/slow/s?sleep=2s"}); !strings.HasPrefix(got, "504") {
		t.Errorf("route timeout on the lane: %s", got)
	}
	// 502, or 503 once passive health has ejected the backend.
	if got := answer(t, lane, laneCase{name: "down", method: "GET", target: "/down/x"}); !strings.HasPrefix(got, "50") {
		t.Errorf("backend down on the lane: %s", got)
	}
}

// TestDirectLaneTrustedProxy checks the forwarding headers and the client
// IP the lane passes on when the peer is a trusted proxy.
func TestDirectLaneTrustedProxy(t *testing.T) {
	up := reflector(t)
	g := newGateway(t, quiet+fmt.Sprintf(`
server:
  trusted_proxies: [127.0.0.1/32]
routes:
  - name: api
    match: { prefix: / }
    backends: [ { url: %q } ]
`, up))
	lane, answered := laneServer(t, g, true)
	chain, _ := laneServer(t, g, false)
	c := laneCase{name: "trusted", method: "GET", target: "/t", hdr: []string{
		"X-Forwarded-For", "203.0.113.9, 10.0.0.1", "X-Forwarded-Host", "shop.example", "X-Forwarded-Proto", "https", "X-Real-Ip", "198.51.100.1"}}
	got, want := answer(t, lane, c), answer(t, chain, c)
	if answered.Load() != 1 {
		t.Fatalf("the lane answered %d requests, want 1", answered.Load())
	}
	if got != want {
		t.Fatalf("direct lane answered\n%s\nthe chain\n%s", got, want)
	}
	for _, w := range []string{`X-Forwarded-For: ["203.0.113.9, 10.0.0.1, 127.0.0.1"]`, `X-Forwarded-Host: ["shop.example"]`,
		`X-Forwarded-Proto: ["https"]`, `X-Real-Ip: ["10.0.0.1"]`} {
		if !strings.Contains(got, w) {
			t.Errorf("answer lacks %q:\n%s", w, got)
		}
	}
}

// TestDirectLaneDeclines checks the graph-wide conditions: a deny-listed
// client, DDoS blocking on, and the lane switched off by config all take
// the chain.
func TestDirectLaneDeclines(t *testing.T) {
	up := reflector(t)
	route := fmt.Sprintf("routes:\n  - name: api\n    match: { prefix: / }\n    backends: [ { url: %q } ]\n", up)
	for _, tc := range []struct {
		name, cfg     string
		deny, limited bool
	}{
		{name: "deny list", cfg: quiet + route, deny: true},
		{name: "ddos on", cfg: "defaults:\n  health_check: { disabled: true }\nedge:\n  rate_limit: { disabled: true }\n" + route},
		{name: "rate limit on", cfg: "defaults:\n  health_check: { disabled: true }\nedge:\n  ddos: { disabled: true }\n" + route, limited: true},
		{name: "switched off", cfg: quiet + "server:\n  direct_lane: { disabled: true }\n" + route},
		{name: "h2c pool", cfg: quiet + fmt.Sprintf("upstreams:\n  p:\n    transport: { protocol: h2c }\n    backends: [ { url: %q } ]\n"+
			"routes:\n  - name: api\n    match: { prefix: / }\n    upstream: p\n", up)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, tc.cfg)
			if tc.deny {
				if err := g.lists.Add(edge.Deny, "127.0.0.1/32"); err != nil {
					t.Fatal(err)
				}
			}
			lane, answered := laneServer(t, g, true)
			chain, _ := laneServer(t, g, false)
			c := laneCase{name: tc.name, method: "GET", target: "/x"}
			got, want := answer(t, lane, c), answer(t, chain, c)
			if answered.Load() != 0 {
				t.Errorf("the lane answered")
			}
			if tc.limited {
				// The two servers share the limiter: RateLimit-Remaining
				// differs by one.
				got, _, _ = strings.Cut(got, "\n")
				want, _, _ = strings.Cut(want, "\n")
			}
			if got != want {
				t.Errorf("answers differ:\n%s\n%s", got, want)
			}
			if tc.deny && !strings.HasPrefix(got, "403") {
				t.Errorf("deny-listed client: %s", got)
			}
		})
	}
}

// TestDirectLaneAccessLog: the lane writes the access line the chain
// writes (but for the time, duration and request id).
func TestDirectLaneAccessLog(t *testing.T) {
	up := reflector(t)
	g, out := newLoggingGateway(t, quiet+fmt.Sprintf(`
server:
  trusted_proxies: [127.0.0.1/32]
routes:
  - name: api
    match: { prefix: /api }
    strip_prefix: true
    backends: [ { url: %q } ]
`, up))
	lane, answered := laneServer(t, g, true)
	chain, _ := laneServer(t, g, false)
	c := laneCase{name: "logged", method: "GET", target: "/api/items?q=1", hdr: []string{"X-Forwarded-For", "203.0.113.7"}}
	answer(t, lane, c)
	answer(t, chain, c)
	if answered.Load() != 1 {
		t.Fatalf("the lane answered %d requests, want 1", answered.Load())
	}
	lines := accessLines(t, g, out)
	if len(lines) != 2 {
		t.Fatalf("%d access lines, want 2: %v", len(lines), lines)
	}
	for _, l := range lines {
		for _, k := range []string{"time", "duration_ms", "request_id", "host"} { // host: the servers' ports differ
			if _, ok := l[k]; !ok {
				t.Errorf("access line lacks %s: %v", k, l)
			}
			delete(l, k)
		}
	}
	if fmt.Sprint(lines[0]) != fmt.Sprint(lines[1]) {
		t.Errorf("access lines differ:\nlane  %v\nchain %v", lines[0], lines[1])
	}
	// The path is the cleaned one routing saw, not the stripped one sent upstream.
	if lines[0]["client_ip"] != "203.0.113.7" || lines[0]["route"] != "api" || lines[0]["backend"] == nil || lines[0]["path"] != "/api/items" {
		t.Errorf("access line: %v", lines[0])
	}
}

// TestExplainDirectLane: explain says which requests take the lane.
func TestExplainDirectLane(t *testing.T) {
	up := reflector(t)
	cfgText := quiet + fmt.Sprintf(`
routes:
  - name: api
    match: { prefix: /api }
    backends: [ { url: %[1]q } ]
  - name: authed
    match: { prefix: /authed }
    backends: [ { url: %[1]q } ]
    require_auth: true
auth:
  api_keys:
    keys: [ { name: k, key: secret-key-0123456789 } ]
`, up)
	for _, tc := range []struct {
		target, ae string
		tracing    bool
		want       bool
	}{
		{target: "/api/x", want: true},
		{target: "/api/x", ae: "gzip"},
		{target: "/authed/x"},
		{target: "/health"},
		{target: "/api/x", tracing: true},
		{target: "/api/" + strings.Repeat("x", 9000)}, // over max_uri_bytes: 414 from the chain
	} {
		cfg := load(t, cfgText)
		cfg.Tracing.Enabled = tc.tracing
		r, err := http.NewRequest("GET", "http://gw"+tc.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.ae != "" {
			r.Header.Set("Accept-Encoding", tc.ae)
		}
		ex, err := Explain(cfg, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ex.DirectLane != tc.want {
			t.Errorf("%s (Accept-Encoding %q, tracing %v): direct lane %v, want %v", tc.target, tc.ae, tc.tracing, ex.DirectLane, tc.want)
		}
	}
}

// TestDirectLaneInformationalAndClientGone: the lane forwards a backend's
// 103 Early Hints as the chain does, and a client that goes away ends the
// upstream request (counted 499, no backend failure).
func TestDirectLaneInformationalAndClientGone(t *testing.T) {
	gone := make(chan struct{}, 1)
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hints" {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			_, _ = io.WriteString(w, "final")
			return
		}
		select {
		case <-r.Context().Done():
			gone <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = backend.Serve(ln) }()
	t.Cleanup(func() { _ = backend.Close() })
	// Under a per-try timeout the attempt runs under a context of its own,
	// derived from the lane's: its 1xx go to the client all the same.
	perTry := newGateway(t, strings.Replace(quiet, "defaults:\n", "defaults:\n  retry: { per_try_timeout: 5s }\n", 1)+
		fmt.Sprintf("routes:\n  - name: api\n    match: { prefix: / }\n    backends: [ { url: %q } ]\n", "http://"+ln.Addr().String()))
	perTryLane, perTryAnswered := laneServer(t, perTry, true)
	g := newGateway(t, quiet+fmt.Sprintf("routes:\n  - name: api\n    match: { prefix: / }\n    backends: [ { url: %q } ]\n", "http://"+ln.Addr().String()))
	lane, answered := laneServer(t, g, true)

	hints := func(lane string) {
		t.Helper()
		c, err := net.Dial("tcp", strings.TrimPrefix(lane, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET /hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(io.LimitReader(c, 4096))
		c.Close()
		got := string(b)
		if !strings.HasPrefix(got, "HTTP/1.1 103 Early Hints\r\n") || !strings.Contains(got, "Link: </a.css>; rel=preload") ||
			!strings.Contains(got, "HTTP/1.1 200 OK") || !strings.HasSuffix(got, "final") {
			t.Errorf("103 through the lane (%s):\n%s", lane, got)
		}
	}
	hints(perTryLane)
	if n := perTryAnswered.Load(); n != 1 {
		t.Errorf("the lane answered %d requests under the per-try timeout, want 1", n)
	}
	hints(lane)

	raw := func(path, extra string) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", strings.TrimPrefix(lane, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n"+extra+"\r\n")
		return c
	}
	c := raw("/slow", "")
	time.Sleep(100 * time.Millisecond) // past the server's 10 ms before it watches the client
	c.Close()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's request was not ended when the client went away")
	}
	// The lane returns once the aborted exchange has unwound.
	waitForCond(t, func() bool { return answered.Load() == 2 })
	waitForCond(t, func() bool { return g.current.Load().routes[0].counters.classes[4].Load() == 1 })
	st := g.current.Load().routes[0].pool.Status()
	for _, b := range st.Backends {
		if b.Failures != 0 || b.Breaker != "closed" {
			t.Errorf("a client going away counted against the backend: %+v", b)
		}
	}
}

func waitForCond(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDirectLaneKeepAlive sends a mix of requests the lane takes and
// requests it leaves to the chain over one keep-alive connection, and wants
// what a server without the lane answers over one connection: nothing of
// one answer shows in the next.
func TestDirectLaneKeepAlive(t *testing.T) {
	up := reflector(t)
	g := newGateway(t, quiet+fmt.Sprintf(`
routes:
  - name: api
    match: { prefix: /api }
    backends: [ { url: %[1]q } ]
    response_headers:
      set: { X-Route: api }
  - name: other
    match: { prefix: /other }
    backends: [ { url: %[1]q } ]
`, up))
	lane, answered := laneServer(t, g, true)
	chain, _ := laneServer(t, g, false)
	seq := []laneCase{
		{name: "1", method: "GET", target: "/api/a", hdr: []string{"Origin", "https://x.example"}},
		{name: "2", method: "GET", target: "/other/b", hdr: []string{"Accept-Encoding", "gzip"}},
		{name: "3", method: "GET", target: "/other/c"},
		{name: "4", method: "HEAD", target: "/api/d"},
		{name: "5", method: "GET", target: "/nowhere"},
		{name: "6", method: "GET", target: "/api/e?status=500"},
		{name: "7", method: "GET", target: "/other/f"},
	}
	run := func(base string) []string {
		tr := &http.Transport{DisableCompression: true, MaxConnsPerHost: 1}
		defer tr.CloseIdleConnections()
		var out []string
		for _, c := range seq {
			out = append(out, answerOn(t, tr, base, c))
		}
		return out
	}
	got, want := run(lane), run(chain)
	if answered.Load() != 5 {
		t.Errorf("the lane answered %d requests, want 5", answered.Load())
	}
	for i := range seq {
		if got[i] != want[i] {
			t.Errorf("request %s: direct lane answered\n%s\nthe chain\n%s", seq[i].name, got[i], want[i])
		}
	}
}

// TestDirectLaneIPHash: ip-hash balancing keys on the client IP the edge
// decided on, on the lane as on the chain.
func TestDirectLaneIPHash(t *testing.T) {
	var urls []string
	for i := range 4 {
		name := fmt.Sprintf("b%d", i)
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		urls = append(urls, fmt.Sprintf("{ url: %q }", s.URL))
	}
	g := newGateway(t, quiet+fmt.Sprintf(`
server:
  trusted_proxies: [127.0.0.1/32]
upstreams:
  pool:
    load_balancing: ip-hash
    backends: [ %s ]
routes:
  - name: api
    match: { prefix: / }
    upstream: pool
`, strings.Join(urls, ", ")))
	lane, answered := laneServer(t, g, true)
	chain, _ := laneServer(t, g, false)
	var first string
	for i := range 8 {
		c := laneCase{name: "hash", method: "GET", target: "/x", hdr: []string{"X-Forwarded-For", fmt.Sprintf("10.0.0.%d, 203.0.113.9", i)}}
		got, want := answer(t, lane, c), answer(t, chain, c)
		if got != want {
			t.Errorf("XFF 10.0.0.%d: lane\n%s\nchain\n%s", i, got, want)
		}
		if first == "" {
			first = got
		} else if got != first {
			t.Errorf("XFF 10.0.0.%d: one client reached two backends:\n%s\n%s", i, first, got)
		}
	}
	if answered.Load() != 8 {
		t.Errorf("the lane answered %d requests, want 8", answered.Load())
	}
}
