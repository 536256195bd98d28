package upstream

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func BenchmarkPoolPick(b *testing.B) {
	for _, algorithm := range []string{AlgorithmRoundRobin, AlgorithmWeighted, AlgorithmLeastConn, AlgorithmIPHash} {
		b.Run(algorithm, func(b *testing.B) {
			p := weightedPool(b, algorithm, 1, 2, 3, 4, 5, 6, 7, 8)
			f := filter{hash: hashString("203.0.113.7")}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					g := f
					if bk, _ := p.next(&g); bk == nil {
						b.Fatal("no backend")
					}
				}
			})
		})
	}
}

func BenchmarkProxy(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	be := newBackend(b, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, payload)
	})
	cfg := testUpstream(be.URL)
	cfg.LoadBalancing = AlgorithmLeastConn
	p := newTestPool(b, cfg)
	h := p.Handler(RouteOptions{Route: "bench", Timeout: 0})
	b.Run("serial", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, "/bench", nil)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 || w.Body.Len() != 1024 {
				b.Fatalf("ServeHTTP() = %d, %d bytes", w.Code, w.Body.Len())
			}
		}
	})
	b.Run("timeout", func(b *testing.B) {
		h := p.Handler(RouteOptions{Route: "bench", Timeout: 10_000_000_000})
		req := httptest.NewRequest(http.MethodGet, "/bench", nil)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("ServeHTTP() = %d", w.Code)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := httptest.NewRequest(http.MethodGet, "/bench", nil)
			for pb.Next() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Errorf("ServeHTTP() = %d", w.Code)
					return
				}
			}
		})
	})
}
