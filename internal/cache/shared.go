package cache

import (
	"context"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/altair-gateway/altair/internal/cluster"
)

// maxPending bounds the invalidations a replica keeps while Redis is down;
// beyond it, the whole shared tier is emptied when Redis returns.
const maxPending = 1024

// Shared is one process's link to the response cache its replicas share
// through Redis. The gateway makes one per process (it registers with the
// cluster client, which has no way to unregister) and gives it to every
// Cache it builds (Options.Shared); such a Cache keeps its entries in Redis,
// behind a Memory store of its own unless Options.SharedOnly.
//
// The memory tiers must not keep what another replica invalidated. Every
// Delete and DeletePrefix on the shared tier is announced over the cluster
// client's pub/sub channel, and each replica drops its memory copies when
// the announcement arrives: until then (normally a few milliseconds) a
// replica may still serve its copy. A replica whose subscription was
// re-established, or whose Redis came back, may have missed announcements,
// so it empties its memory tiers then; the next requests fill them from
// Redis.
//
// While Redis is down, the memory tier alone answers and invalidations
// apply to it only; they are kept (up to maxPending, beyond which the whole
// shared tier is emptied instead) and written to Redis, and announced, when
// it returns.
type Shared struct {
	cl  *cluster.Client
	rds *Redis // for the invalidations kept while Redis was down
	log *slog.Logger

	mu      sync.Mutex
	tiers   map[*tiered]struct{}
	pending map[string]struct{} // announcement payloads not yet made
	lost    bool                // more than maxPending were made

	flushing atomic.Bool // flushKept is running
}

// NewShared registers the shared cache tier with cl; log receives its
// notices (nil: none).
func NewShared(cl *cluster.Client, log *slog.Logger) *Shared {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Shared{
		cl: cl, rds: NewRedis(cl, nil), log: log,
		tiers:   make(map[*tiered]struct{}),
		pending: make(map[string]struct{}),
	}
	cl.Handle(topic, s.handle)
	cl.OnResync(s.resync)
	return s
}

func (s *Shared) attach(t *tiered) {
	s.mu.Lock()
	s.tiers[t] = struct{}{}
	s.mu.Unlock()
}

func (s *Shared) detach(t *tiered) {
	s.mu.Lock()
	delete(s.tiers, t)
	s.mu.Unlock()
}

func (s *Shared) each(fn func(*tiered)) {
	s.mu.Lock()
	ts := make([]*tiered, 0, len(s.tiers))
	for t := range s.tiers {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	for _, t := range ts {
		fn(t)
	}
}

// dropOthers applies an invalidation made through t to the other memory
// tiers of this process (a Cache being replaced by a reload and its
// successor), which ignore their own process's announcements.
func (s *Shared) dropOthers(t *tiered, kind, arg string) {
	s.each(func(o *tiered) {
		if o != t {
			o.drop(kind, arg)
		}
	})
}

// keep records an invalidation Redis did not receive. The failure marked
// Redis down, and its return (resync) writes what is kept; but the ping that
// brings it back may come between the failure and this call, so when Redis
// is already up again the kept invalidations are written now, or another
// replica could keep serving the invalidated entries until they expire.
func (s *Shared) keep(payload string) {
	s.mu.Lock()
	if _, ok := s.pending[payload]; !ok {
		if len(s.pending) >= maxPending {
			s.lost = true
		} else {
			s.pending[payload] = struct{}{}
		}
	}
	s.mu.Unlock()
	if s.cl.Up() && s.flushing.CompareAndSwap(false, true) {
		go s.flushKept()
	}
}

// flushKept writes the kept invalidations while Redis is up, until none is
// left or a write fails (which marks Redis down: its resync takes over).
func (s *Shared) flushKept() {
	defer s.flushing.Store(false)
	for s.cl.Up() {
		s.mu.Lock()
		pending, lost := s.pending, s.lost
		if len(pending) == 0 && !lost {
			s.mu.Unlock()
			return
		}
		s.pending, s.lost = make(map[string]struct{}), false
		s.mu.Unlock()
		if err := s.write(context.Background(), pending, lost); err != nil {
			s.restore(pending, lost)
			return
		}
	}
}

// restore puts back invalidations a write did not make.
func (s *Shared) restore(pending map[string]struct{}, lost bool) {
	s.mu.Lock()
	for p := range pending {
		if len(s.pending) >= maxPending {
			s.lost = true
			break
		}
		s.pending[p] = struct{}{}
	}
	s.lost = s.lost || lost
	s.mu.Unlock()
}

// handle applies another replica's announcement to the memory tiers.
func (s *Shared) handle(_ context.Context, m cluster.Message) {
	if m.Own {
		return // applied when it was made
	}
	kind, arg, _ := strings.Cut(m.Payload, " ")
	s.each(func(t *tiered) { t.drop(kind, arg) })
}

// resync writes the invalidations kept while Redis was down, then empties
// the memory tiers, which may have missed announcements.
func (s *Shared) resync(ctx context.Context) {
	s.mu.Lock()
	pending, lost := s.pending, s.lost
	s.pending, s.lost = make(map[string]struct{}), false
	s.mu.Unlock()
	if err := s.write(ctx, pending, lost); err != nil {
		s.restore(pending, lost)
	}
	s.each(func(t *tiered) { t.drop("all", "") })
}

func (s *Shared) write(ctx context.Context, pending map[string]struct{}, lost bool) error {
	if lost {
		n, err := s.rds.DeletePrefix(ctx, "")
		if err == nil {
			s.log.Warn("cache: more invalidations than could be kept were made while Redis was down; the shared cache was emptied", "entries", n)
		}
		return err
	}
	for p := range pending {
		kind, arg, _ := strings.Cut(p, " ")
		var err error
		switch kind {
		case "key":
			rctx, cancel := s.cl.BackgroundContext(ctx)
			_, err = s.rds.Delete(rctx, arg)
			cancel()
		case "prefix":
			_, err = s.rds.DeletePrefix(ctx, arg)
		case "all":
			_, err = s.rds.DeletePrefix(ctx, "")
		}
		if err != nil {
			return err
		}
	}
	if len(pending) > 0 {
		s.log.Info("cache: invalidations made while Redis was down written to it", "invalidations", len(pending))
	}
	return nil
}

// genStripes is how many invalidation counters a tiered store keeps (by
// key hash).
const genStripes = 64

// tiered is the Memory store in front of the shared Redis tier. Reads try
// memory, then Redis, filling memory with what Redis had for its remaining
// time; writes and deletions go to both. When Redis is unavailable the
// memory tier alone answers: that is the fallback, so tiered reports no
// error (the cluster client logs the outage once and counts it in
// redis_errors_total and redis_fallbacks_total, op cache).
type tiered struct {
	mem    *Memory
	rds    *Redis
	shared *Shared
	seed   maphash.Seed
	// gens count invalidations by key stripe: a memory fill from Redis
	// that raced with one is undone, so a copy read just before a deletion
	// does not outlive it in memory.
	gens [genStripes]atomic.Uint64
}

func newTiered(mem *Memory, rds *Redis, shared *Shared) *tiered {
	return &tiered{mem: mem, rds: rds, shared: shared, seed: maphash.MakeSeed()}
}

func (t *tiered) gen(key string) *atomic.Uint64 {
	return &t.gens[maphash.String(t.seed, key)%genStripes]
}

func (t *tiered) bumpAll() {
	for i := range t.gens {
		t.gens[i].Add(1)
	}
}

// Get implements Store: memory, or when it has nothing, Redis.
func (t *tiered) Get(ctx context.Context, key, sub string) ([]*Entry, error) {
	if es := t.getUpper(ctx, key, sub); es != nil {
		return es, nil
	}
	return t.getLower(ctx, key, sub), nil
}

// getUpper reads the memory tier.
func (t *tiered) getUpper(ctx context.Context, key, sub string) []*Entry {
	es, _ := t.mem.Get(ctx, key, sub)
	return es
}

// getLower reads Redis and copies into memory what it has that memory has
// not (or has older), for the time Redis keeps it; nil when Redis has
// nothing or is unavailable.
func (t *tiered) getLower(ctx context.Context, key, sub string) []*Entry {
	g := t.gen(key)
	before := g.Load()
	es, exps, err := t.rds.get(ctx, key, sub)
	if err != nil || len(es) == 0 {
		return nil
	}
	have, _ := t.mem.Get(ctx, key, sub)
	now := t.rds.now()
	for i, e := range es {
		if !newerThanSame(e, have) {
			continue
		}
		_ = t.mem.Set(ctx, key, sub, e, exps[i].Sub(now))
	}
	if g.Load() != before {
		// An invalidation arrived while Redis answered: this request may
		// use what was read before it, but memory must not keep it.
		_, _ = t.mem.Delete(ctx, key)
	}
	return es
}

// newerThanSame reports whether e is newer than the entry in have with the
// same Variant, or have has none.
func newerThanSame(e *Entry, have []*Entry) bool {
	for _, h := range have {
		if h.Variant == e.Variant {
			return e.ResponseTime.After(h.ResponseTime)
		}
	}
	return true
}

// Set implements Store: memory and Redis.
func (t *tiered) Set(ctx context.Context, key, sub string, e *Entry, ttl time.Duration) error {
	_ = t.mem.Set(ctx, key, sub, e, ttl)
	_ = t.rds.Set(ctx, key, sub, e, ttl)
	return nil
}

// Delete implements Store: Redis (announced to the other replicas), then
// memory. It returns the larger count, since memory mostly holds copies of
// what Redis holds.
func (t *tiered) Delete(ctx context.Context, key string) (int, error) {
	n, err := t.rds.Delete(ctx, key)
	if err != nil {
		t.shared.keep("key " + key)
	}
	t.gen(key).Add(1)
	m, _ := t.mem.Delete(ctx, key)
	t.shared.dropOthers(t, "key", key)
	return max(n, m), nil
}

// DeletePrefix implements Store, as Delete does.
func (t *tiered) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	n, err := t.rds.DeletePrefix(ctx, prefix)
	if err != nil {
		if prefix == "" {
			t.shared.keep("all")
		} else {
			t.shared.keep("prefix " + prefix)
		}
	}
	t.bumpAll()
	m, _ := t.mem.DeletePrefix(ctx, prefix)
	if prefix == "" {
		t.shared.dropOthers(t, "all", "")
	} else {
		t.shared.dropOthers(t, "prefix", prefix)
	}
	return max(n, m), nil
}

// drop applies an invalidation ("key", "prefix" or "all") to the memory
// tier.
func (t *tiered) drop(kind, arg string) {
	ctx := context.Background()
	switch kind {
	case "key":
		t.gen(arg).Add(1)
		_, _ = t.mem.Delete(ctx, arg)
	case "prefix":
		t.bumpAll()
		_, _ = t.mem.DeletePrefix(ctx, arg)
	case "all":
		t.bumpAll()
		_, _ = t.mem.DeletePrefix(ctx, "")
	}
}
