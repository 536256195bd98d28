package gateway

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the gateway and not a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkGatewayProxy measures one proxied request through the whole
// in-process handler path: request id, path cleaning, routing, route handler,
// balancer and reverse proxy to a real loopback backend answering 1 KiB.
func BenchmarkGatewayProxy(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	}))
	defer backend.Close()

	g := New(Options{})
	defer g.Close()
	if err := g.Apply(load(b, quiet+fmt.Sprintf(`
routes:
  - name: other
    match: { prefix: /other }
    backends: [ { url: "http://127.0.0.1:1" } ]
  - name: bench
    match: { prefix: /api }
    strip_prefix: true
    backends: [ { url: %q } ]
`, backend.URL))); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/api/items/1", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := req.Clone(req.Context())
		w := &discardWriter{h: make(http.Header)}
		g.ServeHTTP(w, r)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkGatewayNotFound measures the gateway's own path with no upstream
// I/O: request id, cleaning, routing miss and the JSON 404.
func BenchmarkGatewayNotFound(b *testing.B) {
	g := New(Options{})
	defer g.Close()
	if err := g.Apply(load(b, quiet+`
routes:
  - name: a
    match: { prefix: /api }
    backends: [ { url: "http://127.0.0.1:1" } ]
`)); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/missing/path", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := req.Clone(req.Context())
		w := &discardWriter{h: make(http.Header)}
		g.ServeHTTP(w, r)
	}
}
