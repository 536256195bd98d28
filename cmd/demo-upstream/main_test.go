package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// serve runs one request through a fresh handler and returns the recorded answer.
func serve(t *testing.T, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	newHandler("test-1").ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give       string
		wantStatus int
		wantLen    int
	}{
		{give: "/bytes/0", wantStatus: 200, wantLen: 0},
		{give: "/bytes/1", wantStatus: 200, wantLen: 1},
		{give: "/bytes/1024", wantStatus: 200, wantLen: 1024},
		{give: "/bytes/12345", wantStatus: 200, wantLen: 12345},
		{give: "/bytes/10485760", wantStatus: 200, wantLen: 10 << 20},
		{give: "/bytes/10485761", wantStatus: 400},
		{give: "/bytes/-1", wantStatus: 400},
		{give: "/bytes/abc", wantStatus: 400},
		{give: "/bytes/", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			rec := serve(t, http.MethodGet, tt.give)
			if rec.Code != tt.wantStatus {
				t.Fatalf("GET %s: status = %d, want %d", tt.give, rec.Code, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			if got := rec.Body.Len(); got != tt.wantLen {
				t.Errorf("GET %s: body length = %d, want %d", tt.give, got, tt.wantLen)
			}
			if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(tt.wantLen); got != want {
				t.Errorf("GET %s: Content-Length = %q, want %q", tt.give, got, want)
			}
			if got, want := rec.Header().Get("Content-Type"), "application/octet-stream"; got != want {
				t.Errorf("GET %s: Content-Type = %q, want %q", tt.give, got, want)
			}
			if got, want := rec.Header().Get("X-Served-By"), "test-1"; got != want {
				t.Errorf("GET %s: X-Served-By = %q, want %q", tt.give, got, want)
			}
		})
	}
}

// discardWriter is the cheapest possible ResponseWriter, so that AllocsPerRun
// counts only the handler's own allocations.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func TestBytesDoesNotAllocate(t *testing.T) {
	h := newHandler("test-1")
	for _, target := range []string{"/bytes/1024", "/bytes/777", "/bytes/1024?max_age=3600", "/healthz"} {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		w := &discardWriter{h: make(http.Header, 4)}
		h.ServeHTTP(w, req) // fills the Content-Length cache and the header map
		if got := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, req) }); got != 0 {
			t.Errorf("ServeHTTP(GET %s) allocs = %v, want 0", target, got)
		}
	}
}

func TestBytesMaxAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give       string
		wantStatus int
		wantCC     string
	}{
		{give: "/bytes/1024", wantStatus: 200, wantCC: ""},
		{give: "/bytes/1024?other=1", wantStatus: 200, wantCC: ""},
		{give: "/bytes/1024?max_age=3600", wantStatus: 200, wantCC: "public, max-age=3600"},
		{give: "/bytes/16?x=y&max_age=0", wantStatus: 200, wantCC: "public, max-age=0"},
		{give: "/bytes/16?max_age=60&max_age=120", wantStatus: 200, wantCC: "public, max-age=60"},
		{give: "/bytes/16?max_age=31536000", wantStatus: 200, wantCC: "public, max-age=31536000"},
		{give: "/bytes/16?max_age=31536001", wantStatus: 400},
		{give: "/bytes/16?max_age=-1", wantStatus: 400},
		{give: "/bytes/16?max_age=soon", wantStatus: 400},
		{give: "/bytes/16?max_age=", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			rec := serve(t, http.MethodGet, tt.give)
			if rec.Code != tt.wantStatus {
				t.Fatalf("GET %s: status = %d, want %d", tt.give, rec.Code, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			if got := rec.Header().Get("Cache-Control"); got != tt.wantCC {
				t.Errorf("GET %s: Cache-Control = %q, want %q", tt.give, got, tt.wantCC)
			}
			if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
				t.Errorf("GET %s: Content-Length = %q, body %s bytes", tt.give, got, want)
			}
		})
	}
}

func TestMaxAgeCacheIsBounded(t *testing.T) {
	h := newHandler("test-1").(*handler)
	for s := range 2 * maxCachedLengths {
		if got, want := h.maxAges.get(s, publicMaxAge)[0], publicMaxAge(s); got != want {
			t.Fatalf("maxAges.get(%d) = %q, want %q", s, got, want)
		}
	}
	if got := len(*h.maxAges.m.Load()); got > maxCachedLengths {
		t.Errorf("cached max-ages = %d, want at most %d", got, maxCachedLengths)
	}
}

func TestContentLengthCacheIsBounded(t *testing.T) {
	h := newHandler("test-1").(*handler)
	for n := range 2 * maxCachedLengths {
		if got, want := h.contentLength(n)[0], strconv.Itoa(n); got != want {
			t.Fatalf("contentLength(%d) = %q, want %q", n, got, want)
		}
	}
	if got := len(*h.lengths.m.Load()); got > maxCachedLengths {
		t.Errorf("cached lengths = %d, want at most %d", got, maxCachedLengths)
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	rec := serve(t, http.MethodGet, "/healthz")
	if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		t.Errorf("GET /healthz = %d %q, want 200 %q", rec.Code, rec.Body.String(), "ok")
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give       string
		wantStatus int
		wantBody   string
	}{
		{give: "/status/200", wantStatus: 200, wantBody: "200 OK\n"},
		{give: "/status/204", wantStatus: 204, wantBody: ""},
		{give: "/status/304", wantStatus: 304, wantBody: ""},
		{give: "/status/418", wantStatus: 418, wantBody: "418 I'm a teapot\n"},
		{give: "/status/503", wantStatus: 503, wantBody: "503 Service Unavailable\n"},
		{give: "/status/599", wantStatus: 599, wantBody: "599 \n"},
		{give: "/status/199", wantStatus: 400},
		{give: "/status/600", wantStatus: 400},
		{give: "/status/abc", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			rec := serve(t, http.MethodGet, tt.give)
			if rec.Code != tt.wantStatus {
				t.Fatalf("GET %s: status = %d, want %d", tt.give, rec.Code, tt.wantStatus)
			}
			if tt.wantStatus != 400 && rec.Body.String() != tt.wantBody {
				t.Errorf("GET %s: body = %q, want %q", tt.give, rec.Body.String(), tt.wantBody)
			}
		})
	}
}

func TestParseDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give    string
		want    time.Duration
		wantErr bool
	}{
		{give: "2s", want: 2 * time.Second},
		{give: "150ms", want: 150 * time.Millisecond},
		{give: "2", want: 2 * time.Second},
		{give: "0.5", want: 500 * time.Millisecond},
		{give: "0", want: 0},
		{give: "5m", want: 5 * time.Minute},
		{give: "5m1s", wantErr: true},
		{give: "-1s", wantErr: true},
		{give: "soon", wantErr: true},
		{give: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			got, err := parseDelay(tt.give)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseDelay(%q) = %v, %v, want %v, error %v", tt.give, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		rec := serve(t, http.MethodGet, "/delay/2s")
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("GET /delay/2s took %v, want 2s", got)
		}
		if rec.Code != http.StatusOK || rec.Body.String() != "waited 2s\n" {
			t.Errorf("GET /delay/2s = %d %q, want 200 %q", rec.Code, rec.Body.String(), "waited 2s\n")
		}
	})
}

func TestDelayStopsWhenClientLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/delay/1m", nil)
		done := make(chan struct{})
		go func() {
			newHandler("test-1").ServeHTTP(rec, req)
			close(done)
		}()
		time.Sleep(time.Second) // fake time: the handler is parked in its wait
		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("GET /delay/1m still running after the client left")
		}
		if rec.Body.Len() != 0 {
			t.Errorf("GET /delay/1m after cancel wrote %q, want nothing", rec.Body.String())
		}
	})
}

func TestDelayBadDuration(t *testing.T) {
	t.Parallel()
	if rec := serve(t, http.MethodGet, "/delay/forever"); rec.Code != http.StatusBadRequest {
		t.Errorf("GET /delay/forever: status = %d, want 400", rec.Code)
	}
}

// flushRecorder records the body as it stood at each Flush, to check that SSE
// events go out one by one.
type flushRecorder struct {
	*httptest.ResponseRecorder
	flushes []string
	at      []time.Duration
	start   time.Time
}

func (f *flushRecorder) Flush() {
	f.ResponseRecorder.Flush()
	f.flushes = append(f.flushes, f.Body.String())
	f.at = append(f.at, time.Since(f.start))
}

func TestSSE(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder(), start: time.Now()}
		newHandler("test-1").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/sse?n=3&interval=250ms", nil))

		if got, want := rec.Header().Get("Content-Type"), "text/event-stream"; got != want {
			t.Errorf("GET /sse: Content-Type = %q, want %q", got, want)
		}
		// One flush for the headers, then one per event.
		if got, want := len(rec.flushes), 4; got != want {
			t.Fatalf("GET /sse?n=3: flushes = %d, want %d", got, want)
		}
		for i := 1; i <= 3; i++ {
			events := strings.Count(rec.flushes[i], "\n\n")
			if events != i {
				t.Errorf("GET /sse?n=3: events flushed by flush %d = %d, want %d", i, events, i)
			}
			if want := time.Duration(i-1) * 250 * time.Millisecond; rec.at[i] != want {
				t.Errorf("GET /sse?n=3: event %d sent at %v, want %v", i, rec.at[i], want)
			}
		}
		want := "id: 1\ndata: {\"service\":\"test-1\",\"seq\":1,\"of\":3}\n\n"
		if !strings.HasPrefix(rec.Body.String(), want) {
			t.Errorf("GET /sse?n=3: body starts %q, want %q", rec.Body.String(), want)
		}
	})
}

func TestSSEOverHTTP(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newHandler("test-1"))
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL + "/sse?n=5&interval=1ms")
	if err != nil {
		t.Fatalf("GET /sse: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /sse: status = %d, want 200", resp.StatusCode)
	}
	var ids []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			ids = append(ids, id)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read /sse: %v", err)
	}
	if got, want := strings.Join(ids, ","), "1,2,3,4,5"; got != want {
		t.Errorf("GET /sse?n=5: event ids = %s, want %s", got, want)
	}
}

func TestSSEBadParams(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"/sse?n=-1", "/sse?n=x", "/sse?n=10001", "/sse?interval=soon", "/sse?interval=2m"} {
		if rec := serve(t, http.MethodGet, target); rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s: status = %d, want 400", target, rec.Code)
		}
	}
}

func TestEcho(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodPost, "http://api.example.com/some/path?a=1&a=2&b=x", strings.NewReader("body"))
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.RemoteAddr = "198.51.100.7:4321"
	rec := httptest.NewRecorder()
	newHandler("echo-1").ServeHTTP(rec, req)

	if rec.Code != http.StatusOK {
		t.Fatalf("POST /some/path: status = %d, want 200", rec.Code)
	}
	if got, want := rec.Header().Get("Content-Type"), "application/json"; got != want {
		t.Errorf("POST /some/path: Content-Type = %q, want %q", got, want)
	}
	var got echo
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode echo %q: %v", rec.Body.String(), err)
	}
	checks := []struct{ field, got, want string }{
		{"service", got.Service, "echo-1"},
		{"method", got.Method, "POST"},
		{"path", got.Path, "/some/path"},
		{"host", got.Host, "api.example.com"},
		{"remote_addr", got.RemoteAddr, "198.51.100.7:4321"},
		{"query a", strings.Join(got.Query["a"], ","), "1,2"},
		{"query b", got.Query.Get("b"), "x"},
		{"header X-Forwarded-For", got.Headers.Get("X-Forwarded-For"), "192.0.2.1"},
		{"header X-Multi", strings.Join(got.Headers.Values("X-Multi"), ","), "one,two"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("echo %s = %q, want %q", c.field, c.got, c.want)
		}
	}
}

func TestEchoIsTheFallback(t *testing.T) {
	t.Parallel()
	// Paths that only look like other endpoints are echoed, not rejected.
	for _, target := range []string{"/", "/bytes", "/bytes/1/2", "/healthz/x", "/status/200/x", "/ssex"} {
		rec := serve(t, http.MethodGet, target)
		var e echo
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Path != target {
			t.Errorf("GET %s = %d %q, want a JSON echo of the path", target, rec.Code, rec.Body.String())
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, discardLogger(), "127.0.0.1:0", "test-1")
	}()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run() after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run() did not return within 10s of cancel")
	}
}

func TestRunBadAddress(t *testing.T) {
	t.Parallel()
	if err := run(t.Context(), discardLogger(), "127.0.0.1:notaport", "test-1"); err == nil {
		t.Error("run(listen 127.0.0.1:notaport) = nil, want an error")
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// BenchmarkBytes measures the handler's own cost for the benchmark backend's
// request, without the network.
func BenchmarkBytes(b *testing.B) {
	h := newHandler("bench")
	req := httptest.NewRequest(http.MethodGet, "/bytes/1024", nil)
	w := &discardWriter{h: make(http.Header, 4)}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
