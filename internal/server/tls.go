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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/altair-gateway/altair/internal/config"
)

// cipherSuites are the TLS 1.2 suites offered: ECDHE key exchange (forward
// secrecy) with an AEAD cipher only, no CBC, no RSA key exchange. TLS 1.3's
// suites are fixed by crypto/tls and all AEAD.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig is the listener's TLS configuration for t, serving the
// certificates of certs: TLS 1.2 or 1.3 at least (1.3 whenever the client
// offers it), ECDHE AEAD suites for 1.2, and ALPN h2 then http/1.1.
func TLSConfig(t config.ServerTLS, certs *Certificates) *tls.Config {
	minVersion := uint16(tls.VersionTLS12)
	if t.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	tc := &tls.Config{
		MinVersion:     minVersion,
		CipherSuites:   cipherSuites,
		GetCertificate: certs.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if certs.acme != nil {
		// Negotiated only by a CA's validation handshake, which offers it
		// alone.
		tc.NextProtos = append(tc.NextProtos, acme.ALPNProto)
	}
	return tc
}

// ApplyClientAuth makes tc ask for client certificates as c says: "require"
// refuses a handshake without a certificate that c.CAFile's CAs sign;
// "request" verifies one that is sent but lets clients without one connect.
// A verified chain reaches handlers in Request.TLS.VerifiedChains. A zero c
// changes nothing.
func ApplyClientAuth(tc *tls.Config, c config.ClientAuth) error {
	if !c.Enabled() {
		return nil
	}
	b, err := config.ReadPEMFile(c.CAFile)
	if err != nil {
		return fmt.Errorf("load client CAs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("load client CAs: %q holds no PEM certificate", c.CAFile)
	}
	switch c.Mode {
	case config.ClientAuthRequest:
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	case config.ClientAuthRequire, "":
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return fmt.Errorf("client auth: unknown mode %q", c.Mode)
	}
	tc.ClientCAs = pool
	if slices.Contains(tc.NextProtos, acme.ALPNProto) {
		// A CA's TLS-ALPN-01 validation has no client certificate to show.
		noAuth := tc.Clone()
		noAuth.ClientAuth, noAuth.ClientCAs = tls.NoClientCert, nil
		tc.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if isChallenge(hello) {
				return noAuth, nil
			}
			return nil, nil
		}
	}
	return nil
}

// certSet is one immutable generation of certificates, indexed by name.
type certSet struct {
	def    *tls.Certificate
	byName map[string]*tls.Certificate // lower-case DNS SAN, "*.example.com" for wildcards
	gen    uint64                      // counts reloads; OCSP staplers publish only into their own
}

// Certificates holds the key pairs a TLS listener serves and reloads them
// from their files. A reload builds a complete new set and swaps it in; if any
// file is bad the current set stays.
type Certificates struct {
	files []config.CertificateFiles
	acme  *ACME // nil without server.tls.acme
	log   *slog.Logger
	cur   atomic.Pointer[certSet]
	mu    sync.Mutex // serialises reloads
	// reloaded wakes StapleOCSP after a reload.
	reloaded chan struct{}
	// refiled wakes Watch after Update changed the list of files.
	refiled chan struct{}
}

// NewCertificates loads the key pairs of files; it fails if any is bad.
// acme, if not nil, serves the names it manages that no file names.
func NewCertificates(files []config.CertificateFiles, acme *ACME, log *slog.Logger) (*Certificates, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(files) == 0 && acme == nil {
		return nil, errors.New("load certificates: none configured")
	}
	c := &Certificates{files: files, acme: acme, log: log, reloaded: make(chan struct{}, 1), refiled: make(chan struct{}, 1)}
	set, err := loadCertSet(files)
	if err != nil {
		return nil, err
	}
	c.cur.Store(set)
	return c, nil
}

func loadCertSet(files []config.CertificateFiles) (*certSet, error) {
	set := &certSet{byName: make(map[string]*tls.Certificate)}
	for _, f := range files {
		certPEM, err := config.ReadPEMFile(f.CertFile)
		if err != nil {
			return nil, fmt.Errorf("load certificate: %w", err)
		}
		keyPEM, err := config.ReadPEMFile(f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load certificate key: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("load key pair %q, %q: %w", f.CertFile, f.KeyFile, err)
		}
		if cert.Leaf == nil {
			if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return nil, fmt.Errorf("parse certificate %q: %w", f.CertFile, err)
			}
		}
		if set.def == nil {
			set.def = &cert
		}
		for _, name := range cert.Leaf.DNSNames {
			name = strings.ToLower(name)
			if _, ok := set.byName[name]; !ok { // the first certificate naming a host wins
				set.byName[name] = &cert
			}
		}
	}
	return set, nil
}

// Reload re-reads every file. On an error the current certificates stay and
// the error is logged and returned.
func (c *Certificates) Reload(why string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	set, err := loadCertSet(c.files)
	if err != nil {
		c.log.Error("certificate reload failed; the current certificates stay", "trigger", why, "error", err)
		return err
	}
	set.gen = c.cur.Load().gen + 1
	c.cur.Store(set)
	select {
	case c.reloaded <- struct{}{}:
	default:
	}
	c.log.Info("certificates reloaded", "trigger", why, "count", len(c.files))
	return nil
}

// errNoCertificate fails a handshake that no certificate serves: one
// without SNI (or naming no configured host) when only ACME gives
// certificates.
var errNoCertificate = errors.New("no certificate for this server name")

// GetCertificate picks the certificate for a handshake: the file
// certificate naming the SNI name, else ACME's for a name it manages, else a
// file certificate with a matching wildcard, else the first file's. A CA's
// TLS-ALPN-01 validation handshake gets ACME's challenge certificate.
func (c *Certificates) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c.acme != nil && isChallenge(hello) {
		return c.acme.getCertificate(hello)
	}
	set := c.cur.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if cert, ok := set.byName[name]; ok {
			return cert, nil
		}
		if c.acme != nil && c.acme.names[name] {
			return c.acme.getCertificate(hello)
		}
		if _, rest, ok := strings.Cut(name, "."); ok {
			if cert, ok := set.byName["*."+rest]; ok {
				return cert, nil
			}
		}
	}
	if set.def == nil {
		return nil, errNoCertificate
	}
	return set.def, nil
}

// watchQuiet is how long Watch waits after a file event before reloading, so
// that a certificate and its key written one after the other load together.
const watchQuiet = 200 * time.Millisecond

// Watch reloads the certificates when one of their files changes, until ctx
// is done. ready, if not nil, is called once every file is watched. After
// Update changes the list of files, the new files are watched.
func (c *Certificates) Watch(ctx context.Context, ready func()) {
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	quiet := time.NewTimer(watchQuiet)
	quiet.Stop()
	defer quiet.Stop()
	for {
		wctx, stop := context.WithCancel(ctx)
		wait := c.watchFiles(wctx, notify)
		if ready != nil {
			ready()
			ready = nil
		} else {
			// The list changed: a file written before its watch began is
			// read by one reload now.
			notify()
		}
		refiled := false
		for !refiled {
			select {
			case <-ctx.Done():
				stop()
				wait()
				return
			case <-c.refiled:
				refiled = true
			case <-changed:
				quiet.Reset(watchQuiet)
			case <-quiet.C:
				_ = c.Reload("file changed")
			}
		}
		stop()
		wait()
	}
}

// watchFiles watches every file of the current list until ctx is done,
// calling notify on a change; it returns once all are watched, with a
// function that waits for the watchers to end.
func (c *Certificates) watchFiles(ctx context.Context, notify func()) (wait func()) {
	c.mu.Lock()
	files := c.files
	c.mu.Unlock()
	seen := make(map[string]bool)
	var paths []string
	for _, f := range files {
		for _, p := range []string{f.CertFile, f.KeyFile} {
			if !seen[p] {
				seen[p] = true
				paths = append(paths, p)
			}
		}
	}
	var wg, started sync.WaitGroup
	for _, p := range paths {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			done := func() { once.Do(started.Done) }
			defer done()
			if err := config.Watch(ctx, p, notify, done); err != nil && ctx.Err() == nil {
				c.log.Error("certificate watch stopped; reload with SIGHUP", "file", p, "error", err)
			}
		}()
	}
	started.Wait()
	return wg.Wait
}

// Update replaces the list of certificate files (server.tls.certificates
// changed in a reloaded config): the new files are loaded, served and
// watched. If any is bad, the current list and certificates stay.
func (c *Certificates) Update(files []config.CertificateFiles, why string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(files) == 0 && c.acme == nil {
		err := errors.New("no certificates left; a listener without TLS needs a restart")
		c.log.Error("certificate list not changed", "trigger", why, "error", err)
		return err
	}
	set, err := loadCertSet(files)
	if err != nil {
		c.log.Error("certificate list not changed; the current certificates stay", "trigger", why, "error", err)
		return err
	}
	c.files = slices.Clone(files)
	set.gen = c.cur.Load().gen + 1
	c.cur.Store(set)
	for _, ch := range []chan struct{}{c.reloaded, c.refiled} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	c.log.Info("certificate list changed", "trigger", why, "count", len(files))
	return nil
}

// RedirectHandler answers every request with 308 to the same host, path and
// query on https at httpsPort ("443" is left out of the URL), except /health
// and /ready, which probes reach over plain HTTP and probe serves.
func RedirectHandler(httpsPort string, probe http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" || r.URL.Path == "/ready" {
			probe.ServeHTTP(w, r)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" || strings.ContainsAny(host, "/\\@?#") {
			http.Error(w, "bad host", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") { // an IPv6 literal
			host = "[" + host + "]"
		}
		if httpsPort != "" && httpsPort != "443" {
			host += ":" + httpsPort
		}
		path := r.URL.EscapedPath()
		if !strings.HasPrefix(path, "/") {
			path = "/"
		}
		target := "https://" + host + path
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusPermanentRedirect)
	})
}
