package edge

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/altair-gateway/altair/internal/cluster"
)

// listTopic is the pub/sub topic of list changes.
const listTopic = "lists"

// listChangeScript changes one shared list and announces it, atomically, so
// announcements go out in the order of the versions they carry. KEYS are the
// list's set and the version counter; ARGV[1] is "+" or "-", ARGV[2] the
// CIDR, ARGV[3] the channel, ARGV[4] the announcement's start ("lists
// <origin> <kind>"). The message is "<start> <version> <+|-> <cidr>"; the
// new version is returned.
var listChangeScript = redis.NewScript(`
if ARGV[1] == '+' then
  redis.call('SADD', KEYS[1], ARGV[2])
else
  redis.call('SREM', KEYS[1], ARGV[2])
end
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. v .. ' ' .. ARGV[1] .. ' ' .. ARGV[2])
return v
`)

// listOp is one run-time list change.
type listOp struct {
	kind ListKind
	p    netip.Prefix
}

// ListSync shares the run-time entries of Lists (those the admin API adds
// and removes) between replicas through Redis: each list is a set, changed
// together with a version counter and announced on pub/sub by one script.
// Every replica applies an announcement as it arrives, so a change made on
// one applies on all within the pub/sub delay (milliseconds). An
// announcement whose version is not the next one (some were missed) makes
// the replica load both sets whole instead, and so does every resync (at
// start, when Redis comes back, after the subscription was re-established).
//
// Config entries are not shared: every replica has its own from its own
// file. A change made while Redis is down applies locally at once and is
// written to Redis when it comes back, before the sets are loaded again.
// When Redis comes back empty (restarted without persistence), the replicas
// write their run-time entries back to it.
type ListSync struct {
	cl    *cluster.Client
	lists *Lists
	log   *slog.Logger
	keys  [2]string // the sets, by ListKind
	ver   string    // the version counter

	// applied is the version the local run-time entries reflect; only the
	// subscriber goroutine (messages and resyncs, serialised by the
	// cluster client) touches it.
	applied int64

	mu      sync.Mutex
	pending map[listOp]bool // change → added; made while Redis was down
}

// NewListSync shares lists' run-time entries through cl.
func NewListSync(cl *cluster.Client, lists *Lists, log *slog.Logger) *ListSync {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// One hash tag: the script touches a set and the counter together,
	// which a Redis Cluster allows only within one slot.
	base := cl.Key("{lists}")
	s := &ListSync{
		cl: cl, lists: lists, log: log,
		keys:    [2]string{base + ":allow", base + ":deny"},
		ver:     base + ":version",
		pending: make(map[listOp]bool),
	}
	fn := s.changed
	lists.onChange.Store(&fn)
	cl.Handle(listTopic, s.handle)
	cl.OnResync(s.resync)
	return s
}

// changed writes a change made here (the admin API) to Redis, or keeps it
// for when Redis is back.
func (s *ListSync) changed(k ListKind, p netip.Prefix, added bool) {
	op := listOp{k, p}
	if !s.cl.Up() {
		s.cl.Fallback(cluster.OpLists)
		s.keep(op, added)
		return
	}
	ctx, cancel := s.cl.RequestContext()
	defer cancel()
	if err := s.write(ctx, op, added); err != nil {
		s.cl.Fail(cluster.OpLists, err)
		s.cl.Fallback(cluster.OpLists)
		s.keep(op, added)
	}
}

func (s *ListSync) keep(op listOp, added bool) {
	s.mu.Lock()
	s.pending[op] = added
	s.mu.Unlock()
}

func (s *ListSync) write(ctx context.Context, op listOp, added bool) error {
	sign := "-"
	if added {
		sign = "+"
	}
	return listChangeScript.Run(ctx, s.cl.Redis(), []string{s.keys[op.kind], s.ver},
		sign, op.p.String(), s.cl.Channel(), s.cl.Announcement(listTopic, op.kind.String())).Err()
}

// handle applies an announcement: "<kind> <version> <+|-> <cidr>".
func (s *ListSync) handle(ctx context.Context, m cluster.Message) {
	f := strings.Fields(m.Payload)
	if len(f) != 4 {
		return
	}
	k, ok := parseListKind(f[0])
	v, err := strconv.ParseInt(f[1], 10, 64)
	p, perr := parsePrefix(f[3])
	if !ok || err != nil || perr != nil || (f[2] != "+" && f[2] != "-") {
		s.log.Warn("shared list: ignored a malformed announcement", "payload", m.Payload)
		return
	}
	switch {
	case v <= s.applied:
		return // already in what was loaded
	case v > s.applied+1:
		s.load(ctx) // some were missed
		return
	}
	s.lists.applyRuntime(k, p, f[2] == "+")
	s.applied = v
}

// resync writes the changes kept while Redis was down (or, when Redis has
// lost the lists, every run-time entry held here), then loads both sets.
func (s *ListSync) resync(ctx context.Context) {
	rctx, cancel := s.cl.BackgroundContext(ctx)
	defer cancel()
	exists, err := s.cl.Redis().Exists(rctx, s.ver).Result()
	if err != nil {
		s.cl.Fail(cluster.OpLists, err)
		return
	}
	s.mu.Lock()
	ops := s.pending
	s.pending = make(map[listOp]bool)
	s.mu.Unlock()
	if exists == 0 {
		// A new or emptied Redis: what this replica holds is the best
		// account there is. Kept removals are already reflected in it.
		ops = make(map[listOp]bool)
		for _, k := range []ListKind{Allow, Deny} {
			for _, p := range s.lists.runtimePrefixes(k) {
				ops[listOp{k, p}] = true
			}
		}
		if len(ops) > 0 {
			s.log.Info("shared lists: Redis holds none, writing this replica's run-time entries", "entries", len(ops))
		}
	}
	for op, added := range ops {
		if err := s.write(rctx, op, added); err != nil {
			s.cl.Fail(cluster.OpLists, err)
			s.mu.Lock()
			for op, added := range ops {
				if _, newer := s.pending[op]; !newer {
					s.pending[op] = added
				}
			}
			s.mu.Unlock()
			return
		}
		delete(ops, op)
	}
	s.load(ctx)
}

// load replaces the local run-time entries with the shared sets.
func (s *ListSync) load(ctx context.Context) {
	rctx, cancel := s.cl.BackgroundContext(ctx)
	defer cancel()
	var allow, deny *redis.StringSliceCmd
	var ver *redis.StringCmd
	_, err := s.cl.Redis().TxPipelined(rctx, func(p redis.Pipeliner) error {
		allow = p.SMembers(rctx, s.keys[Allow])
		deny = p.SMembers(rctx, s.keys[Deny])
		ver = p.Get(rctx, s.ver)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		s.cl.Fail(cluster.OpLists, err)
		return
	}
	v, _ := ver.Int64() // 0 when there is none yet
	for k, cmd := range map[ListKind]*redis.StringSliceCmd{Allow: allow, Deny: deny} {
		set := make(map[netip.Prefix]struct{})
		for _, e := range cmd.Val() {
			p, err := parsePrefix(e)
			if err != nil {
				s.log.Warn("shared list: ignored a bad entry", "list", k.String(), "entry", e)
				continue
			}
			set[p] = struct{}{}
		}
		s.lists.replaceRuntime(k, set)
	}
	s.applied = v
}

func parseListKind(s string) (ListKind, bool) {
	switch s {
	case "allow":
		return Allow, true
	case "deny":
		return Deny, true
	}
	return 0, false
}
