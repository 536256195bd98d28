package edge

import (
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/altair-gateway/altair/internal/cluster"
)

// maxToleranceMicros caps burst × emission interval in the shared limiter,
// as maxTolerance does in the local one (about 35 years in microseconds,
// well inside the integers a Lua number holds exactly).
const maxToleranceMicros = int64(1) << 50

// gcraScript is LocalLimiter's GCRA as one atomic Redis script, so replicas
// that share a key share one bucket. Times are microseconds from Redis's own
// clock (TIME), so the replicas' clocks do not matter. KEYS[1] holds the TAT;
// ARGV[1] is the emission interval and ARGV[2] the tolerance (burst ×
// interval). It returns {allowed, remaining, reset, retry_after}. The key
// expires when its bucket is full again.
var gcraScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = tonumber(ARGV[1])
local tol = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local nxt = tat + t
local allow_at = nxt - tol
if allow_at > now then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000))
return {1, math.floor((tol - (nxt - now)) / t), nxt - now, 0}
`)

// SharedLimiter is a Limiter whose buckets live in Redis, so N replicas
// enforce one limit per key rather than N: one script call (EVALSHA, EVAL
// the first time a server sees it) per decision. Its decisions are the same
// as LocalLimiter's, so the RateLimit-* headers stay right.
//
// When Redis fails or times out, that decision is the local limiter's, and
// Redis is marked down; while it is down no request tries Redis (each replica
// then enforces the limit on its own) until the cluster client's ping brings
// it back.
type SharedLimiter struct {
	cl    *cluster.Client
	local *LocalLimiter
	key   string // key prefix
}

// NewSharedLimiter returns a limiter sharing buckets through cl and falling
// back to local.
func NewSharedLimiter(cl *cluster.Client, local *LocalLimiter) *SharedLimiter {
	return &SharedLimiter{cl: cl, local: local, key: cl.Key("rl") + ":"}
}

// Allow takes a token from key's shared bucket (see LocalLimiter.Allow).
func (l *SharedLimiter) Allow(key string, rps float64, burst int) Decision {
	burst = max(burst, 1)
	if !(rps > 0) || math.IsInf(rps, 1) {
		return Decision{Allowed: true, Limit: burst, Remaining: burst}
	}
	if !l.cl.Up() {
		l.cl.Fallback(cluster.OpRateLimit)
		return l.local.Allow(key, rps, burst)
	}
	t := max(int64(1e6/rps), 1) // emission interval, µs
	tol := maxToleranceMicros
	if ft := float64(t) * float64(burst); ft < float64(maxToleranceMicros) {
		tol = t * int64(burst)
	}
	ctx, cancel := l.cl.RequestContext()
	res, err := gcraScript.Run(ctx, l.cl.Redis(), []string{l.key + key}, t, tol).Int64Slice()
	cancel()
	if err != nil || len(res) != 4 {
		l.cl.Fail(cluster.OpRateLimit, err)
		l.cl.Fallback(cluster.OpRateLimit)
		return l.local.Allow(key, rps, burst)
	}
	return Decision{
		Allowed:    res[0] == 1,
		Limit:      burst,
		Remaining:  int(res[1]),
		Reset:      time.Duration(res[2]) * time.Microsecond,
		RetryAfter: time.Duration(res[3]) * time.Microsecond,
	}
}
