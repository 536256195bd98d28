package gateway

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/cluster"
	"github.com/altair-gateway/altair/internal/cluster/redistest"
)

// TestGatewayCacheSharedThroughRedis: two gateways on one Redis share the
// response cache by default: a fill through one is a hit through the
// other, an unsafe request through one invalidates the other's memory copy,
// and cache.store: memory makes each gateway's cache its own again.
func TestGatewayCacheSharedThroughRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b, n := countingBackend(t, "public, max-age=60")
	yaml := quiet + fmt.Sprintf(`
routes:
  - name: c
    cache: { enabled: true }
    backends: [ { url: %q } ]
`, b.URL)
	g1, cl1 := cacheGateway(t, srv.Addr, yaml)
	g2, cl2 := cacheGateway(t, srv.Addr, yaml)
	waitUntil(t, "both gateways up on Redis", func() bool { return cl1.Up() && cl2.Up() })
	var resyncs atomic.Int32
	cl1.OnResync(func(context.Context) { resyncs.Add(1) })
	defer func() {
		if t.Failed() {
			t.Logf("g1 Redis: %+v\ng2 Redis: %+v", cl1.Stats(), cl2.Stats())
		}
	}()
	xcache := func(g *Gateway, method, path string) string {
		t.Helper()
		w := do(g, method, path, "Host", "api.test")
		if w.Code != 200 {
			t.Fatalf("%s %s = %d", method, path, w.Code)
		}
		return w.Header().Get("X-Cache")
	}

	if a, b := xcache(g1, "GET", "/x"), xcache(g2, "GET", "/x"); a != "MISS" || b != "HIT" || n.Load() != 1 {
		t.Fatalf("GET through g1 then g2: X-Cache %s, %s, origin requests %d; want MISS, HIT, 1", a, b, n.Load())
	}
	if st, ok := g1.cache.MemoryStats(); !ok || st.Entries != 1 {
		// A Redis outage and return (a ping slower than the timeout, on a
		// loaded machine) empties the memory tiers by design; the next
		// read through g1 fills its memory from Redis again.
		if resyncs.Load() == 0 {
			t.Fatalf("g1 memory tier: %+v, %v; want its copy", st, ok)
		}
		if x := xcache(g1, "GET", "/x"); x != "HIT" || n.Load() != 1 {
			t.Fatalf("after a resync, GET through g1: X-Cache %s, origin requests %d; want HIT from Redis, 1", x, n.Load())
		}
		if st, ok := g1.cache.MemoryStats(); !ok || st.Entries != 1 {
			t.Fatalf("g1 memory tier after a refill: %+v, %v; want its copy", st, ok)
		}
	}
	xcache(g2, "POST", "/x")
	start := time.Now()
	waitUntil(t, "g1's memory copy to go", func() bool {
		st, _ := g1.cache.MemoryStats()
		return st.Entries == 0
	})
	t.Logf("g1 dropped its copy %v after g2's POST returned", time.Since(start))
	if a := xcache(g1, "GET", "/x"); a != "MISS" || n.Load() != 3 {
		t.Fatalf("GET through g1 after the POST through g2: X-Cache %s, origin requests %d; want MISS, 3", a, n.Load())
	}

	// cache.store: memory: each gateway's own (a new, empty cache).
	old := g1.cache
	mem := load(t, yaml+"cache: { store: memory }\n")
	if err := g1.Apply(mem); err != nil {
		t.Fatal(err)
	}
	if err := g2.Apply(load(t, yaml+"cache: { store: memory }\n")); err != nil {
		t.Fatal(err)
	}
	if g1.cache == old {
		t.Fatal("a change of cache.store kept the Cache")
	}
	if a, b := xcache(g1, "GET", "/y"), xcache(g2, "GET", "/y"); a != "MISS" || b != "MISS" {
		t.Fatalf("per-replica caches: X-Cache %s, %s; want MISS, MISS", a, b)
	}
	// A reload that changes nothing of the store keeps the Cache.
	kept := g1.cache
	if err := g1.Apply(load(t, yaml+"cache: { store: memory, ttl: 1m }\n")); err != nil {
		t.Fatal(err)
	}
	if g1.cache != kept || xcache(g1, "GET", "/y") != "HIT" {
		t.Fatal("a reload that left the store alone replaced the Cache")
	}
}

// cacheGateway is a gateway on yaml whose cache shares through the Redis at
// addr (sharedGateway, with its load-tolerant Redis timeout).
func cacheGateway(t *testing.T, addr, yaml string) (*Gateway, *cluster.Client) {
	t.Helper()
	return sharedGateway(t, addr, yaml)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
