package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/altair-gateway/altair/internal/config"
)

// benchWriter is a ResponseWriter whose header map is reused, so a benchmark
// measures the middleware, not the recorder.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(int)             {}

func BenchmarkSecurityHeadersApply(b *testing.B) {
	s := NewSecurityHeaders(defaultSecurity)
	h := make(http.Header, 16)
	b.ReportAllocs()
	for b.Loop() {
		clear(h)
		s.Apply(h)
	}
}

func BenchmarkCORSActual(b *testing.B) {
	cases := []struct {
		name   string
		origin string
	}{
		{"exact", "https://app.example.com"},
		{"wildcard", "https://a.b.example.org"},
		{"disallowed", "https://evil.test"},
		{"no origin", ""},
	}
	c := mustCORS(b, corsWith(func(c *config.CORS) {
		c.AllowedOrigins = []string{"https://app.example.com", "https://*.example.org"}
		c.AllowCredentials = true
	}))
	h := c.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/api", nil)
			if bc.origin != "" {
				r.Header.Set("Origin", bc.origin)
			}
			w := &benchWriter{h: make(http.Header, 16)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}
