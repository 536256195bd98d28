package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// tokenCacheTTL bounds how long an entry lives after it was made, even
	// when the token's exp is later. It bounds how long the cache can
	// outlive anything the hit checks do not see.
	tokenCacheTTL = 60 * time.Second
	// tokenCacheSize is the most entries the cache holds: about 1 KiB each
	// with typical claims, so about 10 MiB when full.
	tokenCacheSize = 10000
	// tokenCacheMaxToken is the longest token the cache takes. Longer ones
	// (rare: a typical token is well under 2 KiB) are verified every time,
	// so that a full cache cannot hold 10,000 sets of huge claims.
	tokenCacheMaxToken = 4 << 10
	// tokenCacheShards spreads the cache over independently locked shards
	// so that concurrent requests rarely wait for one another.
	tokenCacheShards = 16
	// tokenCacheEvictSample is how many entries of a full shard an insert
	// looks at to find one to evict: all expired ones among them go, and
	// if none is expired the oldest does. Sampling keeps an insert O(1)
	// even when a shard is full of live entries.
	tokenCacheEvictSample = 16
)

// tokenCache maps the hashes of verified tokens to their claims, so that a
// token seen again skips signature verification and claim parsing, the
// bulk of an authenticated request's cost. It belongs to one jwtVerifier, hence to one Authenticator and one
// config: a reload builds a new Authenticator with an empty cache, so a new
// secret, a removed PEM key or a changed issuer or audience never meets an
// entry made under the old config.
//
// Security rules:
//   - The key is the SHA-256 of the exact token bytes; the token itself is
//     never stored. A token that differs in any byte is another entry.
//   - Only tokens that verified are stored. Failures are not cached: a
//     negative entry would let a client pin a refusal cheaply, and the
//     uncached path already bounds the work a bad token causes.
//   - A hit re-checks the token's times against the clock with the
//     verifier's leeway, exactly as the parser would: exp (folded into the
//     entry's deadline), nbf and iat (folded into validFrom).
//   - An entry lives at most tokenCacheTTL after it was made, whatever the
//     token's exp says.
//   - A token verified with a JWKS key is accepted from the cache only
//     while that key is in the JWKS set the verifier currently holds. A
//     refetch keeps the *verifyKey of every key it finds unchanged (same
//     kid, alg and public key), so a rotation that keeps a key keeps its
//     entries, and one that drops it ends them at the next hit: a removed
//     key stops being honoured as soon as the gateway has fetched the set
//     without it (jwt.jwks_refresh, or sooner on an unknown kid), not a TTL
//     later. Static keys (the secret, PEM files) live as long as the
//     Authenticator.
//   - Claims in an entry are never handed out: every caller gets its own
//     deep copy, so nothing downstream can change what the next request
//     sees.
//
// It is safe for concurrent use.
type tokenCache struct {
	shards [tokenCacheShards]tokenShard
}

type tokenShard struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]cachedToken
	// Pad the shard to its own cache line so that shards do not contend
	// through false sharing.
	_ [48]byte
}

// cachedToken is a verified token. It is immutable once stored.
type cachedToken struct {
	claims jwt.MapClaims // read-only; callers get a copy
	key    *verifyKey    // the key the token verified with
	// validFrom and deadline bound the instants at which the token is
	// valid: now must satisfy !now.Before(validFrom) && now.Before(deadline).
	// validFrom is max(nbf, iat) - leeway (zero without either);
	// deadline is min(exp + leeway, insertion + tokenCacheTTL).
	validFrom time.Time
	deadline  time.Time
	inserted  time.Time
}

func newTokenCache() *tokenCache {
	c := &tokenCache{}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]cachedToken)
	}
	return c
}

func (c *tokenCache) shard(sum *[sha256.Size]byte) *tokenShard {
	return &c.shards[sum[0]%tokenCacheShards]
}

// get returns the entry for sum if it is valid at now and its key is still
// trusted: a static key, or a JWKS key that is in jwks, the verifier's
// current set. An entry that is not is dropped.
func (c *tokenCache) get(sum *[sha256.Size]byte, now time.Time, jwks *keySet) (cachedToken, bool) {
	s := c.shard(sum)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[*sum]
	if !ok {
		return cachedToken{}, false
	}
	if !e.validAt(now) || e.key.fromJWKS && !jwks.has(e.key) {
		delete(s.m, *sum)
		return cachedToken{}, false
	}
	return e, true
}

func (e *cachedToken) validAt(now time.Time) bool {
	return !now.Before(e.validFrom) && now.Before(e.deadline)
}

// put stores e under sum unless it is already invalid at now. A full shard
// first makes room (see tokenCacheEvictSample).
func (c *tokenCache) put(sum *[sha256.Size]byte, e cachedToken, now time.Time) {
	if !e.validAt(now) {
		return
	}
	s := c.shard(sum)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*sum]; !ok && len(s.m) >= tokenCacheSize/tokenCacheShards {
		s.evict(now)
	}
	s.m[*sum] = e
}

// evict removes the expired entries among a sample of the shard's entries
// or, when none is expired, the oldest of the sample. Map iteration starts
// at a random place, so the sample differs from call to call.
func (s *tokenShard) evict(now time.Time) {
	var (
		oldest    [sha256.Size]byte
		oldestAt  time.Time
		n, gone   int
		haveFirst bool
	)
	for k, e := range s.m {
		if n == tokenCacheEvictSample {
			break
		}
		n++
		if !e.validAt(now) {
			delete(s.m, k)
			gone++
			continue
		}
		if !haveFirst || e.inserted.Before(oldestAt) {
			oldest, oldestAt, haveFirst = k, e.inserted, true
		}
	}
	if gone == 0 && haveFirst {
		delete(s.m, oldest)
	}
}

// len returns the number of entries, expired ones included.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// tokenHash is the SHA-256 of token. It feeds the hash through a stack
// buffer: sha256.Sum256([]byte(token)) would copy the token to the heap on
// every request.
func tokenHash(token string) [sha256.Size]byte {
	h := sha256.New()
	var buf [512]byte
	for len(token) > 0 {
		n := copy(buf[:], token)
		h.Write(buf[:n])
		token = token[n:]
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// newCachedToken builds the entry for claims that key just verified at
// now, with the verifier's leeway. ok is false when the claims lack a
// readable exp (verification requires one, so this is defensive).
func newCachedToken(claims jwt.MapClaims, key *verifyKey, now time.Time, leeway time.Duration) (e cachedToken, ok bool) {
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return e, false
	}
	nbf, err := claims.GetNotBefore()
	if err != nil {
		return e, false
	}
	iat, err := claims.GetIssuedAt()
	if err != nil {
		return e, false
	}
	e = cachedToken{claims: claims, key: key, inserted: now}
	e.deadline = exp.Add(leeway)
	if ttl := now.Add(tokenCacheTTL); ttl.Before(e.deadline) {
		e.deadline = ttl
	}
	for _, t := range []*jwt.NumericDate{nbf, iat} {
		if t != nil && t.Add(-leeway).After(e.validFrom) {
			e.validFrom = t.Add(-leeway)
		}
	}
	return e, true
}

// cloneClaims deep-copies JSON-decoded claims, so that a caller may do
// what it likes with its copy.
func cloneClaims(c jwt.MapClaims) jwt.MapClaims {
	if c == nil {
		return nil
	}
	out := make(jwt.MapClaims, len(c))
	for k, v := range c {
		out[k] = cloneJSON(v)
	}
	return out
}

func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = cloneJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneJSON(e)
		}
		return out
	default:
		// string, float64, bool, nil and json.Number are values.
		return v
	}
}
