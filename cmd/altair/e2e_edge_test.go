package main

// End-to-end tests of edge protection and authentication, against the real
// binary.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const adminToken = "e2e-admin-token-0123456789"

// hs256 signs claims with secret (a minimal signer, so the test does not share
// code with the gateway's verifier).
func hs256(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	p := enc.EncodeToString(b)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(h + "." + p))
	return h + "." + p + "." + enc.EncodeToString(m.Sum(nil))
}

func do(t *testing.T, method, url string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestE2ERateLimitCannotBeSpoofed(t *testing.T) {
	t.Parallel()
	a := backend(t, "a")
	p := startAltair(t, header("", "  rate_limit: { requests_per_second: 1, burst: 3 }\n  ddos: { disabled: true }\n")+fmt.Sprintf(`
routes:
  - name: r
    backends: [ { url: %q } ]
`, a.URL))
	limited := 0
	for i := 0; i < 10; i++ {
		// A client that is not a trusted proxy claims a new address each time.
		code, _, h := do(t, "GET", p.url("/x"), "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i), "X-Real-IP", fmt.Sprintf("203.0.113.%d", i))
		if code == http.StatusTooManyRequests {
			limited++
			if h.Get("Retry-After") == "" || h.Get("RateLimit-Limit") == "" {
				t.Fatalf("429 without Retry-After/RateLimit-* headers: %v", h)
			}
		}
	}
	if limited < 6 {
		t.Fatalf("10 requests with spoofed forwarding headers, burst 3: %d limited, want >= 6", limited)
	}
}

func TestE2EAdminListsAndAllowBeatsLimits(t *testing.T) {
	t.Parallel()
	a := backend(t, "a")
	edgeCfg := "  rate_limit: { requests_per_second: 1, burst: 1 }\n  ddos: { disabled: true }\n"
	p := startAltair(t, header("", edgeCfg)+fmt.Sprintf(`
admin:
  token: %s
routes:
  - name: r
    backends: [ { url: %q } ]
`, adminToken, a.URL))
	bearer := "Bearer " + adminToken

	if code, _, _ := do(t, "POST", p.url("/admin/blacklist?ip=127.0.0.1")); code != http.StatusUnauthorized {
		t.Fatalf("admin call without token = %d, want 401", code)
	}
	if code, _, _ := do(t, "POST", p.url("/admin/blacklist?ip=127.0.0.1"), "Authorization", "Bearer wrong-token-wrong-token"); code != http.StatusUnauthorized {
		t.Fatalf("admin call with a wrong token = %d, want 401", code)
	}
	if code, _, _ := do(t, "POST", p.url("/admin/blacklist?ip=not-an-ip"), "Authorization", bearer); code != http.StatusBadRequest {
		t.Fatalf("blacklist a bad address = %d, want 400", code)
	}

	// Block ourselves: every request is then refused with 403, the admin API
	// included (it is behind the edge checks like everything else).
	if code, body, _ := do(t, "POST", p.url("/admin/blacklist?ip=127.0.0.0/8"), "Authorization", bearer); code != 200 {
		t.Fatalf("blacklist 127.0.0.0/8 = %d %q", code, body)
	}
	if code, _, _ := do(t, "GET", p.url("/x")); code != http.StatusForbidden {
		t.Fatalf("GET from a blacklisted IP = %d, want 403", code)
	}
	if code, _, _ := do(t, "GET", p.url("/admin/whitelist"), "Authorization", bearer); code != http.StatusForbidden {
		t.Fatalf("admin API from a blacklisted IP = %d, want 403", code)
	}

	// The config's allow list (applied by a reload) wins over the run-time
	// deny entry and over the rate limit; the run-time entry survives.
	p.rewrite(header("", edgeCfg+"  allow: [127.0.0.1]\n") + fmt.Sprintf(`
admin:
  token: %s
routes:
  - name: renamed
    backends: [ { url: %q } ]
`, adminToken, a.URL))
	waitFor(t, 5*time.Second, "reload", func() bool {
		_, body, _ := do(t, "GET", p.url("/stats"))
		return strings.Contains(body, `"name": "renamed"`)
	})
	for i := 0; i < 5; i++ {
		if code, _, _ := do(t, "GET", p.url("/x")); code != 200 {
			t.Fatalf("allow-listed GET #%d = %d, want 200 despite the deny entry and a burst of 1", i, code)
		}
	}
	code, body, _ := do(t, "GET", p.url("/admin/blacklist"), "Authorization", bearer)
	if code != 200 || !strings.Contains(body, `"127.0.0.0/8"`) || !strings.Contains(body, `"runtime"`) {
		t.Fatalf("GET /admin/blacklist after reload = %d %q, want the run-time entry kept", code, body)
	}
	code, body, _ = do(t, "GET", p.url("/admin/whitelist"), "Authorization", bearer)
	if code != 200 || !strings.Contains(body, `"127.0.0.1/32"`) || !strings.Contains(body, `"config"`) {
		t.Fatalf("GET /admin/whitelist = %d %q, want the config entry", code, body)
	}
	if code, _, _ := do(t, "DELETE", p.url("/admin/blacklist?ip=127.0.0.0/8"), "Authorization", bearer); code != 200 {
		t.Fatalf("DELETE blacklist entry = %d", code)
	}
	if code, _, _ := do(t, "POST", p.url("/admin/whitelist?ip=192.0.2.0/24"), "Authorization", bearer); code != 200 {
		t.Fatalf("POST whitelist = %d", code)
	}
	if code, _, _ := do(t, "DELETE", p.url("/admin/whitelist?ip=192.0.2.0/24"), "Authorization", bearer); code != 200 {
		t.Fatalf("DELETE whitelist = %d", code)
	}
}

func TestE2EAdminDisabledWithoutToken(t *testing.T) {
	t.Parallel()
	p := startAltair(t, baseCfg)
	if code, _, _ := do(t, "GET", p.url("/admin/whitelist")); code != http.StatusNotFound {
		t.Fatalf("admin API without ADMIN_TOKEN = %d, want 404", code)
	}
	if !strings.Contains(p.logs.String(), "admin API disabled") {
		t.Fatal("the log does not say that the admin API is disabled")
	}
}

func TestE2EAuthJWTAndAPIKey(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 16)
	b := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "secret data")
	})
	const secret = "an-hmac-secret-of-at-least-32-bytes!"
	p := startAltair(t, baseCfg+fmt.Sprintf(`
routes:
  - name: private
    match: { prefix: /private }
    require_auth: true
    backends: [ { url: %[1]q } ]
  - name: public
    match: { prefix: /api/v1/public }
    require_auth: true
    backends: [ { url: %[1]q } ]
`, b.URL), "JWT_SECRET="+secret, "API_KEYS=ci:key-for-the-ci-robot-0001")

	code, body, h := do(t, "GET", p.url("/private/x"))
	if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" || strings.Contains(body, "secret data") {
		t.Fatalf("no credentials = %d %q (WWW-Authenticate %q), want 401 with a challenge", code, body, h.Get("WWW-Authenticate"))
	}
	now := time.Now().Unix()
	good := hs256(t, secret, map[string]any{"sub": "alice", "exp": now + 300})
	code, _, _ = do(t, "GET", p.url("/private/x"), "Authorization", "Bearer "+good, "X-User-ID", "mallory")
	if code != 200 {
		t.Fatalf("valid JWT = %d, want 200", code)
	}
	got := <-seen
	if got.Get("X-User-ID") != "alice" || got.Get("Authorization") != "" {
		t.Fatalf("backend saw X-User-ID %q and Authorization %q, want alice and none", got.Get("X-User-ID"), got.Get("Authorization"))
	}
	for name, tok := range map[string]string{
		"expired":      hs256(t, secret, map[string]any{"sub": "alice", "exp": now - 3600}),
		"wrong secret": hs256(t, strings.Repeat("x", 40), map[string]any{"sub": "alice", "exp": now + 300}),
		"alg none":     base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + strings.Split(good, ".")[1] + ".",
		"truncated":    good[:len(good)-5],
	} {
		code, body, _ := do(t, "GET", p.url("/private/x"), "Authorization", "Bearer "+tok)
		if code != http.StatusUnauthorized || strings.Contains(body, "secret data") {
			t.Errorf("%s token = %d %q, want 401", name, code, body)
		}
	}
	if code, _, _ := do(t, "GET", p.url("/private/x"), "X-API-Key", "key-for-the-ci-robot-0001"); code != 200 {
		t.Fatalf("valid API key = %d, want 200", code)
	}
	if got := <-seen; got.Get("X-API-Key") != "" {
		t.Fatalf("API key forwarded upstream: %q", got.Get("X-API-Key"))
	}
	if code, _, _ := do(t, "GET", p.url("/private/x"), "X-API-Key", "key-for-the-ci-robot-0002"); code != http.StatusUnauthorized {
		t.Fatalf("wrong API key = %d, want 401", code)
	}
	// Default public paths bypass auth.
	if code, _, _ := do(t, "GET", p.url("/api/v1/public/info")); code != 200 {
		t.Fatalf("public path = %d, want 200", code)
	}
	<-seen
}

func TestE2ERequireAuthWithoutMethodIsRejected(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := dir + "/altair.yaml"
	writeFile(t, path, baseCfg+"routes:\n  - name: r\n    require_auth: true\n    backends: [ { url: http://127.0.0.1:1 } ]\n")
	out, err := runAltair("validate", "-c", path)
	if err == nil || !strings.Contains(out, "require_auth needs an authentication method") {
		t.Fatalf("validate require_auth without auth: err %v, output %q", err, out)
	}
}

func TestE2EHygiene(t *testing.T) {
	t.Parallel()
	a := backend(t, "a")
	p := startAltair(t, header("  max_uri_bytes: 256\n", "")+fmt.Sprintf(`
cors:
  allowed_origins: ["https://app.example.com"]
  allow_credentials: true
routes:
  - name: r
    match: { prefix: /, methods: [GET, POST] }
    max_body_bytes: 16
    require_auth: true
    auth: { methods: [api_key] }
    backends: [ { url: %q } ]
`, a.URL), "API_KEYS=k:0123456789abcdef0123")

	// Security headers on the gateway's own errors too.
	code, _, h := do(t, "GET", p.url("/nothing-here"))
	if code != http.StatusUnauthorized || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" ||
		h.Get("Strict-Transport-Security") == "" || h.Get("Content-Security-Policy") == "" || h.Get("Referrer-Policy") == "" || h.Get("X-Request-ID") == "" {
		t.Fatalf("error answer %d headers = %v, want security headers and a request id", code, h)
	}
	// A preflight is answered before auth (browsers send no credentials).
	code, _, h = do(t, "OPTIONS", p.url("/api"), "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight = %d %v, want 204 allowing the origin", code, h)
	}
	code, _, h = do(t, "OPTIONS", p.url("/api"), "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from a disallowed origin got Allow-Origin %q (status %d)", h.Get("Access-Control-Allow-Origin"), code)
	}
	// URI and body limits.
	if code, _, _ := do(t, "GET", p.url("/"+strings.Repeat("a", 400)), "X-API-Key", "0123456789abcdef0123"); code != http.StatusRequestURITooLong {
		t.Fatalf("long URI = %d, want 414", code)
	}
	req, _ := http.NewRequest("POST", p.url("/upload"), strings.NewReader(strings.Repeat("b", 64)))
	req.Header.Set("X-API-Key", "0123456789abcdef0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("64-byte body on a 16-byte route = %d, want 413", resp.StatusCode)
	}
}

// header is the start of every test config: a loopback listener with
// serverExtra, and the edge section edgeExtra — by default rate limits and
// DDoS blocking off, since every test client shares 127.0.0.1.
func header(serverExtra, edgeExtra string) string {
	if edgeExtra == "" {
		edgeExtra = "  rate_limit: { disabled: true }\n  ddos: { disabled: true }\n"
	}
	return "server:\n  listen: \"127.0.0.1:0\"\n" + serverExtra + "log:\n  level: info\nedge:\n" + edgeExtra
}

// backendFunc is an httptest backend running h.
func backendFunc(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runAltair runs the binary with args and returns its combined output.
func runAltair(args ...string) (string, error) {
	out, err := exec.Command(altairBin, args...).CombinedOutput()
	return string(out), err
}

func TestE2EAdminOnItsOwnListener(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := ln.Addr().String()
	ln.Close()
	p := startAltair(t, baseCfg+fmt.Sprintf("admin:\n  token: %s\n  listen: %q\n", adminToken, adminAddr))
	if code, _, _ := do(t, "GET", p.url("/admin/whitelist"), "Authorization", "Bearer "+adminToken); code != http.StatusNotFound {
		t.Fatalf("admin API on the main listener with admin.listen set = %d, want 404", code)
	}
	waitFor(t, 5*time.Second, "admin listener", func() bool {
		c, err := net.Dial("tcp", adminAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if code, body, _ := do(t, "GET", "http://"+adminAddr+"/admin/whitelist", "Authorization", "Bearer "+adminToken); code != 200 {
		t.Fatalf("admin API on admin.listen = %d %q, want 200", code, body)
	}
	if code, _, _ := do(t, "GET", "http://"+adminAddr+"/admin/whitelist"); code != http.StatusUnauthorized {
		t.Fatalf("admin listener without token = %d, want 401", code)
	}
	if code, _, _ := do(t, "GET", "http://"+adminAddr+"/x"); code != http.StatusNotFound {
		t.Fatalf("non-admin path on the admin listener = %d, want 404", code)
	}
}
