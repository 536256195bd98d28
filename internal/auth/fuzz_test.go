package auth

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/altair-gateway/altair/internal/config"
)

// FuzzParseToken feeds arbitrary bearer tokens through the middleware: it
// must never panic and never let one through. The secret is random per run,
// so no input can carry a valid signature. Seeds: testdata/fuzz/FuzzParseToken.
func FuzzParseToken(f *testing.F) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	jwks := newJWKSServer(f, ecJWK(&ec384Key().PublicKey, "jwks-ec"), rsaJWK(&rsaKey2().PublicKey, "jwks-rsa", "PS256"))
	cfg := baseJWT()
	cfg.Secret = string(secret)
	cfg.JWKSURL = jwks.URL
	cfg.Keys = []config.JWTKey{
		{ID: "rsa", File: writePEM(f, dir, "rsa.pem", &rsaKey().PublicKey), Algorithm: "RS256"},
		{ID: "ec", File: writePEM(f, dir, "ec.pem", &ecKey().PublicKey), Algorithm: "ES256"},
		{File: writePEM(f, dir, "ed.pem", edKey().Public()), Algorithm: "EdDSA"},
	}
	a := newAuth(f, config.Auth{JWT: cfg}, Options{})
	mw, err := a.Middleware(config.RouteAuth{Methods: []string{"jwt"}}, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		f.Error("a fuzzed token authenticated")
	}))
	f.Add(sign(f, jwt.SigningMethodHS256, []byte("not-the-secret-0123456789abcdefgh"), "", claimsAt(t0)))
	f.Fuzz(func(t *testing.T, token string) {
		if claims, err := a.jwt.verify(t.Context(), token); err == nil {
			t.Fatalf("verify(%q) = %v, nil; want an error", token, claims)
		}
		r := httptest.NewRequest(http.MethodGet, "/api", nil)
		r.Header["Authorization"] = []string{"Bearer " + token}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status = %d, want 401", w.Code)
		}
	})
}
