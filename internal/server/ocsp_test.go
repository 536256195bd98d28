package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/altair-gateway/altair/internal/config"
)

// ocspPKI is a root CA, an intermediate that issues leaves and answers OCSP
// for them, and the root pool clients trust.
type ocspPKI struct {
	root      *x509.Certificate
	issuer    *x509.Certificate
	issuerKey *ecdsa.PrivateKey
	pool      *x509.CertPool
}

func newOCSPPKI(t *testing.T) *ocspPKI {
	t.Helper()
	rootKey := newKey(t)
	rootTpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	root := createCert(t, rootTpl, rootTpl, &rootKey.PublicKey, rootKey)
	issuerKey := newKey(t)
	issuer := createCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, root, &issuerKey.PublicKey, rootKey)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &ocspPKI{root: root, issuer: issuer, issuerKey: issuerKey, pool: pool}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func createCert(t *testing.T, tpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// writeLeaf issues a leaf for leaf.test with serial and OCSP responder urls
// and writes it, followed by chain, with its key to name.crt and name.key.
func (p *ocspPKI) writeLeaf(t *testing.T, dir, name string, serial int64, urls []string, chain ...*x509.Certificate) config.CertificateFiles {
	t.Helper()
	key := newKey(t)
	leaf := createCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf.test"}, DNSNames: []string{"leaf.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		OCSPServer: urls,
	}, p.issuer, &key.PublicKey, p.issuerKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	for _, c := range chain {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	f := config.CertificateFiles{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	replace(t, f.CertFile, certPEM)
	replace(t, f.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return f
}

// ocspAnswer is what the test responder answers its nth request: an HTTP
// error code, or a response signed by the issuer.
type ocspAnswer struct {
	code       int // 0: 200 with a response
	status     int // ocsp.Good, ocsp.Revoked, ocsp.Unknown
	thisUpdate time.Time
	nextUpdate time.Time
}

// responder is an OCSP responder for pki's issuer.
type responder struct {
	srv     *httptest.Server
	hits    atomic.Int32
	mu      sync.Mutex
	methods []string
	serials []int64
}

func (p *ocspPKI) startResponder(t *testing.T, answer func(n int32) ocspAnswer) *responder {
	t.Helper()
	r := &responder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		var der []byte
		var err error
		switch hr.Method {
		case http.MethodGet:
			var s string
			if s, err = url.QueryUnescape(path.Base(hr.URL.EscapedPath())); err == nil {
				der, err = base64.StdEncoding.DecodeString(s)
			}
		case http.MethodPost:
			if hr.Header.Get("Content-Type") != "application/ocsp-request" {
				err = errors.New("bad content type")
			} else {
				der, err = io.ReadAll(hr.Body)
			}
		}
		var req *ocsp.Request
		if err == nil {
			req, err = ocsp.ParseRequest(der)
		}
		if err != nil {
			t.Errorf("responder: bad %s request: %v", hr.Method, err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.methods = append(r.methods, hr.Method)
		r.serials = append(r.serials, req.SerialNumber.Int64())
		r.mu.Unlock()
		a := answer(r.hits.Add(1))
		if a.code != 0 {
			http.Error(w, "down", a.code)
			return
		}
		if a.thisUpdate.IsZero() {
			a.thisUpdate = time.Now().Add(-time.Minute)
		}
		if a.nextUpdate.IsZero() {
			a.nextUpdate = time.Now().Add(time.Hour)
		}
		tpl := ocsp.Response{
			Status: a.status, SerialNumber: req.SerialNumber,
			ThisUpdate: a.thisUpdate, NextUpdate: a.nextUpdate,
		}
		if a.status == ocsp.Revoked {
			tpl.RevokedAt, tpl.RevocationReason = time.Now().Add(-time.Minute), ocsp.KeyCompromise
		}
		resp, err := ocsp.CreateResponse(p.issuer, p.issuer, tpl, p.issuerKey)
		if err != nil {
			t.Errorf("responder: %v", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *responder) seen() (methods []string, serials []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.methods...), append([]int64(nil), r.serials...)
}

func good(int32) ocspAnswer { return ocspAnswer{status: ocsp.Good} }

// testOCSPOptions refreshes within milliseconds and asks through client.
func testOCSPOptions(client *http.Client) OCSPOptions {
	return OCSPOptions{Client: client, MinRefresh: 10 * time.Millisecond, MaxRefresh: 300 * time.Millisecond}
}

// startStapling serves files over TLS and staples them with o until the test
// ends, then checks that StapleOCSP returns.
func startStapling(t *testing.T, files []config.CertificateFiles, log *slog.Logger, o OCSPOptions) (*Certificates, string) {
	t.Helper()
	_, certs, addr := startTLS(t, defaults(), files, log, ok)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); certs.StapleOCSP(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("StapleOCSP did not return within 5s of cancellation")
		}
	})
	return certs, addr
}

// stapled makes a verified TLS handshake with SNI leaf.test and returns the
// leaf's serial and the OCSP response stapled, if any.
func (p *ocspPKI) stapled(t *testing.T, addr string, maxVersion uint16) (int64, []byte) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "leaf.test", RootCAs: p.pool, MaxVersion: maxVersion})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	cs := c.ConnectionState()
	return cs.PeerCertificates[0].SerialNumber.Int64(), cs.OCSPResponse
}

func (p *ocspPKI) waitStaple(t *testing.T, addr string, serial int64) *ocsp.Response {
	t.Helper()
	var resp *ocsp.Response
	waitUntil(t, "a staple for serial "+big.NewInt(serial).String(), func() bool {
		got, raw := p.stapled(t, addr, 0)
		if got != serial || raw == nil {
			return false
		}
		r, err := ocsp.ParseResponse(raw, p.issuer)
		if err != nil {
			t.Fatalf("staple does not verify: %v", err)
		}
		resp = r
		return true
	})
	return resp
}

func newLogger(buf io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestOCSPStapleServed(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		wantMethod string
	}{
		{"short URL: GET", "/ocsp", http.MethodGet},
		{"URL over 255 bytes: POST", "/" + strings.Repeat("p", 250), http.MethodPost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pki := newOCSPPKI(t)
			rs := pki.startResponder(t, good)
			files := []config.CertificateFiles{pki.writeLeaf(t, t.TempDir(), "leaf", 10, []string{rs.srv.URL + tt.path}, pki.issuer)}
			_, addr := startStapling(t, files, nil, testOCSPOptions(rs.srv.Client()))

			resp := pki.waitStaple(t, addr, 10)
			if resp.Status != ocsp.Good || resp.SerialNumber.Int64() != 10 {
				t.Errorf("staple: status %d serial %d, want Good (%d) for serial 10", resp.Status, resp.SerialNumber, ocsp.Good)
			}
			if _, raw := pki.stapled(t, addr, tls.VersionTLS12); raw == nil {
				t.Error("TLS 1.2 handshake: no staple, want one")
			}
			if methods, _ := rs.seen(); methods[0] != tt.wantMethod {
				t.Errorf("responder asked by %s, want %s", methods[0], tt.wantMethod)
			}
		})
	}
}

func TestOCSPRevokedNotStapled(t *testing.T) {
	t.Parallel()
	pki := newOCSPPKI(t)
	rs := pki.startResponder(t, func(int32) ocspAnswer { return ocspAnswer{status: ocsp.Revoked} })
	files := []config.CertificateFiles{pki.writeLeaf(t, t.TempDir(), "leaf", 10, []string{rs.srv.URL}, pki.issuer)}
	logs := &syncBuf{}
	_, addr := startStapling(t, files, newLogger(logs), testOCSPOptions(rs.srv.Client()))

	waitLog(t, logs, "level=ERROR msg=\"certificate revoked")
	if _, raw := pki.stapled(t, addr, 0); raw != nil {
		t.Error("handshake got a staple of a revoked certificate, want none")
	}
}

func TestOCSPResponderDownRetriesWithoutStaple(t *testing.T) {
	t.Parallel()
	pki := newOCSPPKI(t)
	var healthy atomic.Bool
	rs := pki.startResponder(t, func(int32) ocspAnswer {
		if !healthy.Load() {
			return ocspAnswer{code: http.StatusServiceUnavailable}
		}
		return ocspAnswer{status: ocsp.Good}
	})
	files := []config.CertificateFiles{pki.writeLeaf(t, t.TempDir(), "leaf", 10, []string{rs.srv.URL}, pki.issuer)}
	_, addr := startStapling(t, files, nil, testOCSPOptions(rs.srv.Client()))

	waitUntil(t, "three requests to the failing responder", func() bool { return rs.hits.Load() >= 3 })
	if serial, raw := pki.stapled(t, addr, 0); serial != 10 || raw != nil {
		t.Errorf("handshake while the responder fails: serial %d, staple %t; want 10 and none", serial, raw != nil)
	}
	healthy.Store(true)
	pki.waitStaple(t, addr, 10)
}

func TestOCSPExpiredStapleDropped(t *testing.T) {
	t.Parallel()
	pki := newOCSPPKI(t)
	// OCSP times have a resolution of one second.
	nextUpdate := time.Now().Add(3 * time.Second).Truncate(time.Second)
	rs := pki.startResponder(t, func(n int32) ocspAnswer {
		if n > 1 {
			return ocspAnswer{code: http.StatusInternalServerError}
		}
		return ocspAnswer{status: ocsp.Good, nextUpdate: nextUpdate}
	})
	files := []config.CertificateFiles{pki.writeLeaf(t, t.TempDir(), "leaf", 10, []string{rs.srv.URL}, pki.issuer)}
	_, addr := startStapling(t, files, nil, testOCSPOptions(rs.srv.Client()))

	pki.waitStaple(t, addr, 10)
	// Halfway through its window is long past, so the refresh comes at once,
	// and fails: the still-valid staple stays.
	waitUntil(t, "a failed refresh", func() bool { return rs.hits.Load() >= 3 })
	_, raw := pki.stapled(t, addr, 0)
	if time.Now().Before(nextUpdate) && raw == nil {
		t.Error("staple dropped after a failed refresh before its NextUpdate, want it kept")
	}
	waitUntil(t, "the expired staple dropped", func() bool {
		_, raw := pki.stapled(t, addr, 0)
		return raw == nil
	})
	if now := time.Now(); now.Before(nextUpdate) {
		t.Errorf("staple dropped at %s, before its NextUpdate %s", now.Format(time.StampMilli), nextUpdate.Format(time.StampMilli))
	}
}

// failingTransport fails every request and counts them.
type failingTransport struct{ n atomic.Int32 }

func (f *failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	f.n.Add(1)
	return nil, errors.New("no request expected")
}

func TestOCSPNothingToStaple(t *testing.T) {
	t.Parallel()
	pki := newOCSPPKI(t)
	other := newOCSPPKI(t)
	dir := t.TempDir()
	tests := []struct {
		name  string
		files config.CertificateFiles
	}{
		{"no OCSP URL", pki.writeLeaf(t, dir, "nourl", 10, nil, pki.issuer)},
		{"no issuer in the chain", pki.writeLeaf(t, dir, "noissuer", 11, []string{"http://127.0.0.1:1/ocsp"})},
		{"not its issuer next in the chain", pki.writeLeaf(t, dir, "wrongissuer", 12, []string{"http://127.0.0.1:1/ocsp"}, other.issuer)},
		{"no http URL", pki.writeLeaf(t, dir, "ldap", 13, []string{"ldap://127.0.0.1/ocsp"}, pki.issuer)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			certs, err := NewCertificates([]config.CertificateFiles{tt.files}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			set := certs.cur.Load()
			if s := newStapler(certs, set.gen, set.def, testOCSPOptions(nil).withDefaults(), &stapleCache{}); s != nil {
				t.Errorf("newStapler(%s) = a stapler, want nil", tt.name)
			}
		})
	}

	// Running, such a certificate makes no request and serves handshakes.
	tr := &failingTransport{}
	files := []config.CertificateFiles{tests[0].files}
	certs, addr := startStapling(t, files, nil, testOCSPOptions(&http.Client{Transport: tr}))
	if err := certs.Reload("test"); err != nil { // one more pass of StapleOCSP's loop
		t.Fatal(err)
	}
	if serial, raw := pki.stapled(t, addr, 0); serial != 10 || raw != nil {
		t.Errorf("handshake: serial %d, staple %t; want 10 and none", serial, raw != nil)
	}
	if n := tr.n.Load(); n != 0 {
		t.Errorf("OCSP requests = %d, want 0", n)
	}
}

func TestOCSPReloadRestartsStapler(t *testing.T) {
	t.Parallel()
	pki := newOCSPPKI(t)
	rs := pki.startResponder(t, good)
	dir := t.TempDir()
	files := []config.CertificateFiles{pki.writeLeaf(t, dir, "leaf", 10, []string{rs.srv.URL}, pki.issuer)}
	o := testOCSPOptions(rs.srv.Client())
	o.MaxRefresh = time.Minute // no refresh during the test: each request is a restart's
	certs, addr := startStapling(t, files, nil, o)
	pki.waitStaple(t, addr, 10)

	// The same files again: the still-valid staple is carried over.
	if err := certs.Reload("test"); err != nil {
		t.Fatal(err)
	}
	pki.waitStaple(t, addr, 10)
	if n := rs.hits.Load(); n != 1 {
		t.Errorf("OCSP requests after reloading the same certificate = %d, want 1", n)
	}

	pki.writeLeaf(t, dir, "leaf", 11, []string{rs.srv.URL}, pki.issuer)
	if err := certs.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if resp := pki.waitStaple(t, addr, 11); resp.SerialNumber.Int64() != 11 {
		t.Errorf("staple after reload is for serial %d, want 11", resp.SerialNumber)
	}
	_, serials := rs.seen()
	if last := serials[len(serials)-1]; last != 11 {
		t.Errorf("last OCSP request for serial %d, want 11", last)
	}
}

func TestOCSPUsable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		give ocsp.Response
		want bool
	}{
		{"good and current", ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour)}, true},
		{"revoked", ocsp.Response{Status: ocsp.Revoked, ThisUpdate: now.Add(-time.Hour)}, true},
		{"unknown", ocsp.Response{Status: ocsp.Unknown, ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour)}, false},
		{"expired", ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now}, false},
		{"no NextUpdate", ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(-time.Hour)}, false},
		{"from the future", ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(time.Hour), NextUpdate: now.Add(2 * time.Hour)}, false},
		{"a little ahead: clock skew", ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(time.Minute), NextUpdate: now.Add(time.Hour)}, true},
	}
	for _, tt := range tests {
		if err := usable(&tt.give, now); (err == nil) != tt.want {
			t.Errorf("usable(%s) = %v, want usable %t", tt.name, err, tt.want)
		}
	}
}

func TestOCSPRefreshAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := &stapler{o: OCSPOptions{}.withDefaults()}
	tests := []struct {
		name       string
		this, next time.Time
		want       time.Duration
	}{
		{"halfway through a 4h window", now, now.Add(4 * time.Hour), 2 * time.Hour},
		{"a week's window: at most 12h", now, now.Add(7 * 24 * time.Hour), 12 * time.Hour},
		{"halfway passed: at least 1m", now.Add(-2 * time.Hour), now.Add(time.Hour), time.Minute},
	}
	for _, tt := range tests {
		if got := s.refreshAt(&staple{thisUpdate: tt.this, nextUpdate: tt.next}, now).Sub(now); got != tt.want {
			t.Errorf("refreshAt(%s) = now+%s, want now+%s", tt.name, got, tt.want)
		}
	}
}
