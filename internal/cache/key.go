package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// Key returns the primary cache key of a resource: the lower-cased host, the
// path (decoded and cleaned, as the gateway routes it; escaped here so that
// a decoded '?' cannot pass for the query) and the raw query after a '?'
// when there is one. Keys of one host share its name as a prefix, and keys
// below a path share host+path.
func Key(host, path, rawQuery string) string {
	return buildKey(host, (&url.URL{Path: path}).EscapedPath(), rawQuery)
}

// buildKey is Key with the path already escaped.
func buildKey(host, escapedPath, rawQuery string) string {
	host = strings.ToLower(host)
	var b strings.Builder
	b.Grow(len(host) + len(escapedPath) + 1 + len(rawQuery))
	b.WriteString(host)
	b.WriteString(escapedPath)
	if rawQuery != "" {
		b.WriteByte('?')
		b.WriteString(rawQuery)
	}
	return b.String()
}

// requestKey is the primary key of r as routed. The gateway has cleaned
// r.URL.Path and left RawPath empty, so EscapedPath escapes Path and
// allocates only when Path needs escaping.
func requestKey(r *http.Request) string {
	return buildKey(r.Host, r.URL.EscapedPath(), r.URL.RawQuery)
}

// DefaultAPIKeyHeader is the API-key header always counted as a credential,
// whatever auth.api_keys.header says.
const DefaultAPIKeyHeader = "X-Api-Key"

// Credentials returns the credentials partition of a request: "" when it
// carries no Authorization, no API key (DefaultAPIKeyHeader or
// apiKeyHeader) and no Cookie; otherwise a letter and the hex SHA-256 of
// those fields' values. The letter is 'a' when Authorization or an API key
// is present, which makes RFC 9111 §3.5 apply, and 'c' for cookies alone.
//
// Entries stored for one partition are never served to another, so a
// response fetched with one credential never reaches a request with another
// or with none. The auth step removes credentials before the request reaches
// the cache, so the gateway calls this before auth and passes the result on
// with WithCredentials (CaptureCredentials does both).
func Credentials(r *http.Request, apiKeyHeader string) string {
	authz := r.Header["Authorization"]
	key := r.Header[DefaultAPIKeyHeader]
	var key2 []string
	var name2 string
	if apiKeyHeader != "" {
		if k := http.CanonicalHeaderKey(apiKeyHeader); k != DefaultAPIKeyHeader {
			key2, name2 = r.Header[k], k
		}
	}
	cookie := r.Header["Cookie"]
	if len(authz)+len(key)+len(key2)+len(cookie) == 0 {
		return ""
	}
	h := sha256.New()
	// Each value is labelled with its field's name, so the same value in
	// another field is another partition.
	write := func(name string, vs []string) {
		for _, v := range vs {
			h.Write([]byte(name))
			h.Write([]byte{0})
			h.Write([]byte(v))
			h.Write([]byte{0})
		}
	}
	write("Authorization", authz)
	write(DefaultAPIKeyHeader, key)
	write(name2, key2)
	write("Cookie", cookie)
	var sum [sha256.Size]byte
	out := make([]byte, 1+hex.EncodedLen(sha256.Size))
	out[0] = 'c'
	if len(authz)+len(key)+len(key2) > 0 {
		out[0] = 'a'
	}
	hex.Encode(out[1:], h.Sum(sum[:0]))
	return string(out)
}

// authorized reports whether a credentials partition came from a request
// with Authorization or an API key.
func authorized(creds string) bool { return creds != "" && creds[0] == 'a' }

type credentialsKey struct{}

// credentialsValue wraps the partition so that "no credentials" is present
// in the context too.
type credentialsValue struct{ creds string }

// WithCredentials returns ctx carrying a request's credentials partition
// (from Credentials).
func WithCredentials(ctx context.Context, creds string) context.Context {
	return context.WithValue(ctx, credentialsKey{}, credentialsValue{creds})
}

// CredentialsFrom returns the credentials partition carried by ctx; false
// when none was recorded, in which case the cache does not serve or store
// the request (it cannot know whose it is).
func CredentialsFrom(ctx context.Context) (string, bool) {
	v, ok := ctx.Value(credentialsKey{}).(credentialsValue)
	return v.creds, ok
}

// CaptureCredentials returns a middleware that records the request's
// credentials partition in its context. Put it in front of the auth step of
// every route that has the cache.
func CaptureCredentials(apiKeyHeader string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(WithCredentials(r.Context(), Credentials(r, apiKeyHeader))))
		})
	}
}

// WithForwardedIdentity returns ctx with the credentials partition it
// carries narrowed for a request that a forward-auth service allowed. Such a
// service may authenticate the caller by any request field (a session
// header, a client certificate header, ...), which Credentials cannot know,
// so the partition is narrowed by the header fields names of h (the
// service's answer, copied onto the request: the identity the backend sees),
// and it counts as authorized: a response is stored for it only when it
// says it may be shared (public, s-maxage or must-revalidate; RFC 9111
// §3.5), as for a request with Authorization. ctx must carry a partition
// (CaptureCredentials); without one it is returned unchanged.
func WithForwardedIdentity(ctx context.Context, h http.Header, names []string) context.Context {
	creds, ok := CredentialsFrom(ctx)
	if !ok {
		return ctx
	}
	s := sha256.New()
	s.Write([]byte("forward\x00"))
	s.Write([]byte(creds))
	s.Write([]byte{0})
	for _, n := range names {
		n = http.CanonicalHeaderKey(n)
		for _, v := range h[n] {
			s.Write([]byte(n))
			s.Write([]byte{0})
			s.Write([]byte(v))
			s.Write([]byte{0})
		}
		s.Write([]byte{1})
	}
	var sum [sha256.Size]byte
	out := make([]byte, 1+hex.EncodedLen(sha256.Size))
	out[0] = 'a'
	hex.Encode(out[1:], s.Sum(sum[:0]))
	return WithCredentials(ctx, string(out))
}
