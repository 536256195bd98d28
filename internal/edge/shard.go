package edge

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// numShards is the number of independently locked parts of every per-client
// map in this package. A power of two.
const numShards = 64

// shrinkMin is the peak size below which a shard's map is never reallocated.
// Go maps do not give memory back when entries are deleted, so a shard whose
// map fell well below its peak is copied into a new, smaller one.
const shrinkMin = 1024

// ipKey is an address as a fixed-size map key: IPv4 in its IPv4-mapped form,
// zone dropped. It hashes faster than netip.Addr and holds no pointer.
type ipKey [16]byte

// keyOf is the key of a client in per-IP state (DDoS counters and blocks,
// in-flight and connection counts): the IPv4 address, or the /64 an IPv6
// address belongs to. One IPv6 end site holds at least a /64, so counting per
// address would hand one client 2^64 fresh budgets.
func keyOf(a netip.Addr) ipKey {
	a = a.Unmap()
	k := a.As16()
	if a.Is6() {
		clear(k[8:])
	}
	return k
}

// Bucket is the address per-client limits count under: a itself for IPv4, the
// network address of its /64 for IPv6 (see keyOf). Rate-limit keys use it too.
func Bucket(a netip.Addr) netip.Addr { return keyOf(a).addr() }

func (k ipKey) addr() netip.Addr { return netip.AddrFrom16(k).Unmap() }

// ipHasher picks a shard for an address. The seed is random per process so
// that a client cannot choose addresses that all land in one shard.
type ipHasher struct{ seed uint64 }

func newIPHasher() ipHasher { return ipHasher{seed: rand.Uint64()} }

func (h ipHasher) shard(k ipKey) int {
	x := binary.LittleEndian.Uint64(k[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(k[8:]) ^ h.seed
	// splitmix64 finaliser
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int(x & (numShards - 1))
}

// ipCounter counts something per address (in-flight requests, open
// connections) in a sharded map; an address whose count drops to zero is
// removed, so the map holds only addresses with something open.
type ipCounter struct {
	h      ipHasher
	shards [numShards]counterShard
}

type counterShard struct {
	mu   sync.Mutex
	m    map[ipKey]int32
	peak int
	_    [40]byte // keep shards on separate cache lines
}

func newIPCounter() *ipCounter {
	c := &ipCounter{h: newIPHasher()}
	for i := range c.shards {
		c.shards[i].m = map[ipKey]int32{}
	}
	return c
}

// acquire adds one for a unless that would exceed max; it reports whether it
// did.
func (c *ipCounter) acquire(a netip.Addr, max int) bool {
	k := keyOf(a)
	s := &c.shards[c.h.shard(k)]
	s.mu.Lock()
	n := s.m[k]
	if int(n) >= max {
		s.mu.Unlock()
		return false
	}
	s.m[k] = n + 1
	if len(s.m) > s.peak {
		s.peak = len(s.m)
	}
	s.mu.Unlock()
	return true
}

// release takes back one acquire for a.
func (c *ipCounter) release(a netip.Addr) {
	k := keyOf(a)
	s := &c.shards[c.h.shard(k)]
	s.mu.Lock()
	if n := s.m[k]; n > 1 {
		s.m[k] = n - 1
	} else {
		delete(s.m, k)
		if len(s.m) == 0 && s.peak >= shrinkMin {
			s.m = map[ipKey]int32{}
			s.peak = 0
		}
	}
	s.mu.Unlock()
}

// count returns a's count.
func (c *ipCounter) count(a netip.Addr) int {
	k := keyOf(a)
	s := &c.shards[c.h.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.m[k])
}

// size returns the number of addresses with a count above zero.
func (c *ipCounter) size() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// ceilSeconds rounds d up to whole seconds (0 for d <= 0): the form of
// RateLimit-Reset.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// retryAfter is the Retry-After value for d: whole seconds, rounded up, at
// least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(ceilSeconds(d), 1), 10)
}

// every calls f every d until ctx is done: the sweep loop of the blocker and
// the limiter.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
