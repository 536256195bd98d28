package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/router"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of http.DefaultTransport used by the tests.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		// go-redis probes a pool whose dials all failed (Redis killed) from a
		// goroutine that sleeps a second between tries; it ends after Close.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
	)
}

// load writes yaml to a temp file and loads it like the binary does.
func load(t testing.TB, yaml string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "altair.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	return cfg
}

// echo is a backend that answers "name METHOD PATH?QUERY" and reflects selected
// request headers as X-Seen-* response headers.
func echo(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"X-Request-Id", "X-Added", "X-Set", "X-Remove", "X-Forwarded-For"} {
			if v, ok := r.Header[h]; ok {
				w.Header()["X-Seen-"+h] = v
			}
		}
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Upstream-Drop", "secret")
		fmt.Fprintf(w, "%s %s %s", name, r.Method, r.URL.RequestURI())
	}))
	t.Cleanup(s.Close)
	return s
}

func newGateway(t *testing.T, yaml string) *Gateway {
	t.Helper()
	g := New(Options{Version: "test"})
	t.Cleanup(g.Close)
	if err := g.Apply(load(t, yaml)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return g
}

func do(g http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			r.Host = hdr[i+1]
			continue
		}
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

// quiet turns off what would interfere with tests that all come from one
// address: active health checks, rate limits and DDoS blocking.
const quiet = `
defaults:
  health_check: { disabled: true }
edge:
  rate_limit: { disabled: true }
  ddos: { disabled: true }
`

func TestRoutingAndPaths(t *testing.T) {
	a := echo(t, "a")
	b := echo(t, "b")
	g := newGateway(t, quiet+fmt.Sprintf(`
upstreams:
  a: { backends: [ { url: %[1]q } ] }
  b: { backends: [ { url: %[2]q } ] }
routes:
  - name: strip
    match: { prefix: /api/svc }
    strip_prefix: true
    upstream: a
  - name: user
    match: { path: "/users/{id}", methods: [GET] }
    rewrite: /v2/profiles/{id}
    upstream: b
  - name: files
    match: { prefix: /files }
    rewrite: /store{suffix}
    upstream: b
  - name: host
    match: { hosts: ["*.example.com"], prefix: / }
    upstream: b
  - name: based
    match: { prefix: /based }
    backends: [ { url: %[1]q } ]
`, a.URL+"/", b.URL))

	tests := []struct {
		name         string
		method, give string
		hdr          []string
		wantStatus   int
		wantBody     string
	}{
		{"strip prefix", "GET", "/api/svc/items?x=1", nil, 200, "a GET /items?x=1"},
		{"strip prefix to root", "GET", "/api/svc", nil, 200, "a GET /"},
		{"segment boundary", "GET", "/api/svcx", nil, 404, ""},
		{"param rewrite", "GET", "/users/42", nil, 200, "b GET /v2/profiles/42"},
		{"param wrong method", "POST", "/users/42", nil, 404, ""},
		{"suffix rewrite", "GET", "/files/a/b.txt", nil, 200, "b GET /store/a/b.txt"},
		{"dot segments cleaned before forwarding", "GET", "/files/a/../../api/svc/x", nil, 200, "a GET /x"},
		{"wildcard host", "GET", "/anything", []string{"Host", "shop.example.com"}, 200, "b GET /anything"},
		{"no route", "GET", "/nothing", nil, 404, ""},
		{"backend base path joined", "GET", "/based/x", nil, 200, "a GET /based/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(g, tt.method, tt.give, tt.hdr...)
			if w.Code != tt.wantStatus {
				t.Fatalf("%s %s = %d %q, want %d", tt.method, tt.give, w.Code, w.Body.String(), tt.wantStatus)
			}
			if tt.wantBody != "" && w.Body.String() != tt.wantBody {
				t.Fatalf("%s %s body = %q, want %q", tt.method, tt.give, w.Body.String(), tt.wantBody)
			}
			if tt.wantStatus == 404 {
				var e map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["error"] != "route_not_found" || e["request_id"] == "" {
					t.Fatalf("404 body = %q, want JSON route_not_found with request_id", w.Body.String())
				}
			}
		})
	}
}

func TestHeaderOps(t *testing.T) {
	a := echo(t, "a")
	g := newGateway(t, quiet+fmt.Sprintf(`
routes:
  - name: h
    match: { prefix: / }
    backends: [ { url: %q } ]
    request_headers:
      remove: [X-Remove]
      set: { X-Set: fixed, Host: internal.svc }
      add: { X-Added: one }
    response_headers:
      remove: [X-Upstream-Drop]
      set: { X-Route: h }
`, a.URL))
	w := do(g, "GET", "/", "X-Remove", "gone", "X-Set", "client", "X-Added", "client")
	h := w.Result().Header
	if got := h.Get("X-Seen-X-Remove"); got != "" {
		t.Errorf("removed request header reached the backend: %q", got)
	}
	if got := h.Get("X-Seen-X-Set"); got != "fixed" {
		t.Errorf("set request header at backend = %q, want fixed", got)
	}
	if got := h.Values("X-Seen-X-Added"); len(got) != 2 || got[1] != "one" {
		t.Errorf("added request header at backend = %q, want [client one]", got)
	}
	if got := h.Get("X-Seen-Host"); got != "internal.svc" {
		t.Errorf("Host at backend = %q, want internal.svc", got)
	}
	if h.Get("X-Upstream-Drop") != "" || h.Get("X-Route") != "h" {
		t.Errorf("response header ops not applied: %v", h)
	}
}

func TestRequestID(t *testing.T) {
	a := echo(t, "a")
	g := newGateway(t, quiet+fmt.Sprintf("routes:\n  - name: r\n    backends: [ { url: %q } ]\n", a.URL))

	w := do(g, "GET", "/", "X-Request-ID", "client-id-1")
	if got := w.Header().Get("X-Request-ID"); got != "client-id-1" {
		t.Errorf("valid client id: response id = %q, want client-id-1", got)
	}
	if got := w.Header().Get("X-Seen-X-Request-Id"); got != "client-id-1" {
		t.Errorf("valid client id: upstream saw %q, want client-id-1", got)
	}

	w = do(g, "GET", "/", "X-Request-ID", "bad id\twith junk")
	id := w.Header().Get("X-Request-ID")
	if len(id) != 32 || !validRequestID(id) {
		t.Errorf("invalid client id replaced by %q, want 32 hex characters", id)
	}
	if got := w.Header().Get("X-Seen-X-Request-Id"); got != id {
		t.Errorf("upstream saw id %q, client got %q", got, id)
	}
	if other := do(g, "GET", "/").Header().Get("X-Request-ID"); other == id {
		t.Errorf("two generated ids are equal: %q", id)
	}
}

func TestApplyKeepsOldGraphOnFailure(t *testing.T) {
	a := echo(t, "a")
	g := newGateway(t, quiet+fmt.Sprintf("routes:\n  - name: r\n    backends: [ { url: %q } ]\n", a.URL))

	// Two routes with identical conditions pass the config package but not the
	// router: the build must fail and the old graph keep serving.
	bad := load(t, quiet+fmt.Sprintf(`
routes:
  - name: one
    match: { path: "/x/{a}" }
    backends: [ { url: %[1]q } ]
  - name: two
    match: { path: "/x/{b}" }
    backends: [ { url: %[1]q } ]
`, a.URL))
	err := g.Apply(bad)
	var ps config.Problems
	if err == nil {
		t.Fatal("Apply(routes with the same pattern) = nil, want problems")
	}
	if !asProblems(err, &ps) || len(ps) == 0 || !strings.HasPrefix(ps[0].Path, "routes[1].match") {
		t.Fatalf("Apply error = %v, want a problem at routes[1].match", err)
	}
	if w := do(g, "GET", "/still"); w.Code != 200 || w.Body.String() != "a GET /still" {
		t.Fatalf("after failed Apply: %d %q, want the old graph's answer", w.Code, w.Body.String())
	}
	var st statsReport
	if err := json.Unmarshal(do(g, "GET", "/stats").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Reloads.Success != 1 || st.Reloads.Failure != 1 || st.Reloads.LastError == "" {
		t.Fatalf("stats reloads = %+v, want 1 success, 1 failure with last error", st.Reloads)
	}
}

func asProblems(err error, ps *config.Problems) bool {
	p, ok := err.(config.Problems)
	if ok {
		*ps = p
	}
	return ok
}

func TestReadyAndDraining(t *testing.T) {
	g := New(Options{})
	defer g.Close()
	if w := do(g, "GET", "/ready"); w.Code != 503 {
		t.Fatalf("/ready before SetReady = %d, want 503", w.Code)
	}
	g.SetReady(true)
	if w := do(g, "GET", "/ready"); w.Code != 200 {
		t.Fatalf("/ready when ready = %d, want 200", w.Code)
	}
	g.SetDraining()
	if w := do(g, "GET", "/ready"); w.Code != 503 || !strings.Contains(w.Body.String(), "draining") {
		t.Fatalf("/ready while draining = %d %q, want 503 draining", w.Code, w.Body.String())
	}
	// Liveness stays 200 throughout.
	if w := do(g, "GET", "/health"); w.Code != 200 {
		t.Fatalf("/health while draining = %d, want 200", w.Code)
	}
}

func TestHealthAndStats(t *testing.T) {
	a := echo(t, "a")
	g := newGateway(t, quiet+fmt.Sprintf(`
routes:
  - name: live
    match: { prefix: /live }
    backends: [ { url: %q } ]
  - name: dead
    match: { prefix: /dead }
    backends: [ { url: "http://127.0.0.1:1" } ]
`, a.URL))
	for i := 0; i < 3; i++ {
		do(g, "GET", "/live/x")
	}
	do(g, "GET", "/dead/x")

	var st statsReport
	if err := json.Unmarshal(do(g, "GET", "/stats").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	byName := map[string]routeStats{}
	for _, r := range st.Routes {
		byName[r.Name] = r
	}
	if r := byName["live"]; r.Requests != 3 || r.Responses["2xx"] != 3 {
		t.Errorf("stats for live = %+v, want 3 requests, 3 2xx", r)
	}
	if r := byName["dead"]; r.Requests != 1 || r.Responses["5xx"] != 1 {
		t.Errorf("stats for dead = %+v, want 1 request, 1 5xx", r)
	}
	if st.RouteCount != 2 || st.Algorithm != "least-conn" || len(st.Upstreams) != 2 {
		t.Errorf("stats = %+v, want 2 routes, least-conn, 2 upstreams", st)
	}
	// quiet turns rate limiting and DDoS protection off; the rest is default.
	for k, want := range map[string]bool{"rate_limit": false, "ddos_protection": false, "security_headers": true,
		"cors": true, "jwt": false, "admin_api": false, "metrics": true, "monitor": true, "access_log": false, "tracing": false} {
		if got, ok := st.Features[k]; !ok || got != want {
			t.Errorf("stats features[%s] = %v (present %v), want %v", k, got, ok, want)
		}
	}

	w := do(g, "GET", "/health")
	var h healthReport
	if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil || w.Code != 200 {
		t.Fatalf("/health = %d %q", w.Code, w.Body.String())
	}
	if len(h.Routes) != 2 || len(h.Upstreams) != 2 {
		t.Fatalf("/health routes/upstreams = %d/%d, want 2/2", len(h.Routes), len(h.Upstreams))
	}
}

func TestUpstreamPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		route   config.Route
		params  map[string]string
		give    string
		want    string
		wantErr bool
	}{
		{name: "unchanged", route: config.Route{Match: config.Match{Prefix: "/api"}}, give: "/api/x", want: "/api/x"},
		{name: "strip", route: config.Route{Match: config.Match{Prefix: "/api"}, StripPrefix: true}, give: "/api/x/y", want: "/x/y"},
		{name: "strip exact", route: config.Route{Match: config.Match{Prefix: "/api"}, StripPrefix: true}, give: "/api", want: "/"},
		{name: "strip trailing slash prefix", route: config.Route{Match: config.Match{Prefix: "/api/"}, StripPrefix: true}, give: "/api/x", want: "/x"},
		{name: "strip root prefix", route: config.Route{Match: config.Match{Prefix: "/"}, StripPrefix: true}, give: "/x", want: "/x"},
		{name: "rewrite params", route: config.Route{Match: config.Match{Path: "/u/{id}/{tab}"}, Rewrite: "/users/{id}/{tab}"}, params: map[string]string{"id": "7", "tab": "posts"}, give: "/u/7/posts", want: "/users/7/posts"},
		{name: "rewrite suffix", route: config.Route{Match: config.Match{Prefix: "/old"}, Rewrite: "/new/{suffix}"}, give: "/old/a/b", want: "/new/a/b"},
		{name: "rewrite path", route: config.Route{Match: config.Match{Prefix: "/"}, Rewrite: "/base{path}"}, give: "/a", want: "/base/a"},
		{name: "suffix without prefix", route: config.Route{Match: config.Match{Path: "/x"}, Rewrite: "/{suffix}"}, wantErr: true},
		{name: "unclosed", route: config.Route{Match: config.Match{Path: "/x"}, Rewrite: "/{id"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rt := &route{cfg: &tt.route}
			if tt.route.Rewrite != "" {
				tmpl, err := compileTemplate(tt.route.Rewrite, tt.route.Match.Prefix != "")
				if (err != nil) != tt.wantErr {
					t.Fatalf("compileTemplate(%q) error = %v, wantErr %v", tt.route.Rewrite, err, tt.wantErr)
				}
				if err != nil {
					return
				}
				rt.rewrite = tmpl
			} else if tt.route.StripPrefix && tt.route.Match.Prefix != "/" {
				rt.stripPrefix = strings.TrimSuffix(tt.route.Match.Prefix, "/")
			}
			var ps router.Params
			if len(tt.params) > 0 {
				r, err := router.New([]router.Spec{{Path: tt.route.Match.Path}})
				if err != nil {
					t.Fatal(err)
				}
				req := httptest.NewRequest("GET", tt.give, nil)
				if r.Match(req, tt.give, &ps) != 0 {
					t.Fatalf("router did not match %q", tt.give)
				}
			}
			if got := rt.upstreamPath(tt.give, &ps); got != tt.want {
				t.Fatalf("upstreamPath(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func TestHeadGetsNoBody(t *testing.T) {
	g := New(Options{})
	defer g.Close()
	w := do(g, "HEAD", "/nope")
	if w.Code != 404 || w.Body.Len() != 0 {
		t.Fatalf("HEAD /nope = %d with %d body bytes, want 404 and none", w.Code, w.Body.Len())
	}
	_, _ = io.Copy(io.Discard, w.Body)
}
