package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/altair-gateway/altair/internal/cluster"
)

// ErrStoreUnavailable is returned by the Redis store, without trying Redis,
// while the cluster client has Redis marked down. The cache treats it like
// any store failure: a miss.
var ErrStoreUnavailable = errors.New("cache: store unavailable (redis down)")

// topic is the cluster announcement topic of invalidations. Payloads are
// "key <key>", "prefix <prefix>" and "all".
const topic = "cache"

// countField is the field of a key's hash that counts its records, for
// Delete's answer. A sub-key always holds a NUL byte (route, NUL,
// credentials), so no sub-key is "n".
const countField = "n"

// scanCount is the COUNT of each SCAN step of DeletePrefix.
const scanCount = 512

// deletePrefixTimeout bounds a whole DeletePrefix: every SCAN step and every
// batch of deletions.
const deletePrefixTimeout = 10 * time.Second

// Redis is a Store in the Redis the replicas share (through the gateway's
// cluster client), so a response stored through one replica is a hit through
// every other.
//
// Layout: one hash per primary key, <redis.key_prefix>cache:<key>. Its fields
// are the sub-keys; each holds the sub's variants as records (expiry,
// response time, Variant, then the Entry's MarshalBinary encoding), plus the
// field "n" counting the records. Set is one script: it merges the new
// variant into its sub's records, dropping expired ones, the one with the
// same Variant and the oldest beyond the variant bound, and extends the
// hash's expiry to the longest retention in it; when a hash has many
// sub-keys (one per credential), it also removes a few expired ones at
// random, as Redis does with keys. Delete is UNLINK, and DeletePrefix SCANs
// every master. Every operation touches one key, so a Redis Cluster needs no
// hash tag. Expiries come from the cache's clock: replicas' clocks should
// agree (as freshness needs anyway).
//
// Each call is bounded by redis.timeout. While the cluster client has Redis
// marked down, no call is made: operations return ErrStoreUnavailable at
// once, so an outage costs nothing per request. A failed call marks Redis
// down (cluster.OpCache).
type Redis struct {
	cl     *cluster.Client
	prefix string // <key_prefix>cache:
	now    func() time.Time
}

// NewRedis returns a Store in cl's Redis; now is the clock (default
// time.Now).
func NewRedis(cl *cluster.Client, now func() time.Time) *Redis {
	if now == nil {
		now = time.Now
	}
	return &Redis{cl: cl, prefix: cl.Key("cache") + ":", now: now}
}

func (s *Redis) key(key string) string { return s.prefix + key }

// available reports whether Redis may be called, counting a fallback when
// not.
func (s *Redis) available() bool {
	if s.cl.Up() {
		return true
	}
	s.cl.Fallback(cluster.OpCache)
	return false
}

// failed records a failed call unless it failed because the caller's ctx
// ended (the client went away: Redis is not to blame).
func (s *Redis) failed(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.cl.Fail(cluster.OpCache, err)
	s.cl.Fallback(cluster.OpCache)
	return fmt.Errorf("redis cache %s: %w", op, err)
}

// Get implements Store.
func (s *Redis) Get(ctx context.Context, key, sub string) ([]*Entry, error) {
	es, _, err := s.get(ctx, key, sub)
	if err != nil && ctx.Err() != nil {
		return nil, nil // the request is gone; not a store failure
	}
	return es, err
}

// get returns the live variants under key and sub with their expiries.
func (s *Redis) get(ctx context.Context, key, sub string) ([]*Entry, []time.Time, error) {
	if !s.available() {
		return nil, nil, ErrStoreUnavailable
	}
	rctx, cancel := context.WithTimeout(ctx, s.cl.Timeout())
	v, err := s.cl.Redis().HGet(rctx, s.key(key), sub).Bytes()
	cancel()
	if errors.Is(err, redis.Nil) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, s.failed(ctx, "get", err)
	}
	es, exps := decodeRecords(v, s.now())
	return es, exps, nil
}

// Set implements Store.
func (s *Redis) Set(ctx context.Context, key, sub string, e *Entry, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	if !s.available() {
		return ErrStoreUnavailable
	}
	now := s.now()
	exp := now.Add(ttl)
	rec, err := appendRecord(nil, e, exp)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cl.Timeout())
	err = setScript.Run(rctx, s.cl.Redis(), []string{s.key(key)},
		sub, rec, e.Variant, exp.UnixMilli(), now.UnixMilli(), e.ResponseTime.UnixMilli(), maxVariants).Err()
	cancel()
	if err != nil && !errors.Is(err, redis.Nil) {
		return s.failed(ctx, "set", err)
	}
	return nil
}

// Delete implements Store. It also announces the deletion to the replicas'
// memory tiers.
func (s *Redis) Delete(ctx context.Context, key string) (int, error) {
	if !s.available() {
		return 0, ErrStoreUnavailable
	}
	rctx, cancel := context.WithTimeout(ctx, s.cl.Timeout())
	n, err := deleteScript.Run(rctx, s.cl.Redis(), []string{s.key(key)},
		s.cl.Channel(), s.cl.Announcement(topic, "key "+key)).Int()
	cancel()
	if err != nil {
		return 0, s.failed(ctx, "delete", err)
	}
	return max(n, 0), nil
}

// DeletePrefix implements Store: SCAN MATCH on every master, each batch of
// keys found removed in one pipeline (their record counts read, then
// UNLINK). Each step is bounded by redis.timeout and the whole by ten
// seconds. The deletion is then announced to the replicas' memory tiers,
// even when it was cut short.
func (s *Redis) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if !s.available() {
		return 0, ErrStoreUnavailable
	}
	total, err := s.deletePrefix(ctx, prefix)
	payload := "prefix " + prefix
	if prefix == "" {
		payload = "all"
	}
	pctx, cancel := context.WithTimeout(ctx, s.cl.Timeout())
	perr := s.cl.Publish(pctx, topic, payload)
	cancel()
	if err == nil && perr != nil {
		err = perr
	}
	if err != nil {
		return total, s.failed(ctx, "delete prefix", err)
	}
	return total, nil
}

func (s *Redis) deletePrefix(ctx context.Context, prefix string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, deletePrefixTimeout)
	defer cancel()
	pattern := globEscape(s.key(prefix)) + "*"
	var total atomic.Int64 // masters are visited concurrently
	err := s.cl.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		var cursor uint64
		for {
			sctx, cancel := context.WithTimeout(ctx, s.cl.Timeout())
			keys, next, err := node.Scan(sctx, cursor, pattern, scanCount).Result()
			cancel()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				n, err := s.unlink(ctx, node, keys)
				total.Add(int64(n))
				if err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	})
	return int(total.Load()), err
}

// unlink removes keys from node in one pipeline and returns how many
// records they held.
func (s *Redis) unlink(ctx context.Context, node *redis.Client, keys []string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cl.Timeout())
	defer cancel()
	counts := make([]*redis.StringCmd, len(keys))
	_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			counts[i] = p.HGet(ctx, k, countField)
			p.Unlink(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	n := 0
	for _, c := range counts {
		if v, err := c.Int(); err == nil && v > 0 {
			n += v
		}
	}
	return n, nil
}

// globEscape escapes the characters SCAN MATCH patterns treat specially.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// A record is one variant in a sub-key's field: its expiry and response
// time in Unix milliseconds (big-endian float64s, which the script reads
// with struct.unpack), the Variant's length (uint32) and bytes, then the
// encoded Entry's length (uint32) and bytes.
const recordHeader = 8 + 8 + 4

// appendRecord appends e's record, expiring at exp, to b.
func appendRecord(b []byte, e *Entry, exp time.Time) ([]byte, error) {
	enc, err := e.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if len(enc) > math.MaxUint32 || len(e.Variant) > math.MaxUint32 {
		return nil, errors.New("cache: entry too large for the redis store")
	}
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(float64(exp.UnixMilli())))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(float64(e.ResponseTime.UnixMilli())))
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Variant)))
	b = append(b, e.Variant...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(enc)))
	return append(b, enc...), nil
}

// decodeRecords returns the entries of a sub-key's field that live past now,
// with their expiries. A record that cannot be decoded (written by another
// version, or damaged) ends the reading: what came before it is returned.
func decodeRecords(v []byte, now time.Time) ([]*Entry, []time.Time) {
	var es []*Entry
	var exps []time.Time
	nowMs := float64(now.UnixMilli())
	for len(v) >= recordHeader {
		exp := math.Float64frombits(binary.BigEndian.Uint64(v))
		vlen := uint64(binary.BigEndian.Uint32(v[16:]))
		rest := v[recordHeader:]
		if vlen+4 > uint64(len(rest)) {
			break
		}
		elen := uint64(binary.BigEndian.Uint32(rest[vlen:]))
		rest = rest[vlen+4:]
		if elen > uint64(len(rest)) {
			break
		}
		enc := rest[:elen]
		v = rest[elen:]
		if !(exp > nowMs) {
			continue
		}
		e := new(Entry)
		if err := e.UnmarshalBinary(enc); err != nil {
			break
		}
		es = append(es, e)
		exps = append(exps, time.UnixMilli(int64(exp)))
	}
	return es, exps
}

// setScript stores a record. KEYS[1] is the key's hash; ARGV: the sub-key,
// the record, its Variant, its expiry, now and its response time (Unix ms),
// and the most variants a sub-key keeps.
var setScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local key, sub, rec, variant = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local exp, now, rt, maxv = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])

-- records splits a field into {expiry, response time, variant, record};
-- with raw false the record itself is not copied.
local function records(v, raw)
  local out, pos, n = {}, 1, #v
  while pos + 19 <= n do
    local e, r, vlen, p = struct.unpack('>ddI4', v, pos)
    if p + vlen + 3 > n then break end
    local elen, q = struct.unpack('>I4', v, p + vlen)
    local stop = q + elen - 1
    if stop > n then break end
    local rec = nil
    if raw then rec = string.sub(v, pos, stop) end
    out[#out + 1] = {e, r, string.sub(v, p, p + vlen - 1), rec}
    pos = stop + 1
  end
  return out
end

local kept, dropped = {}, 0
local old = redis.call('HGET', key, sub)
if old then
  for _, r in ipairs(records(old, true)) do
    if r[1] <= now or r[3] == variant then
      dropped = dropped + 1
    else
      kept[#kept + 1] = r
    end
  end
end
while #kept >= maxv do
  local oldest = 1
  for i = 2, #kept do
    if kept[i][2] < kept[oldest][2] then oldest = i end
  end
  table.remove(kept, oldest)
  dropped = dropped + 1
end
local parts, last = {}, exp
for i, r in ipairs(kept) do
  parts[i] = r[4]
  if r[1] > last then last = r[1] end
end
parts[#parts + 1] = rec
redis.call('HSET', key, sub, table.concat(parts))
redis.call('HINCRBY', key, 'n', 1 - dropped)

-- Many sub-keys (one per credential): drop a few that have expired.
if redis.call('HLEN', key) > 65 then
  local sample = redis.pcall('HRANDFIELD', key, 8)
  if type(sample) == 'table' and sample.err == nil then
    for _, f in ipairs(sample) do
      if f ~= 'n' and f ~= sub then
        local v = redis.call('HGET', key, f)
        if v then
          local live, count = false, 0
          for _, r in ipairs(records(v, false)) do
            count = count + 1
            if r[1] > now then live = true end
          end
          if not live then
            redis.call('HDEL', key, f)
            redis.call('HINCRBY', key, 'n', -count)
          end
        end
      end
    end
  end
end

local want = math.ceil(last - now)
if want < 1 then want = 1 end
if redis.call('PTTL', key) < want then redis.call('PEXPIRE', key, want) end
return 1
`)

// deleteScript removes a key's hash and announces it. KEYS[1] is the hash;
// ARGV[1] the channel and ARGV[2] the announcement. It returns the number
// of records the hash held.
var deleteScript = redis.NewScript(`
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0') or 0
redis.call('UNLINK', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return n
`)
