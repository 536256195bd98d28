package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSP stapling defaults. A Good response is asked for again halfway through
// its validity window, clamped to [MinRefresh, MaxRefresh]; a failed fetch is
// retried after MinRefresh, doubling up to ocspMaxRetry.
const (
	defaultOCSPMinRefresh = time.Minute
	defaultOCSPMaxRefresh = 12 * time.Hour
	ocspMaxRetry          = time.Hour
	ocspTimeout           = 10 * time.Second
	// ocspClockSkew is how far in the future a response's ThisUpdate may be
	// (the responder's clock ahead of ours) and still be stapled.
	ocspClockSkew = 5 * time.Minute
	// maxOCSPResponseBytes bounds a responder's answer; real ones are a few
	// hundred bytes to a few KiB.
	maxOCSPResponseBytes = 64 << 10
	// maxOCSPGetURL is RFC 5019's limit for a GET request (scheme, host,
	// path and the encoded request); a longer one is POSTed.
	maxOCSPGetURL = 255
)

// OCSPOptions configures OCSP stapling. The zero value is the production
// setting.
type OCSPOptions struct {
	// Client asks the OCSP responders. Default: a client with a 10s timeout
	// and the environment's proxy.
	Client *http.Client
	// MinRefresh and MaxRefresh bound the wait before a Good response is
	// asked for again (half its validity window). Defaults 1 minute and
	// 12 hours. MinRefresh is also the first retry delay after a failure.
	MinRefresh, MaxRefresh time.Duration
	// Now is the clock responses are judged by. Default time.Now.
	Now func() time.Time
}

func (o OCSPOptions) withDefaults() OCSPOptions {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: ocspTimeout}
	}
	if o.MinRefresh <= 0 {
		o.MinRefresh = defaultOCSPMinRefresh
	}
	if o.MaxRefresh <= 0 {
		o.MaxRefresh = defaultOCSPMaxRefresh
	}
	if o.MaxRefresh < o.MinRefresh {
		o.MaxRefresh = o.MinRefresh
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// StapleOCSP staples OCSP responses to the served certificates until ctx is
// done, and returns once its goroutines have stopped. Each certificate whose
// leaf names an OCSP responder and whose chain holds its issuer gets a
// response fetched in the background; handshakes are served without a staple
// until a Good, current one arrives. A reload stops the staplers of the old
// certificates and starts ones for the new, which begin with the staples
// still valid for unchanged certificates. Call it once per Certificates.
func (c *Certificates) StapleOCSP(ctx context.Context, o OCSPOptions) {
	o = o.withDefaults()
	cache := &stapleCache{m: make(map[string]*staple)}
	for {
		set := c.cur.Load()
		var staplers []*stapler
		for _, cert := range set.distinct() {
			if s := newStapler(c, set.gen, cert, o, cache); s != nil {
				staplers = append(staplers, s)
			}
		}
		cache.retain(staplers)
		gctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, s := range staplers {
			wg.Add(1)
			go func() { defer wg.Done(); s.run(gctx) }()
		}
		select {
		case <-ctx.Done():
		case <-c.reloaded:
		}
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
	}
}

// distinct lists the certificates set serves, each once.
func (s *certSet) distinct() []*tls.Certificate {
	seen := make(map[*tls.Certificate]bool)
	var out []*tls.Certificate
	for _, c := range append([]*tls.Certificate{s.def}, mapValues(s.byName)...) {
		if c != nil && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

func mapValues(m map[string]*tls.Certificate) []*tls.Certificate {
	out := make([]*tls.Certificate, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// replace returns a copy of s serving cert where s serves old.
func (s *certSet) replace(old, cert *tls.Certificate) *certSet {
	n := *s
	n.byName = maps.Clone(s.byName)
	if n.def == old {
		n.def = cert
	}
	for name, c := range n.byName {
		if c == old {
			n.byName[name] = cert
		}
	}
	return &n
}

// staple is a verified Good OCSP response.
type staple struct {
	raw        []byte
	thisUpdate time.Time
	nextUpdate time.Time
}

// stapleCache keeps the latest staple of each certificate across reloads,
// keyed by leaf and issuer.
type stapleCache struct {
	mu sync.Mutex
	m  map[string]*staple
}

func (c *stapleCache) get(key string) *staple {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

func (c *stapleCache) set(key string, st *staple) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st == nil {
		delete(c.m, key)
		return
	}
	c.m[key] = st
}

// retain forgets the staples of certificates no longer served.
func (c *stapleCache) retain(staplers []*stapler) {
	keep := make(map[string]bool, len(staplers))
	for _, s := range staplers {
		keep[s.key] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.DeleteFunc(c.m, func(k string, _ *staple) bool { return !keep[k] })
}

// stapler keeps one certificate's staple fresh. Only it replaces that
// certificate in the published set, each time with a new copy, so a
// *tls.Certificate that handshakes may hold is never written to.
type stapler struct {
	certs  *Certificates
	gen    uint64           // the generation of certificates it staples
	pub    *tls.Certificate // the copy published now
	leaf   *x509.Certificate
	issuer *x509.Certificate
	urls   []string
	req    []byte // the DER OCSP request
	key    string // its stapleCache key
	o      OCSPOptions
	cache  *stapleCache
	log    *slog.Logger
	cur    *staple // stapled now, or nil
}

// newStapler returns the stapler of cert, or nil when there is nothing to
// staple: no OCSP responder named, or no issuer in the chain to verify a
// response with.
func newStapler(c *Certificates, gen uint64, cert *tls.Certificate, o OCSPOptions, cache *stapleCache) *stapler {
	leaf := cert.Leaf
	if leaf == nil || len(leaf.OCSPServer) == 0 {
		return nil
	}
	log := c.log.With("certificate", certName(leaf))
	var urls []string
	for _, u := range leaf.OCSPServer {
		if p, err := url.Parse(u); err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		log.Warn("OCSP stapling off for this certificate: no http(s) OCSP responder URL", "ocsp_servers", leaf.OCSPServer)
		return nil
	}
	if len(cert.Certificate) < 2 {
		log.Warn("OCSP stapling off for this certificate: its chain holds no issuer; append the intermediate to cert_file")
		return nil
	}
	issuer, err := x509.ParseCertificate(cert.Certificate[1])
	if err == nil {
		err = leaf.CheckSignatureFrom(issuer)
	}
	if err != nil {
		log.Warn("OCSP stapling off for this certificate: the second certificate in its chain is not its issuer", "error", err)
		return nil
	}
	req, err := ocsp.CreateRequest(leaf, issuer, nil) // SHA-1 CertID, as RFC 5019 responders expect
	if err != nil {
		log.Warn("OCSP stapling off for this certificate: cannot build a request", "error", err)
		return nil
	}
	sum := sha256.Sum256(append(append([]byte(nil), leaf.Raw...), issuer.Raw...))
	return &stapler{
		certs: c, gen: gen, pub: cert, leaf: leaf, issuer: issuer, urls: urls, req: req,
		key: string(sum[:]), o: o, cache: cache, log: log,
	}
}

func certName(leaf *x509.Certificate) string {
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames[0]
	}
	return leaf.Subject.CommonName
}

func (s *stapler) run(ctx context.Context) {
	now := s.o.Now()
	next := now // the next fetch
	if st := s.cache.get(s.key); st != nil && now.Before(st.nextUpdate) {
		s.publish(st)
		next = s.refreshAt(st, now)
	}
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now = s.o.Now()
		if s.cur != nil && !now.Before(s.cur.nextUpdate) {
			expired := s.cur.nextUpdate
			s.cache.set(s.key, nil)
			s.publish(nil)
			s.log.Warn("OCSP staple expired; serving without one until a fetch succeeds", "next_update", expired)
		}
		if !now.Before(next) {
			resp, raw, err := s.fetch(ctx)
			now = s.o.Now()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				failures++
				delay := min(s.o.MinRefresh<<min(failures-1, 30), max(s.o.MinRefresh, min(s.o.MaxRefresh, ocspMaxRetry)))
				s.log.Warn("OCSP fetch failed; retrying", "error", err, "retry_in", delay.String(), "stapled", s.cur != nil)
				next = now.Add(delay)
			case resp.Status == ocsp.Revoked:
				failures = 0
				s.cache.set(s.key, nil)
				s.publish(nil)
				s.log.Error("certificate revoked according to its OCSP responder; not stapled: replace it", "revoked_at", resp.RevokedAt, "reason", resp.RevocationReason)
				next = now.Add(s.o.MaxRefresh)
			default:
				failures = 0
				st := &staple{raw: raw, thisUpdate: resp.ThisUpdate, nextUpdate: resp.NextUpdate}
				s.cache.set(s.key, st)
				s.publish(st)
				next = s.refreshAt(st, now)
				s.log.Debug("OCSP response stapled", "next_update", st.nextUpdate, "refresh_at", next)
			}
		}
		wake := next
		if s.cur != nil && s.cur.nextUpdate.Before(wake) {
			wake = s.cur.nextUpdate
		}
		timer.Reset(wake.Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// refreshAt is when st is asked for again: halfway through its validity
// window, but no sooner than MinRefresh and no later than MaxRefresh from now.
func (s *stapler) refreshAt(st *staple, now time.Time) time.Time {
	d := st.thisUpdate.Add(st.nextUpdate.Sub(st.thisUpdate) / 2).Sub(now)
	return now.Add(min(max(d, s.o.MinRefresh), s.o.MaxRefresh))
}

// publish swaps in a copy of the certificate carrying st (none if nil),
// unless a reload has replaced the generation this stapler serves.
func (s *stapler) publish(st *staple) {
	cert := *s.pub
	cert.OCSPStaple = nil
	if st != nil {
		cert.OCSPStaple = st.raw
	}
	for {
		old := s.certs.cur.Load()
		if old.gen != s.gen {
			return
		}
		if s.certs.cur.CompareAndSwap(old, old.replace(s.pub, &cert)) {
			s.pub, s.cur = &cert, st
			return
		}
	}
}

// errOCSPUnusable reports a verified response that cannot be stapled.
var errOCSPUnusable = errors.New("OCSP response not stapleable")

// fetch asks the responders in turn for a verified response that is Revoked,
// or Good and current.
func (s *stapler) fetch(ctx context.Context) (*ocsp.Response, []byte, error) {
	var errs []error
	for _, u := range s.urls {
		raw, err := ocspQuery(ctx, s.o.Client, u, s.req)
		if err != nil {
			errs = append(errs, fmt.Errorf("ask %q: %w", u, err))
			continue
		}
		resp, err := ocsp.ParseResponseForCert(raw, s.leaf, s.issuer)
		if err != nil {
			errs = append(errs, fmt.Errorf("verify response of %q: %w", u, err))
			continue
		}
		if err := usable(resp, s.o.Now()); err != nil {
			errs = append(errs, fmt.Errorf("response of %q: %w", u, err))
			continue
		}
		return resp, raw, nil
	}
	return nil, nil, errors.Join(errs...)
}

// usable checks that a verified response is Revoked, or Good and current.
func usable(resp *ocsp.Response, now time.Time) error {
	switch resp.Status {
	case ocsp.Revoked:
		return nil
	case ocsp.Good:
	default:
		return fmt.Errorf("%w: status unknown", errOCSPUnusable)
	}
	switch {
	case resp.NextUpdate.IsZero():
		return fmt.Errorf("%w: no NextUpdate", errOCSPUnusable)
	case !now.Before(resp.NextUpdate):
		return fmt.Errorf("%w: expired at %s", errOCSPUnusable, resp.NextUpdate.Format(time.RFC3339))
	case resp.ThisUpdate.After(now.Add(ocspClockSkew)):
		return fmt.Errorf("%w: ThisUpdate %s is in the future", errOCSPUnusable, resp.ThisUpdate.Format(time.RFC3339))
	}
	return nil
}

// ocspQuery sends req to the responder at server: by GET when the URL stays
// within RFC 5019's 255 bytes (cacheable by the CA's CDN), else by POST.
func ocspQuery(ctx context.Context, client *http.Client, server string, req []byte) ([]byte, error) {
	var hr *http.Request
	var err error
	getURL := strings.TrimSuffix(server, "/") + "/" + url.QueryEscape(base64.StdEncoding.EncodeToString(req))
	if len(getURL) < maxOCSPGetURL {
		hr, err = http.NewRequestWithContext(ctx, http.MethodGet, getURL, nil)
	} else {
		hr, err = http.NewRequestWithContext(ctx, http.MethodPost, server, bytes.NewReader(req))
		if hr != nil {
			hr.Header.Set("Content-Type", "application/ocsp-request")
		}
	}
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Accept", "application/ocsp-response")
	resp, err := client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(b) > maxOCSPResponseBytes {
		return nil, fmt.Errorf("response larger than %d bytes", maxOCSPResponseBytes)
	}
	return b, nil
}
