package edge

import (
	"math/rand/v2"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

// nopWriter is a ResponseWriter that keeps nothing, so benchmarks count only
// the guard's own allocations.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

func randPrefixes(rng *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		a := netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		out[i] = netip.PrefixFrom(a, 16+rng.IntN(17)).Masked().String()
	}
	return out
}

// BenchmarkGuard: the edge checks per request. allow: an allow-listed
// client; normal: the full path (deny list miss, DDoS count, in-flight caps),
// over 1024 client IPs.
func BenchmarkGuard(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	lists := NewLists()
	if err := lists.SetConfig([]string{"192.0.2.0/24"}, randPrefixes(rng, 1000)); err != nil {
		b.Fatal(err)
	}
	blocker := NewBlocker(nil)
	blocker.SetConfig(config.DDoS{Threshold: 1 << 30, BlockDuration: time.Minute})
	rv, err := NewResolver([]string{"10.0.0.0/8"})
	if err != nil {
		b.Fatal(err)
	}
	g := NewGuard(GuardOptions{Resolver: rv, Lists: lists, Blocker: blocker,
		Limits: config.ConnectionLimits{MaxInFlight: 1 << 20, MaxInFlightPerIP: 1 << 20}})
	h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := &nopWriter{h: http.Header{}}

	b.Run("allow", func(b *testing.B) {
		r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		r.RemoteAddr = "192.0.2.7:4242"
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
	b.Run("normal", func(b *testing.B) {
		reqs := make([]*http.Request, 1024)
		for i := range reqs {
			reqs[i], _ = http.NewRequest(http.MethodGet, "http://x/", nil)
			reqs[i].RemoteAddr = netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}).String() + ":4242"
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			h.ServeHTTP(w, reqs[i&1023])
			i++
		}
	})
	b.Run("normal-trusted-proxy", func(b *testing.B) {
		r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		r.RemoteAddr = "10.0.0.1:4242"
		r.Header.Set("X-Forwarded-For", "198.51.100.7, 10.1.1.1")
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
	b.Run("normal-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
			r.RemoteAddr = "100.65.1.1:4242"
			w := &nopWriter{h: http.Header{}}
			for pb.Next() {
				h.ServeHTTP(w, r)
			}
		})
	})
}

func BenchmarkBlockerHit(b *testing.B) {
	blocker := NewBlocker(nil)
	blocker.SetConfig(config.DDoS{Threshold: 1 << 30, BlockDuration: time.Minute})
	ip := netip.MustParseAddr("198.51.100.7")
	b.ReportAllocs()
	for b.Loop() {
		blocker.Hit(ip)
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	b.Run("1key", func(b *testing.B) {
		l := NewLocalLimiter(nil)
		b.ReportAllocs()
		for b.Loop() {
			l.Allow("ip|198.51.100.7", 1e9, 1000)
		}
	})
	b.Run("1Mkeys", func(b *testing.B) {
		l := NewLocalLimiter(nil)
		keys := make([]string, 1<<20)
		for i := range keys {
			keys[i] = "ip|" + strconv.Itoa(i)
			l.Allow(keys[i], 1e9, 1000)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(keys[i&(1<<20-1)], 1e9, 1000)
			i += 7919 // stride: defeat the cache a little
		}
	})
	b.Run("1key-parallel", func(b *testing.B) {
		l := NewLocalLimiter(nil)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow("ip|198.51.100.7", 1e9, 1000)
			}
		})
	})
}

func BenchmarkListsContains(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(2, 2))
			l := NewLists()
			if err := l.SetConfig(nil, randPrefixes(rng, n)); err != nil {
				b.Fatal(err)
			}
			ips := make([]netip.Addr, 1024)
			for i := range ips {
				ips[i] = netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Denied(ips[i&1023])
				i++
			}
		})
	}
}

// heapBytes returns the live heap after a full collection.
func heapBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// limiterMemory inserts n distinct client keys (like "ip|10.1.2.3") and
// returns the heap bytes per key held, then the bytes per key still held
// after the buckets refilled and the limiter swept.
func limiterMemory(n int) (perKey, afterSweep float64, l *LocalLimiter) {
	clk := newFakeClock()
	l = NewLocalLimiter(clk.Now)
	var buf []byte
	before := heapBytes()
	for i := range n {
		buf = append(buf[:0], "ip|10."...)
		buf = strconv.AppendInt(buf, int64(i>>16&255), 10)
		buf = append(buf, '.')
		buf = strconv.AppendInt(buf, int64(i>>8&255), 10)
		buf = append(buf, '.')
		buf = strconv.AppendInt(buf, int64(i&255), 10)
		l.Allow(string(buf), 100, 200)
	}
	held := heapBytes()
	clk.Advance(3 * time.Second) // 200/100 rps = 2s to refill
	l.sweep()
	after := heapBytes()
	return float64(held-before) / float64(n), (float64(after) - float64(before)) / float64(n), l
}

// BenchmarkLimiterMemory reports the heap cost of a million distinct limiter
// keys, and what is left once they idled out and were evicted.
func BenchmarkLimiterMemory(b *testing.B) {
	for b.Loop() {
		perKey, after, l := limiterMemory(1_000_000)
		if l.Len() != 0 {
			b.Fatalf("Len() after eviction = %d, want 0", l.Len())
		}
		b.ReportMetric(perKey, "B/key")
		b.ReportMetric(after, "B/key-after-evict")
	}
}

func TestLimiterMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 100 MB")
	}
	n := 1_000_000
	if raceEnabled {
		n = 200_000
	}
	perKey, after, l := limiterMemory(n)
	t.Logf("%d keys: %.1f B/key held, %.1f B/key after eviction", n, perKey, after)
	if got := l.Len(); got != 0 {
		t.Errorf("Len() after eviction = %d, want 0", got)
	}
	if perKey > 200 && !raceEnabled {
		t.Errorf("%.1f B/key, want at most 200", perKey)
	}
	if after > perKey/10 {
		t.Errorf("%.1f B/key still held after eviction, want < %.1f", after, perKey/10)
	}
	runtime.KeepAlive(l)
}

// TestHotPathAllocations pins the allocation budget: the Guard's normal path
// allocates only the identity context and the request copy that carries it;
// Blocker.Hit and LocalLimiter.Allow allocate nothing for a known client.
func TestHotPathAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	blocker := NewBlocker(nil)
	blocker.SetConfig(config.DDoS{Threshold: 1 << 30, BlockDuration: time.Minute})
	rv, err := NewResolver([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(GuardOptions{Resolver: rv, Lists: NewLists(), Blocker: blocker,
		Limits: config.ConnectionLimits{MaxInFlight: 100, MaxInFlightPerIP: 10}})
	h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := &nopWriter{h: http.Header{}}
	l := NewLocalLimiter(nil)
	ip := netip.MustParseAddr("198.51.100.7")
	tests := []struct {
		name string
		fn   func()
	}{
		{"Guard, peer", func() {
			r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
			r.RemoteAddr = "198.51.100.7:1"
			allocs := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) })
			if allocs != 3 {
				t.Errorf("Guard: %v allocs per request, want 3 (identity context, boxed Addr, request copy)", allocs)
			}
		}},
		{"Guard, trusted proxy", func() {
			r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
			r.RemoteAddr = "10.0.0.1:1"
			r.Header.Set("X-Forwarded-For", "198.51.100.7, 10.1.1.1")
			allocs := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) })
			if allocs != 3 {
				t.Errorf("Guard via a trusted proxy: %v allocs per request, want 3", allocs)
			}
		}},
		{"Blocker.Hit", func() {
			if a := testing.AllocsPerRun(100, func() { blocker.Hit(ip) }); a != 0 {
				t.Errorf("Blocker.Hit: %v allocs, want 0", a)
			}
		}},
		{"LocalLimiter.Allow", func() {
			l.Allow("ip|198.51.100.7", 1e6, 1000)
			if a := testing.AllocsPerRun(100, func() { l.Allow("ip|198.51.100.7", 1e6, 1000) }); a != 0 {
				t.Errorf("LocalLimiter.Allow: %v allocs, want 0", a)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn() })
	}
}
