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
	a := newAuth(b, cfg, Options{})
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

func BenchmarkJWTHS256(b *testing.B) {
	cfg := baseJWT()
	tok := sign(b, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0))
	benchAuth(b, config.Auth{JWT: cfg}, "Authorization", "Bearer "+tok)
}

func BenchmarkJWTRS256(b *testing.B) {
	cfg := baseJWT()
	cfg.Keys = []config.JWTKey{{ID: "k", File: writePEM(b, b.TempDir(), "k.pem", &rsaKey().PublicKey), Algorithm: "RS256"}}
	tok := sign(b, jwt.SigningMethodRS256, rsaKey(), "k", claimsAt(t0))
	benchAuth(b, config.Auth{JWT: cfg}, "Authorization", "Bearer "+tok)
}

func BenchmarkJWTES256(b *testing.B) {
	cfg := baseJWT()
	cfg.Keys = []config.JWTKey{{ID: "k", File: writePEM(b, b.TempDir(), "k.pem", &ecKey().PublicKey), Algorithm: "ES256"}}
	tok := sign(b, jwt.SigningMethodES256, ecKey(), "k", claimsAt(t0))
	benchAuth(b, config.Auth{JWT: cfg}, "Authorization", "Bearer "+tok)
}

func BenchmarkAPIKey(b *testing.B) {
	keys := make([]config.APIKey, 1000)
	for i := range keys {
		keys[i] = config.APIKey{Name: "client-" + strconv.Itoa(i), Key: "key-" + strconv.Itoa(i) + "-0123456789abcdef"}
	}
	benchAuth(b, config.Auth{APIKeys: config.APIKeys{Header: "X-API-Key", Keys: keys}}, "X-API-Key", "key-500-0123456789abcdef")
}
