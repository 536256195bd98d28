package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/altair-gateway/altair/internal/config"
)

// ACME obtains and renews certificates from an ACME CA through autocert, for
// the names of server.tls.acme.domains only.
type ACME struct {
	m     *autocert.Manager
	names map[string]bool // lower case
	log   *slog.Logger
}

// acmeHTTPTimeout bounds each request to the CA.
const acmeHTTPTimeout = 30 * time.Second

// NewACME builds the certificate manager of a (which must be enabled). Nothing
// is asked of the CA until a handshake names one of a.Domains.
func NewACME(a config.ACME, log *slog.Logger) (*ACME, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(a.Domains) == 0 {
		return nil, errors.New("acme: no domains")
	}
	client := &acme.Client{DirectoryURL: a.DirectoryURL, UserAgent: "altair"}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if a.CAFile != "" {
		b, err := config.ReadPEMFile(a.CAFile)
		if err != nil {
			return nil, fmt.Errorf("acme: load CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("acme: %q holds no PEM certificate", a.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	client.HTTPClient = &http.Client{Transport: tr, Timeout: acmeHTTPTimeout}
	names := make(map[string]bool, len(a.Domains))
	for _, d := range a.Domains {
		names[strings.ToLower(d)] = true
	}
	x := &ACME{names: names, log: log}
	x.m = &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		Cache:       loggingCache{autocert.DirCache(a.CacheDir), log},
		HostPolicy:  autocert.HostWhitelist(a.Domains...),
		RenewBefore: a.RenewBefore,
		Client:      client,
		Email:       a.Email,
	}
	return x, nil
}

// isChallenge reports whether hello is a CA's TLS-ALPN-01 validation
// handshake (RFC 8737), which offers acme-tls/1 alone.
func isChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto
}

// getCertificate serves hello from the manager: the challenge certificate
// of a validation handshake, else the name's certificate, obtained or
// renewed first when needed (the handshake waits for it).
func (a *ACME) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := a.m.GetCertificate(hello)
	if err != nil && !isChallenge(hello) {
		a.log.Warn("acme certificate unavailable", "server_name", hello.ServerName, "error", err)
	}
	return cert, err
}

// HTTPHandler answers the CA's HTTP-01 validation requests
// (/.well-known/acme-challenge/) and passes every other request to fallback.
// The port is dropped from the Host header, as the CA sends it when it
// validates at a port other than 80 (a test CA; a port mapped in front).
func (a *ACME) HTTPHandler(fallback http.Handler) http.Handler {
	h := a.m.HTTPHandler(fallback)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, challengePath) {
			if host, _, err := net.SplitHostPort(r.Host); err == nil {
				r = r.Clone(r.Context())
				r.Host = host
			}
		}
		h.ServeHTTP(w, r)
	})
}

// challengePath is where HTTP-01 tokens are served (RFC 8555, section 8.3).
const challengePath = "/.well-known/acme-challenge/"

// loggingCache logs each certificate the manager stores: one obtained or
// renewed from the CA.
type loggingCache struct {
	autocert.Cache
	log *slog.Logger
}

func (c loggingCache) Put(ctx context.Context, key string, data []byte) error {
	err := c.Cache.Put(ctx, key, data)
	// Certificates are stored under their domain name (with "+rsa" for
	// the RSA one old clients get); challenge tokens and the account key
	// under other "+" suffixes.
	domain, rsa := strings.CutSuffix(key, "+rsa")
	if !rsa && strings.Contains(key, "+") {
		return err
	}
	if err != nil {
		c.log.Error("acme certificate obtained but not stored; a restart asks the CA again", "domain", domain, "error", err)
	} else {
		c.log.Info("acme certificate obtained", "domain", domain, "rsa", rsa)
	}
	return err
}
