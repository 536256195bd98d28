package compress

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// benchWriter is a ResponseWriter whose header map is reused, so a benchmark
// measures the middleware, not the recorder.
type benchWriter struct {
	h http.Header
	n int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }
func (w *benchWriter) WriteHeader(int)             {}

// benchHandler answers body as JSON with a declared length, assigning
// shared header values so that the handler itself allocates nothing.
func benchHandler(ct string, body []byte) http.Handler {
	ctv, clv := []string{ct}, []string{strconv.Itoa(len(body))}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"], h["Content-Length"] = ctv, clv
		_, _ = w.Write(body)
	})
}

// BenchmarkWrap is one response through the middleware: ns/op is the CPU
// time of encoding (or of passing through), allocs/op what it costs the
// garbage collector. "ratio" is encoded size over body size.
func BenchmarkWrap(b *testing.B) {
	c := mustNew(b, Options{})
	cases := []struct {
		name string
		ae   string
		ct   string
		size int
	}{
		{"pass-through/no-accept-encoding/16KiB", "", "application/json", 16 << 10},
		{"pass-through/image/16KiB", "gzip, deflate, br, zstd", "image/png", 16 << 10},
		{"pass-through/small/512B", "gzip, deflate, br, zstd", "application/json", 512},
		{"zstd/1KiB", "zstd", "application/json", 1 << 10},
		{"zstd/16KiB", "zstd", "application/json", 16 << 10},
		{"gzip/1KiB", "gzip", "application/json", 1 << 10},
		{"gzip/16KiB", "gzip", "application/json", 16 << 10},
		{"br/1KiB", "br", "application/json", 1 << 10},
		{"br/16KiB", "br", "application/json", 16 << 10},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			body := testJSON(bc.size)[:bc.size]
			h := c.Wrap(benchHandler(bc.ct, body))
			r := httptest.NewRequest(http.MethodGet, "/api", nil)
			if bc.ae != "" {
				r.Header.Set("Accept-Encoding", bc.ae)
			}
			w := &benchWriter{h: make(http.Header, 8)}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.n = 0
				h.ServeHTTP(w, r)
			}
			b.ReportMetric(float64(w.n)/float64(len(body)), "ratio")
		})
	}
}

// BenchmarkLevels compares levels on one 16 KiB JSON body, for choosing
// the defaults: ns/op against "ratio" (encoded size over body size).
func BenchmarkLevels(b *testing.B) {
	body := testJSON(16 << 10)
	cases := []struct {
		coding string
		levels []int
		opts   func(level int) Options
	}{
		{Gzip, []int{1, 3, 5, 6, 9}, func(l int) Options { return Options{GzipLevel: l} }},
		{Brotli, []int{1, 2, 4, 6}, func(l int) Options { return Options{BrotliLevel: l} }},
		{Zstd, []int{1, 3, 6}, func(l int) Options { return Options{ZstdLevel: l} }},
	}
	for _, bc := range cases {
		for _, level := range bc.levels {
			b.Run(bc.coding+"-"+strconv.Itoa(level), func(b *testing.B) {
				c := mustNew(b, bc.opts(level))
				var out []byte
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if out, err = c.AppendEncoded(out[:0], body, bc.coding); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(out))/float64(len(body)), "ratio")
			})
		}
	}
}

func BenchmarkNegotiate(b *testing.B) {
	c := mustNew(b, Options{})
	for _, ae := range []string{"gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8, *;q=0.1"} {
		b.Run(ae, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.Negotiate(ae)
			}
		})
	}
}

// TestAllocs holds the benchmarks' allocation counts: nothing for a
// response passed through, little for an encoded one.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	c := mustNew(t, Options{})
	body := testJSON(16 << 10)
	tests := []struct {
		name string
		ae   string
		ct   string
		max  float64
	}{
		{"no Accept-Encoding", "", "application/json", 0},
		{"image", "gzip", "image/png", 0},
		{"zstd", "zstd", "application/json", 1},
		{"gzip", "gzip", "application/json", 1},
		{"br", "br", "application/json", 1},
	}
	for _, tt := range tests {
		h := c.Wrap(benchHandler(tt.ct, body))
		r := httptest.NewRequest(http.MethodGet, "/api", nil)
		if tt.ae != "" {
			r.Header.Set("Accept-Encoding", tt.ae)
		}
		w := &benchWriter{h: make(http.Header, 8)}
		h.ServeHTTP(w, r) // warm the pools
		got := testing.AllocsPerRun(50, func() {
			clear(w.h)
			h.ServeHTTP(w, r)
		})
		if got > tt.max {
			t.Errorf("%s: %v allocations per response, want at most %v", tt.name, got, tt.max)
		}
	}
}
