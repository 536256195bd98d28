package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/cluster"
	"github.com/altair-gateway/altair/internal/cluster/redistest"
	"github.com/altair-gateway/altair/internal/config"
)

// redisTimeout is the Redis timeout in these tests: above the gateway's
// default, so that a loaded machine running the race detector does not mark
// Redis down by accident.
const redisTimeout = 250 * time.Millisecond

// safeLog is a log sink for several goroutines.
type safeLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *safeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *safeLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// replica is one gateway's Redis side: a started cluster client and the
// shared cache tier registered with it.
type replica struct {
	cl      *cluster.Client
	shared  *Shared
	logs    *safeLog
	resyncs atomic.Int32
}

// newReplica connects to the Redis at addrs (several: a Redis Cluster) and
// returns once it is subscribed to announcements.
func newReplica(t *testing.T, addrs ...string) *replica {
	t.Helper()
	r := &replica{logs: &safeLog{}}
	cl, err := cluster.New(cluster.Options{
		Config:    config.Redis{Addrs: addrs, Timeout: redisTimeout, KeyPrefix: "t:"},
		Logger:    slog.New(slog.NewTextHandler(r.logs, nil)),
		PingEvery: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	r.cl = cl
	r.shared = NewShared(cl, slog.New(slog.NewTextHandler(r.logs, nil)))
	cl.OnResync(func(context.Context) { r.resyncs.Add(1) })
	cl.Start(context.Background())
	// One resync follows the first ping, another the subscription.
	waitFor(t, "the announcement subscription", func() bool { return r.resyncs.Load() >= 2 })
	return r
}

// resynced waits until r has Redis again after an outage and has resynced
// (its memory tiers emptied) since before.
func (r *replica) resynced(t *testing.T, before int32) {
	t.Helper()
	waitFor(t, "Redis up again", r.cl.Up)
	waitFor(t, "a resync", func() bool { return r.resyncs.Load() >= before+2 })
}

// do sends a request.
func redisDo(t *testing.T, srv *redistest.Server, args ...string) string {
	t.Helper()
	out, err := srv.Do(args...)
	if err != nil {
		t.Fatalf("redis %v: %v", args, err)
	}
	return out
}

func testEntry(body, variant string, resp time.Time) *Entry {
	return &Entry{
		Status:       200,
		Header:       http.Header{"Cache-Control": {"max-age=60"}, "Content-Type": {"text/plain"}},
		Body:         []byte(body),
		RequestTime:  resp.Add(-time.Millisecond),
		ResponseTime: resp,
		Variant:      variant,
	}
}

// bodies returns the entries' bodies, sorted.
func bodies(es []*Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Body)
	}
	slices.Sort(out)
	return out
}

func TestRedisStore(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newReplica(t, srv.Addr)
	clock := newClock()
	s := NewRedis(r.cl, clock.Now)
	ctx := context.Background()
	const sub = "route\x00"

	// Round trip: every exported field comes back.
	e := testEntry("one", "Accept-Encoding:gzip\n", t0)
	if err := s.Set(ctx, "h/a", sub, e, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "h/a", sub)
	if err != nil || len(got) != 1 {
		t.Fatalf("Get(h/a) = %d entries, %v; want 1", len(got), err)
	}
	g := got[0]
	if g.Status != e.Status || string(g.Body) != "one" || g.Variant != e.Variant || !g.ResponseTime.Equal(e.ResponseTime) ||
		!g.RequestTime.Equal(e.RequestTime) || g.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("Get(h/a) = %+v, want %+v", g, e)
	}
	if es, _ := s.Get(ctx, "h/a", "other\x00"); es != nil {
		t.Fatalf("Get(h/a, another sub) = %d entries, want none", len(es))
	}
	if pttl, _ := strconv.Atoi(strings.TrimPrefix(redisDo(t, srv, "PTTL", "t:cache:h/a"), ":")); pttl <= 55000 || pttl > 60000 {
		t.Fatalf("PTTL of the key = %d ms, want the entry's minute", pttl)
	}

	// Variants: one per Variant, the same Variant replaced.
	_ = s.Set(ctx, "h/a", sub, testEntry("two", "", t0), 3*time.Minute)
	_ = s.Set(ctx, "h/a", sub, testEntry("one again", "Accept-Encoding:gzip\n", t0.Add(time.Second)), time.Minute)
	if got, _ := s.Get(ctx, "h/a", sub); !slices.Equal(bodies(got), []string{"one again", "two"}) {
		t.Fatalf("after replacing a variant, Get = %q, want [one again two]", bodies(got))
	}
	if pttl, _ := strconv.Atoi(strings.TrimPrefix(redisDo(t, srv, "PTTL", "t:cache:h/a"), ":")); pttl <= 175000 {
		t.Fatalf("PTTL of the key = %d ms, want the longest retention, 3 minutes", pttl)
	}
	// TTLs: each variant expires on its own.
	clock.Advance(2 * time.Minute)
	if got, _ := s.Get(ctx, "h/a", sub); !slices.Equal(bodies(got), []string{"two"}) {
		t.Fatalf("2 minutes later, Get = %q, want [two]", bodies(got))
	}
	clock.Advance(2 * time.Minute)
	if got, _ := s.Get(ctx, "h/a", sub); got != nil {
		t.Fatalf("4 minutes later, Get = %q, want nothing", bodies(got))
	}

	// The variant bound keeps the newest.
	for i := range maxVariants + 4 {
		_ = s.Set(ctx, "h/v", sub, testEntry(fmt.Sprintf("v%02d", i), fmt.Sprintf("X:%d\n", i), clock.Now().Add(time.Duration(i)*time.Second)), time.Hour)
	}
	got, _ = s.Get(ctx, "h/v", sub)
	if len(got) != maxVariants || bodies(got)[0] != "v04" {
		t.Fatalf("after %d variants, Get = %q, want the newest %d", maxVariants+4, bodies(got), maxVariants)
	}
	_ = s.Set(ctx, "h/v", "other\x00", testEntry("o", "", clock.Now()), time.Hour)
	if n, err := s.Delete(ctx, "h/v"); err != nil || n != maxVariants+1 {
		t.Fatalf("Delete(h/v) = %d, %v; want %d", n, err, maxVariants+1)
	}
	if out := redisDo(t, srv, "EXISTS", "t:cache:h/v"); out != ":0" {
		t.Fatalf("EXISTS after Delete = %s, want :0", out)
	}
	if n, err := s.Delete(ctx, "h/none"); err != nil || n != 0 {
		t.Fatalf("Delete(h/none) = %d, %v; want 0", n, err)
	}

	// DeletePrefix matches the prefix literally, glob characters included.
	keys := []string{"h/p", "h/p/x", "h/p?q=1", "h/pq", "h/p*", "h/p*/x", "h/[p]", "g/p/x"}
	for _, k := range keys {
		_ = s.Set(ctx, k, sub, testEntry(k, "", clock.Now()), time.Hour)
	}
	tests := []struct {
		prefix string
		n      int
		gone   []string
	}{
		{"h/p/", 1, []string{"h/p/x"}},
		{"h/p*", 2, []string{"h/p*", "h/p*/x"}},
		{"h/[", 1, []string{"h/[p]"}},
		{"h/p", 3, []string{"h/p", "h/p?q=1", "h/pq"}},
	}
	deleted := map[string]bool{}
	for _, tt := range tests {
		n, err := s.DeletePrefix(ctx, tt.prefix)
		if err != nil || n != tt.n {
			t.Fatalf("DeletePrefix(%q) = %d, %v; want %d", tt.prefix, n, err, tt.n)
		}
		for _, k := range tt.gone {
			deleted[k] = true
		}
		for _, k := range keys {
			es, _ := s.Get(ctx, k, sub)
			if (es == nil) != deleted[k] {
				t.Fatalf("after DeletePrefix(%q), %s has %d entries, want deleted %v", tt.prefix, k, len(es), deleted[k])
			}
		}
	}

	// A key with many credential partitions sheds expired ones on Set.
	for i := range 70 {
		_ = s.Set(ctx, "h/many", fmt.Sprintf("route\x00a%d", i), testEntry("x", "", clock.Now()), time.Second)
	}
	clock.Advance(2 * time.Second)
	_ = s.Set(ctx, "h/many", sub, testEntry("fresh", "", clock.Now()), time.Hour)
	fields, _ := strconv.Atoi(strings.TrimPrefix(redisDo(t, srv, "HLEN", "t:cache:h/many"), ":"))
	if fields > 66 {
		t.Fatalf("HLEN after a Set on a key of 70 expired partitions = %d, want some removed", fields)
	}
	// Its record count stayed right: one record per remaining partition.
	if n, _ := s.Delete(ctx, "h/many"); n != fields-1 {
		t.Fatalf("Delete(h/many) = %d, want %d (the partitions left)", n, fields-1)
	}
}

func TestRedisStoreUnavailable(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newReplica(t, srv.Addr)
	s := NewRedis(r.cl, nil)
	ctx := context.Background()
	srv.Kill()
	waitFor(t, "Redis marked down", func() bool { return !r.cl.Up() })
	before := r.cl.Stats().Errors[cluster.OpCache]
	start := time.Now()
	_, gerr := s.Get(ctx, "k", "s\x00")
	serr := s.Set(ctx, "k", "s\x00", testEntry("x", "", time.Now()), time.Minute)
	_, derr := s.Delete(ctx, "k")
	_, perr := s.DeletePrefix(ctx, "k")
	if d := time.Since(start); d > 10*time.Millisecond {
		t.Errorf("four operations with Redis down took %v, want no Redis call", d)
	}
	for _, err := range []error{gerr, serr, derr, perr} {
		if !errors.Is(err, ErrStoreUnavailable) {
			t.Errorf("operation with Redis down = %v, want ErrStoreUnavailable", err)
		}
	}
	if st := r.cl.Stats(); st.Errors[cluster.OpCache] != before || st.Fallbacks[cluster.OpCache] < 4 {
		t.Errorf("Stats() = %+v, want no cache errors (no call) and 4 cache fallbacks", st)
	}
	srv.Restart()
	waitFor(t, "Redis up again", r.cl.Up)
	if err := s.Set(ctx, "k", "s\x00", testEntry("x", "", time.Now()), time.Minute); err != nil {
		t.Fatalf("Set after the restart: %v", err)
	}
	if es, err := s.Get(ctx, "k", "s\x00"); err != nil || len(es) != 1 {
		t.Fatalf("Get after the restart = %d entries, %v; want 1", len(es), err)
	}
}

// tieredCache returns a Cache in front of r's shared tier, and its store.
func tieredCache(t *testing.T, r *replica, clock *fakeClock) (*Cache, *tiered) {
	t.Helper()
	c, err := New(Options{Shared: r.shared, Now: clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, c.store.(*tiered)
}

func TestTieredFillsMemoryFromRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := newReplica(t, srv.Addr), newReplica(t, srv.Addr)
	clock := newClock()
	ctx := context.Background()
	_, ta := tieredCache(t, a, clock)
	cb, tb := tieredCache(t, b, clock)
	const sub = "r\x00"

	if err := ta.Set(ctx, "h/x", sub, testEntry("x", "", clock.Now()), time.Minute); err != nil {
		t.Fatal(err)
	}
	if es, _ := tb.mem.Get(ctx, "h/x", sub); es != nil {
		t.Fatal("B's memory has the entry before B read it")
	}
	if es, _ := tb.Get(ctx, "h/x", sub); !slices.Equal(bodies(es), []string{"x"}) {
		t.Fatalf("B: Get(h/x) = %q, want [x] from Redis", bodies(es))
	}
	if es, _ := tb.mem.Get(ctx, "h/x", sub); !slices.Equal(bodies(es), []string{"x"}) {
		t.Fatalf("B's memory after the read = %q, want [x]", bodies(es))
	}
	if st, _ := cb.MemoryStats(); st.Entries != 1 {
		t.Fatalf("B's MemoryStats().Entries = %d, want 1", st.Entries)
	}
	// The copy lives as long as Redis keeps the entry, not longer.
	clock.Advance(40 * time.Second)
	_ = ta.Set(ctx, "h/y", sub, testEntry("y", "", clock.Now()), time.Minute)
	_, _ = tb.Get(ctx, "h/y", sub)
	clock.Advance(21 * time.Second)
	if es, _ := tb.mem.Get(ctx, "h/x", sub); es != nil {
		t.Fatal("B's memory copy outlived the entry's TTL in Redis")
	}
	if es, _ := tb.mem.Get(ctx, "h/y", sub); es == nil {
		t.Fatal("B's memory copy of h/y went before its TTL")
	}
	// A variant B has not seen comes from Redis though B holds another.
	_ = ta.Set(ctx, "h/y", sub, testEntry("y2", "X:2\n", clock.Now()), time.Minute)
	if es := tb.getLower(ctx, "h/y", sub); !slices.Equal(bodies(es), []string{"y", "y2"}) {
		t.Fatalf("B: getLower(h/y) = %q, want [y y2]", bodies(es))
	}
	if es, _ := tb.mem.Get(ctx, "h/y", sub); !slices.Equal(bodies(es), []string{"y", "y2"}) {
		t.Fatalf("B's memory = %q, want both variants", bodies(es))
	}
}

func TestTieredInvalidationReachesReplicas(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := newReplica(t, srv.Addr), newReplica(t, srv.Addr)
	clock := newClock()
	ctx := context.Background()
	_, ta := tieredCache(t, a, clock)
	_, tb := tieredCache(t, b, clock)
	const sub = "r\x00"
	for _, k := range []string{"h/k", "h/p/1", "h/p/2", "h/q"} {
		_ = ta.Set(ctx, k, sub, testEntry(k, "", clock.Now()), time.Hour)
		if es, _ := tb.Get(ctx, k, sub); es == nil {
			t.Fatalf("B: Get(%s) = nothing, want the entry A stored", k)
		}
	}
	inB := func(k string) bool {
		es, _ := tb.mem.Get(ctx, k, sub)
		return es != nil
	}

	start := time.Now()
	if n, err := ta.Delete(ctx, "h/k"); err != nil || n != 1 {
		t.Fatalf("A: Delete(h/k) = %d, %v; want 1", n, err)
	}
	waitFor(t, "B's memory copy of h/k to go", func() bool { return !inB("h/k") })
	t.Logf("B dropped its copy %v after A's Delete began", time.Since(start))
	if d := time.Since(start); d > time.Second {
		t.Errorf("B dropped its copy after %v, want within a second", d)
	}
	if es, _ := ta.mem.Get(ctx, "h/k", sub); es != nil {
		t.Error("A kept its own memory copy")
	}

	start = time.Now()
	if n, err := ta.DeletePrefix(ctx, "h/p/"); err != nil || n != 2 {
		t.Fatalf("A: DeletePrefix(h/p/) = %d, %v; want 2", n, err)
	}
	waitFor(t, "B's memory copies under h/p/ to go", func() bool { return !inB("h/p/1") && !inB("h/p/2") })
	if d := time.Since(start); d > time.Second {
		t.Errorf("B dropped its copies after %v, want within a second", d)
	}
	if !inB("h/q") {
		t.Error("B lost h/q, which no invalidation named")
	}
	if es, _ := tb.Get(ctx, "h/k", sub); es != nil {
		t.Error("B: Get(h/k) after the invalidation found an entry")
	}
}

// TestTieredOnRedisCluster: keys spread over every master of a three-node
// Redis Cluster; deletions by key and by prefix reach all of them and the
// other replica's memory.
func TestTieredOnRedisCluster(t *testing.T) {
	t.Parallel()
	nodes := redistest.StartCluster(t, 3)
	a := newReplica(t, nodes[0].Addr, nodes[1].Addr, nodes[2].Addr)
	b := newReplica(t, nodes[1].Addr, nodes[2].Addr)
	if a.cl.Mode() != "cluster" {
		t.Fatalf("mode %q, want cluster", a.cl.Mode())
	}
	clock := newClock()
	ctx := context.Background()
	_, ta := tieredCache(t, a, clock)
	_, tb := tieredCache(t, b, clock)
	const sub = "r\x00"
	var keys []string
	for i := range 24 {
		k := fmt.Sprintf("h/p/%d", i)
		keys = append(keys, k)
		_ = ta.Set(ctx, k, sub, testEntry(k, "", clock.Now()), time.Hour)
		if es, _ := tb.Get(ctx, k, sub); es == nil {
			t.Fatalf("B: Get(%s) = nothing, want A's entry", k)
		}
	}
	// The keys are on every master.
	for _, n := range nodes {
		if out := redisDo(t, n, "DBSIZE"); out == ":0" {
			t.Fatalf("node %s holds no key of 24", n.Addr)
		}
	}
	inB := func(k string) bool {
		es, _ := tb.mem.Get(ctx, k, sub)
		return es != nil
	}
	if n, err := ta.Delete(ctx, keys[0]); err != nil || n != 1 {
		t.Fatalf("A: Delete = %d, %v; want 1", n, err)
	}
	waitFor(t, "B's copy of "+keys[0]+" to go", func() bool { return !inB(keys[0]) })
	if n, err := ta.DeletePrefix(ctx, "h/p/"); err != nil || n != 23 {
		t.Fatalf("A: DeletePrefix(h/p/) = %d, %v; want 23", n, err)
	}
	waitFor(t, "B's copies to go", func() bool { return !slices.ContainsFunc(keys, inB) })
	for _, n := range nodes {
		if out := redisDo(t, n, "DBSIZE"); out != ":0" {
			t.Fatalf("node %s: DBSIZE %s after DeletePrefix, want :0", n.Addr, out)
		}
	}
}

// TestTieredInvalidationKeptWhileDown: an invalidation made while a
// replica has Redis marked down applies to its memory at once, and to Redis
// and the other replicas when Redis is back.
func TestTieredInvalidationKeptWhileDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := newReplica(t, srv.Addr), newReplica(t, srv.Addr)
	clock := newClock()
	ctx := context.Background()
	_, ta := tieredCache(t, a, clock)
	_, tb := tieredCache(t, b, clock)
	const sub = "r\x00"
	_ = ta.Set(ctx, "h/k", sub, testEntry("k", "", clock.Now()), time.Hour)
	_ = ta.Set(ctx, "h/p/1", sub, testEntry("p", "", clock.Now()), time.Hour)
	_, _ = tb.Get(ctx, "h/k", sub)
	_, _ = tb.Get(ctx, "h/p/1", sub)

	// A alone loses Redis (as on a network partition); the next ping
	// brings it back.
	a.cl.Fail(cluster.OpCache, errors.New("test: partition"))
	if n, err := ta.Delete(ctx, "h/k"); err != nil || n != 1 {
		t.Fatalf("A: Delete with Redis down = %d, %v; want 1 (its memory copy)", n, err)
	}
	_, _ = ta.DeletePrefix(ctx, "h/p/")
	if es, _ := ta.Get(ctx, "h/k", sub); es != nil {
		t.Fatal("A still serves h/k after deleting it with Redis down")
	}
	waitFor(t, "A writing the kept invalidations", func() bool {
		return strings.Contains(a.logs.String(), "invalidations made while Redis was down written to it")
	})
	for _, k := range []string{"t:cache:h/k", "t:cache:h/p/1"} {
		if out := redisDo(t, srv, "EXISTS", k); out != ":0" {
			t.Errorf("EXISTS %s after A's Redis came back = %s, want :0", k, out)
		}
	}
	waitFor(t, "B's memory copies to go", func() bool {
		k, _ := tb.mem.Get(ctx, "h/k", sub)
		p, _ := tb.mem.Get(ctx, "h/p/1", sub)
		return k == nil && p == nil
	})
}

// getHost sends GET path with Host host through h and times it.
func getHost(h *harness, host, path string) (response, time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, h.front.URL+path, nil)
	if err != nil {
		return response{}, 0, err
	}
	req.Host = host
	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		return response{}, time.Since(start), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}, time.Since(start), err
}

// TestTieredRedisOutage: two replicas' caches share Redis; Redis is killed
// under traffic and every request is still answered, from memory or the
// origin, none slower than the Redis timeout and the origin; the outage is
// logged once; when Redis is back, a fill through one is a hit through the
// other again.
func TestTieredRedisOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ra, rb := newReplica(t, srv.Addr), newReplica(t, srv.Addr)
	ha := newHarness(t, harnessOptions{Options: Options{Shared: ra.shared}})
	hb := newHarness(t, harnessOptions{Options: Options{Shared: rb.shared}})
	const host = "api.test"
	xcache := func(h *harness, path string) string {
		t.Helper()
		resp, _, err := getHost(h, host, path)
		if err != nil || resp.status != 200 {
			t.Fatalf("GET %s = %d, %v; want 200", path, resp.status, err)
		}
		return resp.header.Get("X-Cache")
	}
	if got := xcache(ha, "/a"); got != "MISS" {
		t.Fatalf("A: GET /a X-Cache = %s, want MISS", got)
	}
	if got := xcache(hb, "/a"); got != "HIT" || hb.hits.Load() != 0 {
		t.Fatalf("B: GET /a X-Cache = %s with %d origin requests, want HIT and none", got, hb.hits.Load())
	}

	// Traffic through both while Redis dies.
	var stop atomic.Bool
	var requests, failures atomic.Int64
	var slowest atomic.Int64
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for i, h := range []*harness{ha, hb} {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				path := "/a"
				if n%3 == 1 {
					path = fmt.Sprintf("/new-%d-%d", i, n) // a miss, stored in memory
				}
				resp, d, err := getHost(h, host, path)
				requests.Add(1)
				if int64(d) > slowest.Load() {
					slowest.Store(int64(d))
				}
				if err != nil || resp.status != 200 {
					failures.Add(1)
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s: %d %v", path, resp.status, err))
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	killed := requests.Load()
	srv.Kill()
	waitFor(t, "A marks Redis down", func() bool { return !ra.cl.Up() })
	waitFor(t, "B marks Redis down", func() bool { return !rb.cl.Up() })
	time.Sleep(100 * time.Millisecond)
	beforeA, beforeB := ra.resyncs.Load(), rb.resyncs.Load()
	srv.Restart()
	ra.resynced(t, beforeA)
	rb.resynced(t, beforeB)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d requests (%d after the kill), slowest %v", requests.Load(), requests.Load()-killed, time.Duration(slowest.Load()))
	if failures.Load() > 0 {
		t.Fatalf("%d of %d requests failed across the outage: %v", failures.Load(), requests.Load(), failed[:min(len(failed), 5)])
	}
	if limit := redisTimeout + time.Second; time.Duration(slowest.Load()) > limit {
		t.Errorf("slowest request took %v, want under the Redis timeout and the origin (%v)", time.Duration(slowest.Load()), limit)
	}
	for name, r := range map[string]*replica{"A": ra, "B": rb} {
		if n := strings.Count(r.logs.String(), "redis unreachable"); n != 1 {
			t.Errorf("%s logged 'redis unreachable' %d times, want once:\n%s", name, n, r.logs)
		}
		if st := r.cl.Stats(); st.Fallbacks[cluster.OpCache] == 0 {
			t.Errorf("%s counted no cache fallback: %+v", name, st)
		}
	}
	for name, h := range map[string]*harness{"A": ha, "B": hb} {
		h.metrics.mu.Lock()
		errs := len(h.metrics.errs)
		h.metrics.mu.Unlock()
		if errs != 0 {
			t.Errorf("%s: cache store errors %v, want none (memory answered)", name, h.metrics.errs)
		}
	}

	// Sharing resumes: a fill through B is a hit through A.
	hitsA := ha.hits.Load()
	if got := xcache(hb, "/after"); got != "MISS" {
		t.Fatalf("B: GET /after X-Cache = %s, want MISS", got)
	}
	if got := xcache(ha, "/after"); got != "HIT" || ha.hits.Load() != hitsA {
		t.Fatalf("A: GET /after X-Cache = %s with %d new origin requests, want HIT and none", got, ha.hits.Load()-hitsA)
	}
}

// TestRedisOnlyOutage: with the shared tier alone, a Redis outage makes the
// cache a pass-through, logged once and counted, and it caches again when
// Redis returns.
func TestRedisOnlyOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ra, rb := newReplica(t, srv.Addr), newReplica(t, srv.Addr)
	logs := &safeLog{}
	ha := newHarness(t, harnessOptions{Options: Options{Shared: ra.shared, SharedOnly: true, Logger: slog.New(slog.NewTextHandler(logs, nil))}})
	hb := newHarness(t, harnessOptions{Options: Options{Shared: rb.shared, SharedOnly: true}})
	if ha.mem != nil {
		t.Fatal("a SharedOnly cache has a memory tier")
	}
	const host = "api.test"
	get := func(h *harness, path string) string {
		t.Helper()
		resp, d, err := getHost(h, host, path)
		if err != nil || resp.status != 200 {
			t.Fatalf("GET %s = %d, %v; want 200", path, resp.status, err)
		}
		if d > redisTimeout+time.Second {
			t.Errorf("GET %s took %v", path, d)
		}
		return resp.header.Get("X-Cache")
	}
	if a, b := get(ha, "/a"), get(hb, "/a"); a != "MISS" || b != "HIT" {
		t.Fatalf("A then B: X-Cache %s, %s; want MISS, HIT", a, b)
	}
	srv.Kill()
	waitFor(t, "A marks Redis down", func() bool { return !ra.cl.Up() })
	for range 3 {
		if got := get(ha, "/a"); got != "MISS" {
			t.Fatalf("A with Redis down: X-Cache %s, want MISS (no cache)", got)
		}
	}
	if n := strings.Count(logs.String(), "cache store unavailable"); n != 1 {
		t.Errorf("logged the outage %d times, want once:\n%s", n, logs)
	}
	ha.metrics.mu.Lock()
	getErrs := ha.metrics.errs["get"]
	ha.metrics.mu.Unlock()
	if getErrs != 3 {
		t.Errorf("cache store get errors = %d, want 3", getErrs)
	}
	before := ra.resyncs.Load()
	srv.Restart()
	ra.resynced(t, before)
	waitFor(t, "B up again", rb.cl.Up)
	if a, b := get(ha, "/b"), get(hb, "/b"); a != "MISS" || b != "HIT" {
		t.Fatalf("after the restart, A then B: X-Cache %s, %s; want MISS, HIT", a, b)
	}
	if !strings.Contains(logs.String(), "cache store available again") {
		t.Errorf("the end of the outage was not logged:\n%s", logs)
	}
}

// TestKeptInvalidationWrittenWhileUp: an invalidation whose Redis write
// failed is kept; when Redis is up again by the time it is kept (the ping
// that brought it back came first, and its resync found nothing to write),
// it is written and announced at once, not at the next outage's end, so the
// other replica drops its copies.
func TestKeptInvalidationWrittenWhileUp(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := newReplica(t, srv.Addr), newReplica(t, srv.Addr)
	clock := newClock()
	ctx := context.Background()
	_, ta := tieredCache(t, a, clock)
	_, tb := tieredCache(t, b, clock)
	const sub = "r\x00"
	for _, k := range []string{"h/p/1", "h/p/2"} {
		_ = ta.Set(ctx, k, sub, testEntry(k, "", clock.Now()), time.Hour)
		if es, _ := tb.Get(ctx, k, sub); es == nil {
			t.Fatalf("B: Get(%s) = nothing, want A's entry", k)
		}
	}
	if !a.cl.Up() {
		t.Fatal("A's Redis not up")
	}
	resyncs := a.resyncs.Load()
	// What tiered.DeletePrefix does when Redis failed the deletion.
	a.shared.keep("prefix h/p/")
	inB := func(k string) bool {
		es, _ := tb.mem.Get(ctx, k, sub)
		return es != nil
	}
	waitFor(t, "B's copies under h/p/ to go", func() bool { return !inB("h/p/1") && !inB("h/p/2") })
	if es, _ := tb.Get(ctx, "h/p/1", sub); es != nil {
		t.Error("B: Get(h/p/1) after the kept invalidation was written found an entry in Redis")
	}
	if got := a.resyncs.Load(); got != resyncs {
		t.Errorf("A resynced %d times; the invalidation must not have waited for one", got-resyncs)
	}
	a.shared.mu.Lock()
	left := len(a.shared.pending)
	a.shared.mu.Unlock()
	if left != 0 {
		t.Errorf("%d invalidations still kept after the write", left)
	}
}
