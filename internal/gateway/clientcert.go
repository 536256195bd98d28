package gateway

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/altair-gateway/altair/internal/cache"
	"github.com/altair-gateway/altair/internal/httperr"
)

// The headers that tell a backend which client certificate the listener
// verified (server.tls.client_auth). Clients' own copies are identity
// headers, stripped on every route.
const (
	headerClientCertSubject     = "X-Client-Cert-Subject"     // the leaf's subject DN (RFC 2253)
	headerClientCertFingerprint = "X-Client-Cert-Fingerprint" // SHA-256 of the leaf's DER, lower-case hex
)

// verifiedClientCert is the leaf of the client certificate chain the TLS
// handshake verified against the client CAs, or nil. PeerCertificates alone
// is not enough: in "request" mode without verification they are whatever
// the client sent.
func verifiedClientCert(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}

// setClientCertHeaders passes the verified client certificate upstream. It
// runs after the identity headers were stripped.
func setClientCertHeaders(r *http.Request) {
	leaf := verifiedClientCert(r)
	if leaf == nil {
		return
	}
	sum := sha256.Sum256(leaf.Raw)
	r.Header[headerClientCertSubject] = []string{headerSafe(leaf.Subject.String())}
	r.Header[headerClientCertFingerprint] = []string{hex.EncodeToString(sum[:])}
}

// headerSafe escapes the control characters a subject may carry (a CA can
// sign anything), which a header value cannot.
func headerSafe(s string) string {
	if !strings.ContainsFunc(s, isCTL) {
		return s
	}
	var b strings.Builder
	for _, c := range []byte(s) {
		if c < 0x20 || c == 0x7f {
			const hexDigits = "0123456789abcdef"
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isCTL(r rune) bool { return r < 0x20 || r == 0x7f }

// clientCertPartition keys the cache by the verified client certificate of
// a request that has one, and stores only responses that may be shared (as
// for Authorization): a backend may answer by the subject it was sent.
func clientCertPartition(next http.Handler) http.Handler {
	names := []string{headerClientCertFingerprint}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if verifiedClientCert(r) != nil {
			r = r.WithContext(cache.WithForwardedIdentity(r.Context(), r.Header, names))
		}
		next.ServeHTTP(w, r)
	})
}

// requireClientCert answers 403 to a request without a verified client
// certificate (routes[].require_client_cert).
func requireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if verifiedClientCert(r) == nil {
			httperr.Write(w, r, http.StatusForbidden, httperr.CodeClientCertRequired)
			return
		}
		next.ServeHTTP(w, r)
	})
}
