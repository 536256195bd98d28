package edge

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

// ddosWindow is the span the DDoS threshold counts requests over.
const ddosWindow = time.Minute

// blockerSweepEvery is how often Run drops idle entries and expired blocks.
const blockerSweepEvery = 30 * time.Second

// BlockedIP is a client IP that is blocked, for the admin API.
type BlockedIP struct {
	// IP is the blocked address.
	IP string `json:"ip"`
	// Until is when the block ends.
	Until time.Time `json:"until"`
}

// Blocker blocks client IPs that send more than a threshold of requests per
// minute, for a fixed duration.
//
// The count is a sliding-window estimate (the "sliding window counter" of
// Cloudflare's rate limiting): requests are counted in fixed windows
// aligned to the minute, and the rate at time t is the current window's count
// plus the previous window's count weighted by the part of it still inside
// the minute ending at t. So a client cannot send twice the threshold across
// a window boundary, as it could with plain fixed windows, and each IP costs
// a few words of memory rather than a timestamp per request. An IP is blocked
// by the request that takes the estimate above the threshold. Blocked
// requests are not counted, and an IP starts from zero when its block ends.
//
// Per-IP state lives in a sharded map; an entry is dropped by Run once it is
// neither blocked nor counted in the last two windows, so memory follows the
// number of IPs seen in the last two minutes plus the blocked ones.
type Blocker struct {
	now     func() time.Time
	cfg     atomic.Pointer[ddosConfig]
	blocks  atomic.Uint64
	h       ipHasher
	shards  [numShards]blockShard
	sweepIv time.Duration
}

type ddosConfig struct {
	threshold float64
	block     int64 // ns
}

type blockShard struct {
	mu   sync.Mutex
	m    map[ipKey]blockState
	peak int
	_    [40]byte
}

// blockState is one IP's counters; times are Unix nanoseconds.
type blockState struct {
	window int64 // start of the current window
	prev   int64 // requests in the window before it
	cur    int64 // requests in the current window
	until  int64 // end of the block; 0 when not blocked
}

// NewBlocker returns a Blocker that blocks nothing until SetConfig gives it a
// threshold. now is the clock (nil: time.Now).
func NewBlocker(now func() time.Time) *Blocker {
	if now == nil {
		now = time.Now
	}
	b := &Blocker{now: now, h: newIPHasher(), sweepIv: blockerSweepEvery}
	b.cfg.Store(&ddosConfig{})
	for i := range b.shards {
		b.shards[i].m = map[ipKey]blockState{}
	}
	return b
}

// SetConfig sets the threshold and block duration; counters and blocks in
// force stay (a block keeps the end it was given). Disabled, or a threshold
// or block duration of zero, turns blocking off: Hit then blocks nothing and
// counts nothing.
func (b *Blocker) SetConfig(cfg config.DDoS) {
	c := &ddosConfig{}
	if !cfg.Disabled && cfg.Threshold > 0 && cfg.BlockDuration > 0 {
		c.threshold = float64(cfg.Threshold)
		c.block = int64(cfg.BlockDuration)
	}
	b.cfg.Store(c)
}

// Hit counts one request from ip and reports whether ip is blocked: already,
// or from this request on. retryAfter is the time left of the block.
func (b *Blocker) Hit(ip netip.Addr) (blocked bool, retryAfter time.Duration) {
	c := b.cfg.Load()
	if c.threshold == 0 || !ip.IsValid() {
		return false, 0
	}
	now := b.now().UnixNano()
	k := keyOf(ip)
	s := &b.shards[b.h.shard(k)]
	s.mu.Lock()
	st, ok := s.m[k]
	if st.until > now {
		s.mu.Unlock()
		return true, time.Duration(st.until - now)
	}
	if st.until != 0 { // block over: start afresh
		st = blockState{}
	}
	w := int64(ddosWindow)
	start := now - now%w
	switch {
	case start == st.window:
	case start == st.window+w:
		st.prev, st.cur = st.cur, 0
	default:
		st.prev, st.cur = 0, 0
	}
	st.window = start
	st.cur++
	est := float64(st.prev)*float64(w-(now-start))/float64(w) + float64(st.cur)
	if est > c.threshold {
		st = blockState{window: start, until: now + c.block}
		blocked, retryAfter = true, time.Duration(c.block)
		b.blocks.Add(1)
	}
	s.m[k] = st
	if !ok && len(s.m) > s.peak {
		s.peak = len(s.m)
	}
	s.mu.Unlock()
	return blocked, retryAfter
}

// Unblock lifts ip's block and forgets its counters; it reports whether ip
// was blocked.
func (b *Blocker) Unblock(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	now := b.now().UnixNano()
	k := keyOf(ip)
	s := &b.shards[b.h.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[k]
	if !ok || st.until <= now {
		return false
	}
	delete(s.m, k)
	return true
}

// Blocked returns the IPs blocked now, sorted by address.
func (b *Blocker) Blocked() []BlockedIP {
	now := b.now().UnixNano()
	type blk struct {
		ip    netip.Addr
		until int64
	}
	var bs []blk
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		for k, st := range s.m {
			if st.until > now {
				bs = append(bs, blk{k.addr(), st.until})
			}
		}
		s.mu.Unlock()
	}
	slices.SortFunc(bs, func(x, y blk) int { return x.ip.Compare(y.ip) })
	out := make([]BlockedIP, len(bs))
	for i, x := range bs {
		out[i] = BlockedIP{IP: x.ip.String(), Until: time.Unix(0, x.until).UTC()}
	}
	return out
}

// BlocksTotal returns the number of blocks made since the Blocker was
// created (the blocked_ips_total metric).
func (b *Blocker) BlocksTotal() uint64 { return b.blocks.Load() }

// Run drops idle entries and ended blocks every 30 seconds until ctx is done.
func (b *Blocker) Run(ctx context.Context) { every(ctx, b.sweepIv, b.sweep) }

// sweep drops entries that are not blocked and whose counts no longer matter
// (both windows ended), and shrinks shards that emptied out.
func (b *Blocker) sweep() {
	now := b.now().UnixNano()
	w := int64(ddosWindow)
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		for k, st := range s.m {
			if st.until <= now && now-st.window >= 2*w {
				delete(s.m, k)
			}
		}
		if s.peak >= shrinkMin && len(s.m) < s.peak/4 {
			m := make(map[ipKey]blockState, len(s.m))
			for k, st := range s.m {
				m[k] = st
			}
			s.m, s.peak = m, len(m)
		}
		s.mu.Unlock()
	}
}

// size returns the number of IPs tracked.
func (b *Blocker) size() int {
	n := 0
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
