package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer is an httptest server that counts the connections it accepts.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &conns
}

func newTransport() *Transport {
	d := &net.Dialer{Timeout: time.Second}
	fb := &http.Transport{DialContext: d.DialContext}
	return &Transport{Dial: d.DialContext, Fallback: fb, MaxIdlePerHost: 4, IdleTimeout: time.Minute}
}

func roundTrip(t *testing.T, tr http.RoundTripper, method, url string, body io.Reader) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestFraming(t *testing.T) {
	t.Parallel()
	s, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunked":
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/notmodified":
			w.WriteHeader(http.StatusNotModified)
		default:
			io.WriteString(w, r.Method+" "+r.URL.RequestURI())
		}
	})
	tr := newTransport()
	defer tr.CloseIdleConnections()
	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string
	}{
		{"GET", "/length", 200, "hello"},
		{"GET", "/chunked", 200, "part0;part1;part2;"},
		{"GET", "/nocontent", 204, ""},
		{"GET", "/notmodified", 304, ""},
		{"HEAD", "/length", 200, ""},
		{"OPTIONS", "/x?q=1", 200, "OPTIONS /x?q=1"},
		{"GET", "/length", 200, "hello"},
	}
	for _, tt := range tests {
		code, body, _ := roundTrip(t, tr, tt.method, s.URL+tt.path, nil)
		if code != tt.wantStatus || body != tt.wantBody {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, code, body, tt.wantStatus, tt.wantBody)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("connections opened for %d sequential requests = %d, want 1 (keep-alive)", len(tests), n)
	}
}

func TestConnectionCloseIsNotReused(t *testing.T) {
	t.Parallel()
	s, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	tr := newTransport()
	defer tr.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		if code, body, _ := roundTrip(t, tr, "GET", s.URL, nil); code != 200 || body != "bye" {
			t.Fatalf("GET = %d %q", code, body)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("connections = %d, want 3 (server asked to close each)", n)
	}
}

func TestStaleIdleConnectionIsRetried(t *testing.T) {
	t.Parallel()
	s, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := newTransport()
	defer tr.CloseIdleConnections()
	roundTrip(t, tr, "GET", s.URL, nil)
	// The server drops its idle keep-alive connections, as a backend restart
	// or its idle timeout would.
	s.CloseClientConnections()
	if code, body, _ := roundTrip(t, tr, "GET", s.URL, nil); code != 200 || body != "ok" {
		t.Fatalf("GET on a stale pooled connection = %d %q, want a transparent retry", code, body)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections = %d, want 2", n)
	}
}

func TestPartialReadClosesConnection(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 64<<10)
	s, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	tr := newTransport()
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, body, _ := roundTrip(t, tr, "GET", s.URL, nil); code != 200 || len(body) != len(big) {
		t.Fatalf("GET after an abandoned body = %d, %d bytes", code, len(body))
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections = %d, want 2 (an unread body must not be reused)", n)
	}
}

func TestCancelUnblocksWaitForHeaders(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	tr := newTransport()
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL, nil)
	done := make(chan error, 1)
	go func() {
		_, err := tr.RoundTrip(req)
		done <- err
	}()
	select {
	case err := <-done:
		if err != context.DeadlineExceeded {
			t.Fatalf("RoundTrip after deadline = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RoundTrip did not return after its context expired")
	}
}

func TestFallbackTakesWhatItCannot(t *testing.T) {
	t.Parallel()
	s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	})
	tr := newTransport()
	defer tr.CloseIdleConnections()
	if code, body, _ := roundTrip(t, tr, "POST", s.URL, strings.NewReader("payload")); code != 200 || body != "POST payload" {
		t.Fatalf("POST through fallback = %d %q", code, body)
	}
	tests := []struct {
		name string
		req  *http.Request
		want bool
	}{
		{"get", mustReq("GET", "http://h/", nil), true},
		{"head", mustReq("HEAD", "http://h/", nil), true},
		{"post", mustReq("POST", "http://h/", strings.NewReader("x")), false},
		{"delete", mustReq("DELETE", "http://h/", nil), false},
		{"https", mustReq("GET", "https://h/", nil), false},
		{"upgrade", withHeader(mustReq("GET", "http://h/", nil), "Upgrade", "websocket"), false},
		{"expect", withHeader(mustReq("GET", "http://h/", nil), "Expect", "100-continue"), false},
	}
	for _, tt := range tests {
		if got := Handles(tt.req); got != tt.want {
			t.Errorf("Handles(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestInformationalResponsesReachTrace(t *testing.T) {
	t.Parallel()
	s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	})
	tr := newTransport()
	defer tr.CloseIdleConnections()
	var got []int
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, code)
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "final" || len(got) != 1 || got[0] != 103 {
		t.Fatalf("response %d %q with 1xx %v, want 200 final after [103]", resp.StatusCode, b, got)
	}
}

func TestIdleTimeoutDiscardsOldConnections(t *testing.T) {
	t.Parallel()
	s, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := newTransport()
	tr.IdleTimeout = time.Nanosecond
	defer tr.CloseIdleConnections()
	roundTrip(t, tr, "GET", s.URL, nil)
	roundTrip(t, tr, "GET", s.URL, nil)
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections = %d, want 2 (the idle one expired)", n)
	}
}

func mustReq(method, url string, body io.Reader) *http.Request {
	r, err := http.NewRequest(method, url, body)
	if err != nil {
		panic(err)
	}
	return r
}

func withHeader(r *http.Request, k, v string) *http.Request {
	r.Header.Set(k, v)
	return r
}

func BenchmarkRoundTrip(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, payload) }))
	defer s.Close()
	d := &net.Dialer{}
	std := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}
	for _, bc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"h1", &Transport{Dial: d.DialContext, Fallback: std, MaxIdlePerHost: 64}},
		{"stdlib", std},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", s.URL, nil)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				resp, err := bc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// rawBackend accepts connections and runs serve on each.
func rawBackend(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return "http://" + ln.Addr().String()
}

// readHead reads one request head from a raw connection.
func readHead(br *bufio.Reader) error {
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	return req.Body.Close()
}

// TestUnsolicitedBytesOnIdleConnection: bytes a backend sends on a connection
// while it sits idle in the pool must never become the next request's
// response (response-queue poisoning).
func TestUnsolicitedBytesOnIdleConnection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		first  string // the answer to the first request
		stray  string // sent afterwards, unasked
		method string
	}{
		{"bytes past content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON", "GET"},
		{"body after 204", "HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON", "GET"},
		{"body on HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n", "POISON", "HEAD"},
		{"408 before idle close", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n", "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sent := make(chan struct{}, 4)
			var conns atomic.Int64
			url := rawBackend(t, func(c net.Conn) {
				n := conns.Add(1)
				br := bufio.NewReader(c)
				if readHead(br) != nil {
					return
				}
				if n > 1 {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nclean")
					return
				}
				io.WriteString(c, tt.first)
				time.Sleep(20 * time.Millisecond) // after the client has read its answer
				io.WriteString(c, tt.stray)
				sent <- struct{}{}
				_ = readHead(br)
				// A poisoned client would take the stray bytes as its answer
				// and never get here; keep the connection open to see that.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
				time.Sleep(time.Second)
			})
			tr := newTransport()
			defer tr.CloseIdleConnections()
			roundTrip(t, tr, tt.method, url, nil)
			// On loopback the stray bytes are in the idle connection's receive
			// buffer once the backend's write returns.
			<-sent
			code, body, _ := roundTrip(t, tr, "GET", url, nil)
			if body != "clean" || code != 200 {
				t.Fatalf("GET after stray bytes on the idle connection = %d %q, want 200 \"clean\" from a fresh connection", code, body)
			}
		})
	}
}

func TestResponseHeaderLimits(t *testing.T) {
	t.Parallel()
	t.Run("huge header", func(t *testing.T) {
		t.Parallel()
		url := rawBackend(t, func(c net.Conn) {
			if readHead(bufio.NewReader(c)) != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: ")
			chunk := strings.Repeat("a", 64<<10)
			for i := 0; i < 64; i++ { // 4 MiB of header
				if _, err := io.WriteString(c, chunk); err != nil {
					return
				}
			}
			io.WriteString(c, "\r\nContent-Length: 0\r\n\r\n")
		})
		tr := newTransport()
		tr.MaxResponseHeaderBytes = 1 << 20
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", url, nil)
		if resp, err := tr.RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Fatalf("4 MiB response header with a 1 MiB limit: status %d, want an error", resp.StatusCode)
		}
	})
	t.Run("1xx flood", func(t *testing.T) {
		t.Parallel()
		url := rawBackend(t, func(c net.Conn) {
			if readHead(bufio.NewReader(c)) != nil {
				return
			}
			for i := 0; i < 100; i++ {
				if _, err := io.WriteString(c, "HTTP/1.1 103 Early Hints\r\n\r\n"); err != nil {
					return
				}
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		})
		tr := newTransport()
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", url, nil)
		if resp, err := tr.RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Fatal("100 informational responses were accepted, want an error")
		}
	})
}

func TestIPv6BackendReusesConnections(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback on this machine")
	}
	var conns atomic.Int64
	s := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "v6") }),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go s.Serve(ln)
	defer s.Close()
	tr := newTransport()
	defer tr.CloseIdleConnections()
	url := "http://" + ln.Addr().String()
	for i := 0; i < 3; i++ {
		roundTrip(t, tr, "GET", url, nil)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("connections to an IPv6 backend for 3 requests = %d, want 1", n)
	}
}

func TestClosedTransportDoesNotPool(t *testing.T) {
	t.Parallel()
	s, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := newTransport()
	req, _ := http.NewRequest("GET", s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	// The transport is retired (a reload) while the response is in flight.
	tr.CloseIdleConnections()
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	roundTrip(t, tr, "GET", s.URL, nil)
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections = %d, want 2: a retired transport must not pool", n)
	}
}

// TestHostPoolStack: the connection pooled last is taken first; a full pool
// gives up its oldest; a push drops those idle past the timeout; drain
// empties it.
func TestHostPoolStack(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	hp := &hostPool{max: 3}
	mk := func(idle time.Time) *conn { return &conn{idleFrom: idle} }
	a, b, c, d := mk(t0), mk(t0.Add(time.Second)), mk(t0.Add(2*time.Second)), mk(t0.Add(3*time.Second))
	for _, x := range []*conn{a, b, c} {
		if drop := hp.push(x, x.idleFrom, 0); len(drop) != 0 {
			t.Fatalf("push into a pool with room dropped %d", len(drop))
		}
	}
	if drop := hp.push(d, d.idleFrom, 0); len(drop) != 1 || drop[0] != a {
		t.Fatalf("push into a full pool dropped %v, want the oldest", drop)
	}
	if got := hp.take(); got != d {
		t.Fatalf("take = the %v-old one, want the last pooled", got.idleFrom.Sub(t0))
	}
	// b and c wait; at t0+10s with a 5s timeout both are stale.
	e := mk(t0.Add(10 * time.Second))
	if drop := hp.push(e, e.idleFrom, 5*time.Second); len(drop) != 2 || drop[0] != b || drop[1] != c {
		t.Fatalf("push dropped %d, want the two stale ones", len(drop))
	}
	if got := hp.take(); got != e {
		t.Fatal("take after pruning did not return the fresh one")
	}
	if hp.take() != nil {
		t.Fatal("take from an empty pool returned a connection")
	}
	hp.push(a, t0, 0)
	if all := hp.drain(); len(all) != 1 || hp.take() != nil {
		t.Fatalf("drain returned %d and left the pool non-empty", len(all))
	}
}
