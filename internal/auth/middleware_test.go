package auth

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/altair-gateway/altair/internal/config"
)

func jwtAndKeys(t *testing.T) *Authenticator {
	t.Helper()
	cfg := baseJWT()
	cfg.ClaimHeaders = map[string]string{"sub": "X-User-ID", "role": "x-user-role"}
	return newAuth(t, config.Auth{
		JWT:         cfg,
		APIKeys:     config.APIKeys{Header: "X-API-Key", Keys: []config.APIKey{{Name: "svc", Key: "the-key"}}},
		PublicPaths: []string{"/health", "/api/v1/public/", "/login"},
	}, Options{})
}

func TestClaimHeaders(t *testing.T) {
	t.Parallel()
	a := jwtAndKeys(t)
	c := claimsAt(t0)
	c["role"] = "admin"
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", c)
	noRole := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0))

	tests := []struct {
		name      string
		route     config.RouteAuth
		token     string
		wantAuthz bool
	}{
		{"default", config.RouteAuth{}, tok, false},
		{"forward_authorization", config.RouteAuth{ForwardAuthorization: true}, tok, true},
		{"claim absent", config.RouteAuth{}, noRole, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, s := handler(t, a, tt.route)
			w := get(h, "/api", "Authorization", "Bearer "+tt.token,
				"X-User-ID", "mallory", "X-User-Id", "mallory2", "X-User-Role", "root", "X-API-Key", "junk")
			if w.Code != http.StatusNoContent {
				t.Fatalf("status = %d, want 204", w.Code)
			}
			if got := s.header.Values("X-User-ID"); !slices.Equal(got, []string{"alice"}) {
				t.Errorf("X-User-ID = %q, want [alice]", got)
			}
			wantRole := []string{"admin"}
			if tt.token == noRole {
				wantRole = nil
			}
			if got := s.header.Values("X-User-Role"); !slices.Equal(got, wantRole) {
				t.Errorf("X-User-Role = %q, want %q", got, wantRole)
			}
			if got := s.header.Get("Authorization") != ""; got != tt.wantAuthz {
				t.Errorf("Authorization forwarded = %v, want %v", got, tt.wantAuthz)
			}
			if s.header.Get("X-API-Key") != "" {
				t.Errorf("X-API-Key forwarded")
			}
		})
	}
}

func TestClaimHeadersStrippedOnFailureAndPublicPaths(t *testing.T) {
	t.Parallel()
	a := jwtAndKeys(t)
	h, s := handler(t, a, config.RouteAuth{})
	// Authenticated by API key: no JWT, so no X-User-ID at all.
	if w := get(h, "/api", "X-API-Key", "the-key", "X-User-ID", "mallory"); w.Code != http.StatusNoContent {
		t.Fatalf("status = %d", w.Code)
	}
	if s.header.Get("X-User-ID") != "" || s.principal.Name != "svc" {
		t.Errorf("X-User-ID = %q, principal %+v", s.header.Get("X-User-ID"), s.principal)
	}
	// Public path: passes without credentials, still without the spoof.
	if w := get(h, "/health", "X-User-ID", "mallory"); w.Code != http.StatusNoContent {
		t.Fatalf("status = %d", w.Code)
	}
	if s.header.Get("X-User-ID") != "" || s.principal != nil {
		t.Errorf("public path: X-User-ID = %q, principal %+v", s.header.Get("X-User-ID"), s.principal)
	}
}

func TestPublicPaths(t *testing.T) {
	t.Parallel()
	a := jwtAndKeys(t)
	h, _ := handler(t, a, config.RouteAuth{})
	tests := []struct {
		path   string
		public bool
	}{
		{"/health", true},
		{"/health/live", true},
		{"/healthz", false},
		{"/health-check", false},
		{"/login", true},
		{"/login/", true},
		{"/loginx", false},
		{"/api/v1/public", true}, // configured with a trailing slash
		{"/api/v1/public/doc", true},
		{"/api/v1/publicity", false},
		{"/", false},
		{"/api/health", false},
	}
	for _, tt := range tests {
		w := get(h, tt.path)
		if got := w.Code == http.StatusNoContent; got != tt.public {
			t.Errorf("GET %s: status %d, want public %v", tt.path, w.Code, tt.public)
		}
	}
}

func TestRootPublicPath(t *testing.T) {
	t.Parallel()
	a := newAuth(t, config.Auth{APIKeys: config.APIKeys{Keys: []config.APIKey{{Name: "n", Key: "k"}}}, PublicPaths: []string{"/"}}, Options{})
	h, _ := handler(t, a, config.RouteAuth{})
	if w := get(h, "/anything/at/all"); w.Code != http.StatusNoContent {
		t.Errorf("status = %d, want 204", w.Code)
	}
}

func TestMethodOrderAndChallenges(t *testing.T) {
	t.Parallel()
	a := jwtAndKeys(t)
	good := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0))
	bad := good[:len(good)-4] + "AAAA"
	both := config.RouteAuth{Methods: []string{"jwt", "api_key"}}
	keyFirst := config.RouteAuth{Methods: []string{"api_key", "jwt"}}
	bearerChallenge := `Bearer realm="altair"`
	badChallenge := `Bearer realm="altair", error="invalid_token"`
	keyChallenge := `APIKey realm="altair", header="X-API-Key"`

	tests := []struct {
		name       string
		route      config.RouteAuth
		header     []string
		wantMethod string // "" = 401
		wantMsg    string
		wantWWW    []string
	}{
		{"bad token, good key", both, []string{"Authorization", "Bearer " + bad, "X-API-Key", "the-key"}, "api_key", "", nil},
		{"good token, bad key", both, []string{"Authorization", "Bearer " + good, "X-API-Key", "nope"}, "jwt", "", nil},
		{"both good, key first", keyFirst, []string{"Authorization", "Bearer " + good, "X-API-Key", "the-key"}, "api_key", "", nil},
		{"nothing", both, nil, "", msgMissing, []string{bearerChallenge, keyChallenge}},
		{"bad token only", both, []string{"Authorization", "Bearer " + bad}, "", msgInvalidToken, []string{badChallenge, keyChallenge}},
		{"bad key only", both, []string{"X-API-Key", "nope"}, "", msgInvalidKey, []string{bearerChallenge, keyChallenge}},
		{"bad both, key first", keyFirst, []string{"Authorization", "Bearer " + bad, "X-API-Key", "nope"}, "", msgInvalidKey, []string{keyChallenge, badChallenge}},
		{"basic auth is no token", config.RouteAuth{Methods: []string{"jwt"}}, []string{"Authorization", "Basic YTpi"}, "", msgMissing, []string{bearerChallenge}},
		{"scheme case", config.RouteAuth{Methods: []string{"jwt"}}, []string{"Authorization", "bEaReR   " + good}, "jwt", "", nil},
		{"two Authorization headers", config.RouteAuth{Methods: []string{"jwt"}}, []string{"Authorization", "Bearer " + good, "Authorization", "Bearer " + good}, "", msgInvalidToken, []string{badChallenge}},
		{"Bearer without token", config.RouteAuth{Methods: []string{"jwt"}}, []string{"Authorization", "Bearer"}, "", msgInvalidToken, []string{badChallenge}},
		{"Bearerx scheme", config.RouteAuth{Methods: []string{"jwt"}}, []string{"Authorization", "Bearerx " + good}, "", msgMissing, []string{bearerChallenge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, s := handler(t, a, tt.route)
			w := get(h, "/api", tt.header...)
			if tt.wantMethod != "" {
				if w.Code != http.StatusNoContent || s.principal == nil || s.principal.Method != tt.wantMethod {
					t.Fatalf("status %d, principal %+v; want %s", w.Code, s.principal, tt.wantMethod)
				}
				return
			}
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", w.Code)
			}
			if b := decodeErr(t, w); b.Message != tt.wantMsg {
				t.Errorf("message = %q, want %q", b.Message, tt.wantMsg)
			}
			if got := w.Header().Values("WWW-Authenticate"); !slices.Equal(got, tt.wantWWW) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantWWW)
			}
			if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("headers = %v", w.Header())
			}
		})
	}
}

func TestHEADUnauthorizedHasNoBody(t *testing.T) {
	t.Parallel()
	a := jwtAndKeys(t)
	h, _ := handler(t, a, config.RouteAuth{})
	r := httptest.NewRequest(http.MethodHead, "/api", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || w.Body.Len() != 0 {
		t.Errorf("HEAD: status %d, body %q", w.Code, w.Body)
	}
}

func TestMiddlewareErrors(t *testing.T) {
	t.Parallel()
	onlyKeys := newAuth(t, config.Auth{APIKeys: config.APIKeys{Keys: []config.APIKey{{Name: "n", Key: "k"}}}}, Options{})
	nothing := newAuth(t, config.Auth{}, Options{})
	tests := []struct {
		name  string
		a     *Authenticator
		route config.RouteAuth
		want  []string // fields
	}{
		{"unknown method", onlyKeys, config.RouteAuth{Methods: []string{"api_key", "basic"}}, []string{"auth.methods[1]"}},
		{"jwt not configured", onlyKeys, config.RouteAuth{Methods: []string{"jwt"}}, []string{"auth.methods[0]"}},
		{"forward without url", onlyKeys, config.RouteAuth{Methods: []string{"forward"}}, []string{"auth.methods[0]"}},
		{"forward with a bad url", onlyKeys, config.RouteAuth{Methods: []string{"forward"}, Forward: config.ForwardAuth{URL: "ftp://x"}}, []string{"auth.forward.url"}},
		{"duplicate", onlyKeys, config.RouteAuth{Methods: []string{"api_key", "api_key"}}, []string{"auth.methods[1]"}},
		{"nothing configured", nothing, config.RouteAuth{}, []string{"auth.methods"}},
		{"api_key not configured", nothing, config.RouteAuth{Methods: []string{"api_key", "jwt"}}, []string{"auth.methods[0]", "auth.methods[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.a.Middleware(tt.route, "r")
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Middleware err = %v, want Errors", err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fields = %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  config.Auth
		want []string
	}{
		{config.Auth{}, nil},
		{config.Auth{JWT: baseJWT()}, []string{"jwt"}},
		{config.Auth{JWT: config.JWT{JWKSURL: "https://idp.example/jwks"}}, []string{"jwt"}},
		{config.Auth{APIKeys: config.APIKeys{Keys: []config.APIKey{{Name: "n", Key: "k"}}}}, []string{"api_key"}},
		{config.Auth{JWT: baseJWT(), APIKeys: config.APIKeys{Keys: []config.APIKey{{Name: "n", Key: "k"}}}}, []string{"jwt", "api_key"}},
	}
	for _, tt := range tests {
		if got := newAuth(t, tt.cfg, Options{}).Methods(); !slices.Equal(got, tt.want) {
			t.Errorf("Methods() = %q, want %q", got, tt.want)
		}
	}
}

func TestErrorsString(t *testing.T) {
	t.Parallel()
	e := Errors{{Field: "jwt.secret", Msg: "too short"}, {Msg: "whole"}}
	if got := e.Error(); got != "jwt.secret: too short; whole" {
		t.Errorf("Error() = %q", got)
	}
	if !strings.Contains(e.Error(), "too short") {
		t.Fail()
	}
}

func TestCredentialsNeverLogged(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	cfg := baseJWT()
	a := newAuth(t, config.Auth{
		JWT:     cfg,
		APIKeys: config.APIKeys{Header: "X-API-Key", Keys: []config.APIKey{{Name: "svc", Key: "the-secret-api-key"}}},
	}, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	h, _ := handler(t, a, config.RouteAuth{})
	good := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0))
	expired := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", jwt.MapClaims{"sub": "alice", "exp": t0.Add(-time.Hour).Unix()})
	get(h, "/api", "Authorization", "Bearer "+good)
	get(h, "/api", "Authorization", "Bearer "+expired)
	get(h, "/api", "X-API-Key", "the-secret-api-key")
	get(h, "/api", "X-API-Key", "the-wrong-api-key")
	out := logs.String()
	for _, secret := range []string{good[len(good)-20:], expired[len(expired)-20:], "the-secret-api-key", "the-wrong-api-key", testSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains a credential %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"name=alice", "name=svc", "token is expired", "api key refused", "route=test"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
