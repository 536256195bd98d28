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
	// share is set when counts and blocks are shared with other replicas
	// (BlockSync): Hit then also keeps what is still to be sent.
	share atomic.Pointer[blockShare]
}

// blockShare is how a Blocker shares: onUnblock hears of unblocks made here.
type blockShare struct {
	onUnblock func(ip netip.Addr)
}

type ddosConfig struct {
	threshold float64
	block     int64 // ns
}

type blockShard struct {
	mu    sync.Mutex
	m     map[ipKey]blockState
	peak  int
	dirty []ipKey // IPs with something to share (queued set); shared only
	_     [16]byte
}

// blockState is one IP's counters; times are Unix nanoseconds.
type blockState struct {
	window int64 // start of the current window
	prev   int64 // requests in the window before it
	cur    int64 // requests in the current window
	until  int64 // end of the block; 0 when not blocked
	// Shared only: requests counted and not sent yet, whether a block made
	// here is still to be announced, and whether the IP is in its shard's
	// dirty list.
	pending  int32
	announce bool
	queued   bool
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
	shared := b.share.Load() != nil
	if shared {
		st.pending++
		s.queue(k, &st)
	}
	est := float64(st.prev)*float64(w-(now-start))/float64(w) + float64(st.cur)
	if est > c.threshold {
		st = blockState{window: start, until: now + c.block, announce: shared, queued: st.queued}
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
	st, ok := s.m[k]
	if !ok || st.until <= now {
		s.mu.Unlock()
		return false
	}
	delete(s.m, k)
	s.mu.Unlock()
	if sh := b.share.Load(); sh != nil && sh.onUnblock != nil {
		sh.onUnblock(ip)
	}
	return true
}

// queue puts k on the shard's dirty list unless it is there; s.mu held.
func (s *blockShard) queue(k ipKey, st *blockState) {
	if !st.queued {
		st.queued = true
		s.dirty = append(s.dirty, k)
	}
}

// sharedHit is what one IP has to share since the last drain.
type sharedHit struct {
	ip       netip.Addr
	window   int64 // Unix ns: the window the requests were counted in
	n        int64 // requests counted
	announce bool  // a block made here, to announce
	until    int64 // its end, Unix ns
}

// drainShared returns, and forgets, what every IP has to share.
func (b *Blocker) drainShared(out []sharedHit) []sharedHit {
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		for _, k := range s.dirty {
			st, ok := s.m[k]
			if !ok || !st.queued {
				continue
			}
			if st.pending > 0 || st.announce {
				out = append(out, sharedHit{ip: k.addr(), window: st.window, n: int64(st.pending), announce: st.announce, until: st.until})
			}
			st.pending, st.announce, st.queued = 0, false, false
			s.m[k] = st
		}
		if cap(s.dirty) > 4096 && len(s.dirty) < 1024 {
			s.dirty = nil
		} else {
			s.dirty = s.dirty[:0]
		}
		s.mu.Unlock()
	}
	return out
}

// applyBlock blocks ip until (Unix ns) on a peer's word, unless it is
// blocked longer already; it reports whether anything changed. Its counts
// start afresh, as after a block made here. It is not counted in
// BlocksTotal: the replica that made the block counts it.
func (b *Blocker) applyBlock(ip netip.Addr, until int64) bool {
	if !ip.IsValid() || until <= b.now().UnixNano() {
		return false
	}
	k := keyOf(ip)
	s := &b.shards[b.h.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[k]
	if st.until >= until {
		return false
	}
	s.m[k] = blockState{window: st.window, until: until, queued: st.queued}
	if !ok && len(s.m) > s.peak {
		s.peak = len(s.m)
	}
	return true
}

// requeueAnnounce marks ip's block (if any) to be announced again.
func (b *Blocker) requeueAnnounce(ip netip.Addr) {
	k := keyOf(ip)
	s := &b.shards[b.h.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[k]; ok && st.until > b.now().UnixNano() {
		st.announce = true
		s.queue(k, &st)
		s.m[k] = st
	}
}

// reconcileBlocks makes the blocks those of shared (IP → end, Unix ns):
// each is applied, and a block here that shared lacks is lifted unless it
// is still to be announced. It returns how many were added and lifted.
func (b *Blocker) reconcileBlocks(shared map[netip.Addr]int64) (added, lifted int) {
	now := b.now().UnixNano()
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		for k, st := range s.m {
			if st.until <= now || st.announce {
				continue
			}
			if _, ok := shared[k.addr()]; !ok {
				delete(s.m, k)
				lifted++
			}
		}
		s.mu.Unlock()
	}
	for ip, until := range shared {
		if b.applyBlock(ip, until) {
			added++
		}
	}
	return added, lifted
}

// applyUnblock lifts ip's block on a peer's word, without announcing it.
func (b *Blocker) applyUnblock(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	k := keyOf(ip)
	s := &b.shards[b.h.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[k]; ok && st.until != 0 {
		delete(s.m, k)
	}
}

// blockedUntil returns the end of ip's block (Unix ns), 0 when not blocked.
func (b *Blocker) blockedUntil(ip netip.Addr) int64 {
	k := keyOf(ip)
	s := &b.shards[b.h.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.m[k]; st.until > b.now().UnixNano() {
		return st.until
	}
	return 0
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
