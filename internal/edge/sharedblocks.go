package edge

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/altair-gateway/altair/internal/cluster"
)

// blockTopic is the pub/sub topic of DDoS blocks.
const blockTopic = "blocks"

// blockFlushEvery is how often a BlockSync sends the requests counted since
// the last flush.
const blockFlushEvery = 250 * time.Millisecond

// blockScript records a block in the shared set of blocks and announces it,
// unless the IP is blocked there as long already. KEYS[1] is the sorted set
// (member IP, score end of the block in Unix ms); ARGV: IP, end, now (ms),
// channel, the announcement's start ("blocks <origin> block"); the message
// is "<start> <ip> <end>". It returns 1 when the IP was not blocked before.
// Ended blocks are dropped from the set on the way.
var blockScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local cur = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if cur and cur >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ' ' .. ARGV[1] .. ' ' .. ARGV[2])
if cur then return 0 end
return 1
`)

// unblockScript removes a block from the shared set and announces it.
// KEYS[1] is the set; ARGV: IP, channel, the announcement's start ("blocks
// <origin> unblock"); the message is "<start> <ip>".
var unblockScript = redis.NewScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' ' .. ARGV[1])
return 1
`)

// BlockSync shares a Blocker's counts and blocks between replicas through
// Redis.
//
// Each replica keeps counting locally (Blocker.Hit, no Redis call on the
// request path) and every 250 ms sends what it counted per IP since the last
// flush, in one pipeline: INCRBY on the IP's counter for the current minute
// window (expiring after two windows), and GET of the previous window's. The
// sliding-window estimate is then computed from the global counts, as Hit
// does from local ones; a replica that finds an IP over its threshold blocks
// it, records the block in a shared sorted set and announces it. Every
// replica applies announced blocks for their remaining time. A block made
// locally (one replica alone saw the threshold crossed) is announced the
// same way.
//
// The global count is therefore approximate: up to one flush interval
// behind, and requests counted by a replica whose Redis calls fail are not
// sent. Blocks held in Redis are loaded at start and whenever Redis comes
// back. An unblock (admin API) removes the block from the set, clears the
// IP's shared counters and is announced. While Redis is down each replica
// counts and blocks on its own, as without Redis.
type BlockSync struct {
	cl      *cluster.Client
	b       *Blocker
	log     *slog.Logger
	set     string // the sorted set of blocks
	counter string // counter key prefix
	every   time.Duration
	buf     []sharedHit

	mu       sync.Mutex
	unblocks map[netip.Addr]struct{} // made while Redis was down
}

// NewBlockSync shares b's counts and blocks through cl. Run sends the counts.
func NewBlockSync(cl *cluster.Client, b *Blocker, log *slog.Logger) *BlockSync {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &BlockSync{cl: cl, b: b, log: log, set: cl.Key("ddos", "blocks"), counter: cl.Key("ddos") + ":{", every: blockFlushEvery,
		unblocks: make(map[netip.Addr]struct{})}
	b.share.Store(&blockShare{onUnblock: s.unblocked})
	cl.Handle(blockTopic, s.handle)
	cl.OnResync(s.resync)
	return s
}

// Run sends the counts every 250 ms until ctx is done.
func (s *BlockSync) Run(ctx context.Context) {
	every(ctx, s.every, func() { s.flush(ctx) })
}

// counterKey is the key of ip's count in the window starting at start (Unix
// ns). The IP is the hash tag, so both windows of an IP live in one slot.
func (s *BlockSync) counterKey(ip netip.Addr, start int64) string {
	return s.counter + ip.String() + "}:" + strconv.FormatInt(start/int64(time.Second), 10)
}

// flush sends what was counted since the last flush and acts on the global
// counts.
func (s *BlockSync) flush(ctx context.Context) {
	if !s.cl.Up() {
		// Kept for when Redis is back: blocks made meanwhile are announced
		// then, and counts of windows that have not ended yet are sent.
		s.cl.Fallback(cluster.OpDDoS)
		return
	}
	s.buf = s.b.drainShared(s.buf[:0])
	c := s.b.cfg.Load()
	if len(s.buf) == 0 || c.threshold == 0 {
		return
	}
	rctx, cancel := s.cl.BackgroundContext(ctx)
	defer cancel()
	w := int64(ddosWindow)
	now := s.b.now().UnixNano()
	oldest := now - now%w - w // the previous window still counts
	type counted struct {
		hit  *sharedHit
		cur  *redis.IntCmd
		prev *redis.StringCmd
	}
	cs := make([]counted, 0, len(s.buf))
	_, err := s.cl.Redis().Pipelined(rctx, func(p redis.Pipeliner) error {
		for i := range s.buf {
			h := &s.buf[i]
			if h.n == 0 || h.window < oldest {
				continue
			}
			key := s.counterKey(h.ip, h.window)
			cur := p.IncrBy(rctx, key, h.n)
			p.PExpire(rctx, key, 2*ddosWindow+10*time.Second)
			prev := p.Get(rctx, s.counterKey(h.ip, h.window-w))
			cs = append(cs, counted{h, cur, prev})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		s.cl.Fail(cluster.OpDDoS, err)
		s.requeue()
		return
	}
	for _, x := range cs {
		prev, _ := x.prev.Int64()
		elapsed := min(max(now-x.hit.window, 0), w)
		est := float64(prev)*float64(w-elapsed)/float64(w) + float64(x.cur.Val())
		if est <= c.threshold || s.b.blockedUntil(x.hit.ip) != 0 {
			continue
		}
		until := now + c.block
		made, err := s.announce(rctx, x.hit.ip, until)
		if err != nil {
			s.cl.Fail(cluster.OpDDoS, err)
			s.requeue()
			return
		}
		s.b.applyBlock(x.hit.ip, until)
		if made {
			// Counted here even when a resync running beside this flush
			// applied it first: Redis says this replica made it.
			s.b.blocks.Add(1)
		}
	}
	for i := range s.buf {
		if h := &s.buf[i]; h.announce {
			if _, err := s.announce(rctx, h.ip, h.until); err != nil {
				s.cl.Fail(cluster.OpDDoS, err)
				s.requeue()
				return
			}
			h.announce = false
		}
	}
}

// requeue keeps the blocks of the last drain that are not announced yet for
// the next flush.
func (s *BlockSync) requeue() {
	for i := range s.buf {
		if h := &s.buf[i]; h.announce {
			s.b.requeueAnnounce(h.ip)
		}
	}
}

// announce records and announces a block of ip until (Unix ns); made
// reports whether the IP was not blocked in Redis before.
func (s *BlockSync) announce(ctx context.Context, ip netip.Addr, until int64) (made bool, err error) {
	n, err := blockScript.Run(ctx, s.cl.Redis(), []string{s.set},
		ip.String(), until/int64(time.Millisecond), s.b.now().UnixMilli(),
		s.cl.Channel(), s.cl.Announcement(blockTopic, "block")).Int()
	return n == 1, err
}

// unblocked shares an unblock made here (the admin API), or keeps it for
// when Redis is back.
func (s *BlockSync) unblocked(ip netip.Addr) {
	if !s.cl.Up() {
		s.cl.Fallback(cluster.OpDDoS)
		s.keepUnblock(ip)
		return
	}
	ctx, cancel := s.cl.RequestContext()
	defer cancel()
	if err := s.unblock(ctx, ip); err != nil {
		s.cl.Fail(cluster.OpDDoS, err)
		s.cl.Fallback(cluster.OpDDoS)
		s.keepUnblock(ip)
	}
}

func (s *BlockSync) keepUnblock(ip netip.Addr) {
	s.mu.Lock()
	s.unblocks[ip] = struct{}{}
	s.mu.Unlock()
}

// unblock removes ip's block and counts from Redis and announces it.
func (s *BlockSync) unblock(ctx context.Context, ip netip.Addr) error {
	now := s.b.now().UnixNano()
	start := now - now%int64(ddosWindow)
	// Without its counts, the next flush would block it again at once.
	err := s.cl.Redis().Del(ctx, s.counterKey(ip, start), s.counterKey(ip, start-int64(ddosWindow))).Err()
	if err == nil {
		err = unblockScript.Run(ctx, s.cl.Redis(), []string{s.set}, ip.String(), s.cl.Channel(), s.cl.Announcement(blockTopic, "unblock")).Err()
	}
	return err
}

// handle applies a peer's announcement: "block <ip> <until ms>" or
// "unblock <ip>".
func (s *BlockSync) handle(_ context.Context, m cluster.Message) {
	if m.Own {
		return // applied when made
	}
	f := strings.Fields(m.Payload)
	if len(f) < 2 {
		return
	}
	ip, err := netip.ParseAddr(f[1])
	if err != nil {
		return
	}
	ip = ip.Unmap()
	switch {
	case f[0] == "block" && len(f) == 3:
		ms, err := strconv.ParseInt(f[2], 10, 64)
		if err == nil {
			s.b.applyBlock(ip, ms*int64(time.Millisecond))
		}
	case f[0] == "unblock":
		s.b.applyUnblock(ip)
	}
}

// resync makes the local blocks those held in Redis: blocks there are
// applied, and blocks here that Redis no longer holds (lifted while this
// replica missed the announcement) are lifted, except those made here and
// not announced yet.
func (s *BlockSync) resync(ctx context.Context) {
	rctx, cancel := s.cl.BackgroundContext(ctx)
	defer cancel()
	// Unblocks made while Redis was down first, or the load would bring
	// those blocks back.
	s.mu.Lock()
	pending := s.unblocks
	s.unblocks = make(map[netip.Addr]struct{})
	s.mu.Unlock()
	for ip := range pending {
		if err := s.unblock(rctx, ip); err != nil {
			s.cl.Fail(cluster.OpDDoS, err)
			s.mu.Lock()
			for ip := range pending {
				s.unblocks[ip] = struct{}{}
			}
			s.mu.Unlock()
			return
		}
		delete(pending, ip)
	}
	now := s.b.now().UnixMilli()
	zs, err := s.cl.Redis().ZRangeByScoreWithScores(rctx, s.set, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(now, 10), Max: "+inf"}).Result()
	if err != nil {
		s.cl.Fail(cluster.OpDDoS, err)
		return
	}
	shared := make(map[netip.Addr]int64, len(zs))
	for _, z := range zs {
		m, _ := z.Member.(string)
		ip, err := netip.ParseAddr(m)
		if err != nil {
			continue
		}
		shared[ip.Unmap()] = int64(z.Score) * int64(time.Millisecond)
	}
	added, lifted := s.b.reconcileBlocks(shared)
	if added+lifted > 0 {
		s.log.Info("shared blocks loaded", "blocked_ips", len(shared), "added", added, "lifted", lifted)
	}
}
