package upstream

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/altair-gateway/altair/internal/identity"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/httperr"
)

// errorBody is the gateway's JSON error answer.
type errorBody struct {
	Error     string `json:"error"`
	Status    int    `json:"status"`
	RequestID string `json:"request_id"`
}

func decodeError(t testing.TB, body []byte) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return e
}

func TestProxyForwardsURLHostAndHeaders(t *testing.T) {
	t.Parallel()
	type seen struct{ path, rawQuery, host, requestID, routeHeader string }
	tests := []struct {
		name    string
		base    string // backend base path
		path    string
		query   string
		rewrite func(*http.Request)
		want    seen
	}{
		{
			name: "plain", path: "/a/b", query: "x=1&y=%20z",
			want: seen{path: "/a/b", rawQuery: "x=1&y=%20z", host: "client.example", requestID: "rid-1"},
		},
		{
			name: "base path joined with one slash", base: "/base/", path: "/a/b",
			want: seen{path: "/base/a/b", host: "client.example", requestID: "rid-1"},
		},
		{
			name: "base path and root", base: "/base", path: "/",
			want: seen{path: "/base/", host: "client.example", requestID: "rid-1"},
		},
		{
			name: "route rewrite changes host and adds a header", path: "/p",
			rewrite: func(out *http.Request) {
				out.Host = "internal.example"
				out.Header.Set("X-Route", "r1")
			},
			want: seen{path: "/p", host: "internal.example", requestID: "rid-1", routeHeader: "r1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan seen, 1)
			be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				got <- seen{r.URL.Path, r.URL.RawQuery, r.Host, r.Header.Get(httperr.RequestIDHeader), r.Header.Get("X-Route")}
				w.Header().Set("X-Backend", "yes")
				_, _ = io.WriteString(w, "hello")
			})
			p := newTestPool(t, testUpstream(be.URL+tt.base))
			h := p.Handler(RouteOptions{
				Route:          "r",
				RewriteRequest: tt.rewrite,
				ModifyResponse: func(r *http.Response) error {
					r.Header.Set("X-Modified", "1")
					return nil
				},
			})
			req := httptest.NewRequest(http.MethodGet, "http://client.example"+tt.path, nil)
			req.URL.RawQuery = tt.query
			req.Header.Set(httperr.RequestIDHeader, "rid-1")
			w := serve(h, req)
			if w.Code != http.StatusOK || w.Body.String() != "hello" {
				t.Fatalf("ServeHTTP() = %d %q, want 200 hello", w.Code, w.Body)
			}
			if w.Header().Get("X-Modified") != "1" || w.Header().Get("X-Backend") != "yes" {
				t.Errorf("response headers = %v, want X-Backend and X-Modified", w.Header())
			}
			if s := <-got; s != tt.want {
				t.Errorf("backend saw %+v, want %+v", s, tt.want)
			}
		})
	}
}

func TestProxyDeadBackendServesEveryGET(t *testing.T) {
	t.Parallel()
	for _, algorithm := range []string{AlgorithmRoundRobin, AlgorithmWeighted, AlgorithmLeastConn, AlgorithmIPHash} {
		t.Run(algorithm, func(t *testing.T) {
			t.Parallel()
			live := okBackend(t, "live")
			cfg := withAlgorithm(testUpstream(deadURL(t), live.URL), algorithm)
			p := newTestPool(t, cfg)
			h := p.Handler(RouteOptions{Route: "r", Timeout: 5 * time.Second})
			for i := range 200 {
				req := httptest.NewRequest(http.MethodGet, "/x", nil)
				req.RemoteAddr = fmt.Sprintf("10.0.%d.%d:1234", i/250, i%250)
				if w := serve(h, req); w.Code != http.StatusOK || w.Body.String() != "live" {
					t.Fatalf("request %d: ServeHTTP() = %d %q, want 200 live", i, w.Code, w.Body)
				}
			}
			st := p.Status()
			if dead := st.Backends[0]; dead.Failures == 0 || dead.Breaker != "open" {
				t.Errorf("Status() dead backend = %+v, want failures and breaker open", dead)
			}
		})
	}
}

// countingBackend answers status and records each request body it got.
type countingBackend struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newCountingBackend(t testing.TB, status int) *countingBackend {
	c := &countingBackend{}
	c.Server = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("backend read body: %v", err)
		}
		c.mu.Lock()
		c.bodies = append(c.bodies, string(b))
		c.mu.Unlock()
		w.WriteHeader(status)
	})
	return c
}

func (c *countingBackend) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bodies...)
}

func TestProxyRetryRules(t *testing.T) {
	t.Parallel()
	small := strings.Repeat("x", 1000)
	large := strings.Repeat("y", 200_000) // > MaxBodyBytes
	tests := []struct {
		name     string
		method   string
		key      bool // Idempotency-Key header
		body     string
		chunked  bool // unknown length
		dead     bool // first backend refuses connections; else both answer 503
		wantCode int
		wantHits int // requests that reached the 503 backends (or the live one)
	}{
		{name: "POST retried on connection refused", method: "POST", body: small, dead: true, wantCode: 200, wantHits: 1},
		{name: "POST chunked retried on connection refused", method: "POST", body: small, chunked: true, dead: true, wantCode: 200, wantHits: 1},
		{name: "POST not retried on 503", method: "POST", body: small, wantCode: 503, wantHits: 1},
		{name: "POST with Idempotency-Key retried on 503", method: "POST", key: true, body: small, wantCode: 503, wantHits: 3},
		{name: "PUT retried on 503", method: "PUT", body: small, wantCode: 503, wantHits: 3},
		{name: "GET retried on 503", method: "GET", wantCode: 503, wantHits: 3},
		{name: "large PUT streamed, not retried on 503", method: "PUT", body: large, wantCode: 503, wantHits: 1},
		{name: "large chunked PUT streamed, not retried on 503", method: "PUT", body: large, chunked: true, wantCode: 503, wantHits: 1},
		{name: "large POST not retried on connection refused", method: "POST", body: large, dead: true, wantCode: 502, wantHits: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var urls []string
			var backends []*countingBackend
			if tt.dead {
				live := newCountingBackend(t, http.StatusOK)
				backends = append(backends, live)
				urls = []string{deadURL(t), live.URL}
			} else {
				for range 3 {
					b := newCountingBackend(t, http.StatusServiceUnavailable)
					backends = append(backends, b)
					urls = append(urls, b.URL)
				}
			}
			cfg := testUpstream(urls...)
			cfg.CircuitBreaker.Disabled = true
			p := newTestPool(t, cfg)
			h := p.Handler(RouteOptions{Route: "r"})
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length
			}
			req := httptest.NewRequest(tt.method, "/x", body)
			if tt.chunked {
				req.ContentLength = -1
			}
			if tt.key {
				req.Header.Set("Idempotency-Key", "k1")
			}
			w := serve(h, req)
			if w.Code != tt.wantCode {
				t.Fatalf("%s: ServeHTTP() = %d, want %d", tt.name, w.Code, tt.wantCode)
			}
			hits := 0
			for _, b := range backends {
				for _, got := range b.got() {
					hits++
					if got != tt.body {
						t.Errorf("backend got body of %d bytes, want %d bytes intact", len(got), len(tt.body))
					}
				}
			}
			if hits != tt.wantHits {
				t.Errorf("backend hits = %d, want %d", hits, tt.wantHits)
			}
		})
	}
}

func TestProxyTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	slow := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	p := newTestPool(t, testUpstream(slow.URL, slow.URL+"/"))
	h := p.Handler(RouteOptions{Route: "r", Timeout: 100 * time.Millisecond})
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set(httperr.RequestIDHeader, "rid-timeout")
	start := time.Now()
	w := serve(h, req)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("ServeHTTP() took %v, want about the 100ms timeout", elapsed)
	}
	if w.Code != http.StatusGatewayTimeout {
		t.Fatalf("ServeHTTP() = %d, want 504", w.Code)
	}
	if e := decodeError(t, w.Body.Bytes()); e.Error != httperr.CodeGatewayTimeout || e.RequestID != "rid-timeout" {
		t.Errorf("error body = %+v, want upstream_timeout with request_id rid-timeout", e)
	}
}

// TestProxyTimeoutStopsAtHeaders checks that a body may stream for longer than
// the route timeout once the headers have arrived.
func TestProxyTimeoutStopsAtHeaders(t *testing.T) {
	t.Parallel()
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := range 3 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(60 * time.Millisecond):
			}
			fmt.Fprintf(w, "chunk%d;", i)
			w.(http.Flusher).Flush()
		}
	})
	p := newTestPool(t, testUpstream(be.URL))
	front, client := newFront(t, p.Handler(RouteOptions{Route: "r", Timeout: 50 * time.Millisecond}))
	resp, err := client.Get(front + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "chunk0;chunk1;chunk2;" {
		t.Fatalf("GET /stream = %d %q (%v), want the whole stream", resp.StatusCode, body, err)
	}
}

func TestProxyNoBackend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		prepare  func(p *Pool)
		wantCode int
		wantErr  string
	}{
		{name: "all refuse connections", prepare: func(*Pool) {}, wantCode: 502, wantErr: httperr.CodeBadGateway},
		{
			name: "all breakers open",
			prepare: func(p *Pool) {
				now := p.now().UnixNano()
				for _, b := range p.backends {
					for range 5 {
						b.state.breaker.record(p.breakerCfg, now, false, true)
					}
				}
			},
			wantCode: 503, wantErr: httperr.CodeUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPool(t, testUpstream(deadURL(t), deadURL(t)))
			tt.prepare(p)
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			req.Header.Set(httperr.RequestIDHeader, "rid-2")
			w := serve(p.Handler(RouteOptions{Route: "r"}), req)
			if w.Code != tt.wantCode {
				t.Fatalf("ServeHTTP() = %d, want %d", w.Code, tt.wantCode)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if e := decodeError(t, w.Body.Bytes()); e.Error != tt.wantErr || e.Status != tt.wantCode || e.RequestID != "rid-2" {
				t.Errorf("error body = %+v, want %s %d rid-2", e, tt.wantErr, tt.wantCode)
			}
		})
	}
}

func TestProxyClientGone(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	})
	p := newTestPool(t, testUpstream(be.URL))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/x", nil)
	w := serve(p.Handler(RouteOptions{Route: "r"}), req)
	if w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
		t.Errorf("ServeHTTP() after client left wrote %d %q, want nothing", w.Code, w.Body)
	}
	if st := p.Status().Backends[0]; st.Failures != 0 || st.InFlight != 0 {
		t.Errorf("Status() = %+v, want no failure counted and nothing in flight", st)
	}
}

func TestProxyForwardingHeaders(t *testing.T) {
	t.Parallel()
	// fwd is what the backend saw; multiple values of a header are joined with " | ".
	type fwd struct{ forFor, proto, host, realIP, forwarded string }
	const peer = "192.0.2.7:5555"
	spoofed := http.Header{
		"X-Forwarded-For":   {"1.2.3.4"},
		"X-Forwarded-Proto": {"https"},
		"X-Forwarded-Host":  {"evil.example"},
		"X-Real-Ip":         {"1.2.3.4", "5.6.7.8"},
		"Forwarded":         {"for=1.2.3.4;proto=https"},
	}
	tests := []struct {
		name   string
		trust  *bool  // nil: no TrustForwarded option
		remote string // RemoteAddr; peer when empty
		in     http.Header
		want   fwd
	}{
		{
			name: "no trust option: client values replaced by the peer's", in: spoofed,
			want: fwd{"192.0.2.7", "http", "client.example", "192.0.2.7", ""},
		},
		{
			name: "untrusted peer: client values replaced by the peer's", trust: new(false), in: spoofed,
			want: fwd{"192.0.2.7", "http", "client.example", "192.0.2.7", ""},
		},
		{
			name: "untrusted peer without forwarding headers", trust: new(false),
			want: fwd{"192.0.2.7", "http", "client.example", "192.0.2.7", ""},
		},
		{
			name: "untrusted IPv6 peer", remote: "[2001:db8::1]:5555", in: spoofed,
			want: fwd{"2001:db8::1", "http", "client.example", "2001:db8::1", ""},
		},
		{
			name: "untrusted peer without an address: client X-Real-IP dropped", remote: "@", in: spoofed,
			want: fwd{"", "http", "client.example", "", ""},
		},
		{
			name: "trusted peer: chain appended, values kept", trust: new(true),
			in: http.Header{
				"X-Forwarded-For":   {"1.2.3.4, 10.0.0.1"},
				"X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host":  {"public.example"},
				"X-Real-Ip":         {"1.2.3.4"},
				"Forwarded":         {"for=1.2.3.4"},
			},
			want: fwd{"1.2.3.4, 10.0.0.1, 192.0.2.7", "https", "public.example", "1.2.3.4", ""},
		},
		{
			name: "trusted peer without forwarding headers", trust: new(true),
			want: fwd{"192.0.2.7", "http", "client.example", "192.0.2.7", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			remote := cmp.Or(tt.remote, peer)
			got := make(chan fwd, 1)
			be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				h := func(k string) string { return strings.Join(r.Header.Values(k), " | ") }
				got <- fwd{h("X-Forwarded-For"), h("X-Forwarded-Proto"), h("X-Forwarded-Host"), h("X-Real-IP"), h("Forwarded")}
			})
			p := newTestPool(t, testUpstream(be.URL), func(o *Options) {
				if tt.trust == nil {
					return
				}
				o.TrustForwarded = func(r *http.Request) bool {
					if r.RemoteAddr != remote {
						t.Errorf("TrustForwarded got RemoteAddr %q, want %q", r.RemoteAddr, remote)
					}
					return *tt.trust
				}
			})
			req := httptest.NewRequest(http.MethodGet, "http://client.example/x", nil)
			req.RemoteAddr = remote
			for k, vs := range tt.in {
				req.Header[k] = slices.Clone(vs)
			}
			if w := serve(p.Handler(RouteOptions{}), req); w.Code != 200 {
				t.Fatalf("ServeHTTP() = %d, want 200", w.Code)
			}
			if g := <-got; g != tt.want {
				t.Errorf("backend saw %+v, want %+v", g, tt.want)
			}
		})
	}
}

func TestProxyIPHashUsesTrustedClientIP(t *testing.T) {
	t.Parallel()
	var a, b atomic.Int64
	ba := newBackend(t, func(http.ResponseWriter, *http.Request) { a.Add(1) })
	bb := newBackend(t, func(http.ResponseWriter, *http.Request) { b.Add(1) })
	p := newTestPool(t, withAlgorithm(testUpstream(ba.URL, bb.URL), AlgorithmIPHash), func(o *Options) {
		o.TrustForwarded = func(*http.Request) bool { return true }
	})
	h := p.Handler(RouteOptions{})
	// Many peers, one client behind them: one backend.
	for i := range 50 {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.RemoteAddr = fmt.Sprintf("10.1.1.%d:999", i)
		req.Header.Set("X-Forwarded-For", "203.0.113.9, 10.9.9.9")
		serve(h, req)
	}
	if a.Load() != 0 && b.Load() != 0 {
		t.Errorf("hits = %d/%d, want one client on one backend", a.Load(), b.Load())
	}
}

func TestProxyHopByHopHeaders(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-End-To-End", "1")
	})
	p := newTestPool(t, testUpstream(be.URL))
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set("Connection", "X-Custom-Hop, Keep-Alive")
	req.Header.Set("X-Custom-Hop", "secret")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Te", "gzip")
	req.Header.Set("Proxy-Authorization", "Basic xyz")
	req.Header.Set("Upgrade-Insecure-Requests", "1")
	req.Header.Set("X-End-To-End", "kept")
	w := serve(p.Handler(RouteOptions{}), req)
	h := <-got
	for _, k := range []string{"Connection", "X-Custom-Hop", "Keep-Alive", "Te", "Proxy-Authorization"} {
		if v := h.Get(k); v != "" {
			t.Errorf("backend got %s: %q, want it removed", k, v)
		}
	}
	if h.Get("X-End-To-End") != "kept" || h.Get("Upgrade-Insecure-Requests") != "1" {
		t.Errorf("backend headers = %v, want end-to-end headers kept", h)
	}
	for _, k := range []string{"X-Resp-Hop", "Keep-Alive"} {
		if v := w.Header().Get(k); v != "" {
			t.Errorf("client got %s: %q, want it removed", k, v)
		}
	}
	if w.Header().Get("X-End-To-End") != "1" {
		t.Errorf("client headers = %v, want X-End-To-End", w.Header())
	}
}

func TestProxySSE(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	p := newTestPool(t, testUpstream(be.URL))
	front, client := newFront(t, p.Handler(RouteOptions{Route: "sse", Timeout: time.Second}))
	req, _ := http.NewRequestWithContext(ctxWithTimeout(t, 5*time.Second), http.MethodGet, front+"/events", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		// The backend sends event i+1 only after we have read event i, so each
		// event must arrive on its own, before the stream ends.
		line, err := br.ReadString('\n')
		if want := fmt.Sprintf("data: event %d\n", i); err != nil || line != want {
			t.Fatalf("event %d = %q (%v), want %q", i, line, err, want)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		next <- struct{}{}
	}
}

func TestProxyUpgrade(t *testing.T) {
	t.Parallel()
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		_, _ = io.Copy(conn, rw) // echo until the client closes
	})
	p := newTestPool(t, testUpstream(be.URL))
	timers := withManualTimers(p)
	front, _ := newFront(t, p.Handler(RouteOptions{Route: "ws", Timeout: 50 * time.Millisecond}))
	conn, err := net.Dial("tcp", strings.TrimPrefix(front, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: example\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade status = %d, want 101", resp.StatusCode)
	}
	// Let the route timeout expire: upgraded connections are not cut by it.
	if started, fired := timers.fire(); len(started) != 1 || fired != 0 {
		t.Fatalf("route timers started %v, %d fired after the 101; want one, stopped at the headers", started, fired)
	}
	for _, msg := range []string{"hello", "world, again"} {
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo = %q (%v), want %q", buf, err, msg)
		}
	}
	if n := p.Status().Backends[0].InFlight; n != 1 {
		t.Errorf("in flight during upgrade = %d, want 1", n)
	}
	conn.Close()
	waitFor(t, "upgraded connection to end", 5*time.Second, func() bool {
		return p.Status().Backends[0].InFlight == 0
	})
}

func TestProxyRetryBudget(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]int{}
	release := make(chan struct{})
	var blocked atomic.Int64
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Test-ID")
		mu.Lock()
		seen[id]++
		n := seen[id]
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // first attempt fails
			return
		}
		blocked.Add(1)
		<-release // the retry stays in flight
	})
	cfg := testUpstream(be.URL)
	cfg.CircuitBreaker.Disabled = true
	cfg.PassiveHealth.Disabled = true
	cfg.Retry.Attempts = 2
	cfg.Retry.Budget = 0.2 // 10 requests in flight → 2, so the floor of 3 applies
	p := newTestPool(t, cfg)
	h := p.Handler(RouteOptions{Route: "r"})

	const n = 10
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			req.Header.Set("X-Test-ID", fmt.Sprint(i))
			codes <- serve(h, req).Code
		})
	}
	// Requests that did not get into the budget answer 503 at once; the others
	// wait in their retry.
	got := map[int]int{}
	for range n - minRetries {
		got[<-codes]++
	}
	waitFor(t, "retries to reach the backend", 5*time.Second, func() bool { return blocked.Load() >= minRetries })
	if got[503] != n-minRetries || blocked.Load() != minRetries {
		t.Errorf("with %d retries held, got codes %v and %d retries in flight, want %d×503 and %d",
			minRetries, got, blocked.Load(), n-minRetries, minRetries)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		got[c]++
	}
	if got[200] != minRetries {
		t.Errorf("codes = %v, want %d×200 from the retries", got, minRetries)
	}
}

func TestProxyNoRetryBudgetLeak(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, testUpstream(deadURL(t), deadURL(t)))
	h := p.Handler(RouteOptions{})
	for range 20 {
		serve(h, httptest.NewRequest(http.MethodGet, "/x", nil))
	}
	if a, r := p.shared.active.Load(), p.shared.retries.Load(); a != 0 || r != 0 {
		t.Errorf("after requests: active %d retries %d, want 0 0", a, r)
	}
}

func TestStatusOf(t *testing.T) {
	t.Parallel()
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	timedOut, cancelT := context.WithCancelCause(context.Background())
	cancelT(ErrTimeout)
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name        string
		ctx, client context.Context
		err         error
		want        int
		wantCode    string
	}{
		{"route timeout", timedOut, live, fmt.Errorf("x: %w", context.Canceled), 504, httperr.CodeGatewayTimeout},
		{"timeout sentinel", live, live, fmt.Errorf("x: %w", ErrTimeout), 504, httperr.CodeGatewayTimeout},
		{"deadline", live, live, context.DeadlineExceeded, 504, httperr.CodeGatewayTimeout},
		{"client gone", gone, gone, context.Canceled, StatusClientClosedRequest, ""},
		{"no backend", live, live, fmt.Errorf("pool: %w", ErrNoBackend), 503, httperr.CodeUnavailable},
		{"dial", live, live, dialErr, 502, httperr.CodeBadGateway},
		{"eof", live, live, io.ErrUnexpectedEOF, 502, httperr.CodeBadGateway},
		{"body too large", live, live, fmt.Errorf("%w: %w", errRequestBody, &http.MaxBytesError{Limit: 1}), 413, httperr.CodeRequestTooLarge},
		{"body read", live, live, fmt.Errorf("%w: %w", errRequestBody, io.ErrUnexpectedEOF), 400, httperr.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, code := statusOf(tt.ctx, tt.client, tt.err); got != tt.want || code != tt.wantCode {
				t.Errorf("statusOf(%v) = %d %q, want %d %q", tt.err, got, code, tt.want, tt.wantCode)
			}
		})
	}
}

func TestJoinPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ base, path, want string }{
		{"", "/a", "/a"},
		{"", "", "/"},
		{"", "a", "/a"},
		{"/base", "/a", "/base/a"},
		{"/base", "a", "/base/a"},
		{"/base", "", "/base/"},
		{"/base", "/", "/base/"},
	}
	for _, tt := range tests {
		if got := joinPath(tt.base, tt.path); got != tt.want {
			t.Errorf("joinPath(%q, %q) = %q, want %q", tt.base, tt.path, got, tt.want)
		}
	}
}

func TestProxyHeadError(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, testUpstream(deadURL(t)))
	w := serve(p.Handler(RouteOptions{}), httptest.NewRequest(http.MethodHead, "/x", nil))
	if w.Code != http.StatusBadGateway || w.Body.Len() != 0 {
		t.Errorf("HEAD to dead backend = %d %q, want 502 without body", w.Code, w.Body)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

func TestProxyErrorLog(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	dead := strings.Replace(deadURL(t), "http://", "http://user:hunter2@", 1)
	cfg := testUpstream(dead)
	cfg.Retry.Attempts = 2
	p := newTestPool(t, cfg, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set(httperr.RequestIDHeader, "rid-log")
	req.Header.Set("Authorization", "Bearer tok-secret")
	if w := serve(p.Handler(RouteOptions{Route: "orders"}), req); w.Code != http.StatusBadGateway {
		t.Fatalf("ServeHTTP() = %d, want 502", w.Code)
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "upstream error" {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no upstream error logged in %s", logs.String())
	}
	for k, want := range map[string]any{"route": "orders", "pool": "test", "request_id": "rid-log", "status": 502.0, "attempts": 2.0} {
		if line[k] != want {
			t.Errorf("log %s = %v, want %v", k, line[k], want)
		}
	}
	if line["backend"] == nil || line["error"] == nil {
		t.Errorf("log line %v lacks backend or error", line)
	}
	if s := logs.String(); strings.Contains(s, "hunter2") || strings.Contains(s, "tok-secret") {
		t.Errorf("logs leak a credential: %s", s)
	}
	if u := p.Status().Backends[0].URL; strings.Contains(u, "hunter2") {
		t.Errorf("Status() URL = %s, want the password redacted", u)
	}
}

func TestProxyPerTryTimeout(t *testing.T) {
	t.Parallel()
	const routeTimeout = 5 * time.Second
	tests := []struct {
		name     string
		method   string
		attempts int
		wantCode int
		wantHits int // requests that reached the answering backend
	}{
		{name: "GET retried on the next backend", method: http.MethodGet, attempts: 3, wantCode: 200, wantHits: 1},
		{name: "GET on its last attempt", method: http.MethodGet, attempts: 1, wantCode: 504},
		{name: "POST not retried: it was sent", method: http.MethodPost, attempts: 3, wantCode: 504},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hung, answered atomic.Int64
			release := make(chan struct{})
			hang := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				hung.Add(1)
				select { // until the gateway gives up on the attempt
				case <-r.Context().Done():
				case <-release:
				}
			})
			t.Cleanup(func() { close(release) })
			ok := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				answered.Add(1)
				_, _ = io.WriteString(w, "ok")
			})
			cfg := testUpstream(hang.URL, ok.URL) // round-robin: the first attempt hangs
			cfg.Retry.Attempts = tt.attempts
			cfg.Retry.PerTryTimeout = 100 * time.Millisecond
			p := newTestPool(t, cfg)
			h := p.Handler(RouteOptions{Route: "r", Timeout: routeTimeout})
			req := httptest.NewRequest(tt.method, "/x", strings.NewReader("payload"))
			start := time.Now()
			w := serve(h, req)
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("%s: ServeHTTP() took %v, want about the 100ms per-try timeout (route timeout %v)", tt.name, elapsed, routeTimeout)
			}
			if w.Code != tt.wantCode {
				t.Fatalf("%s: ServeHTTP() = %d %q, want %d", tt.name, w.Code, w.Body, tt.wantCode)
			}
			if tt.wantCode == http.StatusOK && w.Body.String() != "ok" {
				t.Errorf("%s: body = %q, want ok", tt.name, w.Body)
			}
			if tt.wantCode == http.StatusGatewayTimeout {
				if e := decodeError(t, w.Body.Bytes()); e.Error != httperr.CodeGatewayTimeout {
					t.Errorf("%s: error body = %+v, want %s", tt.name, e, httperr.CodeGatewayTimeout)
				}
			}
			if hung.Load() != 1 || answered.Load() != int64(tt.wantHits) {
				t.Errorf("%s: hits = %d hung, %d answered, want 1, %d", tt.name, hung.Load(), answered.Load(), tt.wantHits)
			}
			st := p.Status()
			if a := st.Backends[0]; a.Failures != 1 || a.InFlight != 0 {
				t.Errorf("%s: Status() hung backend = %+v, want 1 failure, nothing in flight", tt.name, a)
			}
			if b := st.Backends[1]; b.Failures != 0 || b.InFlight != 0 {
				t.Errorf("%s: Status() answering backend = %+v, want no failure, nothing in flight", tt.name, b)
			}
		})
	}
}

// TestProxyPerTryTimeoutStopsAtHeaders checks that, like the route timeout, the
// per-try timeout stops when the headers arrive: the body may stream on.
func TestProxyPerTryTimeoutStopsAtHeaders(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "head;")
		w.(http.Flusher).Flush()
		select {
		case <-next:
			_, _ = io.WriteString(w, "rest")
		case <-r.Context().Done():
		}
	})
	cfg := testUpstream(be.URL)
	cfg.Retry.PerTryTimeout = 50 * time.Millisecond
	p := newTestPool(t, cfg)
	timers := withManualTimers(p)
	front, client := newFront(t, p.Handler(RouteOptions{Route: "r", Timeout: time.Second}))
	req, _ := http.NewRequestWithContext(ctxWithTimeout(t, 5*time.Second), http.MethodGet, front+"/stream", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Both timeouts expire while the body is still streaming.
	started, fired := timers.fire()
	if !slices.Equal(started, []time.Duration{time.Second, 50 * time.Millisecond}) || fired != 0 {
		t.Errorf("timers started %v, %d fired after the headers; want [1s 50ms], both stopped", started, fired)
	}
	close(next)
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "head;rest" {
		t.Fatalf("GET /stream = %d %q (%v), want the whole body", resp.StatusCode, body, err)
	}
}

// TestProxyPerTryTimeoutManual fires the per-try timer by hand while the first
// attempt waits for headers: it fails, counts against its backend, and the GET
// is answered by the next one.
func TestProxyPerTryTimeoutManual(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	hang := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done() // the gateway gives up on the attempt
	})
	ok := okBackend(t, "ok")
	cfg := testUpstream(hang.URL, ok.URL)
	cfg.Retry.PerTryTimeout = time.Hour
	p := newTestPool(t, cfg)
	timers := withManualTimers(p)
	h := p.Handler(RouteOptions{Route: "r"})
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- serve(h, httptest.NewRequest(http.MethodGet, "/x", nil)) }()
	<-arrived
	if started, fired := timers.fire(); !slices.Equal(started, []time.Duration{time.Hour}) || fired != 1 {
		t.Fatalf("timers started %v, %d fired; want one per-try timer, fired", started, fired)
	}
	w := <-done
	if w.Code != http.StatusOK || w.Body.String() != "ok" {
		t.Fatalf("ServeHTTP() = %d %q, want 200 ok from the second backend", w.Code, w.Body)
	}
	if a := p.Status().Backends[0]; a.Failures != 1 {
		t.Errorf("Status() hung backend = %+v, want 1 failure", a)
	}
}

func TestClientIPKey(t *testing.T) {
	t.Parallel()
	withEdge := func(r *http.Request, ip string) *http.Request {
		return r.WithContext(identity.WithClientIP(r.Context(), netip.MustParseAddr(ip)))
	}
	req := func(xff string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.9:1234"
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return r
	}
	tests := []struct {
		name    string
		r       *http.Request
		trusted bool
		want    string
	}{
		{"peer", req(""), false, "10.0.0.9"},
		{"untrusted peer ignores xff", req("1.2.3.4"), false, "10.0.0.9"},
		{"trusted peer uses xff", req("1.2.3.4, 10.0.0.1"), true, "1.2.3.4"},
		{"edge decision wins", withEdge(req("1.2.3.4"), "203.0.113.7"), true, "203.0.113.7"},
	}
	for _, tt := range tests {
		if got := clientIP(tt.r, tt.trusted); got != tt.want {
			t.Errorf("clientIP(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestXRealIPFollowsTheEdge: behind a trusted proxy that appends to
// X-Forwarded-For but passes other headers unchanged, a client-sent X-Real-IP
// must not reach the backend; the edge's client IP does.
func TestXRealIPFollowsTheEdge(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get("X-Real-IP") }))
	defer be.Close()
	p, err := NewPool(Options{Name: "p", Config: testUpstream(be.URL), TrustForwarded: func(*http.Request) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.1:5000"
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	r.Header.Set("X-Real-IP", "10.0.0.1")
	r = r.WithContext(identity.WithClientIP(r.Context(), netip.MustParseAddr("198.51.100.7")))
	p.Handler(RouteOptions{Route: "r"}).ServeHTTP(httptest.NewRecorder(), r)
	if v := <-got; v != "198.51.100.7" {
		t.Fatalf("backend X-Real-IP = %q, want the edge's client 198.51.100.7", v)
	}
}
