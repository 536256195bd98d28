package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/altair-gateway/altair/internal/config"
)

// jwtFixture is an Authenticator with the secret and one PEM key per
// asymmetric family, and the material to sign tokens for it.
type jwtFixture struct {
	a      *Authenticator
	clock  *fakeClock
	rsaPEM []byte // the RS256 key's PEM, for the confusion attack
}

func newJWTFixture(t *testing.T) *jwtFixture {
	t.Helper()
	dir := t.TempDir()
	cfg := baseJWT()
	rsaFile := writePEM(t, dir, "rsa.pem", &rsaKey().PublicKey)
	cfg.Keys = []config.JWTKey{
		{ID: "rsa", File: rsaFile, Algorithm: "RS256"},
		{ID: "ps", File: writePEM(t, dir, "ps.pem", &rsaKey2().PublicKey), Algorithm: "PS256"},
		{ID: "ec", File: writePEM(t, dir, "ec.pem", &ecKey().PublicKey), Algorithm: "ES256"},
		{ID: "ed", File: writePEM(t, dir, "ed.pem", edKey().Public()), Algorithm: "EdDSA"},
		// Without id: serves tokens without kid, next to the secret.
		{File: rsaFile, Algorithm: "RS256"},
	}
	clock := newClock()
	a := newAuth(t, config.Auth{JWT: cfg}, Options{Now: clock.Now})
	pemBytes, err := os.ReadFile(rsaFile)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtFixture{a: a, clock: clock, rsaPEM: pemBytes}
}

func TestJWT(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t)
	now := f.clock.Now()
	secret := []byte(testSecret)
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := claimsAt(now)
		mod(c)
		return c
	}
	valid := sign(t, jwt.SigningMethodHS256, secret, "", claimsAt(now))
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claimsAt(now)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	leeway := 30 * time.Second

	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"HS256", valid, true},
		{"HS384", sign(t, jwt.SigningMethodHS384, secret, "", claimsAt(now)), true},
		{"HS512", sign(t, jwt.SigningMethodHS512, secret, "", claimsAt(now)), true},
		{"RS256 by kid", sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", claimsAt(now)), true},
		{"RS256 without kid", sign(t, jwt.SigningMethodRS256, rsaKey(), "", claimsAt(now)), true},
		{"PS256", sign(t, jwt.SigningMethodPS256, rsaKey2(), "ps", claimsAt(now)), true},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey(), "ec", claimsAt(now)), true},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, edKey(), "ed", claimsAt(now)), true},
		{"audience among several", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["aud"] = []string{"other", "altair"} })), true},

		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-enough-length-000"), "", claimsAt(now)), false},
		{"alg none", noneTok, false},
		{"HS256 signed with the RSA public key (confusion)", sign(t, jwt.SigningMethodHS256, f.rsaPEM, "", claimsAt(now)), false},
		{"HS256 with the RSA key's kid (confusion)", sign(t, jwt.SigningMethodHS256, f.rsaPEM, "rsa", claimsAt(now)), false},
		{"kid of a PS256 key, RS256 token", sign(t, jwt.SigningMethodRS256, rsaKey2(), "ps", claimsAt(now)), false},
		{"kid of the EC key, signed by the RSA key", sign(t, jwt.SigningMethodRS256, rsaKey(), "ec", claimsAt(now)), false},
		{"kid of the RSA key, signed by another RSA key", sign(t, jwt.SigningMethodRS256, rsaKey2(), "rsa", claimsAt(now)), false},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, rsaKey(), "nope", claimsAt(now)), false},
		{"ES256 without kid (no such key)", sign(t, jwt.SigningMethodES256, ecKey(), "", claimsAt(now)), false},
		{"expired", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })), false},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })), false},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })), false},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), false},
		{"no issuer", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { delete(c, "iss") })), false},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["aud"] = "other" })), false},
		{"no audience", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { delete(c, "aud") })), false},
		{"missing exp", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { delete(c, "exp") })), false},
		{"exp as a string", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["exp"] = "tomorrow" })), false},
		{"malformed", "not-a-token", false},
		{"empty", "", false},
		{"two segments", strings.Join(strings.Split(valid, ".")[:2], "."), false},
		{"truncated", valid[:len(valid)-10], false},
		{"bad base64 in payload", strings.Split(valid, ".")[0] + ".!!!." + strings.Split(valid, ".")[2], false},
		{"bad base64 in header", "%%%." + strings.SplitN(valid, ".", 2)[1], false},
		{"extra segment", valid + ".eyJ9", false},
		{"too long", valid + strings.Repeat("A", maxTokenLen), false},
		{"leeway: exp just inside", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-leeway + time.Second).Unix() })), true},
		{"leeway: exp at the edge", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-leeway).Unix() })), false},
		{"leeway: nbf at the edge", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["nbf"] = now.Add(leeway).Unix() })), true},
		{"leeway: nbf just outside", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["nbf"] = now.Add(leeway + time.Second).Unix() })), false},
		{"leeway: iat just inside", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["iat"] = now.Add(leeway).Unix() })), true},
		{"leeway: iat just outside", sign(t, jwt.SigningMethodHS256, secret, "", with(func(c jwt.MapClaims) { c["iat"] = now.Add(leeway + time.Second).Unix() })), false},
	}
	h, s := handler(t, f.a, config.RouteAuth{Methods: []string{"jwt"}})
	for _, tt := range tests {
		// Not parallel: s is shared.
		t.Run(tt.name, func(t *testing.T) {
			*s = seen{}
			w := get(h, "/api/x", "Authorization", "Bearer "+tt.token)
			if !tt.ok {
				if w.Code != http.StatusUnauthorized || s.called {
					t.Fatalf("status = %d (upstream called: %v), want 401", w.Code, s.called)
				}
				b := decodeErr(t, w)
				want := msgInvalidToken
				if tt.token == "" {
					want = msgInvalidToken // "Bearer " with no token is a bad token
				}
				if b.Error != CodeUnauthorized || b.Message != want || b.Status != 401 || b.RequestID != "req-1" {
					t.Errorf("body = %+v, want unauthorized/%q", b, want)
				}
				if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="altair", error="invalid_token"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				return
			}
			if w.Code != http.StatusNoContent || !s.called {
				t.Fatalf("status = %d, want 204; body %s", w.Code, w.Body)
			}
			if s.principal == nil || s.principal.Method != "jwt" || s.principal.Name != "alice" || s.principal.Claims["sub"] != "alice" {
				t.Errorf("principal = %+v", s.principal)
			}
		})
	}
}

func TestJWTOnlyPublicKeyConfusion(t *testing.T) {
	t.Parallel()
	// No secret at all: an HS256 token signed with the RSA key's PEM finds
	// no HMAC key, whatever its kid.
	dir := t.TempDir()
	cfg := baseJWT()
	cfg.Secret = ""
	file := writePEM(t, dir, "rsa.pem", &rsaKey().PublicKey)
	cfg.Keys = []config.JWTKey{{File: file, Algorithm: "RS256"}, {ID: "k", File: file, Algorithm: "RS256"}}
	a := newAuth(t, config.Auth{JWT: cfg}, Options{})
	pemBytes, _ := os.ReadFile(file)
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey().PublicKey)
	for _, secret := range [][]byte{pemBytes, der, []byte(strings.TrimSpace(string(pemBytes)))} {
		for _, kid := range []string{"", "k"} {
			tok := sign(t, jwt.SigningMethodHS256, secret, kid, claimsAt(t0))
			if _, err := a.jwt.verify(t.Context(), tok); err == nil {
				t.Fatalf("verify(HS256 with public key bytes, kid %q) succeeded", kid)
			}
		}
	}
	if _, err := a.jwt.verify(t.Context(), sign(t, jwt.SigningMethodRS256, rsaKey(), "k", claimsAt(t0))); err != nil {
		t.Fatalf("verify(RS256) = %v", err)
	}
}

func TestJWTOtherCurves(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseJWT()
	cfg.Keys = []config.JWTKey{
		{ID: "384", File: writePEM(t, dir, "384.pem", &ec384Key().PublicKey), Algorithm: "ES384"},
		{ID: "521", File: writePEM(t, dir, "521.pem", &ec521Key().PublicKey), Algorithm: "ES512"},
		{ID: "rs512", File: writePEM(t, dir, "rs.pem", &rsaKey().PublicKey), Algorithm: "RS512"},
	}
	a := newAuth(t, config.Auth{JWT: cfg}, Options{})
	tests := []struct {
		m   jwt.SigningMethod
		key any
		kid string
	}{
		{jwt.SigningMethodES384, ec384Key(), "384"},
		{jwt.SigningMethodES512, ec521Key(), "521"},
		{jwt.SigningMethodRS512, rsaKey(), "rs512"},
	}
	for _, tt := range tests {
		if _, err := a.jwt.verify(t.Context(), sign(t, tt.m, tt.key, tt.kid, claimsAt(t0))); err != nil {
			t.Errorf("verify(%s) = %v, want nil", tt.m.Alg(), err)
		}
	}
}

func TestCertificateKey(t *testing.T) {
	t.Parallel()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, edKey().Public(), edKey())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	cfg := baseJWT()
	cfg.Keys = []config.JWTKey{{ID: "c", File: file, Algorithm: "EdDSA"}}
	a := newAuth(t, config.Auth{JWT: cfg}, Options{})
	if _, err := a.jwt.verify(t.Context(), sign(t, jwt.SigningMethodEdDSA, edKey(), "c", claimsAt(t0))); err != nil {
		t.Fatalf("verify = %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rsaFile := writePEM(t, dir, "rsa.pem", &rsaKey().PublicKey)
	ecFile := writePEM(t, dir, "ec.pem", &ecKey().PublicKey)
	der, _ := x509.MarshalPKCS8PrivateKey(ecKey())
	privFile := writeFile(t, dir, "priv.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	junk := writeFile(t, dir, "junk.pem", "hello")
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallFile := writePEM(t, dir, "small.pem", &small.PublicKey)
	keysFile := writeFile(t, dir, "keys", "ok key-one-0123456789\nbad\nbad2 sha256:zz\n")

	cfg := baseJWT()
	cfg.ClaimHeaders = map[string]string{"sub": "X-User-ID", "a": "Authorization", "b": "x-api-key", "c": "Bad Header"}
	cfg.SecretAlgorithms = []string{"HS256", "RS256"}
	cfg.JWKSURL = "ftp://x"
	cfg.Keys = []config.JWTKey{
		{File: rsaFile, Algorithm: "RS256"},
		{File: filepath.Join(dir, "missing.pem"), Algorithm: "RS256"},
		{File: ecFile, Algorithm: "RS256"},
		{File: ecFile, Algorithm: "ES384"},
		{File: privFile, Algorithm: "ES256"},
		{File: junk, Algorithm: "ES256"},
		{File: rsaFile, Algorithm: "none"},
		{File: smallFile, Algorithm: "RS256"},
	}
	_, err := New(config.Auth{
		JWT: cfg,
		APIKeys: config.APIKeys{
			Keys: []config.APIKey{
				{Name: "a", Key: "k1"},
				{Name: "b", Key: "k1"},
				{Name: "c", SHA256: "abc"},
				{Name: "", Key: "k2"},
				{Name: "d"},
			},
			File: keysFile,
		},
		PublicPaths: []string{"/ok", "nope"},
	}, Options{})
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("New err = %v, want Errors", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As(*FieldError) failed")
	}
	want := []string{
		"jwt.secret_algorithms[1]",
		"jwt.keys[1].file",
		"jwt.keys[2].algorithm",
		"jwt.keys[3].algorithm",
		"jwt.keys[4].file",
		"jwt.keys[5].file",
		"jwt.keys[6].algorithm",
		"jwt.keys[7].algorithm",
		"jwt.jwks_url",
		"api_keys.keys[1]",
		"api_keys.keys[2].sha256",
		"api_keys.keys[3].name",
		"api_keys.keys[4]",
		"api_keys.file (line 2)",
		"api_keys.file (line 3)",
		"jwt.claim_headers.a",
		"jwt.claim_headers.b",
		"jwt.claim_headers.c",
		"public_paths[1]",
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Field)
		if strings.Contains(e.Msg, "k1") || strings.Contains(e.Msg, "key-one") {
			t.Errorf("error %q reveals a key", e)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("New fields =\n%s\nwant\n%s\n(errors: %v)", strings.Join(got, "\n"), strings.Join(want, "\n"), err)
	}
}

func TestClaimValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give any
		want string
		ok   bool
	}{
		{"alice", "alice", true},
		{float64(42), "42", true},
		{1.5, "1.5", true},
		{true, "true", true},
		{[]any{"a", "b"}, "a,b", true},
		{[]any{"a,b"}, "", false},
		{map[string]any{"k": "v"}, `{"k":"v"}`, true},
		{"evil\r\nX-Admin: 1", "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		got, ok := claimValue(tt.give)
		if got != tt.want || ok != tt.ok {
			t.Errorf("claimValue(%#v) = %q, %v, want %q, %v", tt.give, got, ok, tt.want, tt.ok)
		}
	}
}
