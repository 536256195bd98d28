package main

// End-to-end tests: the real altair binary, built once, in front of real
// httptest backends, driven over loopback.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var altairBin string

func TestMain(m *testing.M) {
	if job := os.Getenv(h2specChildEnv); job != "" {
		os.Exit(runH2specChild(job)) // this process is h2spec's child: no binary, no tests
	}
	dir, err := os.MkdirTemp("", "altair-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	altairBin = filepath.Join(dir, "altair")
	build := exec.Command("go", "build", "-o", altairBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build altair:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if guestsDir != "" {
		os.RemoveAll(guestsDir)
	}
	os.Exit(code)
}

// proc is a running altair process.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string // host:port the gateway listens on
	cfgPath string
	logs    *syncBuffer
	exited  chan struct{}
	exitErr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startAltair writes cfg to a file and runs `altair run -c FILE`, waiting until
// /ready answers 200. The process is killed at the end of the test if it is
// still running.
func startAltair(t *testing.T, cfg string, env ...string) *proc {
	t.Helper()
	p := launchAltair(t, cfg, env...)
	waitFor(t, 10*time.Second, "ready", func() bool {
		resp, err := http.Get(p.url("/ready"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// launchAltair is startAltair up to the "altair started" line, for callers
// that check readiness themselves (over TLS, for one).
func launchAltair(t *testing.T, cfg string, env ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "altair.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(altairBin, "run", "-c", path)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, cfgPath: path, logs: &syncBuffer{}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "altair started" {
				if a, ok := rec["addr"].(string); ok {
					addrCh <- a
				}
			}
		}
	}()
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("altair logs:\n%s", p.logs.String())
		}
	})
	select {
	case a := <-addrCh:
		_, port, _ := net.SplitHostPort(a)
		p.addr = "127.0.0.1:" + port
	case <-p.exited:
		t.Fatalf("altair exited at start: %v\n%s", p.exitErr, p.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("altair did not start\n%s", p.logs.String())
	}
	return p
}

func (p *proc) url(path string) string { return "http://" + p.addr + path }

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// rewrite replaces the config file atomically (write + rename), as editors and
// Kubernetes do.
func (p *proc) rewrite(cfg string) {
	p.t.Helper()
	tmp := p.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, p.cfgPath); err != nil {
		p.t.Fatal(err)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// backend is an httptest server answering with its name.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s
}

// deadURL is the URL of a port that was bound and closed: connecting is refused.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// baseCfg listens on a free loopback port with rate limits and DDoS blocking
// off (every test client is 127.0.0.1); see header.
var baseCfg = header("", "")

func TestE2EDeadBackendServesEveryGET(t *testing.T) {
	t.Parallel()
	live := backend(t, "live")
	p := startAltair(t, baseCfg+fmt.Sprintf(`
upstreams:
  pool:
    load_balancing: round-robin
    health_check:
      disabled: true
    passive_health:
      disabled: true
    backends:
      - url: %s
      - url: %s
routes:
  - name: all
    match:
      prefix: /
    upstream: pool
`, deadURL(t), live.URL))
	for i := 0; i < 100; i++ {
		code, body, _ := get(t, p.url(fmt.Sprintf("/item/%d", i)))
		if code != 200 || !strings.HasPrefix(body, "live ") {
			t.Fatalf("GET /item/%d = %d %q, want 200 from live", i, code, body)
		}
	}
}

func TestE2EHealthCheckRemovesAndRestores(t *testing.T) {
	t.Parallel()
	var sick atomic.Bool
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "flaky")
	}))
	t.Cleanup(flaky.Close)
	steady := backend(t, "steady")
	p := startAltair(t, baseCfg+fmt.Sprintf(`
upstreams:
  pool:
    load_balancing: round-robin
    health_check:
      path: /healthz
      interval: 150ms
      timeout: 150ms
      rise: 1
      fall: 1
    backends:
      - url: %s
      - url: %s
routes:
  - name: all
    match:
      prefix: /
    upstream: pool
`, flaky.URL, steady.URL))

	healthyCount := func() int {
		_, body, _ := get(t, p.url("/health"))
		var rep struct {
			Routes []struct {
				Healthy int `json:"healthy_backends"`
			} `json:"routes"`
		}
		if err := json.Unmarshal([]byte(body), &rep); err != nil || len(rep.Routes) != 1 {
			t.Fatalf("health body %q: %v", body, err)
		}
		return rep.Routes[0].Healthy
	}
	sick.Store(true)
	waitFor(t, 5*time.Second, "flaky marked unhealthy", func() bool { return healthyCount() == 1 })
	for i := 0; i < 20; i++ {
		if _, body, _ := get(t, p.url("/x")); body != "steady /x" {
			t.Fatalf("with flaky unhealthy, GET /x = %q, want steady", body)
		}
	}
	sick.Store(false)
	waitFor(t, 5*time.Second, "flaky restored", func() bool { return healthyCount() == 2 })
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		_, body, _ := get(t, p.url("/x"))
		seen[strings.Fields(body)[0]] = true
	}
	if !seen["flaky"] || !seen["steady"] {
		t.Fatalf("after restore, backends seen = %v, want both", seen)
	}
}

func TestE2ETimeoutGives504(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	p := startAltair(t, baseCfg+fmt.Sprintf(`
routes:
  - name: slow
    match:
      prefix: /
    timeout: 200ms
    backends:
      - url: %s
`, slow.URL))
	code, body, h := get(t, p.url("/slow"))
	if code != http.StatusGatewayTimeout {
		t.Fatalf("GET /slow = %d %q, want 504", code, body)
	}
	var e struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || e.RequestID == "" || e.RequestID != h.Get("X-Request-ID") {
		t.Fatalf("504 body = %q (%v), want JSON with error and the response's request id %q", body, err, h.Get("X-Request-ID"))
	}
}

func TestE2EPathTraversalDoesNotCrossRoutes(t *testing.T) {
	t.Parallel()
	public := backend(t, "public")
	private := backend(t, "private")
	p := startAltair(t, baseCfg+fmt.Sprintf(`
routes:
  - name: public
    match:
      prefix: /public
    backends:
      - url: %s
  - name: private
    match:
      prefix: /private
      headers:
        X-Internal: "yes"
    backends:
      - url: %s
`, public.URL, private.URL))
	for _, path := range []string{
		"/public/../private/secret",
		"/public/%2e%2e/private/secret",
		"/public/%2E%2E/private/secret",
		"/public/..%2fprivate/secret",
		"/public/.%2e/private/secret",
		"/public//../private/secret",
	} {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		// A raw request line, so no client library cleans the path first.
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		c.Close()
		if strings.Contains(string(b), "private") {
			t.Errorf("GET %s reached the private backend: %d %q", path, resp.StatusCode, b)
		}
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d %q, want 404 (the clean path /private/secret matches no route without the header)", path, resp.StatusCode, b)
		}
	}
}

func TestE2ENoRoutesStartsAndSaysSo(t *testing.T) {
	t.Parallel()
	p := startAltair(t, baseCfg)
	code, body, _ := get(t, p.url("/health"))
	if code != 200 || !strings.Contains(body, "no routes configured") {
		t.Fatalf("GET /health = %d %q, want 200 with the no-routes warning", code, body)
	}
	if code, _, _ := get(t, p.url("/anything")); code != 404 {
		t.Fatalf("GET /anything = %d, want 404", code)
	}
	if !strings.Contains(p.logs.String(), "no routes configured") {
		t.Fatalf("log does not say that no routes are configured:\n%s", p.logs.String())
	}
}

// routeCfg is a one-route config. Retries are off so that a request the
// gateway drops (during a reload, say) shows as a failure instead of being
// retried away.
func routeCfg(name, url string) string {
	return baseCfg + fmt.Sprintf(`
defaults:
  retry:
    attempts: 1
routes:
  - name: %s
    match:
      prefix: /
    backends:
      - url: %s
`, name, url)
}

func TestE2EReloadUnderLoadFailsNoRequest(t *testing.T) {
	t.Parallel()
	a := backend(t, "a")
	b := backend(t, "b")
	p := startAltair(t, routeCfg("one", a.URL))

	ctx, cancel := context.WithCancel(context.Background())
	var total, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000 && ctx.Err() == nil; i++ {
				resp, err := client.Get(p.url("/load"))
				total.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d", resp.StatusCode))
				}
			}
		}()
	}
	// Alternate between two configs several times, via file change and SIGHUP.
	for i := 0; i < 6; i++ {
		target, name := b, "two"
		if i%2 == 1 {
			target, name = a, "one"
		}
		p.rewrite(routeCfg(name, target.URL))
		if i%3 == 2 {
			p.signal(syscall.SIGHUP)
		}
		waitFor(t, 5*time.Second, "reload to "+name, func() bool {
			_, body, _ := get(t, p.url("/stats"))
			return strings.Contains(body, `"name": "`+name+`"`)
		})
	}
	cancel()
	wg.Wait()
	if failed.Load() != 0 || total.Load() == 0 {
		t.Fatalf("during reloads %d of %d requests failed (first: %v)", failed.Load(), total.Load(), firstErr.Load())
	}
}

func TestE2EInvalidReloadKeepsRunningConfig(t *testing.T) {
	t.Parallel()
	a := backend(t, "a")
	p := startAltair(t, routeCfg("one", a.URL))
	p.rewrite(baseCfg + "routes:\n  - name: Bad Name\n    match: {prefix: nope}\n")
	waitFor(t, 5*time.Second, "reload failure counted", func() bool {
		_, body, _ := get(t, p.url("/stats"))
		return strings.Contains(body, `"failure": 1`)
	})
	if code, body, _ := get(t, p.url("/still")); code != 200 || body != "a /still" {
		t.Fatalf("after a bad reload GET /still = %d %q, want the old config's answer", code, body)
	}
	if !strings.Contains(p.logs.String(), "config rejected") {
		t.Fatalf("the log does not give the reason for the rejected config:\n%s", p.logs.String())
	}
}

func TestE2ESIGTERMCompletesInFlight(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 8)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(700 * time.Millisecond)
		fmt.Fprint(w, "done")
	}))
	t.Cleanup(slow.Close)
	p := startAltair(t, routeCfg("slow", slow.URL))

	const n = 4
	results := make(chan string, n)
	for i := 0; i < n; i++ {
		go func() {
			resp, err := http.Get(p.url("/work"))
			if err != nil {
				results <- "error: " + err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("requests did not reach the backend")
		}
	}
	p.signal(syscall.SIGTERM)
	for i := 0; i < n; i++ {
		if r := <-results; r != "200 done" {
			t.Errorf("in-flight request during SIGTERM = %q, want 200 done", r)
		}
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("altair did not exit after SIGTERM")
	}
	if p.exitErr != nil {
		t.Fatalf("altair exit after SIGTERM: %v, want status 0", p.exitErr)
	}
}

func TestE2EValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`server:
  listen: "127.0.0.1:0"
routes:
  - name: one
    match:
      prefix: /a
    backends:
      - url: ftp://example
  - name: one
    match:
      prefix: b
    backends:
      - url: http://127.0.0.1:1
`), 0o644)
	cmd := exec.Command(altairBin, "validate", "-c", bad)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("validate bad config: err %v, want exit status 1; output:\n%s", err, out)
	}
	for _, want := range []string{"routes[0].backends[0].url (line 8)", "routes[1].name (line 9)", "routes[1].match.prefix (line 11)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}

	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(routeCfg("ok", "http://127.0.0.1:1")), 0o644)
	if out, err := exec.Command(altairBin, "validate", "-c", good).CombinedOutput(); err != nil {
		t.Fatalf("validate good config: %v\n%s", err, out)
	}
}

func TestE2EExplain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "altair.yaml")
	os.WriteFile(cfg, []byte(baseCfg+`
upstreams:
  users:
    load_balancing: ip-hash
    backends:
      - url: http://10.0.0.1:8080
        weight: 2
      - url: http://10.0.0.2:8080
routes:
  - name: user
    match:
      hosts: [api.example.com]
      methods: [GET]
      path: /users/{id}
      headers:
        X-Env: canary
    rewrite: /v2/users/{id}
    upstream: users
`), 0o644)
	out, err := exec.Command(altairBin, "explain", "-c", cfg, "-json", "GET", "http://api.example.com/users/42", "-H", "X-Env: canary").CombinedOutput()
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	var ex struct {
		Matched      bool              `json:"matched"`
		Route        string            `json:"route"`
		Params       map[string]string `json:"params"`
		UpstreamPath string            `json:"upstream_path"`
		Chain        []string          `json:"chain"`
		Upstream     struct {
			Name      string `json:"name"`
			Algorithm string `json:"algorithm"`
		} `json:"upstream"`
	}
	if err := json.Unmarshal(out, &ex); err != nil {
		t.Fatalf("explain -json output is not JSON: %v\n%s", err, out)
	}
	if !ex.Matched || ex.Route != "user" || ex.Params["id"] != "42" || ex.UpstreamPath != "/v2/users/42" ||
		ex.Upstream.Name != "users" || ex.Upstream.Algorithm != "ip-hash" || len(ex.Chain) == 0 {
		t.Fatalf("explain = %+v, want route user, id 42, /v2/users/42, pool users (ip-hash)", ex)
	}
	// Without the header the route does not match.
	out, err = exec.Command(altairBin, "explain", "-c", cfg, "GET", "http://api.example.com/users/42").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "404") {
		t.Fatalf("explain without header: %v\n%s", err, out)
	}
}

func TestE2EEnvironmentRoutes(t *testing.T) {
	t.Parallel()
	a := backend(t, "a")
	b := backend(t, "b")
	routes := fmt.Sprintf(`[{"prefix":"/api/svc","target_url":%q,"strip_prefix":true,"weight":1},{"prefix":"/api/svc","target_url":%q,"strip_prefix":true,"weight":1}]`, a.URL, b.URL)
	p := startAltair(t, baseCfg, "SERVICE_ROUTES="+routes, "LOAD_BALANCING_ALGO=round-robin")
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		code, body, _ := get(t, p.url("/api/svc/thing"))
		if code != 200 || !strings.HasSuffix(body, " /thing") {
			t.Fatalf("GET /api/svc/thing = %d %q, want 200 with the prefix stripped", code, body)
		}
		seen[strings.Fields(body)[0]] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("SERVICE_ROUTES entries sharing a prefix should form one pool; backends seen = %v", seen)
	}
}

// upgradeEcho answers an Upgrade request with 101 and then echoes bytes.
func upgradeEcho(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestE2EUpgradedConnectionSurvivesReload(t *testing.T) {
	t.Parallel()
	echo := upgradeEcho(t)
	other := backend(t, "other")
	cfg := func(extra string) string {
		return baseCfg + fmt.Sprintf(`
routes:
  - name: ws
    match:
      prefix: /ws
    backends:
      - url: %s
%s`, echo.URL, extra)
	}
	p := startAltair(t, cfg(""))
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade through altair: %v %v", resp, err)
	}
	roundTrip := func(msg string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprint(c, msg); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %q = %q, %v", msg, got, err)
		}
	}
	roundTrip("before reload")
	p.rewrite(cfg(fmt.Sprintf(`  - name: added
    match:
      prefix: /other
    backends:
      - url: %s
`, other.URL)))
	waitFor(t, 5*time.Second, "reload", func() bool {
		code, _, _ := get(t, p.url("/other"))
		return code == 200
	})
	roundTrip("after reload")
}

func TestE2EDrainDelayReportsNotReady(t *testing.T) {
	t.Parallel()
	a := backend(t, "a")
	p := startAltair(t, strings.Replace(routeCfg("one", a.URL), "server:\n", "server:\n  drain_delay: 2s\n", 1))
	p.signal(syscall.SIGTERM)
	waitFor(t, 5*time.Second, "/ready to answer 503 while draining", func() bool {
		code, _, _ := get(t, p.url("/ready"))
		return code == http.StatusServiceUnavailable
	})
	// Still serving traffic during the delay.
	if code, body, _ := get(t, p.url("/x")); code != 200 || body != "a /x" {
		t.Fatalf("during the drain delay GET /x = %d %q, want 200", code, body)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("altair did not exit after the drain delay")
	}
	if p.exitErr != nil {
		t.Fatalf("exit after drain: %v, want status 0", p.exitErr)
	}
}
