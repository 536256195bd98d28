package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// jwksFetchTimeout bounds one JWKS fetch.
	jwksFetchTimeout = 5 * time.Second
	// jwksMaxBody bounds the JWKS document.
	jwksMaxBody = 1 << 20
	// jwksMinRefetch is the least time between two fetches caused by
	// unknown key ids, so that tokens with made-up kids cannot make the
	// gateway hammer the identity provider.
	jwksMinRefetch = 30 * time.Second
)

// jwk is a JSON Web Key (RFC 7517) with the members Altair reads.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// parseJWK converts a JWK into a public key and the one algorithm it is
// pinned to: its "alg", or when absent the algorithm its type implies
// (RSA → RS256, EC P-256/384/521 → ES256/384/512, OKP Ed25519 → EdDSA).
// Symmetric ("oct") keys are refused: HMAC keys come only from the secret.
func parseJWK(k *jwk) (key any, alg string, err error) {
	if k.Use != "" && k.Use != "sig" {
		return nil, "", fmt.Errorf("use %q is not sig", k.Use)
	}
	if len(k.KeyOps) > 0 && !slices.Contains(k.KeyOps, "verify") {
		return nil, "", errors.New("key_ops lacks verify")
	}
	alg = k.Alg
	switch k.Kty {
	case "RSA":
		n, err := b64Int(k.N)
		if err != nil {
			return nil, "", fmt.Errorf("n: %w", err)
		}
		e, err := b64Int(k.E)
		if err != nil {
			return nil, "", fmt.Errorf("e: %w", err)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, "", errors.New("e: invalid exponent")
		}
		key = &rsa.PublicKey{N: n, E: int(e.Int64())}
		if alg == "" {
			alg = "RS256"
		}
	case "EC":
		var curve elliptic.Curve
		var def string
		switch k.Crv {
		case "P-256":
			curve, def = elliptic.P256(), "ES256"
		case "P-384":
			curve, def = elliptic.P384(), "ES384"
		case "P-521":
			curve, def = elliptic.P521(), "ES512"
		default:
			return nil, "", fmt.Errorf("unsupported curve %q", k.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64Fixed(k.X, size)
		if err != nil {
			return nil, "", fmt.Errorf("x: %w", err)
		}
		y, err := b64Fixed(k.Y, size)
		if err != nil {
			return nil, "", fmt.Errorf("y: %w", err)
		}
		point := make([]byte, 0, 1+2*size)
		point = append(append(append(point, 4), x...), y...)
		// ParseUncompressedPublicKey checks that the point is on the curve.
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, "", fmt.Errorf("EC point: %w", err)
		}
		key = pub
		if alg == "" {
			alg = def
		}
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, "", fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err := b64Fixed(k.X, ed25519.PublicKeySize)
		if err != nil {
			return nil, "", fmt.Errorf("x: %w", err)
		}
		key = ed25519.PublicKey(x)
		if alg == "" || alg == "Ed25519" { // RFC 9864's fully specified name
			alg = "EdDSA"
		}
	default:
		return nil, "", fmt.Errorf("unsupported key type %q", k.Kty)
	}
	if !slices.Contains(asymAlgs, alg) {
		return nil, "", fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err := checkKeyAlg(key, alg); err != nil {
		return nil, "", err
	}
	return key, alg, nil
}

// b64 decodes base64url, without padding as RFC 7518 says, tolerating
// padding that some providers add.
func b64(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("decode base64url: %w", err)
	}
	return b, nil
}

func b64Int(s string) (*big.Int, error) {
	b, err := b64(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return new(big.Int).SetBytes(b), nil
}

func b64Fixed(s string, size int) ([]byte, error) {
	b, err := b64(s)
	if err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), size)
	}
	return b, nil
}

// jwksCache holds the last good key set from a JWKS URL and refetches it
// periodically and on unknown key ids. Fetches are shared: while one is in
// flight, callers that need it wait for it instead of starting their own.
type jwksCache struct {
	url     string
	refresh time.Duration
	a       *Authenticator
	v       *jwtVerifier

	keys  atomic.Pointer[keySet] // nil until the first good fetch
	warns warnLimiter

	mu          sync.Mutex
	inflight    chan struct{} // closed when the running fetch ends
	cancel      context.CancelFunc
	lastAttempt time.Time // of the last fetch, good or not
	closed      bool
	wg          sync.WaitGroup
}

func newJWKSCache(u *url.URL, refresh time.Duration, a *Authenticator, v *jwtVerifier) *jwksCache {
	if refresh <= 0 {
		refresh = defaultJWKSRefresh
	}
	return &jwksCache{url: u.String(), refresh: refresh, a: a, v: v}
}

// current returns the last good key set, or nil.
func (c *jwksCache) current() *keySet { return c.keys.Load() }

// run fetches at once and then every refresh interval until ctx ends or
// stop is closed.
func (c *jwksCache) run(ctx context.Context, stop <-chan struct{}) {
	c.trigger(0)
	t := time.NewTicker(c.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
			c.trigger(0)
		}
	}
}

// refetch is called when seen, the set a token was looked up in, lacks the
// token's kid. It returns a newer set if one is (or becomes) available:
// another caller's fetch may already have brought it, a fetch may be in
// flight, or this call may start one when the last attempt is at least
// jwksMinRefetch old. It gives up when ctx ends.
func (c *jwksCache) refetch(ctx context.Context, seen *keySet) *keySet {
	if cur := c.current(); cur != seen {
		return cur
	}
	done := c.trigger(jwksMinRefetch)
	if done == nil {
		return seen
	}
	select {
	case <-done:
		return c.current()
	case <-ctx.Done():
		return seen
	}
}

// trigger starts a fetch unless one is in flight (whose channel it then
// returns) or the last attempt is younger than minAge (it then returns nil).
func (c *jwksCache) trigger(minAge time.Duration) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight != nil {
		return c.inflight
	}
	now := c.a.now()
	if c.closed || minAge > 0 && !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < minAge {
		return nil
	}
	c.lastAttempt = now
	done := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), jwksFetchTimeout)
	c.inflight, c.cancel = done, cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(done)
		err := c.fetch(ctx)
		cancel()
		c.mu.Lock()
		c.inflight, c.cancel = nil, nil
		c.mu.Unlock()
		if err != nil {
			// Keep the last good set; say so, but not on every attempt.
			c.warns.warn(c.a.log, c.a.now(), "jwks fetch failed, keeping the last good key set",
				"url", redactURL(c.url), "error", err, "keys", c.current().len())
		}
	}()
	return done
}

// close cancels a fetch in flight, refuses new ones and waits.
func (c *jwksCache) close() {
	c.mu.Lock()
	c.closed = true
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// fetch downloads and installs the key set. A set without a single usable
// key is an error: it leaves the last good one in place.
func (c *jwksCache) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return fmt.Errorf("build jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.a.client.Do(req)
	if err != nil {
		return fmt.Errorf("get jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, jwksMaxBody))
		return fmt.Errorf("get jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	if err != nil {
		return fmt.Errorf("read jwks: %w", err)
	}
	if len(body) > jwksMaxBody {
		return fmt.Errorf("read jwks: larger than %d bytes", jwksMaxBody)
	}
	set, skipped, err := c.v.parseJWKS(body, c.current())
	if err != nil {
		return err
	}
	for _, s := range skipped {
		c.a.log.Debug("jwks key skipped", "kid", s.kid, "reason", s.err)
	}
	c.keys.Store(set)
	c.a.log.Debug("jwks fetched", "url", redactURL(c.url), "keys", set.len())
	return nil
}

type skippedKey struct {
	kid string
	err error
}

// parseJWKS builds a key set from a JWKS document, skipping keys it cannot
// use (and returning why). A key that prev (the current set, or nil) holds
// with the same kid, algorithm and public key is carried over as the same
// *verifyKey, so that the token cache keeps honouring the tokens it
// verified; tokens verified by a key that is gone are no longer served
// from the cache.
func (v *jwtVerifier) parseJWKS(body []byte, prev *keySet) (*keySet, []skippedKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("decode jwks: %w", err)
	}
	set := &keySet{}
	var skipped []skippedKey
	for _, raw := range doc.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			skipped = append(skipped, skippedKey{err: fmt.Errorf("decode key: %w", err)})
			continue
		}
		key, alg, err := parseJWK(&k)
		if err != nil {
			skipped = append(skipped, skippedKey{kid: k.Kid, err: err})
			continue
		}
		vk := &verifyKey{id: k.Kid, algs: []string{alg}, key: key, parser: v.parsers[alg], fromJWKS: true}
		if old := prev.find(vk); old != nil {
			vk = old
		}
		set.add(vk)
	}
	if set.len() == 0 {
		return nil, skipped, errors.New("decode jwks: no usable key")
	}
	return set, skipped, nil
}

// redactURL hides a password in a URL's user info.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid url)"
	}
	return u.Redacted()
}
