package auth

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/altair-gateway/altair/internal/config"
)

// discardWriter is a ResponseWriter that costs nothing, so that the
// benchmarks measure the auth step.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchAuth runs one authenticated request per iteration through the
// middleware with a trivial next handler. The route forwards credentials so
// that the same request can be reused without resetting its headers.
func benchAuth(b *testing.B, cfg config.Auth, header, value string) {
	benchAuthWith(b, newAuth(b, cfg, Options{}), header, value)
}

func benchAuthWith(b *testing.B, a *Authenticator, header, value string) {
	mw, err := a.Middleware(config.RouteAuth{ForwardAuthorization: true, ForwardAPIKey: true}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	ok := 0
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ok++ }))
	r, _ := http.NewRequest(http.MethodGet, "http://gw.example/api/items", nil)
	r.Header.Set(header, value)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	if ok == 0 {
		b.Fatal("no request authenticated")
	}
}

// benchJWT measures a token presented again and again, the common case,
// which the token cache serves ("cached"); a token the cache has not seen
// ("miss": verified, then stored); and the cache disabled ("uncached", the
// cost before the cache existed).
func benchJWT(b *testing.B, cfg config.JWT, tok string) {
	b.Run("cached", func(b *testing.B) {
		benchAuthWith(b, newAuth(b, config.Auth{JWT: cfg}, Options{}), "Authorization", "Bearer "+tok)
	})
	b.Run("miss", func(b *testing.B) {
		a := newAuth(b, config.Auth{JWT: cfg}, Options{})
		mw, err := a.Middleware(config.RouteAuth{ForwardAuthorization: true}, "bench")
		if err != nil {
			b.Fatal(err)
		}
		h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		r, _ := http.NewRequest(http.MethodGet, "http://gw.example/api/items", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := &discardWriter{h: http.Header{}}
		sum := tokenHash(tok)
		s := a.jwt.cache.shard(&sum)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
			// Forget the token; this costs little next to the miss, and
			// Stop/StartTimer would cost more.
			s.mu.Lock()
			delete(s.m, sum)
			s.mu.Unlock()
		}
	})
	b.Run("uncached", func(b *testing.B) {
		a := newAuth(b, config.Auth{JWT: cfg}, Options{})
		a.jwt.cache = nil
		benchAuthWith(b, a, "Authorization", "Bearer "+tok)
	})
}

func BenchmarkJWTHS256(b *testing.B) {
	cfg := baseJWT()
	benchJWT(b, cfg, sign(b, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0)))
}

func BenchmarkJWTRS256(b *testing.B) {
	cfg := baseJWT()
	cfg.Keys = []config.JWTKey{{ID: "k", File: writePEM(b, b.TempDir(), "k.pem", &rsaKey().PublicKey), Algorithm: "RS256"}}
	benchJWT(b, cfg, sign(b, jwt.SigningMethodRS256, rsaKey(), "k", claimsAt(t0)))
}

func BenchmarkJWTES256(b *testing.B) {
	cfg := baseJWT()
	cfg.Keys = []config.JWTKey{{ID: "k", File: writePEM(b, b.TempDir(), "k.pem", &ecKey().PublicKey), Algorithm: "ES256"}}
	benchJWT(b, cfg, sign(b, jwt.SigningMethodES256, ecKey(), "k", claimsAt(t0)))
}

// BenchmarkJWTHS256Parallel is the cached case from every CPU at once,
// which is where a single lock would show.
func BenchmarkJWTHS256Parallel(b *testing.B) {
	a := newAuth(b, config.Auth{JWT: baseJWT()}, Options{})
	mw, err := a.Middleware(config.RouteAuth{ForwardAuthorization: true}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	value := "Bearer " + sign(b, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r, _ := http.NewRequest(http.MethodGet, "http://gw.example/api/items", nil)
		r.Header.Set("Authorization", value)
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			h.ServeHTTP(w, r)
		}
	})
}

func BenchmarkAPIKey(b *testing.B) {
	keys := make([]config.APIKey, 1000)
	for i := range keys {
		keys[i] = config.APIKey{Name: "client-" + strconv.Itoa(i), Key: "key-" + strconv.Itoa(i) + "-0123456789abcdef"}
	}
	benchAuth(b, config.Auth{APIKeys: config.APIKeys{Header: "X-API-Key", Keys: keys}}, "X-API-Key", "key-500-0123456789abcdef")
}
