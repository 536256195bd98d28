package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/identity"
	"github.com/altair-gateway/altair/internal/testclock"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testSecret is an HMAC secret of the required 32+ bytes.
const testSecret = "0123456789abcdef0123456789abcdef-test"

// t0 is the fake clock's start.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a manually advanced clock.
type fakeClock = testclock.Clock

func newClock() *fakeClock { return testclock.New(t0) }

// Keys are generated once per test binary: RSA generation is slow.
var (
	rsaKey   = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaKey2  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	ecKey    = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
	ec384Key = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P384()) })
	ec521Key = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P521()) })
	edKey    = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// writePEM writes pub as a PKIX "PUBLIC KEY" PEM file and returns its path.
func writePEM(t testing.TB, dir, name string, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, name, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sign makes a token; kid "" leaves the header without kid.
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// claimsAt are valid claims at the fake clock's start.
func claimsAt(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"sub": "alice",
		"iss": "https://issuer.example",
		"aud": "altair",
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

// baseJWT is a JWT config with the defaults the config package applies.
func baseJWT() config.JWT {
	return config.JWT{
		Secret:           testSecret,
		SecretAlgorithms: []string{"HS256", "HS384", "HS512"},
		Issuer:           "https://issuer.example",
		Audience:         []string{"altair"},
		Leeway:           30 * time.Second,
		JWKSRefresh:      10 * time.Minute,
		ClaimHeaders:     map[string]string{"sub": "X-User-ID"},
	}
}

func newAuth(t testing.TB, cfg config.Auth, o Options) *Authenticator {
	t.Helper()
	if o.Now == nil {
		o.Now = newClock().Now
	}
	a, err := New(cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// seen is what the upstream (the next handler) got.
type seen struct {
	called    bool
	principal *identity.Principal
	header    http.Header
}

// handler builds route's middleware around a recording next handler.
func handler(t testing.TB, a *Authenticator, route config.RouteAuth) (http.Handler, *seen) {
	t.Helper()
	mw, err := a.Middleware(route, "test")
	if err != nil {
		t.Fatalf("Middleware: %v", err)
	}
	s := &seen{}
	return mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.called = true
		s.principal = identity.PrincipalFrom(r.Context())
		s.header = r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	})), s
}

func get(h http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "http://gw.example"+path, nil)
	r.Header.Set("X-Request-ID", "req-1")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// errBody decodes a JSON error answer.
type errBody struct {
	Error     string `json:"error"`
	Status    int    `json:"status"`
	RequestID string `json:"request_id"`
	Message   string `json:"message"`
}

func decodeErr(t testing.TB, w *httptest.ResponseRecorder) errBody {
	t.Helper()
	var b errBody
	raw, _ := io.ReadAll(w.Body)
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("decode error body %q: %v", raw, err)
	}
	// The body says nothing beyond these fields.
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	for k := range m {
		if !strings.Contains(" error status request_id message ", " "+k+" ") {
			t.Errorf("error body has unexpected field %q: %s", k, raw)
		}
	}
	return b
}
