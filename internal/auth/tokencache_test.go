package auth

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/identity"
)

// cacheFixture is an Authenticator with the secret and role claim headers,
// on a fake clock.
func cacheFixture(t *testing.T) (*Authenticator, *fakeClock) {
	t.Helper()
	cfg := baseJWT()
	cfg.ClaimHeaders = map[string]string{"sub": "X-User-ID", "role": "X-User-Role"}
	clock := newClock()
	return newAuth(t, config.Auth{JWT: cfg}, Options{Now: clock.Now}), clock
}

// dropStaticKeys leaves a with no static key, so that from then on only
// the token cache can authenticate a token: a request that succeeds was
// served from the cache.
func dropStaticKeys(a *Authenticator) { a.jwt.static = keySet{} }

func hs256(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims)
}

func withClaims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := claimsAt(t0)
	mod(c)
	return c
}

func TestTokenCacheHitSamePrincipalAndHeaders(t *testing.T) {
	t.Parallel()
	a, _ := cacheFixture(t)
	tok := hs256(t, withClaims(func(c jwt.MapClaims) {
		c["role"] = "admin"
		c["aud"] = []string{"altair", "other"}
		c["ext"] = map[string]any{"tier": "gold", "ids": []any{1, 2}}
	}))
	tests := []struct {
		name      string
		route     config.RouteAuth
		wantAuthz bool
	}{
		{"default", config.RouteAuth{}, false},
		{"forward_authorization", config.RouteAuth{ForwardAuthorization: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, s := handler(t, a, tt.route)
			var first *seen
			for i := range 2 {
				*s = seen{}
				w := get(h, "/api", "Authorization", "Bearer "+tok, "X-User-ID", "mallory", "X-User-Role", "root")
				if w.Code != http.StatusNoContent {
					t.Fatalf("request %d: status = %d, want 204", i, w.Code)
				}
				if got := s.header.Values("X-User-ID"); !slices.Equal(got, []string{"alice"}) {
					t.Errorf("request %d: X-User-ID = %q, want [alice]", i, got)
				}
				if got := s.header.Values("X-User-Role"); !slices.Equal(got, []string{"admin"}) {
					t.Errorf("request %d: X-User-Role = %q, want [admin]", i, got)
				}
				if got := s.header.Get("Authorization") != ""; got != tt.wantAuthz {
					t.Errorf("request %d: Authorization forwarded = %v, want %v", i, got, tt.wantAuthz)
				}
				if i == 0 {
					c := *s
					first = &c
					continue
				}
				if !reflect.DeepEqual(s.principal, first.principal) {
					t.Errorf("cached principal = %+v, want %+v", s.principal, first.principal)
				}
				if !reflect.DeepEqual(s.header, first.header) {
					t.Errorf("cached request headers = %v, want %v", s.header, first.header)
				}
			}
		})
	}
	if n := a.jwt.cache.len(); n != 1 {
		t.Errorf("cache.len() = %d, want 1", n)
	}
}

func TestTokenCacheServesHits(t *testing.T) {
	t.Parallel()
	a, _ := cacheFixture(t)
	h, s := handler(t, a, config.RouteAuth{})
	tok := hs256(t, claimsAt(t0))
	if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusNoContent {
		t.Fatalf("first: status = %d, want 204", w.Code)
	}
	dropStaticKeys(a)
	*s = seen{}
	if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusNoContent {
		t.Fatalf("hit: status = %d, want 204 from the cache", w.Code)
	}
	if s.principal == nil || s.principal.Name != "alice" || s.principal.Method != MethodJWT {
		t.Errorf("hit: principal = %+v", s.principal)
	}
	other := hs256(t, withClaims(func(c jwt.MapClaims) { c["sub"] = "bob" }))
	if w := get(h, "/api", "Authorization", "Bearer "+other); w.Code != http.StatusUnauthorized {
		t.Fatalf("uncached token without keys: status = %d, want 401", w.Code)
	}
}

// Whatever a downstream handler does to its principal's claims, the next
// request sees the token's claims.
func TestTokenCacheClaimsAreCopies(t *testing.T) {
	t.Parallel()
	a, _ := cacheFixture(t)
	tok := hs256(t, withClaims(func(c jwt.MapClaims) {
		c["aud"] = []string{"altair", "other"}
		c["ext"] = map[string]any{"tier": "gold"}
	}))
	h, s := handler(t, a, config.RouteAuth{})
	var want map[string]any
	for i := range 3 {
		*s = seen{}
		if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusNoContent {
			t.Fatalf("request %d: status = %d, want 204", i, w.Code)
		}
		if i == 0 {
			want = cloneClaims(s.principal.Claims)
		} else if !reflect.DeepEqual(map[string]any(s.principal.Claims), want) {
			t.Fatalf("request %d: claims = %v, want %v", i, s.principal.Claims, want)
		}
		c := s.principal.Claims
		c["sub"] = "mallory"
		c["aud"].([]any)[0] = "evil"
		c["ext"].(map[string]any)["tier"] = "platinum"
		c["new"] = true
	}
}

func TestTokenCacheTimes(t *testing.T) {
	t.Parallel()
	const leeway = 30 * time.Second // baseJWT's
	tests := []struct {
		name   string
		claims jwt.MapClaims
		// at is when the token is presented again after it was cached at
		// t0; ok is whether it is accepted then; cached is whether the
		// answer came from the cache.
		at     time.Duration
		ok     bool
		cached bool
	}{
		{"exp: just inside the leeway", withClaims(func(c jwt.MapClaims) { c["exp"] = t0.Add(10 * time.Second).Unix() }), 10*time.Second + leeway - time.Nanosecond, true, true},
		{"exp: at exp plus leeway", withClaims(func(c jwt.MapClaims) { c["exp"] = t0.Add(10 * time.Second).Unix() }), 10*time.Second + leeway, false, false},
		{"exp: expired while cached", withClaims(func(c jwt.MapClaims) { c["exp"] = t0.Add(10 * time.Second).Unix() }), time.Hour, false, false},
		{"TTL: just before", claimsAt(t0), tokenCacheTTL - time.Nanosecond, true, true},
		{"TTL: at", claimsAt(t0), tokenCacheTTL, true, false},
		{"TTL: well after, token still valid", claimsAt(t0), 30 * time.Minute, true, false},
		{"exp before TTL", withClaims(func(c jwt.MapClaims) { c["exp"] = t0.Add(-20 * time.Second).Unix() }), leeway - 20*time.Second, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, clock := cacheFixture(t)
			h, _ := handler(t, a, config.RouteAuth{})
			tok := hs256(t, tt.claims)
			if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusNoContent {
				t.Fatalf("at t0: status = %d, want 204", w.Code)
			}
			clock.Advance(tt.at)
			sum := tokenHash(tok)
			_, hit := a.jwt.cache.get(&sum, clock.Now(), nil)
			if hit != tt.cached {
				t.Errorf("cache.get at t0+%v = %v, want %v", tt.at, hit, tt.cached)
			}
			if !hit && a.jwt.cache.len() != 0 {
				t.Errorf("an invalid entry was not dropped on access: len = %d", a.jwt.cache.len())
			}
			// The answer is the one the uncached path gives at that instant.
			_, err := a.jwt.verify(t.Context(), tok)
			if uncachedOK := err == nil; uncachedOK != tt.ok {
				t.Fatalf("uncached verify at t0+%v ok = %v, test wants %v", tt.at, uncachedOK, tt.ok)
			}
			want := http.StatusUnauthorized
			if tt.ok {
				want = http.StatusNoContent
			}
			if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != want {
				t.Errorf("at t0+%v: status = %d, want %d", tt.at, w.Code, want)
			}
		})
	}
}

// A token is cached only once it is valid, and a hit re-checks nbf and
// iat: a clock stepped back does not make the cache accept a token the
// parser would refuse.
func TestTokenCacheNotBefore(t *testing.T) {
	t.Parallel()
	const leeway = 30 * time.Second
	a, clock := cacheFixture(t)
	h, _ := handler(t, a, config.RouteAuth{})
	tok := hs256(t, withClaims(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Minute).Unix() }))
	if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusUnauthorized {
		t.Fatalf("before nbf: status = %d, want 401", w.Code)
	}
	if n := a.jwt.cache.len(); n != 0 {
		t.Fatalf("a token not yet valid was cached: len = %d", n)
	}
	clock.Advance(time.Minute - leeway)
	if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusNoContent {
		t.Fatalf("at nbf-leeway: status = %d, want 204", w.Code)
	}
	if n := a.jwt.cache.len(); n != 1 {
		t.Fatalf("cache.len() = %d, want 1", n)
	}
	clock.Advance(-time.Second)
	if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusUnauthorized {
		t.Fatalf("clock stepped back before nbf-leeway: status = %d, want 401", w.Code)
	}
}

func TestTokenCacheRefusalsNotCached(t *testing.T) {
	t.Parallel()
	a, _ := cacheFixture(t)
	h, _ := handler(t, a, config.RouteAuth{})
	valid := hs256(t, claimsAt(t0))
	tampered := func(i int) string {
		b := []byte(valid)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	dots := []int{}
	for i := range len(valid) {
		if valid[i] == '.' {
			dots = append(dots, i)
		}
	}
	if w := get(h, "/api", "Authorization", "Bearer "+valid); w.Code != http.StatusNoContent {
		t.Fatalf("valid: status = %d, want 204", w.Code)
	}
	tests := []struct {
		name  string
		token string
	}{
		{"header byte changed", tampered(3)},
		{"payload byte changed", tampered(dots[0] + 5)},
		{"signature byte changed", tampered(dots[1] + 5)},
		{"byte appended", valid + "A"},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-enough-length-000"), "", claimsAt(t0))},
		{"expired", hs256(t, withClaims(func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Hour).Unix() }))},
		{"wrong audience", hs256(t, withClaims(func(c jwt.MapClaims) { c["aud"] = "other" }))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 2 {
				if w := get(h, "/api", "Authorization", "Bearer "+tt.token); w.Code != http.StatusUnauthorized {
					t.Fatalf("attempt %d: status = %d, want 401", i, w.Code)
				}
			}
		})
	}
	if n := a.jwt.cache.len(); n != 1 {
		t.Errorf("cache.len() = %d, want 1 (only the valid token)", n)
	}
}

func TestTokenCacheBound(t *testing.T) {
	t.Parallel()
	a, clock := cacheFixture(t)
	const tokens = 50000
	for i := range tokens {
		tok := hs256(t, withClaims(func(c jwt.MapClaims) { c["jti"] = strconv.Itoa(i) }))
		if _, err := a.jwt.authenticate(t.Context(), tok); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if i%1000 == 0 {
			clock.Advance(time.Second)
		}
	}
	if n := a.jwt.cache.len(); n > tokenCacheSize || n < tokenCacheSize*9/10 {
		t.Errorf("after %d tokens: cache.len() = %d, want at most %d and close to it", tokens, n, tokenCacheSize)
	}
	for i := range a.jwt.cache.shards {
		if n := len(a.jwt.cache.shards[i].m); n > tokenCacheSize/tokenCacheShards {
			t.Errorf("shard %d holds %d entries, want at most %d", i, n, tokenCacheSize/tokenCacheShards)
		}
	}
}

func TestTokenCacheEvict(t *testing.T) {
	t.Parallel()
	const perShard = tokenCacheSize / tokenCacheShards
	key := &verifyKey{}
	// fill puts perShard entries into shard 0, made at t0 and valid until
	// until.
	fill := func(c *tokenCache, until time.Time) {
		for i := range perShard {
			var sum [sha256.Size]byte
			sum[0] = 0 // shard 0
			copy(sum[1:], fmt.Sprint(i))
			c.put(&sum, cachedToken{key: key, inserted: t0.Add(time.Duration(i)), deadline: until}, t0)
		}
		if n := len(c.shards[0].m); n != perShard {
			t.Fatalf("shard 0 holds %d, want %d", n, perShard)
		}
	}
	newSum := func() *[sha256.Size]byte { return &[sha256.Size]byte{0, 'n', 'e', 'w'} }

	t.Run("expired go first", func(t *testing.T) {
		t.Parallel()
		c := newTokenCache()
		fill(c, t0.Add(time.Second))
		now := t0.Add(2 * time.Second)
		c.put(newSum(), cachedToken{key: key, inserted: now, deadline: now.Add(time.Minute)}, now)
		if n := len(c.shards[0].m); n > perShard+1-tokenCacheEvictSample {
			t.Errorf("shard 0 holds %d, want at most %d (a sample of expired entries dropped)", n, perShard+1-tokenCacheEvictSample)
		}
		if _, ok := c.get(newSum(), now, nil); !ok {
			t.Errorf("the new entry is missing")
		}
	})
	t.Run("live: one goes", func(t *testing.T) {
		t.Parallel()
		c := newTokenCache()
		fill(c, t0.Add(time.Hour))
		now := t0.Add(time.Second)
		c.put(newSum(), cachedToken{key: key, inserted: now, deadline: now.Add(time.Minute)}, now)
		if n := len(c.shards[0].m); n != perShard {
			t.Errorf("shard 0 holds %d, want %d", n, perShard)
		}
		if _, ok := c.get(newSum(), now, nil); !ok {
			t.Errorf("the new entry is missing")
		}
	})
	t.Run("replacing an entry evicts nothing", func(t *testing.T) {
		t.Parallel()
		c := newTokenCache()
		fill(c, t0.Add(time.Hour))
		var sum [sha256.Size]byte
		copy(sum[1:], "7")
		c.put(&sum, cachedToken{key: key, inserted: t0, deadline: t0.Add(time.Hour)}, t0)
		if n := len(c.shards[0].m); n != perShard {
			t.Errorf("shard 0 holds %d, want %d", n, perShard)
		}
	})
}

// A reload builds a new Authenticator: it starts with an empty cache and
// honours only its own config.
func TestTokenCacheNewAuthenticator(t *testing.T) {
	t.Parallel()
	old, clock := cacheFixture(t)
	tok := hs256(t, claimsAt(t0))
	h, _ := handler(t, old, config.RouteAuth{})
	if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusNoContent {
		t.Fatalf("old: status = %d, want 204", w.Code)
	}

	same := newAuth(t, config.Auth{JWT: baseJWT()}, Options{Now: clock.Now})
	if n := same.jwt.cache.len(); n != 0 {
		t.Errorf("new Authenticator: cache.len() = %d, want 0", n)
	}
	dropStaticKeys(same)
	hs, _ := handler(t, same, config.RouteAuth{})
	if w := get(hs, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusUnauthorized {
		t.Errorf("new Authenticator without keys: status = %d, want 401 (old entry seen)", w.Code)
	}

	cfg := baseJWT()
	cfg.Secret = "a-rotated-secret-of-enough-length-0123"
	rotated := newAuth(t, config.Auth{JWT: cfg}, Options{Now: clock.Now})
	hr, _ := handler(t, rotated, config.RouteAuth{})
	if w := get(hr, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusUnauthorized {
		t.Errorf("new secret: status = %d, want 401", w.Code)
	}
}

func TestTokenCacheJWKSKeyRemoved(t *testing.T) {
	t.Parallel()
	keyA := rsaJWK(&rsaKey().PublicKey, "a", "")
	keyB := ecJWK(&ecKey().PublicKey, "b")
	srv := newJWKSServer(t, keyA, keyB)
	clock := newClock()
	a := jwksAuth(t, srv.URL, clock, nil)
	h, _ := handler(t, a, config.RouteAuth{})
	tokA := sign(t, jwt.SigningMethodRS256, rsaKey(), "a", claimsAt(t0))
	tokB := sign(t, jwt.SigningMethodES256, ecKey(), "b", claimsAt(t0))
	unknown := sign(t, jwt.SigningMethodRS256, rsaKey(), "unknown", claimsAt(t0))
	sumB := tokenHash(tokB)
	refetch := func(want int32) {
		t.Helper()
		if w := get(h, "/x", "Authorization", "Bearer "+unknown); w.Code != http.StatusUnauthorized {
			t.Fatalf("unknown kid: status = %d, want 401", w.Code)
		}
		if n := srv.fetches.Load(); n != want {
			t.Fatalf("fetches = %d, want %d", n, want)
		}
	}

	if w := get(h, "/x", "Authorization", "Bearer "+tokB); w.Code != http.StatusNoContent {
		t.Fatalf("token B: status = %d, want 204", w.Code)
	}
	// A refetch that keeps B keeps B's tokens cached.
	clock.Advance(jwksMinRefetch)
	refetch(2)
	if _, ok := a.jwt.cache.get(&sumB, clock.Now(), a.jwt.jwks.current()); !ok {
		t.Fatalf("token B left the cache although its key is unchanged")
	}

	// A is cached at t0+30s, so its entry would live until t0+90s.
	if w := get(h, "/x", "Authorization", "Bearer "+tokA); w.Code != http.StatusNoContent {
		t.Fatalf("token A: status = %d, want 204", w.Code)
	}
	// The provider drops A. Once the gateway has the new set, before the
	// entry's TTL, A's tokens are refused.
	srv.set(http.StatusOK, keyB)
	clock.Advance(jwksMinRefetch)
	refetch(3)
	if w := get(h, "/x", "Authorization", "Bearer "+tokA); w.Code != http.StatusUnauthorized {
		t.Errorf("token of the removed key: status = %d, want 401", w.Code)
	}
	if w := get(h, "/x", "Authorization", "Bearer "+tokB); w.Code != http.StatusNoContent {
		t.Errorf("token of the kept key: status = %d, want 204", w.Code)
	}
}

func TestTokenCacheConcurrent(t *testing.T) {
	t.Parallel()
	a, clock := cacheFixture(t)
	mw, err := a.Middleware(config.RouteAuth{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := identity.PrincipalFrom(r.Context())
		if p == nil || r.Header.Get("X-User-ID") != p.Name || p.Claims["sub"] != p.Name {
			t.Errorf("principal %+v, X-User-ID %q", p, r.Header.Get("X-User-ID"))
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		// Handlers own their claims: writing them races with nothing.
		p.Claims["sub"] = "changed"
		w.WriteHeader(http.StatusNoContent)
	}))
	subs := []string{"alice", "bob", "carol", "dave"}
	toks := make([]string, len(subs))
	for i, s := range subs {
		toks[i] = hs256(t, withClaims(func(c jwt.MapClaims) { c["sub"] = s }))
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				tok := toks[(g+i)%len(toks)]
				if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusNoContent {
					t.Errorf("status = %d, want 204", w.Code)
					return
				}
				if g == 0 && i%50 == 0 {
					clock.Advance(20 * time.Second) // entries reach their TTL
				}
			}
		})
	}
	wg.Wait()
}

func TestTokenCacheSkipsLongTokens(t *testing.T) {
	t.Parallel()
	a, _ := cacheFixture(t)
	h, _ := handler(t, a, config.RouteAuth{})
	tok := hs256(t, withClaims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", tokenCacheMaxToken) }))
	for i := range 2 {
		if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusNoContent {
			t.Fatalf("request %d: status = %d, want 204", i, w.Code)
		}
	}
	if n := a.jwt.cache.len(); n != 0 {
		t.Errorf("cache.len() = %d, want 0 for a %d-byte token", n, len(tok))
	}
}
