package wasmhost

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The example guests are built once per test binary with the Go toolchain
// (GOCACHE keeps rebuilds fast) into a temporary directory.
var (
	guestDir string
	testRT   *Runtime
	builds   sync.Map // name → *guestBuild
)

type guestBuild struct {
	once sync.Once
	wasm []byte
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasmhost-guests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	guestDir = dir
	testRT = NewRuntime(context.Background())
	code := m.Run()
	if err := testRT.Close(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "close runtime:", err)
		code = 1
	}
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// guest returns the compiled example examples/plugins/wasm/name.
func guest(tb testing.TB, name string) []byte {
	tb.Helper()
	v, _ := builds.LoadOrStore(name, &guestBuild{})
	g := v.(*guestBuild)
	g.once.Do(func() {
		out := filepath.Join(guestDir, name+".wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./examples/plugins/wasm/"+name)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			g.err = fmt.Errorf("build guest %s: %v\n%s", name, err, msg)
			return
		}
		if g.wasm, g.err = os.ReadFile(out); g.err != nil {
			return
		}
		// Compile once and keep it (the runtime's Close releases it): tests
		// loading the same guest in parallel then share the machine code
		// instead of each compiling it.
		_, g.err = testRT.rt.CompileModule(context.Background(), g.wasm)
	})
	if g.err != nil {
		tb.Fatal(g.err)
	}
	return g.wasm
}

func load(tb testing.TB, o Options) *Plugin {
	tb.Helper()
	p, err := testRT.Load(context.Background(), o)
	if err != nil {
		tb.Fatalf("Load(%s) = %v", o.Name, err)
	}
	tb.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// echoUpstream answers with what it received as JSON.
type seen struct {
	Method string              `json:"method"`
	URI    string              `json:"uri"`
	Header map[string][]string `json:"header"`
	Host   string              `json:"host"`
	Body   string              `json:"body"`
}

func echoUpstream(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream-Id", r.Header.Get("X-Id"))
		_ = json.NewEncoder(w).Encode(seen{r.Method, r.RequestURI, r.Header, r.Host, string(b)})
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// front serves the plugin in front of a handler on a loopback server.
func front(tb testing.TB, p *Plugin, next http.Handler) *httptest.Server {
	srv := httptest.NewServer(p.Wrap(next))
	tb.Cleanup(srv.Close)
	return srv
}

// proxyTo forwards to an upstream like the gateway does (path and query kept).
func proxyTo(upstream *httptest.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, upstream.URL+r.URL.RequestURI(), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		req.Host = r.Host
		req.ContentLength = r.ContentLength
		resp, err := upstream.Client().Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}

func do(tb testing.TB, req *http.Request) (*http.Response, string) {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

func newRequest(tb testing.TB, method, url, body string) *http.Request {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// counter is an Observer.
type counter struct{ ok, failed atomic.Int64 }

func (c *counter) Observe(_ string, _ time.Duration, failed bool) {
	if failed {
		c.failed.Add(1)
	} else {
		c.ok.Add(1)
	}
}

// records is a slog handler that keeps messages.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" || a.Key == "phase" || a.Key == "text" {
			msg += " " + a.Key + "=" + a.Value.String()
		}
		return true
	})
	h.msgs = append(h.msgs, msg)
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }
func (h *records) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs...)
}

func TestHeadersPlugin(t *testing.T) {
	t.Parallel()
	cfg := `{"request_headers":{"X-Hello":"world"},"remove_request_headers":["X-Secret"],
		"response_headers":{"X-Plugin":"headers"},"method":"PUT",
		"path_prefix":{"from":"/old/","to":"/new/"}}`
	p := load(t, Options{Name: "headers", Module: guest(t, "headers"), Config: []byte(cfg)})
	srv := front(t, p, proxyTo(echoUpstream(t)))

	req := newRequest(t, http.MethodGet, srv.URL+"/old/item?q=1&r=%2F", "")
	req.Header.Set("X-Secret", "s3cret")
	req.Header.Set("X-Keep", "yes")
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Plugin"); got != "headers" {
		t.Errorf("response X-Plugin = %q, want headers", got)
	}
	var s seen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("upstream answer %q: %v", body, err)
	}
	if s.Method != http.MethodPut {
		t.Errorf("upstream method = %s, want PUT", s.Method)
	}
	if s.URI != "/new/item?q=1&r=%2F" {
		t.Errorf("upstream URI = %s, want /new/item?q=1&r=%%2F", s.URI)
	}
	h := http.Header(s.Header)
	if h.Get("X-Hello") != "world" || h.Get("X-Secret") != "" || h.Get("X-Keep") != "yes" {
		t.Errorf("upstream headers X-Hello=%q X-Secret=%q X-Keep=%q, want world, empty, yes",
			h.Get("X-Hello"), h.Get("X-Secret"), h.Get("X-Keep"))
	}
}

func TestConfigLongerThanGuestBuffer(t *testing.T) {
	t.Parallel()
	// The guest's first get_config uses a 2 KiB buffer: a longer config is
	// not written, its length is returned and the guest retries.
	long := strings.Repeat("v", 5000)
	p := load(t, Options{Name: "headers-long", Module: guest(t, "headers"),
		Config: []byte(`{"response_headers":{"X-Long":"` + long + `"}}`)})
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	resp, _ := do(t, newRequest(t, http.MethodGet, srv.URL, ""))
	if got := resp.Header.Get("X-Long"); got != long {
		t.Errorf("X-Long has %d bytes, want %d", len(got), len(long))
	}
}

func TestValidatorPlugin(t *testing.T) {
	t.Parallel()
	p := load(t, Options{Name: "validator", Module: guest(t, "validator"),
		Config: []byte(`{"required":["name"]}`)})
	srv := front(t, p, proxyTo(echoUpstream(t)))

	tests := []struct {
		name, method, body string
		wantStatus         int
		wantDetail         string
	}{
		{"valid", http.MethodPost, `{"name":"ada","n":1}`, http.StatusOK, ""},
		{"not json", http.MethodPost, `name=ada`, http.StatusBadRequest, "body is not a JSON object"},
		{"missing field", http.MethodPost, `{"nom":"ada"}`, http.StatusBadRequest, "missing field name"},
		{"empty body", http.MethodPut, ``, http.StatusBadRequest, "body is not a JSON object"},
		{"get passes", http.MethodGet, ``, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, newRequest(t, tt.method, srv.URL+"/submit", tt.body))
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %q: status = %d, want %d; body %s", tt.method, tt.body, resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus != http.StatusOK {
				var e struct{ Error, Detail string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != "invalid_body" || e.Detail != tt.wantDetail {
					t.Errorf("body = %s, want error invalid_body, detail %q", body, tt.wantDetail)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				if resp.ContentLength != int64(len(body)) {
					t.Errorf("Content-Length = %d, want %d", resp.ContentLength, len(body))
				}
				return
			}
			var s seen
			if err := json.Unmarshal([]byte(body), &s); err != nil {
				t.Fatalf("upstream answer %q: %v", body, err)
			}
			if s.Body != tt.body { // buffer_request: the upstream gets what the guest read
				t.Errorf("upstream body = %q, want %q", s.Body, tt.body)
			}
		})
	}
}

func TestInspectPlugin(t *testing.T) {
	t.Parallel()
	p := load(t, Options{Name: "inspect", Module: guest(t, "inspect")})
	srv := front(t, p, proxyTo(echoUpstream(t)))

	t.Run("answer", func(t *testing.T) {
		t.Parallel()
		req := newRequest(t, http.MethodGet, srv.URL+"/a/b?c=d", "")
		req.Header.Set("X-Inspect", "answer")
		req.Header.Add("X-Multi", "one")
		req.Header.Add("X-Multi", "two")
		resp, body := do(t, req)
		var v struct {
			Method, URI, Protocol string
			SourceAddr            string `json:"source_addr"`
			Headers               map[string][]string
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d %q (%v), want 200 and JSON", resp.StatusCode, body, err)
		}
		if v.Method != "GET" || v.URI != "/a/b?c=d" || v.Protocol != "HTTP/1.1" || !strings.HasPrefix(v.SourceAddr, "127.0.0.1:") {
			t.Errorf("guest saw %s %s %s from %s, want GET /a/b?c=d HTTP/1.1 from 127.0.0.1", v.Method, v.URI, v.Protocol, v.SourceAddr)
		}
		host := strings.TrimPrefix(srv.URL, "http://")
		if got := v.Headers["host"]; len(got) != 1 || got[0] != host {
			t.Errorf("host = %q, want [%s]", got, host)
		}
		if got := v.Headers["x-multi"]; len(got) != 2 || got[0] != "one" || got[1] != "two" {
			t.Errorf("x-multi = %q, want [one two]", got)
		}
		if resp.Header.Get("Content-Type") != "application/json" || resp.ContentLength != int64(len(body)) {
			t.Errorf("Content-Type %q, Content-Length %d, want application/json, %d",
				resp.Header.Get("Content-Type"), resp.ContentLength, len(body))
		}
	})
	t.Run("upper", func(t *testing.T) {
		t.Parallel()
		req := newRequest(t, http.MethodPost, srv.URL+"/up", "make me loud")
		req.Header.Set("X-Inspect", "upper")
		_, body := do(t, req)
		var s seen
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatalf("upstream answer %q: %v", body, err)
		}
		if s.Body != "MAKE ME LOUD" {
			t.Errorf("upstream body = %q, want MAKE ME LOUD", s.Body)
		}
		if got := s.Header["X-Inspected"]; len(got) != 2 || got[0] != "1" || got[1] != "2" {
			t.Errorf("upstream X-Inspected = %q, want [1 2]", got)
		}
	})
}

func TestResponseStartedBeforeNext(t *testing.T) {
	t.Parallel()
	p := load(t, Options{Name: "inspect-early", Module: guest(t, "inspect")})
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "from the upstream\n")
	}))
	for _, mode := range []string{"early", "early-buffered"} {
		req := newRequest(t, http.MethodGet, srv.URL, "")
		req.Header.Set("X-Inspect", mode)
		resp, body := do(t, req)
		if want := "from the guest\nfrom the upstream\n"; resp.StatusCode != 203 || body != want {
			t.Errorf("%s: got %d %q, want 203 %q", mode, resp.StatusCode, body, want)
		}
	}
}

func TestRequestBodyOverLimit(t *testing.T) {
	t.Parallel()
	obs := &counter{}
	p := load(t, Options{Name: "validator-small", Module: guest(t, "validator"), MaxBodyBytes: 1024,
		Config: []byte(`{"required":["name"],"max_bytes":1048576}`), Observer: obs})
	var upstreamCalls atomic.Int64
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { upstreamCalls.Add(1) }))

	big := `{"name":"` + strings.Repeat("x", 8192) + `"}`
	resp, body := do(t, newRequest(t, http.MethodPost, srv.URL, big))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"request_too_large"`) {
		t.Errorf("status = %d body %s, want 413 request_too_large", resp.StatusCode, body)
	}
	if upstreamCalls.Load() != 0 {
		t.Errorf("upstream called %d times, want 0", upstreamCalls.Load())
	}
	if obs.failed.Load() != 0 {
		t.Errorf("failed = %d, want 0: an oversized body is the client's fault", obs.failed.Load())
	}
	resp, body = do(t, newRequest(t, http.MethodPost, srv.URL, `{"name":"ok"}`))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("next request: status = %d, want 200; body %s", resp.StatusCode, body)
	}
}

func TestRewriterPlugin(t *testing.T) {
	t.Parallel()
	p := load(t, Options{Name: "rewriter", Module: guest(t, "rewriter"),
		Config: []byte(`{"from":"world","to":"WebAssembly"}`)})
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "23")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "hello world, bye world\n")
	})
	srv := front(t, p, upstream)
	resp, body := do(t, newRequest(t, http.MethodGet, srv.URL, ""))
	want := "hello WebAssembly, bye WebAssembly\n"
	if resp.StatusCode != http.StatusAccepted || body != want {
		t.Errorf("got %d %q, want 202 %q", resp.StatusCode, body, want)
	}
	if resp.ContentLength != int64(len(want)) || resp.Header.Get("X-Rewritten") != "1" {
		t.Errorf("Content-Length = %d, X-Rewritten = %q, want %d, 1", resp.ContentLength, resp.Header.Get("X-Rewritten"), len(want))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
}

func TestResponseOverBufferLimit(t *testing.T) {
	t.Parallel()
	obs := &counter{}
	p := load(t, Options{Name: "rewriter-small", Module: guest(t, "rewriter"), MaxBodyBytes: 1024, Observer: obs,
		Config: []byte(`{"from":"world","to":"WebAssembly"}`)})
	big := strings.Repeat("hello world\n", 1000)
	tests := []struct {
		name string
		next http.Handler
	}{
		{"handler", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, big) })},
		{"aborting handler", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.WriteString(w, big); err != nil {
				panic(http.ErrAbortHandler) // as httputil.ReverseProxy does
			}
		})},
	}
	for _, tt := range tests {
		srv := front(t, p, tt.next)
		resp, body := do(t, newRequest(t, http.MethodGet, srv.URL, ""))
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"bad_gateway"`) {
			t.Errorf("%s: got %d %s, want 502 bad_gateway", tt.name, resp.StatusCode, body)
		}
	}
	if obs.failed.Load() != 0 {
		t.Errorf("failed = %d, want 0: the plugin did not fail", obs.failed.Load())
	}
}

func TestTrapFailsOnlyItsRequest(t *testing.T) {
	t.Parallel()
	obs := &counter{}
	logs := &records{}
	p := load(t, Options{Name: "trap", Module: guest(t, "trap"), Observer: obs, Log: slog.New(logs), PoolSize: 1})
	var upstreamCalls atomic.Int64
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamCalls.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))

	for _, mode := range []string{"panic", "nil"} {
		req := newRequest(t, http.MethodGet, srv.URL, "")
		req.Header.Set("X-Trap", mode)
		req.Header.Set("X-Request-Id", "req-"+mode)
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("%s: status = %d, want 500", mode, resp.StatusCode)
		}
		var e struct {
			Error     string `json:"error"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != "plugin_failed" || e.RequestID != "req-"+mode {
			t.Errorf("%s: body = %s, want plugin_failed with the request id", mode, body)
		}
		resp, body = do(t, newRequest(t, http.MethodGet, srv.URL, ""))
		if resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("after %s: got %d %q, want 200 ok", mode, resp.StatusCode, body)
		}
	}
	if upstreamCalls.Load() != 2 {
		t.Errorf("upstream calls = %d, want 2", upstreamCalls.Load())
	}

	// A trap in handle_response after an unbuffered answer went out: the
	// client has its answer, the failure is counted and logged.
	req := newRequest(t, http.MethodGet, srv.URL, "")
	req.Header.Set("X-Trap", "response-panic")
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Errorf("response-panic: got %d %q, want 200 ok", resp.StatusCode, body)
	}
	if got := obs.failed.Load(); got != 3 {
		t.Errorf("failed = %d, want 3", got)
	}
	var warns int
	for _, m := range logs.all() {
		if strings.HasPrefix(m, "wasm plugin failed") {
			warns++
		}
	}
	if warns != 3 {
		t.Errorf("failure log lines = %d, want 3 (one per failure): %q", warns, logs.all())
	}
}

func TestInfiniteLoopHitsDeadline(t *testing.T) {
	t.Parallel()
	obs := &counter{}
	logs := &records{}
	const timeout = 200 * time.Millisecond
	p := load(t, Options{Name: "loop", Module: guest(t, "trap"), Timeout: timeout, Observer: obs, Log: slog.New(logs), PoolSize: 2})
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))

	// Two loops at once and a normal request beside them: the pool keeps serving.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			req := newRequest(t, http.MethodGet, srv.URL, "")
			req.Header.Set("X-Trap", "loop")
			start := time.Now()
			resp, _ := do(t, req)
			if d := time.Since(start); resp.StatusCode != http.StatusInternalServerError || d > timeout+5*time.Second {
				t.Errorf("loop: status %d after %v, want 500 within %v", resp.StatusCode, d, timeout+5*time.Second)
			}
		})
	}
	resp, body := do(t, newRequest(t, http.MethodGet, srv.URL, ""))
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Errorf("beside the loops: got %d %q, want 200 ok", resp.StatusCode, body)
	}
	wg.Wait()
	for range 3 {
		resp, body := do(t, newRequest(t, http.MethodGet, srv.URL, ""))
		if resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("after the loops: got %d %q, want 200 ok", resp.StatusCode, body)
		}
	}
	if got := obs.failed.Load(); got != 2 {
		t.Errorf("failed = %d, want 2", got)
	}
	var deadlines int
	for _, m := range logs.all() {
		if strings.Contains(m, "reason=deadline") {
			deadlines++
		}
	}
	if deadlines != 2 {
		t.Errorf("deadline logs = %d, want 2: %q", deadlines, logs.all())
	}
}

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	obs := &counter{}
	p := load(t, Options{Name: "grow", Module: guest(t, "trap"), MemoryLimitPages: 256, Observer: obs})
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))

	req := newRequest(t, http.MethodGet, srv.URL, "")
	req.Header.Set("X-Trap", "grow")
	resp, _ := do(t, req)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("grow: status = %d, want 500", resp.StatusCode)
	}
	if obs.failed.Load() != 1 {
		t.Errorf("failed = %d, want 1", obs.failed.Load())
	}
	resp, body := do(t, newRequest(t, http.MethodGet, srv.URL, ""))
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Errorf("after grow: got %d %q, want 200 ok", resp.StatusCode, body)
	}
}

func TestModuleOverMemoryLimit(t *testing.T) {
	t.Parallel()
	_, err := testRT.Load(context.Background(), Options{Name: "tiny", Module: guest(t, "empty"), MemoryLimitPages: 1})
	if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), "over the limit of 1") {
		t.Errorf("Load with a 1-page limit = %v, want ErrInvalidModule about the limit", err)
	}
}

func TestConcurrentRequestsDoNotShareState(t *testing.T) {
	t.Parallel()
	logs := &records{}
	p := load(t, Options{Name: "echo", Module: guest(t, "headers"), PoolSize: 3, Log: slog.New(logs),
		Config: []byte(`{"request_headers":{"X-Hello":"world"},"echo_header":"X-Id"}`)})
	srv := front(t, p, proxyTo(echoUpstream(t)))

	const workers, each = 16, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-r%d", w, i)
				req := newRequest(t, http.MethodPost, srv.URL+"/"+id, id)
				req.Header.Set("X-Id", id)
				resp, body := do(t, req)
				var s seen
				if err := json.Unmarshal([]byte(body), &s); err != nil {
					t.Errorf("%s: answer %q: %v", id, body, err)
					return
				}
				if resp.Header.Get("X-Upstream-Id") != id || s.URI != "/"+id || s.Body != id || http.Header(s.Header).Get("X-Hello") != "world" {
					t.Errorf("%s: upstream saw id %q, URI %q, body %q, X-Hello %q (answer %d %s)", id,
						resp.Header.Get("X-Upstream-Id"), s.URI, s.Body, http.Header(s.Header).Get("X-Hello"), resp.StatusCode, body)
				}
			}
		})
	}
	wg.Wait()
	// Each request's handle_response logged the X-Id its handle_request
	// kept in a guest global: any sharing of an instance would mix them.
	got := map[string]int{}
	for _, m := range logs.all() {
		if id, ok := strings.CutPrefix(m, "echo "); ok {
			got[id]++
		}
	}
	for w := range workers {
		for i := range each {
			if id := fmt.Sprintf("w%d-r%d", w, i); got[id] != 1 {
				t.Errorf("echo %s logged %d times, want 1", id, got[id])
			}
		}
	}
	if len(got) != workers*each {
		t.Errorf("%d distinct echoes, want %d", len(got), workers*each)
	}
}

func TestStreamingWithoutBufferResponse(t *testing.T) {
	t.Parallel()
	p := load(t, Options{Name: "headers-sse", Module: guest(t, "headers"),
		Config: []byte(`{"response_headers":{"X-Plugin":"headers"}}`)})
	release := make(chan struct{})
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the plugin: %v", err)
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "data: second\n\n")
	}))
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("X-Plugin") != "headers" {
		t.Errorf("X-Plugin = %q, want headers", resp.Header.Get("X-Plugin"))
	}
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n') // arrives while the upstream still holds the stream open
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event = %q, %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(rd)
	if string(rest) != "\ndata: second\n\n" {
		t.Errorf("rest = %q", rest)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		module []byte
		want   string
	}{
		{"empty", nil, "empty module"},
		{"malformed", []byte("this is not wasm"), "invalid magic number"},
		{"no exports", []byte("\x00asm\x01\x00\x00\x00"), "does not export function handle_request"},
		{"bad import", moduleImporting("env", "abort"), "imports env.abort"},
		{"unknown host function", moduleImporting("http_handler", "next"), "imports http_handler.next, which the host does not provide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := testRT.Load(context.Background(), Options{Name: tt.name, Module: tt.module})
			if err == nil {
				_ = p.Close(context.Background())
				t.Fatalf("Load(%s) = nil error, want %q", tt.name, tt.want)
			}
			if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%s) = %v, want ErrInvalidModule and %q", tt.name, err, tt.want)
			}
		})
	}
}

// moduleImporting is a minimal valid module that exports handle_request
// (returning 1: next), handle_response and memory, and imports module.name
// as () -> ().
func moduleImporting(module, name string) []byte {
	return handMadeModule(module, name, []byte{0x42, 1}) // i64.const 1
}

// handMadeModule builds a module exporting handle_request, whose body is
// code (it must leave an i64), handle_response and a one-page memory, and
// importing module.name as () -> () unless module is "".
func handMadeModule(module, name string, code []byte) []byte {
	return handMadeModuleTyped(module, name, 0, code)
}

// handMadeModuleTyped is handMadeModule with the import's type: 0 for
// () -> (), 2 for (i32, i32) -> ().
func handMadeModuleTyped(module, name string, typ byte, code []byte) []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	section := func(id byte, body []byte) []byte { return append([]byte{id, byte(len(body))}, body...) }
	first := byte(0) // index of the first defined function
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, []byte{3, // types
		0x60, 0, 0, // () -> ()
		0x60, 0, 1, 0x7e, // () -> i64
		0x60, 2, 0x7f, 0x7f, 0, // (i32, i32) -> ()
	})...)
	if module != "" {
		imp := []byte{1}
		imp = append(imp, str(module)...)
		imp = append(imp, str(name)...)
		imp = append(imp, 0x00, typ) // func
		m = append(m, section(2, imp)...)
		first = 1
	}
	m = append(m, section(3, []byte{2, 1, 2})...)    // functions of types 1 and 2
	m = append(m, section(5, []byte{1, 0x00, 1})...) // one memory, min 1 page
	exp := []byte{3}
	exp = append(exp, str("handle_request")...)
	exp = append(exp, 0x00, first)
	exp = append(exp, str("handle_response")...)
	exp = append(exp, 0x00, first+1)
	exp = append(exp, str("memory")...)
	exp = append(exp, 0x02, 0x00)
	m = append(m, section(7, exp)...)
	body := append(append([]byte{0}, code...), 0x0b) // no locals, code, end
	codeSec := []byte{2, byte(len(body))}
	codeSec = append(codeSec, body...)
	codeSec = append(codeSec, 2, 0, 0x0b)
	return append(m, section(10, codeSec)...)
}

func TestUnreachableTrap(t *testing.T) {
	t.Parallel()
	obs := &counter{}
	logs := &records{}
	p := load(t, Options{Name: "unreachable", Module: handMadeModule("", "", []byte{0x00}), Observer: obs, Log: slog.New(logs)})
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("next called after a trap")
	}))
	for range 3 { // each request a fresh instance, each failing alone
		resp, body := do(t, newRequest(t, http.MethodGet, srv.URL, ""))
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, `"plugin_failed"`) {
			t.Errorf("got %d %s, want 500 plugin_failed", resp.StatusCode, body)
		}
	}
	if obs.failed.Load() != 3 {
		t.Errorf("failed = %d, want 3", obs.failed.Load())
	}
	for _, m := range logs.all() {
		if strings.HasPrefix(m, "wasm plugin failed") && !strings.Contains(m, "reason=trap") {
			t.Errorf("log %q, want reason=trap", m)
		}
	}
}

func TestMaxInstances(t *testing.T) {
	t.Parallel()
	p := load(t, Options{Name: "busy", Module: guest(t, "empty"), MaxInstances: 2})
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			arrived <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	var wg sync.WaitGroup
	for range 2 { // each holds an instance until its upstream answers
		wg.Go(func() {
			if resp, _ := do(t, newRequest(t, http.MethodGet, srv.URL+"/hold", "")); resp.StatusCode != http.StatusOK {
				t.Errorf("held request: status = %d, want 200", resp.StatusCode)
			}
		})
		<-arrived
	}
	resp, body := do(t, newRequest(t, http.MethodGet, srv.URL, ""))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"plugin_busy"`) {
		t.Errorf("third request: got %d %s, want 503 plugin_busy", resp.StatusCode, body)
	}
	close(release)
	wg.Wait()
	if resp, body := do(t, newRequest(t, http.MethodGet, srv.URL, "")); resp.StatusCode != http.StatusOK || body != "ok" {
		t.Errorf("after release: got %d %q, want 200 ok", resp.StatusCode, body)
	}
	if got := p.live.Load(); got > 2 {
		t.Errorf("live instances = %d, want at most 2", got)
	}
}

func TestPluginCloseThenServe(t *testing.T) {
	t.Parallel()
	p, err := testRT.Load(context.Background(), Options{Name: "closing", Module: guest(t, "empty")})
	if err != nil {
		t.Fatal(err)
	}
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	if resp, body := do(t, newRequest(t, http.MethodGet, srv.URL, "")); resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("got %d %q, want 200 ok", resp.StatusCode, body)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	// A closed plugin fails cleanly (the gateway swaps it out before closing).
	if resp, _ := do(t, newRequest(t, http.MethodGet, srv.URL, "")); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("after Close: status = %d, want 500", resp.StatusCode)
	}
}

// discardWriter is a reusable ResponseWriter, so the benchmarks measure the
// plugin and not the recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func benchmarkHandler(b *testing.B, h http.Handler) {
	req := httptest.NewRequest(http.MethodGet, "/bench?x=1", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	if w.status != http.StatusOK {
		b.Fatalf("status = %d, want 200", w.status)
	}
}

var trivial = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
})

func BenchmarkNoPlugin(b *testing.B) { benchmarkHandler(b, trivial) }

func BenchmarkWasmEmpty(b *testing.B) {
	p := load(b, Options{Name: "empty", Module: guest(b, "empty"), PoolSize: 1})
	benchmarkHandler(b, p.Wrap(trivial))
}

// TestPoolKeepsInstancesUnderLoadThenTrims: concurrent requests (each holds
// an instance through the upstream's answer) leave their instances pooled,
// so the next wave makes none; once the load is gone, the instances beyond
// PoolSize are closed.
func TestPoolKeepsInstancesUnderLoadThenTrims(t *testing.T) {
	t.Parallel()
	p := load(t, Options{Name: "pool", Module: guest(t, "empty"), PoolSize: 1, TrimInterval: 300 * time.Millisecond})
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			arrived <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	wave := func() {
		release = make(chan struct{})
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				if resp, _ := do(t, newRequest(t, http.MethodGet, srv.URL+"/hold", "")); resp.StatusCode != http.StatusOK {
					t.Errorf("held request: status = %d, want 200", resp.StatusCode)
				}
			})
			<-arrived
		}
		close(release)
		wg.Wait()
	}
	wave()
	if got := p.live.Load(); got != 6 {
		t.Fatalf("after 6 concurrent requests live = %d, want 6 (all kept for reuse)", got)
	}
	made := p.live.Load()
	wave()
	if got := p.live.Load(); got != made || len(p.pool) != 6 {
		t.Fatalf("second wave: live %d, idle %d; want the 6 instances reused, none made", got, len(p.pool))
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.live.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("idle instances not trimmed to PoolSize 1: live = %d", p.live.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, body := do(t, newRequest(t, http.MethodGet, srv.URL, "")); resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("after the trim: %d %q", resp.StatusCode, body)
	}
}
