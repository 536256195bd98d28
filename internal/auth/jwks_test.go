package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/altair-gateway/altair/internal/config"
)

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(pub *rsa.PublicKey, kid, alg string) map[string]any {
	m := map[string]any{"kty": "RSA", "n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes())}
	if kid != "" {
		m["kid"] = kid
	}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

func ecJWK(pub *ecdsa.PublicKey, kid string) map[string]any {
	size := (pub.Curve.Params().BitSize + 7) / 8
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	return map[string]any{"kty": "EC", "crv": pub.Curve.Params().Name, "kid": kid,
		"x": b64u(raw[1 : 1+size]), "y": b64u(raw[1+size:])}
}

func edJWK(pub ed25519.PublicKey, kid string) map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64u(pub)}
}

// jwksServer serves a key set that tests change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]any
	status  int
	fetches atomic.Int32
}

func newJWKSServer(t testing.TB, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, keys := s.status, s.keys
		s.mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "down", status)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, keys ...map[string]any) {
	s.mu.Lock()
	s.status, s.keys = status, keys
	s.mu.Unlock()
}

func jwksAuth(t *testing.T, url string, clock *fakeClock, log *slog.Logger) *Authenticator {
	t.Helper()
	cfg := baseJWT()
	cfg.Secret = ""
	cfg.JWKSURL = url
	return newAuth(t, config.Auth{JWT: cfg}, Options{Now: clock.Now, Logger: log})
}

func TestParseJWK(t *testing.T) {
	t.Parallel()
	rsaPub := &rsaKey().PublicKey
	offCurve := ecJWK(&ecKey().PublicKey, "x")
	offCurve["y"] = offCurve["x"]
	tests := []struct {
		name    string
		give    map[string]any
		wantAlg string // "" = refused
	}{
		{"RSA default alg", rsaJWK(rsaPub, "k", ""), "RS256"},
		{"RSA PS384", rsaJWK(rsaPub, "k", "PS384"), "PS384"},
		{"EC P-256", ecJWK(&ecKey().PublicKey, "k"), "ES256"},
		{"EC P-384", ecJWK(&ec384Key().PublicKey, "k"), "ES384"},
		{"EC P-521", ecJWK(&ec521Key().PublicKey, "k"), "ES512"},
		{"OKP Ed25519", edJWK(edKey().Public().(ed25519.PublicKey), "k"), "EdDSA"},
		{"RSA with HS256", rsaJWK(rsaPub, "k", "HS256"), ""},
		{"RSA with ES256", rsaJWK(rsaPub, "k", "ES256"), ""},
		{"RSA with none", rsaJWK(rsaPub, "k", "none"), ""},
		{"oct key", map[string]any{"kty": "oct", "k": b64u([]byte(testSecret))}, ""},
		{"use enc", func() map[string]any { m := rsaJWK(rsaPub, "k", ""); m["use"] = "enc"; return m }(), ""},
		{"key_ops without verify", func() map[string]any { m := rsaJWK(rsaPub, "k", ""); m["key_ops"] = []string{"encrypt"}; return m }(), ""},
		{"small RSA", rsaJWK(&rsa.PublicKey{N: big.NewInt(3233), E: 17}, "k", ""), ""},
		{"RSA even e", map[string]any{"kty": "RSA", "n": b64u(rsaPub.N.Bytes()), "e": b64u([]byte{2})}, ""},
		{"RSA bad base64", map[string]any{"kty": "RSA", "n": "!!", "e": "AQAB"}, ""},
		{"EC point off the curve", offCurve, ""},
		{"EC short x", map[string]any{"kty": "EC", "crv": "P-256", "x": b64u([]byte{1}), "y": b64u([]byte{1})}, ""},
		{"EC with ES384 alg on P-256", func() map[string]any { m := ecJWK(&ecKey().PublicKey, "k"); m["alg"] = "ES384"; return m }(), ""},
		{"EC unknown curve", map[string]any{"kty": "EC", "crv": "P-192"}, ""},
		{"OKP X25519", map[string]any{"kty": "OKP", "crv": "X25519", "x": b64u(make([]byte, 32))}, ""},
		{"OKP short", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64u(make([]byte, 31))}, ""},
		{"no kty", map[string]any{"kid": "k"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw, _ := json.Marshal(tt.give)
			var k jwk
			if err := json.Unmarshal(raw, &k); err != nil {
				t.Fatal(err)
			}
			_, alg, err := parseJWK(&k)
			if tt.wantAlg == "" {
				if err == nil {
					t.Errorf("parseJWK(%s) = %s, nil; want an error", raw, alg)
				}
				return
			}
			if err != nil || alg != tt.wantAlg {
				t.Errorf("parseJWK(%s) = %q, %v; want %q", raw, alg, err, tt.wantAlg)
			}
		})
	}
}

func TestJWKSAllKinds(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t,
		rsaJWK(&rsaKey().PublicKey, "rs", ""),
		rsaJWK(&rsaKey2().PublicKey, "ps", "PS256"),
		ecJWK(&ecKey().PublicKey, "ec"),
		edJWK(edKey().Public().(ed25519.PublicKey), "ed"),
		map[string]any{"kty": "oct", "kid": "hs", "k": b64u([]byte(testSecret))},
	)
	clock := newClock()
	a := jwksAuth(t, srv.URL, clock, nil)
	tests := []struct {
		name string
		tok  string
		ok   bool
	}{
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey(), "rs", claimsAt(t0)), true},
		{"PS256", sign(t, jwt.SigningMethodPS256, rsaKey2(), "ps", claimsAt(t0)), true},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey(), "ec", claimsAt(t0)), true},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, edKey(), "ed", claimsAt(t0)), true},
		{"RS256 on the PS256 key", sign(t, jwt.SigningMethodRS256, rsaKey2(), "ps", claimsAt(t0)), false},
		{"HS256 with the oct key (never from a JWKS)", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "hs", claimsAt(t0)), false},
	}
	for _, tt := range tests {
		_, err := a.jwt.verify(t.Context(), tt.tok)
		if (err == nil) != tt.ok {
			t.Errorf("%s: verify = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
}

func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	keyA := rsaJWK(&rsaKey().PublicKey, "a", "")
	keyB := ecJWK(&ecKey().PublicKey, "b")
	srv := newJWKSServer(t, keyA)
	clock := newClock()
	a := jwksAuth(t, srv.URL, clock, nil)
	h, s := handler(t, a, config.RouteAuth{Methods: []string{"jwt"}})

	tokA := sign(t, jwt.SigningMethodRS256, rsaKey(), "a", claimsAt(t0))
	if w := get(h, "/x", "Authorization", "Bearer "+tokA); w.Code != http.StatusNoContent {
		t.Fatalf("token A: status %d, want 204", w.Code)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches after first token = %d, want 1 (lazy first fetch)", n)
	}

	// The provider rotates B in. Within 30 s of the last fetch an unknown
	// kid does not refetch.
	srv.set(http.StatusOK, keyA, keyB)
	clock.Advance(10 * time.Second)
	tokB := sign(t, jwt.SigningMethodES256, ecKey(), "b", claimsAt(clock.Now()))
	if w := get(h, "/x", "Authorization", "Bearer "+tokB); w.Code != http.StatusUnauthorized {
		t.Fatalf("token B within 30s: status %d, want 401", w.Code)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1 (rate-limited)", n)
	}
	clock.Advance(20 * time.Second)
	*s = seen{}
	if w := get(h, "/x", "Authorization", "Bearer "+tokB); w.Code != http.StatusNoContent {
		t.Fatalf("token B after 30s: status %d, want 204", w.Code)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	if s.principal.Name != "alice" {
		t.Errorf("principal = %+v", s.principal)
	}
	// A known kid never fetches.
	get(h, "/x", "Authorization", "Bearer "+tokA)
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
}

func TestJWKSRefetchRateLimit(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, rsaJWK(&rsaKey().PublicKey, "a", ""))
	clock := newClock()
	a := jwksAuth(t, srv.URL, clock, nil)
	h, _ := handler(t, a, config.RouteAuth{Methods: []string{"jwt"}})
	unknown := sign(t, jwt.SigningMethodRS256, rsaKey(), "unknown", claimsAt(t0))

	burst := func() {
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if w := get(h, "/x", "Authorization", "Bearer "+unknown); w.Code != http.StatusUnauthorized {
					t.Errorf("status = %d, want 401", w.Code)
				}
			})
		}
		wg.Wait()
	}
	tests := []struct {
		advance time.Duration
		want    int32
	}{
		{0, 1},                // the first fetch, shared by all 50
		{10 * time.Second, 1}, // 10 s later
		{19 * time.Second, 1}, // 29 s after the fetch
		{time.Second, 2},      // 30 s: one more
		{29 * time.Second, 2}, // 29 s after that
		{time.Minute, 3},      // then one per 30 s at most
		{time.Millisecond, 3},
	}
	for i, tt := range tests {
		clock.Advance(tt.advance)
		burst()
		if n := srv.fetches.Load(); n != tt.want {
			t.Fatalf("step %d: fetches = %d, want %d", i, n, tt.want)
		}
	}
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestJWKSFailingKeepsLastSet(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, rsaJWK(&rsaKey().PublicKey, "a", ""))
	clock := newClock()
	var logs logBuffer
	a := jwksAuth(t, srv.URL, clock, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h, _ := handler(t, a, config.RouteAuth{Methods: []string{"jwt"}})
	tokA := sign(t, jwt.SigningMethodRS256, rsaKey(), "a", claimsAt(t0))
	if w := get(h, "/x", "Authorization", "Bearer "+tokA); w.Code != http.StatusNoContent {
		t.Fatalf("status %d, want 204", w.Code)
	}

	for _, failure := range []struct {
		name   string
		status int
		keys   []map[string]any
	}{
		{"500", http.StatusInternalServerError, nil},
		{"no usable key", http.StatusOK, []map[string]any{{"kty": "oct", "k": "AA"}}},
		{"empty set", http.StatusOK, []map[string]any{}},
	} {
		srv.set(failure.status, failure.keys...)
		clock.Advance(time.Minute)
		before := srv.fetches.Load()
		unknown := sign(t, jwt.SigningMethodRS256, rsaKey(), "new", claimsAt(clock.Now()))
		if w := get(h, "/x", "Authorization", "Bearer "+unknown); w.Code != http.StatusUnauthorized {
			t.Fatalf("%s: unknown kid status %d, want 401", failure.name, w.Code)
		}
		if srv.fetches.Load() != before+1 {
			t.Fatalf("%s: no refetch", failure.name)
		}
		tok := sign(t, jwt.SigningMethodRS256, rsaKey(), "a", claimsAt(clock.Now()))
		if w := get(h, "/x", "Authorization", "Bearer "+tok); w.Code != http.StatusNoContent {
			t.Fatalf("%s: known kid status %d, want 204 (last good set kept)", failure.name, w.Code)
		}
	}
	out := logs.String()
	if c := strings.Count(out, "jwks fetch failed"); c != 3 {
		t.Errorf("warnings = %d, want 3 (one a minute)\n%s", c, out)
	}
	if strings.Contains(out, tokA[:20]) {
		t.Errorf("log contains a token:\n%s", out)
	}
}

func TestJWKSWarningsRateLimited(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t)
	srv.set(http.StatusBadGateway)
	clock := newClock()
	var logs logBuffer
	a := jwksAuth(t, srv.URL, clock, slog.New(slog.NewTextHandler(&logs, nil)))
	tok := sign(t, jwt.SigningMethodRS256, rsaKey(), "a", claimsAt(t0))
	for range 5 {
		_, _ = a.jwt.verify(t.Context(), tok)
		clock.Advance(30 * time.Second)
	}
	// Five fetches (one per 30 s) but warnings at most once a minute.
	if n := srv.fetches.Load(); n != 5 {
		t.Errorf("fetches = %d, want 5", n)
	}
	if c := strings.Count(logs.String(), "jwks fetch failed"); c != 3 {
		t.Errorf("warnings = %d, want 3:\n%s", c, logs.String())
	}
}

func TestJWKSStartRefreshes(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, rsaJWK(&rsaKey().PublicKey, "a", ""))
	cfg := baseJWT()
	cfg.Secret = ""
	cfg.JWKSURL = srv.URL
	cfg.JWKSRefresh = 10 * time.Millisecond
	clock := newClock()
	a, err := New(config.Auth{JWT: cfg}, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	a.Start(t.Context())
	a.Start(t.Context()) // no second goroutine

	waitFor(t, "first fetch", func() bool { return a.jwt.jwks.current().len() == 1 })
	srv.set(http.StatusOK, rsaJWK(&rsaKey().PublicKey, "a", ""), ecJWK(&ecKey().PublicKey, "b"))
	// The fake clock stands still, so only the periodic refresh can bring B.
	waitFor(t, "refresh", func() bool { return a.jwt.jwks.current().len() == 2 })
	a.Close()
	a.Close() // idempotent
	// A fetch that Close cancelled may still reach the server's handler
	// just after (its request was already on the wire): let it land, then
	// prove that no new fetch starts.
	time.Sleep(20 * time.Millisecond)
	n := srv.fetches.Load()
	time.Sleep(50 * time.Millisecond)
	if got := srv.fetches.Load(); got != n {
		t.Errorf("fetches continued after Close: %d, then %d", n, got)
	}
}

func TestJWKSStopsWithContext(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, rsaJWK(&rsaKey().PublicKey, "a", ""))
	clock := newClock()
	a := jwksAuth(t, srv.URL, clock, nil)
	ctx, cancel := context.WithCancel(t.Context())
	a.Start(ctx)
	waitFor(t, "first fetch", func() bool { return a.jwt.jwks.current().len() == 1 })
	cancel()
	a.Close() // returns: the goroutine has ended with ctx
}

func TestJWKSBodyLimit(t *testing.T) {
	t.Parallel()
	big := strings.Repeat(" ", jwksMaxBody) + `{"keys":[]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(big))
	}))
	defer srv.Close()
	clock := newClock()
	a := jwksAuth(t, srv.URL, clock, nil)
	err := a.jwt.jwks.fetch(t.Context())
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("fetch = %v, want a size error", err)
	}
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
