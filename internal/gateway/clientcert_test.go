package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// issue signs a certificate for tpl with the CA (parent, signer), or
// self-signs it when parent is nil; it returns the certificate and its key.
func issue(t *testing.T, tpl, parent *x509.Certificate, signer *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl.NotBefore, tpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, signer = tpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func writePEM(t *testing.T, path, typ string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mtlsGateway serves g over TLS asking for client certificates signed by a
// generated CA ("request" mode, as server.ApplyClientAuth sets it up). It
// returns the server and a function that issues certificates that CA signs.
func mtlsGateway(t *testing.T, routes string) (*httptest.Server, func(cn string) tls.Certificate) {
	t.Helper()
	dir := t.TempDir()
	caCert, caKey := issue(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client-ca"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	caFile := writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caCert.Raw)
	srvCert, srvKey := issue(t, &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"gw.test"}}, nil, nil)
	srvKeyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	crtFile := writePEM(t, filepath.Join(dir, "gw.crt"), "CERTIFICATE", srvCert.Raw)
	keyFile := writePEM(t, filepath.Join(dir, "gw.key"), "PRIVATE KEY", srvKeyDER)

	g := newGateway(t, quiet+fmt.Sprintf(`
server:
  tls:
    certificates: [ { cert_file: %q, key_file: %q } ]
    client_auth: { ca_file: %q, mode: request }
`, crtFile, keyFile, caFile)+routes)

	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	s := httptest.NewUnstartedServer(g)
	s.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	s.StartTLS()
	t.Cleanup(s.Close)

	serial := int64(2)
	return s, func(cn string) tls.Certificate {
		serial++
		leaf, leafKey := issue(t, &x509.Certificate{SerialNumber: big.NewInt(serial),
			Subject:     pkix.Name{CommonName: cn, Organization: []string{"Acme"}},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, caCert, caKey)
		return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: leafKey, Leaf: leaf}
	}
}

// mtlsClient is a client of s that presents cert (none when nil).
func mtlsClient(t *testing.T, s *httptest.Server, cert *tls.Certificate) *http.Client {
	t.Helper()
	tr := s.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		// Sent even if Go's client would find it unfit for the request.
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// headerEcho is a backend that answers the client certificate headers it got.
func headerEcho(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "subject=%s fingerprint=%s n=%d",
			r.Header.Get("X-Client-Cert-Subject"), r.Header.Get("X-Client-Cert-Fingerprint"),
			len(r.Header.Values("X-Client-Cert-Subject")))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestClientCertificate(t *testing.T) {
	b := headerEcho(t)
	s, issueCert := mtlsGateway(t, fmt.Sprintf(`
routes:
  - name: mtls
    match: { prefix: /mtls }
    require_client_cert: true
    backends: [ { url: %[1]q } ]
  - name: open
    match: { prefix: /open }
    backends: [ { url: %[1]q } ]
`, b.URL))
	cert := issueCert("alice")
	sum := sha256.Sum256(cert.Leaf.Raw)
	verified := fmt.Sprintf("subject=CN=alice,O=Acme fingerprint=%s n=1", hex.EncodeToString(sum[:]))
	tests := []struct {
		name     string
		path     string
		withCert bool
		wantCode int
		wantBody string
	}{
		{"required, none", "/mtls/x", false, http.StatusForbidden, `"error":"client_certificate_required"`},
		{"required, verified", "/mtls/x", true, http.StatusOK, verified},
		{"open, none: forged headers removed", "/open/x", false, http.StatusOK, "subject= fingerprint= n=0"},
		{"open, verified: forged headers replaced", "/open/x", true, http.StatusOK, verified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c *tls.Certificate
			if tt.withCert {
				c = &cert
			}
			req, err := http.NewRequest("GET", s.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Client-Cert-Subject", "CN=admin")
			req.Header.Set("X-Client-Cert-Fingerprint", "00")
			resp, err := mtlsClient(t, s, c).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d with %q", tt.path, resp.StatusCode, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestHeaderSafe(t *testing.T) {
	tests := []struct{ give, want string }{
		{"CN=alice", "CN=alice"},
		{"CN=a\nX-Evil: 1", `CN=a\x0aX-Evil: 1`},
		{"CN=\x7f", `CN=\x7f`},
	}
	for _, tt := range tests {
		if got := headerSafe(tt.give); got != tt.want {
			t.Errorf("headerSafe(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// TestClientCertificateCachePartition: a backend may answer by the subject it
// is sent, so a cached answer for one certificate is not served to another.
func TestClientCertificateCachePartition(t *testing.T) {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		fmt.Fprint(w, r.Header.Get("X-Client-Cert-Subject"))
	}))
	t.Cleanup(b.Close)
	s, issueCert := mtlsGateway(t, fmt.Sprintf(`
routes:
  - name: cached
    match: { prefix: / }
    cache: { enabled: true }
    backends: [ { url: %q } ]
`, b.URL))
	alice, bob := issueCert("alice"), issueCert("bob")
	tests := []struct {
		cert      *tls.Certificate
		want, hit string
	}{
		{&alice, "CN=alice,O=Acme", "MISS"},
		{&alice, "CN=alice,O=Acme", "HIT"},
		{&bob, "CN=bob,O=Acme", "MISS"},
		{nil, "", "MISS"},
	}
	for i, tt := range tests {
		resp, err := mtlsClient(t, s, tt.cert).Get(s.URL + "/page")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != tt.want || resp.Header.Get("X-Cache") != tt.hit {
			t.Errorf("request %d: GET /page = %q X-Cache %q, want %q %q", i, body, resp.Header.Get("X-Cache"), tt.want, tt.hit)
		}
	}
}
