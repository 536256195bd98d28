package edge

// Tests of the Redis-shared limiter, lists and blocks against a real
// redis-server (internal/cluster/redistest).

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/cluster"
	"github.com/altair-gateway/altair/internal/cluster/redistest"
	"github.com/altair-gateway/altair/internal/config"
)

// replica is one gateway's edge state sharing through Redis.
type replica struct {
	cl      *cluster.Client
	limiter *SharedLimiter
	local   *LocalLimiter
	lists   *Lists
	blocker *Blocker
	blocks  *BlockSync
}

// newReplica connects to addr; its goroutines end with the test. start
// false leaves the client unstarted (Start it to join).
func newReplica(t *testing.T, addr string, now func() time.Time, start bool) *replica {
	t.Helper()
	return newReplicaOn(t, []string{addr}, now, start)
}

// newReplicaOn is newReplica on several addresses (a Redis Cluster).
func newReplicaOn(t *testing.T, addrs []string, now func() time.Time, start bool) *replica {
	t.Helper()
	return newReplicaWith(t, config.Redis{Addrs: addrs}, now, start)
}

// newReplicaWith is newReplica on the redis section cfg (password, TLS,
// Sentinel), with the test's timeout and key prefix.
func newReplicaWith(t *testing.T, cfg config.Redis, now func() time.Time, start bool) *replica {
	t.Helper()
	if cfg.Timeout == 0 {
		// Generous, so a loaded test machine does not mark Redis down by
		// accident; the tests of the timeout itself set a short one.
		cfg.Timeout = 500 * time.Millisecond
	}
	cfg.KeyPrefix = "t:"
	cl, err := cluster.New(cluster.Options{
		Config:    cfg,
		PingEvery: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{cl: cl, local: NewLocalLimiter(nil), lists: NewLists(), blocker: NewBlocker(now)}
	r.limiter = NewSharedLimiter(cl, r.local)
	NewListSync(cl, r.lists, nil)
	r.blocks = NewBlockSync(cl, r.blocker, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = cl.Close()
	})
	if start {
		cl.Start(ctx)
	}
	return r
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSharedLimiterOneGlobalLimit(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := newReplica(t, srv.Addr, nil, true), newReplica(t, srv.Addr, nil, true)
	// 0.5/s: no token comes back during the test.
	allowed := 0
	for i := range 30 {
		r := a
		if i%2 == 1 {
			r = b
		}
		d := r.limiter.Allow("route:r|ip:192.0.2.1", 0.5, 10)
		if d.Limit != 10 {
			t.Fatalf("Allow #%d Limit = %d, want 10", i, d.Limit)
		}
		if d.Allowed {
			allowed++
			if d.Remaining != 10-allowed {
				t.Fatalf("Allow #%d Remaining = %d, want %d", i, d.Remaining, 10-allowed)
			}
			continue
		}
		// The bounds leave half a second for a slow machine between the
		// last allowed request and this one.
		if d.RetryAfter < 1500*time.Millisecond || d.RetryAfter > 2*time.Second {
			t.Fatalf("denied Allow #%d RetryAfter = %v, want about 2s (one token at 0.5/s)", i, d.RetryAfter)
		}
		if d.Reset < 19500*time.Millisecond || d.Reset > 20*time.Second {
			t.Fatalf("denied Allow #%d Reset = %v, want about 20s (10 tokens at 0.5/s)", i, d.Reset)
		}
	}
	if allowed != 10 {
		t.Fatalf("30 requests over two replicas, burst 10: %d allowed, want 10", allowed)
	}
	if a.local.Len()+b.local.Len() != 0 {
		t.Fatal("the local limiters were used while Redis was up")
	}
	// Another key has a bucket of its own.
	if d := b.limiter.Allow("route:r|ip:192.0.2.2", 0.5, 10); !d.Allowed || d.Remaining != 9 {
		t.Fatalf("Allow(other key) = %+v, want allowed with 9 remaining", d)
	}
}

func TestSharedLimiterMatchesLocal(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newReplica(t, srv.Addr, nil, true)
	local := NewLocalLimiter(nil)
	// A slow rate (a token every 10 s): no step of the test, however slow
	// the machine, refills either bucket, so both decide the same.
	for i := range 6 {
		got := r.limiter.Allow("k", 0.1, 3)
		want := local.Allow("k", 0.1, 3)
		if got.Allowed != want.Allowed || got.Limit != want.Limit || got.Remaining != want.Remaining {
			t.Fatalf("Allow #%d = %+v, local %+v", i, got, want)
		}
		if d := got.RetryAfter - want.RetryAfter; d < -time.Second || d > time.Second {
			t.Fatalf("Allow #%d RetryAfter %v, local %v", i, got.RetryAfter, want.RetryAfter)
		}
	}
	// A high rate: the microsecond arithmetic keeps 5000/s exact, so after
	// a pause of 2 ms (10 tokens' worth) the bucket is full again: three
	// allowed in a row, whatever the machine's speed (a slow step only adds
	// tokens, and the burst caps them).
	for round := range 3 {
		time.Sleep(2 * time.Millisecond)
		for i := range 3 {
			if d := r.limiter.Allow("fast", 5000, 3); !d.Allowed || d.Limit != 3 {
				t.Fatalf("round %d: Allow #%d at 5000/s burst 3 after a pause = %+v, want allowed", round, i, d)
			}
		}
	}
}

func TestSharedLimiterFallsBackAndRecovers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newReplicaWith(t, config.Redis{Addrs: []string{srv.Addr}, Timeout: 50 * time.Millisecond}, nil, true)
	if d := r.limiter.Allow("k", 0.5, 2); !d.Allowed || r.local.Len() != 0 {
		t.Fatalf("Allow with Redis up = %+v (local keys %d), want allowed through Redis", d, r.local.Len())
	}

	// A Redis that does not answer: the decision waits for the timeout,
	// no longer, and is the local limiter's.
	if got, err := srv.Do("CLIENT", "PAUSE", "700", "ALL"); err != nil || got != "+OK" {
		t.Fatalf("CLIENT PAUSE = %q, %v", got, err)
	}
	start := time.Now()
	d := r.limiter.Allow("k", 0.5, 2)
	if el := time.Since(start); el > 250*time.Millisecond {
		t.Fatalf("Allow with Redis paused took %v, want about the 50ms timeout", el)
	}
	if !d.Allowed || r.local.Len() != 1 {
		t.Fatalf("Allow with Redis paused = %+v (local keys %d), want the local limiter's answer", d, r.local.Len())
	}
	if r.cl.Up() {
		t.Fatal("Up() after a timeout = true, want down")
	}
	waitUntil(t, 3*time.Second, "Redis back after the pause", r.cl.Up)

	// Redis gone: each decision is local and costs no Redis call.
	srv.Kill()
	r.limiter.Allow("k2", 0.5, 2)
	waitUntil(t, 2*time.Second, "down", func() bool { return !r.cl.Up() })
	before := r.cl.Stats()
	start = time.Now()
	allowed := 0
	for range 1000 {
		if r.limiter.Allow("k3", 0.5, 5).Allowed {
			allowed++
		}
	}
	after := r.cl.Stats()
	if after.Errors[cluster.OpRateLimit] != before.Errors[cluster.OpRateLimit] {
		t.Fatalf("ratelimit errors went from %d to %d while down: Redis was tried", before.Errors[cluster.OpRateLimit], after.Errors[cluster.OpRateLimit])
	}
	if n := after.Fallbacks[cluster.OpRateLimit] - before.Fallbacks[cluster.OpRateLimit]; n != 1000 {
		t.Fatalf("fallbacks counted %d for 1000 decisions while down", n)
	}
	if allowed != 5 {
		t.Fatalf("1000 local decisions at burst 5: %d allowed, want 5 (the limit is still enforced)", allowed)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Fatalf("1000 decisions while Redis is down took %v", el)
	}

	srv.Restart()
	waitUntil(t, 3*time.Second, "up after restart", r.cl.Up)
	n := r.local.Len()
	if d := r.limiter.Allow("k4", 0.5, 2); !d.Allowed || r.local.Len() != n {
		t.Fatalf("Allow after recovery = %+v, local keys %d → %d: want Redis again", d, n, r.local.Len())
	}
}

func TestSharedListsPropagate(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := newReplica(t, srv.Addr, nil, true), newReplica(t, srv.Addr, nil, true)
	if err := b.lists.SetConfig(nil, []string{"198.51.100.0/24"}); err != nil {
		t.Fatal(err)
	}
	ip := mustAddr("203.0.113.9")
	start := time.Now()
	if err := a.lists.Add(Deny, "203.0.113.0/24"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Second, "the deny entry on the other replica", func() bool { return b.lists.Denied(ip) })
	t.Logf("deny entry applied on the other replica after %v", time.Since(start))
	if es := b.lists.Entries(Deny); len(es) != 2 || es[1] != (ListEntry{CIDR: "203.0.113.0/24", Source: SourceRuntime}) {
		t.Fatalf("Entries(Deny) on b = %+v, want its config entry and the shared run-time one", es)
	}
	// Config entries stay on their replica.
	if a.lists.Denied(mustAddr("198.51.100.1")) {
		t.Fatal("b's config entry reached a")
	}
	if !a.lists.Remove(Deny, "203.0.113.0/24") {
		t.Fatal("Remove = false")
	}
	waitUntil(t, time.Second, "the removal on the other replica", func() bool { return !b.lists.Denied(ip) })
	if !b.lists.Denied(mustAddr("198.51.100.1")) {
		t.Fatal("the removal took b's config entry too")
	}

	// A replica that joins later loads what is there.
	if err := b.lists.Add(Allow, "192.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
	c := newReplica(t, srv.Addr, nil, true)
	waitUntil(t, time.Second, "the allow entry on a new replica", func() bool { return c.lists.Allowed(mustAddr("192.0.2.1")) })
}

func TestSharedListsAcrossAnOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := newReplica(t, srv.Addr, nil, true), newReplica(t, srv.Addr, nil, true)
	if err := a.lists.Add(Deny, "203.0.113.1"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Second, "first entry on b", func() bool { return b.lists.Denied(mustAddr("203.0.113.1")) })

	srv.Kill()
	waitUntil(t, 2*time.Second, "down", func() bool { return !a.cl.Up() && !b.cl.Up() })
	// Made while down: applies here at once, reaches the others later.
	if err := a.lists.Add(Deny, "203.0.113.2"); err != nil {
		t.Fatal(err)
	}
	if !a.lists.Denied(mustAddr("203.0.113.2")) {
		t.Fatal("an entry added while Redis is down does not apply locally")
	}

	// Redis comes back empty: the replicas write back what they hold.
	srv.Restart()
	waitUntil(t, 3*time.Second, "both entries on b after the restart", func() bool {
		return b.lists.Denied(mustAddr("203.0.113.1")) && b.lists.Denied(mustAddr("203.0.113.2"))
	})
	if err := b.lists.Add(Deny, "203.0.113.3"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Second, "a change after the restart on a", func() bool { return a.lists.Denied(mustAddr("203.0.113.3")) })
	if got := len(a.lists.Entries(Deny)); got != 3 {
		t.Fatalf("a has %d deny entries, want 3", got)
	}
}

func TestSharedBlocks(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	clk := newFakeClock()
	clk.Advance(10 * time.Second)
	a, b := newReplica(t, srv.Addr, clk.Now, true), newReplica(t, srv.Addr, clk.Now, true)
	cfg := config.DDoS{Threshold: 10, BlockDuration: time.Minute}
	a.blocker.SetConfig(cfg)
	b.blocker.SetConfig(cfg)

	// 6 requests on each replica: neither alone is over 10, together they are.
	ip := mustAddr("192.0.2.50")
	for range 6 {
		if blocked, _ := a.blocker.Hit(ip); blocked {
			t.Fatal("blocked by a alone")
		}
		if blocked, _ := b.blocker.Hit(ip); blocked {
			t.Fatal("blocked by b alone")
		}
	}
	ctx := context.Background()
	// A flush while Redis counts as down (a slow ping on a loaded machine)
	// keeps its counts for later; this test wants each flush to reach it.
	waitUntil(t, 5*time.Second, "both replicas up", func() bool { return a.cl.Up() && b.cl.Up() })
	a.blocks.flush(ctx)
	if len(a.blocker.Blocked()) != 0 {
		t.Fatal("blocked after a's flush alone (6 requests)")
	}
	b.blocks.flush(ctx)
	if got := b.blocker.Blocked(); len(got) != 1 || got[0].IP != ip.String() {
		t.Fatalf("b.Blocked() after both flushed = %+v, want %s", got, ip)
	}
	if b.blocker.BlocksTotal() != 1 {
		t.Fatalf("b.BlocksTotal() = %d, want 1", b.blocker.BlocksTotal())
	}
	waitUntil(t, time.Second, "the block on a", func() bool { blocked, _ := a.blocker.Hit(ip); return blocked })
	if _, ra := a.blocker.Hit(ip); ra <= 50*time.Second || ra > time.Minute {
		t.Fatalf("a's block Retry-After = %v, want the minute b gave it", ra)
	}
	if a.blocker.BlocksTotal() != 0 {
		t.Fatalf("a.BlocksTotal() = %d, want 0: b made the block", a.blocker.BlocksTotal())
	}

	// A replica that starts now loads it.
	c := newReplica(t, srv.Addr, clk.Now, true)
	c.blocker.SetConfig(cfg)
	waitUntil(t, time.Second, "the block loaded by a new replica", func() bool { return len(c.blocker.Blocked()) == 1 })

	// Unblocked on one, unblocked everywhere, counts forgotten.
	if !a.blocker.Unblock(ip) {
		t.Fatal("Unblock = false")
	}
	waitUntil(t, time.Second, "the unblock on b and c", func() bool {
		return len(b.blocker.Blocked()) == 0 && len(c.blocker.Blocked()) == 0
	})
	b.blocker.Hit(ip)
	b.blocks.flush(ctx)
	if len(b.blocker.Blocked()) != 0 {
		t.Fatal("blocked again at once after the unblock")
	}

	// A block made locally (one replica over the threshold alone) is
	// announced too.
	ip2 := mustAddr("2001:db8::7")
	for range 11 {
		c.blocker.Hit(ip2)
	}
	if len(c.blocker.Blocked()) != 1 {
		t.Fatal("c did not block ip2 after 11 requests")
	}
	c.blocks.flush(ctx)
	waitUntil(t, time.Second, "c's local block on a", func() bool { return len(a.blocker.Blocked()) == 1 })
}

func TestSharedBlocksDownCostsNothing(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newReplica(t, srv.Addr, nil, true)
	r.blocker.SetConfig(config.DDoS{Threshold: 3, BlockDuration: time.Minute})
	srv.Kill()
	waitUntil(t, 2*time.Second, "down", func() bool { return !r.cl.Up() })
	ip := mustAddr("192.0.2.1")
	for range 4 {
		r.blocker.Hit(ip)
	}
	before := r.cl.Stats().Errors[cluster.OpDDoS]
	r.blocks.flush(context.Background())
	if len(r.blocker.Blocked()) != 1 || r.cl.Stats().Errors[cluster.OpDDoS] != before {
		t.Fatalf("with Redis down: blocked %v, ddos errors %d → %d; want the local block and no Redis call", r.blocker.Blocked(), before, r.cl.Stats().Errors[cluster.OpDDoS])
	}
}

func TestSharedRaceFree(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newReplica(t, srv.Addr, nil, true)
	r.blocker.SetConfig(config.DDoS{Threshold: 1000, BlockDuration: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.blocks.Run(ctx) })
	for g := range 4 {
		wg.Go(func() {
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(g)})
			for i := range 200 {
				r.blocker.Hit(ip)
				r.limiter.Allow("k", 1000, 100)
				if i%50 == 0 {
					_ = r.lists.Add(Deny, "198.51.100.0/24")
					r.lists.Remove(Deny, "198.51.100.0/24")
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // at least one flush
	cancel()
	wg.Wait()
}

func TestSharedOnRedisCluster(t *testing.T) {
	t.Parallel()
	nodes := redistest.StartCluster(t, 3)
	addrs := []string{nodes[0].Addr, nodes[1].Addr, nodes[2].Addr}
	clk := newFakeClock()
	a, b := newReplicaOn(t, addrs, clk.Now, true), newReplicaOn(t, addrs[1:], clk.Now, true)
	if a.cl.Mode() != "cluster" || !a.cl.Up() || !b.cl.Up() {
		t.Fatalf("mode %q, up %v %v: want a cluster, up", a.cl.Mode(), a.cl.Up(), b.cl.Up())
	}

	// Keys land in every slot range: one limit each, shared.
	for _, key := range []string{"k1", "k2", "k3", "k4", "k5", "k6"} {
		allowed := 0
		for i := range 6 {
			r := a
			if i%2 == 1 {
				r = b
			}
			if r.limiter.Allow(key, 0.5, 3).Allowed {
				allowed++
			}
		}
		if allowed != 3 || a.local.Len()+b.local.Len() != 0 {
			t.Fatalf("key %s: %d allowed over two replicas (local keys %d), want 3 from Redis", key, allowed, a.local.Len()+b.local.Len())
		}
	}

	// Lists: the set and its version counter share a slot.
	if err := a.lists.Add(Deny, "203.0.113.0/24"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Second, "the deny entry on b", func() bool { return b.lists.Denied(mustAddr("203.0.113.5")) })

	// Blocks: counters of many IPs across slots, one sorted set.
	cfg := config.DDoS{Threshold: 4, BlockDuration: time.Minute}
	a.blocker.SetConfig(cfg)
	b.blocker.SetConfig(cfg)
	for i := range 5 {
		ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		for range 3 {
			a.blocker.Hit(ip)
			b.blocker.Hit(ip)
		}
	}
	// Flushed as Run does, again until the blocks are there: on a loaded
	// machine a ping can pass the Redis timeout, and a flush while Redis
	// counts as down keeps its counts for the next one.
	waitUntil(t, 15*time.Second, "five blocks on both", func() bool {
		a.blocks.flush(context.Background())
		b.blocks.flush(context.Background())
		return len(a.blocker.Blocked()) == 5 && len(b.blocker.Blocked()) == 5
	})
	if !a.blocker.Unblock(netip.AddrFrom4([4]byte{192, 0, 2, 3})) {
		t.Fatal("Unblock = false")
	}
	waitUntil(t, 5*time.Second, "the unblock on b", func() bool { return len(b.blocker.Blocked()) == 4 })
	if st := a.cl.Stats(); st.Errors[cluster.OpLists]+st.Errors[cluster.OpDDoS]+st.Errors[cluster.OpRateLimit] != 0 {
		t.Fatalf("errors on a Redis Cluster: %+v", st.Errors)
	}
}

func TestSharedUnblockDuringOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	clk := newFakeClock()
	short := config.Redis{Addrs: []string{srv.Addr}, Timeout: 50 * time.Millisecond}
	a, b := newReplicaWith(t, short, clk.Now, true), newReplicaWith(t, short, clk.Now, true)
	cfg := config.DDoS{Threshold: 2, BlockDuration: time.Minute}
	a.blocker.SetConfig(cfg)
	b.blocker.SetConfig(cfg)
	ip := mustAddr("192.0.2.9")
	for range 3 {
		b.blocker.Hit(ip)
	}
	b.blocks.flush(context.Background())
	waitUntil(t, time.Second, "the block on a", func() bool { return len(a.blocker.Blocked()) == 1 })

	// Redis stops answering (its data stays): a marks it down on a timeout.
	if got, err := srv.Do("CLIENT", "PAUSE", "500", "ALL"); err != nil || got != "+OK" {
		t.Fatalf("CLIENT PAUSE = %q, %v", got, err)
	}
	a.limiter.Allow("k", 1, 1)
	if a.cl.Up() {
		t.Fatal("a still up after a timeout")
	}
	if !a.blocker.Unblock(ip) {
		t.Fatal("Unblock = false")
	}
	// Back: the unblock is written before the blocks are loaded again, so
	// it holds on a and reaches b.
	waitUntil(t, 3*time.Second, "a up again", a.cl.Up)
	waitUntil(t, time.Second, "the unblock on b", func() bool { return len(b.blocker.Blocked()) == 0 })
	if len(a.blocker.Blocked()) != 0 {
		t.Fatal("the resync brought the lifted block back on a")
	}
}
