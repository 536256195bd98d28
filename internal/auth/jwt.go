package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/altair-gateway/altair/internal/config"
)

const (
	// maxTokenLen bounds the work an unauthenticated client can cause.
	maxTokenLen = 16 << 10
	// minRSABits refuses weak RSA keys from files and from the JWKS.
	minRSABits = 2048
)

// Errors of token verification. They are for logs at debug level and for
// tests; a client only ever learns "invalid token".
var (
	ErrTokenMalformed = errors.New("malformed token")
	ErrNoKey          = errors.New("no key for the token's kid and alg")
)

// hmacAlgs and asymAlgs are the algorithms Altair accepts, by key kind.
var (
	hmacAlgs = []string{"HS256", "HS384", "HS512"}
	asymAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// verifyKey is one key a token may be verified with, pinned to the
// algorithms it accepts. The parser is built with exactly those algorithms,
// so a token whose header names any other algorithm ("none", or HS256 when
// the key is an RSA public key) is refused before the key is used.
type verifyKey struct {
	id     string
	algs   []string
	key    any // []byte for HMAC, *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
	parser *jwt.Parser
	// fromJWKS marks a key of the JWKS: tokens it verified are served from
	// the token cache only while it is in the current set.
	fromJWKS bool
}

// keySet indexes keys by kid. Keys without an id (the HMAC secret, PEM keys
// without id, JWKS keys without kid) serve tokens without kid. A keySet is
// immutable once built.
type keySet struct {
	byID map[string][]*verifyKey
	noID []*verifyKey
}

func (s *keySet) add(k *verifyKey) {
	if k.id == "" {
		s.noID = append(s.noID, k)
		return
	}
	if s.byID == nil {
		s.byID = make(map[string][]*verifyKey)
	}
	s.byID[k.id] = append(s.byID[k.id], k)
}

func (s *keySet) candidates(kid string) []*verifyKey {
	if s == nil {
		return nil
	}
	if kid == "" {
		return s.noID
	}
	return s.byID[kid]
}

// has says whether k itself (not an equal key) is in the set.
func (s *keySet) has(k *verifyKey) bool {
	return slices.Contains(s.candidates(k.id), k)
}

// find returns the key in the set with k's id, algorithms and public key,
// or nil.
func (s *keySet) find(k *verifyKey) *verifyKey {
	pub, ok := k.key.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return nil
	}
	for _, c := range s.candidates(k.id) {
		if slices.Equal(c.algs, k.algs) && pub.Equal(c.key) {
			return c
		}
	}
	return nil
}

func (s *keySet) len() int {
	if s == nil {
		return 0
	}
	n := len(s.noID)
	for _, ks := range s.byID {
		n += len(ks)
	}
	return n
}

// jwtVerifier verifies bearer tokens against the static keys (the secret
// and the PEM files) and the JWKS.
type jwtVerifier struct {
	claimHeaders []claimHeader
	static       keySet
	jwks         *jwksCache // nil without jwks_url
	// parsers holds one parser per pinned algorithm set (by its joined
	// name); parsers are safe for concurrent use.
	parsers map[string]*jwt.Parser
	// cache holds verified tokens; nil disables it (benchmarks).
	cache  *tokenCache
	now    func() time.Time
	leeway time.Duration
}

type claimHeader struct {
	claim, header string
}

func jwtConfigured(c config.JWT) bool {
	return c.Secret != "" || len(c.Keys) > 0 || c.JWKSURL != ""
}

func newJWTVerifier(c config.JWT, a *Authenticator, errs *Errors) *jwtVerifier {
	v := &jwtVerifier{
		parsers: make(map[string]*jwt.Parser),
		cache:   newTokenCache(),
		now:     a.now,
		leeway:  c.Leeway,
	}
	opts := []jwt.ParserOption{
		jwt.WithLeeway(c.Leeway),
		jwt.WithTimeFunc(a.now),
		jwt.WithIssuedAt(),
		// exp is required: a token that never expires cannot be revoked
		// short of rotating the key.
		jwt.WithExpirationRequired(),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if len(c.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(c.Audience...))
	}
	parser := func(algs []string) *jwt.Parser {
		name := strings.Join(algs, ",")
		if p, ok := v.parsers[name]; ok {
			return p
		}
		p := jwt.NewParser(append(slices.Clip(opts), jwt.WithValidMethods(algs))...)
		v.parsers[name] = p
		return p
	}
	// Every single asymmetric algorithm gets its parser now, so that JWKS
	// keys fetched later share them and the map stays read-only.
	for _, alg := range asymAlgs {
		parser([]string{alg})
	}

	if c.Secret != "" {
		algs := c.SecretAlgorithms
		if len(algs) == 0 {
			algs = hmacAlgs
		}
		ok := true
		for i, alg := range algs {
			if !slices.Contains(hmacAlgs, alg) {
				errs.add(fmt.Sprintf("jwt.secret_algorithms[%d]", i), "%q is not an HMAC algorithm (HS256, HS384, HS512)", alg)
				ok = false
			}
		}
		if ok {
			algs = slices.Clone(algs)
			v.static.add(&verifyKey{algs: algs, key: []byte(c.Secret), parser: parser(algs)})
		}
	}
	for i, kc := range c.Keys {
		field := fmt.Sprintf("jwt.keys[%d]", i)
		if !slices.Contains(asymAlgs, kc.Algorithm) {
			errs.add(field+".algorithm", "unsupported algorithm %q (want one of %s)", kc.Algorithm, strings.Join(asymAlgs, ", "))
			continue
		}
		key, err := loadPEMKey(kc.File)
		if err != nil {
			errs.add(field+".file", "%v", err)
			continue
		}
		if err := checkKeyAlg(key, kc.Algorithm); err != nil {
			errs.add(field+".algorithm", "%v", err)
			continue
		}
		algs := []string{kc.Algorithm}
		v.static.add(&verifyKey{id: kc.ID, algs: algs, key: key, parser: parser(algs)})
	}
	if c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		switch {
		case err != nil:
			errs.add("jwt.jwks_url", "invalid URL")
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			errs.add("jwt.jwks_url", "URL must be http or https with a host")
		default:
			v.jwks = newJWKSCache(u, c.JWKSRefresh, a, v)
		}
	}
	for _, claim := range slices.Sorted(maps.Keys(c.ClaimHeaders)) {
		v.claimHeaders = append(v.claimHeaders, claimHeader{claim: claim, header: c.ClaimHeaders[claim]})
	}
	return v
}

// checkClaimHeaders refuses claim headers that would clobber the request's
// routing or credentials: the client's values of a claim header are removed
// before authentication.
func checkClaimHeaders(chs []claimHeader, apiKeyHeader string, errs *Errors) {
	reserved := []string{"Host", "Authorization", "Cookie", "Content-Length", "Content-Type",
		"Transfer-Encoding", "Te", "Trailer", "Upgrade", "Connection", "Keep-Alive",
		"Proxy-Connection", "Proxy-Authorization", textproto.CanonicalMIMEHeaderKey(apiKeyHeader)}
	for _, ch := range chs {
		field := "jwt.claim_headers." + ch.claim
		switch {
		case !validHeaderName(ch.header):
			errs.add(field, "invalid header name %q", ch.header)
		case slices.Contains(reserved, textproto.CanonicalMIMEHeaderKey(ch.header)):
			errs.add(field, "header %s cannot carry a claim", ch.header)
		}
	}
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// loadPEMKey reads the first public key or certificate in a PEM file.
func loadPEMKey(file string) (any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM public key or certificate in the file")
		}
		switch b.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse public key: %w", err)
			}
			return k, nil
		case "RSA PUBLIC KEY":
			k, err := x509.ParsePKCS1PublicKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse RSA public key: %w", err)
			}
			return k, nil
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse certificate: %w", err)
			}
			return cert.PublicKey, nil
		}
		if strings.Contains(b.Type, "PRIVATE KEY") {
			// Refuse rather than derive the public key: a private key has
			// no business on the gateway.
			return nil, errors.New("the file holds a private key; give the public key or a certificate")
		}
	}
}

// checkKeyAlg says whether key can verify alg.
func checkKeyAlg(key any, alg string) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if alg[0] != 'R' && alg[0] != 'P' {
			return fmt.Errorf("an RSA key cannot verify %s", alg)
		}
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key has %d bits, want at least %d", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if want == nil {
			return fmt.Errorf("an EC key cannot verify %s", alg)
		}
		if k.Curve != want {
			return fmt.Errorf("%s needs curve %s, the key is on %s", alg, want.Params().Name, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return fmt.Errorf("an Ed25519 key cannot verify %s", alg)
		}
	default:
		return fmt.Errorf("unsupported key type %T", key)
	}
	return nil
}

// tokenHeader is the part of a JOSE header that selects the key.
type tokenHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// peekHeader decodes the token's header without verifying anything, to
// choose the key. The parser later re-reads the header and checks its alg
// against the chosen key's pinned algorithms, so a header crafted to make
// this peek and the parser disagree gains nothing.
func peekHeader(token string) (tokenHeader, error) {
	var h tokenHeader
	seg, rest, ok := strings.Cut(token, ".")
	if !ok || strings.Count(rest, ".") != 1 {
		return h, ErrTokenMalformed
	}
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return h, ErrTokenMalformed
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return h, ErrTokenMalformed
	}
	if h.Alg == "" {
		return h, ErrTokenMalformed
	}
	return h, nil
}

// authenticate checks a bearer token and returns its claims, from the
// token cache when the token verified before (see tokenCache for the
// rules). The claims are the caller's own copy.
func (v *jwtVerifier) authenticate(ctx context.Context, token string) (jwt.MapClaims, error) {
	if v.cache == nil || len(token) > tokenCacheMaxToken {
		return v.verify(ctx, token)
	}
	sum := tokenHash(token)
	now := v.now()
	var set *keySet
	if v.jwks != nil {
		set = v.jwks.current()
	}
	if e, ok := v.cache.get(&sum, now, set); ok {
		return cloneClaims(e.claims), nil
	}
	claims, key, err := v.verifyToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if e, ok := newCachedToken(claims, key, now, v.leeway); ok {
		v.cache.put(&sum, e, now)
		// The cache keeps claims; the caller gets a copy.
		claims = cloneClaims(claims)
	}
	return claims, nil
}

// verify checks a bearer token and returns its claims, without the cache.
func (v *jwtVerifier) verify(ctx context.Context, token string) (jwt.MapClaims, error) {
	claims, _, err := v.verifyToken(ctx, token)
	return claims, err
}

// verifyToken checks a bearer token and returns its claims and the key
// that verified it.
func (v *jwtVerifier) verifyToken(ctx context.Context, token string) (jwt.MapClaims, *verifyKey, error) {
	if len(token) > maxTokenLen {
		return nil, nil, ErrTokenMalformed
	}
	h, err := peekHeader(token)
	if err != nil {
		return nil, nil, err
	}
	claims, key, found, err := v.verifyWith(token, h, v.static.candidates(h.Kid))
	if found && !errors.Is(err, jwt.ErrTokenSignatureInvalid) || v.jwks == nil {
		return claims, key, orNoKey(found, err)
	}
	staticFound, staticErr := found, err
	if !slices.Contains(asymAlgs, h.Alg) {
		// JWKS keys are never HMAC (nor "none"): nothing to look up.
		return nil, nil, orNoKey(staticFound, staticErr)
	}
	set := v.jwks.current()
	claims, key, found, err = v.verifyWith(token, h, set.candidates(h.Kid))
	if found {
		return claims, key, err
	}
	// An unknown kid may be a key the provider rotated in since the last
	// fetch: refetch (rate-limited, shared by concurrent callers) and retry.
	if next := v.jwks.refetch(ctx, set); next != set {
		claims, key, found, err = v.verifyWith(token, h, next.candidates(h.Kid))
		if found {
			return claims, key, err
		}
	}
	return nil, nil, orNoKey(staticFound, staticErr)
}

func orNoKey(found bool, err error) error {
	if !found {
		return ErrNoKey
	}
	return err
}

// verifyWith tries the keys that accept the header's alg and returns the
// one that verified the token; found is false when there is none.
func (v *jwtVerifier) verifyWith(token string, h tokenHeader, keys []*verifyKey) (claims jwt.MapClaims, key *verifyKey, found bool, err error) {
	for _, k := range keys {
		if !slices.Contains(k.algs, h.Alg) {
			continue
		}
		found = true
		claims = jwt.MapClaims{}
		_, err = k.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
			// Belt and braces: the parser already refused any alg outside
			// k.algs.
			if !slices.Contains(k.algs, t.Method.Alg()) {
				return nil, fmt.Errorf("alg %s not allowed for this key", t.Method.Alg())
			}
			return k.key, nil
		})
		if err == nil {
			return claims, k, true, nil
		}
		// Several keys may share a kid and an alg (a provider in the middle
		// of a rotation); only a bad signature moves on to the next one.
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return nil, nil, true, fmt.Errorf("verify token: %w", err)
		}
	}
	if found {
		return nil, nil, true, fmt.Errorf("verify token: %w", err)
	}
	return nil, nil, false, nil
}

// claimValue renders a claim as a header value; ok is false for claims
// that are absent or hold characters a header value cannot carry.
func claimValue(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		s = x
	case bool:
		s = strconv.FormatBool(x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			s = strconv.FormatInt(int64(x), 10)
		} else {
			s = strconv.FormatFloat(x, 'f', -1, 64)
		}
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			p, ok := claimValue(e)
			if !ok || strings.Contains(p, ",") {
				return "", false
			}
			parts = append(parts, p)
		}
		s = strings.Join(parts, ",")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		s = string(b)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", false
		}
	}
	return s, true
}
