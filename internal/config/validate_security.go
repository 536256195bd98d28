package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on secrets and clock skew.
const (
	minJWTSecretBytes = 32
	minSecretChars    = 16 // admin token, API keys
	maxLeeway         = 5 * time.Minute
)

func hmacAlgorithms() []string { return []string{"HS256", "HS384", "HS512"} }
func keyAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}
func authMethods() []string { return []string{"jwt", "api_key", "forward"} }

// reservedClaimHeaders are request headers a claim must never overwrite: the
// gateway or the upstream reads them for routing or for credentials.
func reservedClaimHeaders() []string { return []string{"Host", "Authorization", "Cookie", "X-API-Key"} }

const corsCredentialsMsg = `allow_credentials cannot be used with the origin "*"`

// security checks the admin, edge, security_headers, cors and auth sections.
func (v *validator) security() {
	c := v.c
	if a := &c.Admin; a.Listen != "" {
		addr := listenAddr(a.Listen)
		if err := checkListen(addr); err != nil {
			v.check("admin.listen", err)
		} else if server := listenAddr(orDefault(c.Server.Listen, defaultListen)); checkListen(server) == nil && sameListener(addr, server) {
			v.add("admin.listen", "must differ from server.listen (%s); leave admin.listen empty to serve the admin API on the main listener", server)
		}
	}
	if c.Admin.Token != "" {
		v.check("admin.token", CheckSecret("token", c.Admin.Token))
	}

	e := &c.Edge
	for i, s := range e.Allow {
		v.check(fmt.Sprintf("edge.allow[%d]", i), checkCIDR(s))
	}
	for i, s := range e.Deny {
		v.check(fmt.Sprintf("edge.deny[%d]", i), checkCIDR(s))
	}
	if d := &e.DDoS; !d.Disabled {
		if d.Threshold < 0 {
			v.add("edge.ddos.threshold", "must be at least 1, got %d", d.Threshold)
		}
		if d.BlockDuration < 0 {
			v.add("edge.ddos.block_duration", "must be greater than 0")
		}
	}
	v.rateLimit("edge.rate_limit", &e.RateLimit)
	n := &e.Connections
	v.count("edge.connections.max_connections", int64(n.MaxConnections))
	v.count("edge.connections.max_connections_per_ip", int64(n.MaxConnectionsPerIP))
	v.count("edge.connections.max_in_flight", int64(n.MaxInFlight))
	v.count("edge.connections.max_in_flight_per_ip", int64(n.MaxInFlightPerIP))

	v.securityHeaders("security_headers", &c.SecurityHeaders)
	v.cors("cors", &c.CORS)
	if g := &c.CORS; !g.Disabled && g.AllowCredentials && slices.Contains(globalOrigins(g), "*") {
		v.add("cors.allow_credentials", corsCredentialsMsg)
	}
	v.auth()
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// globalOrigins returns the global policy's origins, the default when unset.
func globalOrigins(g *CORS) []string {
	if g.AllowedOrigins == nil {
		return defaultCORSOrigins()
	}
	return g.AllowedOrigins
}

// sameListener reports whether two valid host:port addresses would bind the
// same socket: the same port (not 0) and the same host, or a wildcard host on
// either side.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool {
		ip, err := netip.ParseAddr(h)
		return h == "" || err == nil && ip.IsUnspecified()
	}
	return strings.EqualFold(ha, hb) || wildcard(ha) || wildcard(hb)
}

// rateLimit checks a rate limit, global or a route's override. Zero fields
// mean the default (global) or inherit (route), so only set fields are checked.
func (v *validator) rateLimit(base string, rl *RateLimit) {
	if f := rl.RequestsPerSecond; f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		v.add(base+".requests_per_second", "must be a number greater than 0, got %v", f)
	}
	if rl.Burst < 0 {
		v.add(base+".burst", "must be at least 1, got %d", rl.Burst)
	}
	if rl.Key != "" {
		v.check(base+".key", checkRateLimitKey(rl.Key))
	}
}

func (v *validator) securityHeaders(base string, h *SecurityHeaders) {
	for _, f := range []struct{ key, value string }{
		{"content_type_options", h.ContentTypeOptions},
		{"frame_options", h.FrameOptions},
		{"strict_transport_security", h.StrictTransportSecurity},
		{"content_security_policy", h.ContentSecurityPolicy},
		{"referrer_policy", h.ReferrerPolicy},
	} {
		if !validHeaderValue(f.value) {
			v.add(base+"."+f.key, "header value must not contain control characters")
		}
	}
}

// cors checks a CORS policy's fields, global or a route's override.
func (v *validator) cors(base string, c *CORS) {
	for k, o := range c.AllowedOrigins {
		v.check(fmt.Sprintf("%s.allowed_origins[%d]", base, k), checkOrigin(o))
	}
	for k, m := range c.AllowedMethods {
		if !validToken(m) {
			v.add(fmt.Sprintf("%s.allowed_methods[%d]", base, k), "invalid method %q", m)
		}
	}
	for _, list := range []struct {
		key   string
		names []string
	}{{"allowed_headers", c.AllowedHeaders}, {"exposed_headers", c.ExposedHeaders}} {
		for k, h := range list.names {
			if !validToken(h) {
				v.add(fmt.Sprintf("%s.%s[%d]", base, list.key, k), "invalid header name %q", h)
			}
		}
	}
	v.duration(base+".max_age", c.MaxAge)
}

func (v *validator) auth() {
	a := &v.c.Auth
	for i, p := range a.PublicPaths {
		v.check(fmt.Sprintf("auth.public_paths[%d]", i), checkURLPath(p))
	}

	j := &a.JWT
	if j.Secret != "" {
		v.check("auth.jwt.secret", checkJWTSecret(j.Secret))
		if j.SecretAlgorithms != nil && len(j.SecretAlgorithms) == 0 {
			v.add("auth.jwt.secret_algorithms", "is empty, so auth.jwt.secret verifies no token; leave it out to accept HS256, HS384 and HS512")
		}
	}
	for i, alg := range j.SecretAlgorithms {
		v.check(fmt.Sprintf("auth.jwt.secret_algorithms[%d]", i), checkOneOf(alg, hmacAlgorithms()))
	}
	for i, k := range j.Keys {
		base := fmt.Sprintf("auth.jwt.keys[%d]", i)
		if k.File == "" {
			v.add(base+".file", "file is required")
		}
		if k.Algorithm == "" {
			v.add(base+".algorithm", "algorithm is required: want one of %s", strings.Join(keyAlgorithms(), ", "))
		} else {
			v.check(base+".algorithm", checkOneOf(k.Algorithm, keyAlgorithms()))
		}
	}
	if j.JWKSURL != "" {
		v.check("auth.jwt.jwks_url", checkServiceURL(j.JWKSURL))
	}
	v.duration("auth.jwt.jwks_refresh", j.JWKSRefresh)
	switch {
	case j.Leeway < 0:
		v.add("auth.jwt.leeway", "must not be negative")
	case j.Leeway > maxLeeway:
		v.add("auth.jwt.leeway", "must be at most %v, got %v: a larger leeway accepts tokens long expired", maxLeeway, j.Leeway)
	}
	keyHeader := orDefault(a.APIKeys.Header, defaultAPIKeyHeader)
	for _, claim := range slices.Sorted(maps.Keys(j.ClaimHeaders)) {
		h := j.ClaimHeaders[claim]
		path := "auth.jwt.claim_headers." + claim
		switch {
		case claim == "":
			v.add("auth.jwt.claim_headers", "claim name must not be empty")
		case !validToken(h):
			v.add(path, "invalid header name %q", h)
		case strings.EqualFold(h, keyHeader) || slices.ContainsFunc(reservedClaimHeaders(), func(r string) bool { return strings.EqualFold(h, r) }):
			v.add(path, "header %q cannot carry a claim: the gateway reads it from the client", h)
		}
	}

	k := &a.APIKeys
	if k.Header != "" && !validToken(k.Header) {
		v.add("auth.api_keys.header", "invalid header name %q", k.Header)
	}
	names := make(map[string]string) // key name → path of its first key
	for i, key := range k.Keys {
		base := fmt.Sprintf("auth.api_keys.keys[%d]", i)
		switch first, dup := names[key.Name]; {
		case key.Name == "":
			v.add(base+".name", "name is required")
		case !ValidKeyName(key.Name):
			v.add(base+".name", "name %q must match [A-Za-z0-9_.-]+", key.Name)
		case dup:
			v.add(base+".name", "name %q is already used by %s", key.Name, first)
		default:
			names[key.Name] = base
		}
		switch {
		case key.Key != "" && key.SHA256 != "":
			v.add(base+".sha256", "key and sha256 are mutually exclusive")
		case key.Key == "" && key.SHA256 == "":
			v.add(base, "key or sha256 is required")
		case key.Key != "":
			v.check(base+".key", CheckSecret("key", key.Key))
		default:
			v.check(base+".sha256", checkSHA256(key.SHA256))
		}
	}
}

// jwtConfigured reports whether auth.jwt can verify tokens.
func (c *Config) jwtConfigured() bool {
	j := &c.Auth.JWT
	return j.Secret != "" || len(j.Keys) > 0 || j.JWKSURL != ""
}

// apiKeysConfigured reports whether auth.api_keys has keys.
func (c *Config) apiKeysConfigured() bool {
	k := &c.Auth.APIKeys
	return len(k.Keys) > 0 || k.File != ""
}

// routeSecurity checks a route's overrides and its authentication.
func (v *validator) routeSecurity(P func(string) string, r *Route) {
	v.rateLimit(P("rate_limit"), &r.RateLimit)
	v.securityHeaders(P("security_headers"), &r.SecurityHeaders)
	v.cors(P("cors"), &r.CORS)
	v.routeCORSCredentials(P, &r.CORS)
	v.count(P("max_body_bytes"), r.MaxBodyBytes)
	v.routeAuth(P, r)
}

// routeCORSCredentials checks the route's effective CORS policy: the route's
// fields over the global ones, field by field, an empty list inheriting. A
// problem both inherit is the global policy's, reported there.
func (v *validator) routeCORSCredentials(P func(string) string, rc *CORS) {
	g := &v.c.CORS
	if g.Disabled || rc.Disabled {
		return
	}
	origins, inherited := rc.AllowedOrigins, len(rc.AllowedOrigins) == 0
	if inherited {
		origins = globalOrigins(g)
	}
	if !(rc.AllowCredentials || g.AllowCredentials) || !slices.Contains(origins, "*") {
		return
	}
	switch {
	case rc.AllowCredentials && inherited:
		v.add(P("cors.allow_credentials"), corsCredentialsMsg+" (inherited from cors.allowed_origins)")
	case rc.AllowCredentials:
		v.add(P("cors.allow_credentials"), corsCredentialsMsg)
	case !inherited:
		v.add(P("cors.allowed_origins"), `the origin "*" cannot be used with allow_credentials (inherited from cors.allow_credentials)`)
	}
}

func (v *validator) routeAuth(P func(string) string, r *Route) {
	a := &r.Auth
	for k, m := range a.Methods {
		v.check(P(fmt.Sprintf("auth.methods[%d]", k)), checkOneOf(m, authMethods()))
	}
	if a.Forward.URL != "" {
		v.check(P("auth.forward.url"), checkServiceURL(a.Forward.URL))
	}
	v.duration(P("auth.forward.timeout"), a.Forward.Timeout)
	if a.Forward.Timeout > maxForwardTimeout {
		v.add(P("auth.forward.timeout"), "must be at most %v (an auth service that slow holds every request)", maxForwardTimeout)
	}
	for k, h := range a.Forward.CopyHeaders {
		if !validToken(h) {
			v.add(P(fmt.Sprintf("auth.forward.copy_headers[%d]", k)), "invalid header name %q", h)
		}
	}
	if !r.RequireAuth {
		return
	}

	configured := map[string]bool{
		"jwt":     v.c.jwtConfigured(),
		"api_key": v.c.apiKeysConfigured(),
		"forward": a.Forward.URL != "",
	}
	if len(a.Methods) == 0 {
		if !configured["jwt"] && !configured["api_key"] && !configured["forward"] {
			v.add(P("require_auth"), "require_auth needs an authentication method: configure auth.jwt, auth.api_keys or this route's auth.forward")
		}
		return
	}
	hints := map[string]string{
		"jwt":     "set auth.jwt.secret, keys or jwks_url",
		"api_key": "set auth.api_keys.keys or file, or API_KEYS",
		"forward": "set this route's auth.forward.url",
	}
	for k, m := range a.Methods {
		if hint, known := hints[m]; known && !configured[m] {
			v.add(P(fmt.Sprintf("auth.methods[%d]", k)), "auth method %s is not configured (%s)", m, hint)
		}
	}
}

// checkRateLimitKey accepts ip, api_key, jwt_sub and header:NAME.
func checkRateLimitKey(k string) error {
	switch k {
	case "ip", "api_key", "jwt_sub":
		return nil
	}
	if name, ok := strings.CutPrefix(k, "header:"); ok {
		if !validToken(name) {
			return fmt.Errorf("invalid header name %q in key %q", name, k)
		}
		return nil
	}
	return fmt.Errorf(`invalid key %q: want "ip", "api_key", "jwt_sub" or "header:NAME"`, k)
}

// checkOrigin accepts "*", an origin such as https://app.example.com:8443 and
// a wildcard origin such as https://*.example.com. Scheme and host are
// case-insensitive, as in a URL; "null" is refused, since sandboxed documents
// and local files all send it.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	want := fmt.Errorf(`invalid origin %q: want "*", scheme://host[:port] or scheme://*.domain`, o)
	scheme, hostport, ok := strings.Cut(o, "://")
	switch {
	case !ok:
		return want
	case !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https"):
		return fmt.Errorf("invalid origin %q: scheme must be http or https", o)
	case strings.ContainsAny(hostport, "/?#@"):
		return fmt.Errorf("invalid origin %q: an origin has no path, query or user information", o)
	}
	host := hostport
	if strings.LastIndexByte(hostport, ':') > strings.LastIndexByte(hostport, ']') {
		h, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return want
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("invalid origin %q: invalid port %q", o, port)
		}
		host = h
	} else if h, ok := strings.CutPrefix(hostport, "["); ok {
		host, _ = strings.CutSuffix(h, "]")
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" {
		return nil
	}
	name := strings.ToLower(host)
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name = rest
	}
	if !validHostname(name) {
		return want
	}
	return nil
}

// checkServiceURL accepts an absolute http or https URL with a host, for
// services the gateway calls (JWKS, forward auth). Its messages never repeat
// the URL.
func checkServiceURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("invalid URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("scheme must be http or https")
	case u.User != nil:
		return errors.New("url must not contain user information")
	case u.Opaque != "" || u.Hostname() == "":
		return errors.New("url must have a host")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("url must not have a fragment")
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return fmt.Errorf("invalid port %q", p)
		}
	}
	return nil
}

// checkJWTSecret rejects HMAC secrets shorter than 32 bytes, which can be
// brute-forced from one token.
func checkJWTSecret(s string) error {
	if len(s) < minJWTSecretBytes {
		return fmt.Errorf("JWT_SECRET must be at least %d bytes", minJWTSecretBytes)
	}
	return nil
}

// maxForwardTimeout bounds auth.forward.timeout; the auth client waits at
// most this long for an answer's headers.
const maxForwardTimeout = 10 * time.Second

// CheckSecret rejects a token or key too short to resist guessing; what names
// it in the message, which never quotes it.
func CheckSecret(what, s string) error {
	if utf8.RuneCountInString(s) < minSecretChars {
		return fmt.Errorf("%s is too short to be a secret: want at least %d characters", what, minSecretChars)
	}
	return nil
}

// checkSHA256 accepts 64 hex characters.
func checkSHA256(s string) error {
	if b, err := hex.DecodeString(s); err != nil || len(b) != 32 {
		return errors.New("sha256 must be 64 hex characters")
	}
	return nil
}

// ValidKeyName reports whether s is an API key name: [A-Za-z0-9_.-]+.
func ValidKeyName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
