package edge

import (
	"context"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"
)

// limiterSweepEvery is how often LocalLimiter.Run evicts idle keys.
const limiterSweepEvery = 10 * time.Second

// maxTolerance caps burst × emission interval so that clock arithmetic cannot
// overflow however small the rate.
const maxTolerance = int64(1) << 60 // about 36 years

// Decision is a limiter's answer for one request.
type Decision struct {
	// Allowed reports whether the request may pass.
	Allowed bool
	// Limit is the bucket size (burst).
	Limit int
	// Remaining is how many more requests would pass right now.
	Remaining int
	// Reset is the time until the bucket is full again.
	Reset time.Duration
	// RetryAfter is, for a denied request, the time until one would pass.
	RetryAfter time.Duration
}

// Limiter allows or denies a request under a per-key token bucket of rps
// tokens per second and size burst.
type Limiter interface {
	// Allow takes a token from key's bucket if there is one.
	Allow(key string, rps float64, burst int) Decision
}

// LocalLimiter is an in-process Limiter using GCRA, the generic cell rate
// algorithm: a token bucket kept as one number per key, the theoretical
// arrival time (TAT) of the next request if the client sent at exactly rps.
// A request at time now is allowed when max(TAT, now) + 1/rps - now is within
// burst/rps; it then advances TAT by 1/rps. A key whose TAT has passed is
// indistinguishable from a full bucket, so Run evicts it: memory follows the
// clients active within the last burst/rps seconds.
//
// Keys live in a sharded map (64 shards, each with its own mutex), so there
// is no lock shared by all requests. Allow does not allocate for a key
// already present.
type LocalLimiter struct {
	now     func() time.Time
	seed    maphash.Seed
	shards  [numShards]limitShard
	sweepIv time.Duration
}

type limitShard struct {
	mu   sync.Mutex
	m    map[string]int64 // key → TAT, Unix ns
	peak int
	_    [40]byte
}

// NewLocalLimiter returns an empty LocalLimiter. now is the clock (nil:
// time.Now).
func NewLocalLimiter(now func() time.Time) *LocalLimiter {
	if now == nil {
		now = time.Now
	}
	l := &LocalLimiter{now: now, seed: maphash.MakeSeed(), sweepIv: limiterSweepEvery}
	for i := range l.shards {
		l.shards[i].m = map[string]int64{}
	}
	return l
}

// Allow takes a token from key's bucket: rps tokens per second, at most
// burst (at least 1) in the bucket, a new key starting full. A rate that is
// not positive (or infinite) means no limit.
func (l *LocalLimiter) Allow(key string, rps float64, burst int) Decision {
	burst = max(burst, 1)
	if !(rps > 0) || math.IsInf(rps, 1) {
		return Decision{Allowed: true, Limit: burst, Remaining: burst}
	}
	t := max(int64(float64(time.Second)/rps), 1) // emission interval
	tol := maxTolerance
	if ft := float64(t) * float64(burst); ft < float64(maxTolerance) {
		tol = t * int64(burst)
	}
	now := l.now().UnixNano()

	s := &l.shards[maphash.String(l.seed, key)&(numShards-1)]
	s.mu.Lock()
	tat, ok := s.m[key]
	tat = max(tat, now)
	next := tat + t
	if allowAt := next - tol; allowAt > now {
		s.mu.Unlock()
		return Decision{Limit: burst, Reset: time.Duration(tat - now), RetryAfter: time.Duration(allowAt - now)}
	}
	if ok {
		s.m[key] = next
	} else {
		// Clone: the caller's string may share memory with something large.
		s.m[strings.Clone(key)] = next
		if len(s.m) > s.peak {
			s.peak = len(s.m)
		}
	}
	s.mu.Unlock()
	return Decision{
		Allowed:   true,
		Limit:     burst,
		Remaining: int((tol - (next - now)) / t),
		Reset:     time.Duration(next - now),
	}
}

// Len returns the number of keys held.
func (l *LocalLimiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Run evicts idle keys every 10 seconds until ctx is done.
func (l *LocalLimiter) Run(ctx context.Context) { every(ctx, l.sweepIv, l.sweep) }

// sweep evicts keys whose TAT has passed (their bucket is full) and shrinks
// shards that emptied out. One shard is locked at a time.
func (l *LocalLimiter) sweep() {
	now := l.now().UnixNano()
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, tat := range s.m {
			if tat <= now {
				delete(s.m, k)
			}
		}
		if s.peak >= shrinkMin && len(s.m) < s.peak/4 {
			m := make(map[string]int64, len(s.m))
			for k, v := range s.m {
				m[k] = v
			}
			s.m, s.peak = m, len(m)
		}
		s.mu.Unlock()
	}
}
