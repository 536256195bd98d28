package upstream

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

// testCA is a private certificate authority whose certificate is written to
// a PEM file in a test's temporary directory.
type testCA struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
	pool *x509.CertPool
}

var serial atomic.Int64

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key := newKey(t)
	tpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: "altair test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{dir: t.TempDir(), cert: cert, key: key, pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	ca.file = ca.write(t, "ca.crt", "CERTIFICATE", der)
	return ca
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func (ca *testCA) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(ca.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue signs a leaf for usage with the given DNS names (and 127.0.0.1 when
// withIP) and returns it as a tls.Certificate and as PEM files.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage, withIP bool, dnsNames ...string) (tls.Certificate, string, string) {
	t.Helper()
	key := newKey(t)
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if withIP {
		tpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := ca.write(t, name+".crt", "CERTIFICATE", der)
	keyFile := ca.write(t, name+".key", "PRIVATE KEY", keyDER)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certFile, keyFile
}

// tlsBackend starts an https backend serving cert that answers 200 with its
// name and the SNI it was reached with. clientCAs, when set, makes it require
// a client certificate signed by them.
func tlsBackend(t *testing.T, name string, cert tls.Certificate, clientCAs *x509.CertPool) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-SNI", r.TLS.ServerName)
		_, _ = io.WriteString(w, name)
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		s.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		s.TLS.ClientCAs = clientCAs
	}
	// Refused handshakes are what these tests are about: keep them quiet.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// tlsUpstream is testUpstream with one attempt per request, so that a refused
// handshake answers 502 at once.
func tlsUpstream(c config.UpstreamTLS, urls ...string) config.Upstream {
	u := testUpstream(urls...)
	u.Retry.Attempts = 1
	u.Transport.TLS = c
	return u
}

// get sends one GET through p and returns the status, body and the SNI the
// backend saw.
func get(t *testing.T, p *Pool) (int, string, string) {
	t.Helper()
	w := serve(p.Handler(RouteOptions{Route: "r"}), httptest.NewRequest(http.MethodGet, "http://client.example/", nil))
	return w.Code, w.Body.String(), w.Header().Get("X-SNI")
}

// probeBackend runs one active https health check (testUpstream's: http, /health)
// of p's backend i.
func probeBackend(t *testing.T, p *Pool, i int) error {
	t.Helper()
	b := p.backends[i]
	return p.probe(ctxWithTimeout(t, 5*time.Second), p.healthClient(b.transport), b)
}

// checkProbe runs an https health check of p's first backend, which must
// pass when wantErr is "" and otherwise fail with an error containing it.
func checkProbe(t *testing.T, p *Pool, wantErr string) {
	t.Helper()
	err := probeBackend(t, p, 0)
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("https health probe = %v, want nil", err)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Errorf("https health probe = %v, want an error with %q", err, wantErr)
	}
}

func TestPoolTLSCAFile(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, _, _ := ca.issue(t, "backend", x509.ExtKeyUsageServerAuth, true, "backend.test")
	be := tlsBackend(t, "private", cert, nil)
	tests := []struct {
		name     string
		tls      config.UpstreamTLS
		wantCode int
		wantErr  string // in the probe's error; "" for none
	}{
		{"system roots refuse a private CA", config.UpstreamTLS{}, http.StatusBadGateway, "unknown authority"},
		{"ca_file trusts it", config.UpstreamTLS{CAFile: ca.file}, http.StatusOK, ""},
		{"tls 1.3 minimum", config.UpstreamTLS{CAFile: ca.file, MinVersion: "1.3"}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPool(t, tlsUpstream(tt.tls, be.URL))
			code, body, _ := get(t, p)
			if code != tt.wantCode {
				t.Fatalf("GET via pool with %+v = %d %q, want %d", tt.tls, code, body, tt.wantCode)
			}
			checkProbe(t, p, tt.wantErr)
		})
	}
}

func TestPoolTLSClientCertificate(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	serverCert, _, _ := ca.issue(t, "backend", x509.ExtKeyUsageServerAuth, true)
	_, clientCrt, clientKey := ca.issue(t, "gateway", x509.ExtKeyUsageClientAuth, false)
	be := tlsBackend(t, "mtls", serverCert, ca.pool)
	tests := []struct {
		name     string
		tls      config.UpstreamTLS
		wantCode int
		wantErr  string // in the probe's error; "" for none
	}{
		{"no client certificate", config.UpstreamTLS{CAFile: ca.file}, http.StatusBadGateway, "certificate required"},
		{"client certificate", config.UpstreamTLS{CAFile: ca.file, CertFile: clientCrt, KeyFile: clientKey}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPool(t, tlsUpstream(tt.tls, be.URL))
			if code, body, _ := get(t, p); code != tt.wantCode {
				t.Fatalf("GET via pool with %+v = %d %q, want %d", tt.tls, code, body, tt.wantCode)
			}
			checkProbe(t, p, tt.wantErr)
		})
	}
}

func TestPoolTLSServerName(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	// The certificate names only backend.internal, not the 127.0.0.1 the
	// backend is dialled at.
	cert, _, _ := ca.issue(t, "backend", x509.ExtKeyUsageServerAuth, false, "backend.internal")
	be := tlsBackend(t, "named", cert, nil)
	tests := []struct {
		name       string
		serverName string
		wantCode   int
		wantErr    string // in the probe's error; "" for none
	}{
		{"address does not match the certificate", "", http.StatusBadGateway, "127.0.0.1"},
		{"server_name does", "backend.internal", http.StatusOK, ""},
		{"a wrong server_name does not", "other.internal", http.StatusBadGateway, "other.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPool(t, tlsUpstream(config.UpstreamTLS{CAFile: ca.file, ServerName: tt.serverName}, be.URL))
			code, body, sni := get(t, p)
			if code != tt.wantCode {
				t.Fatalf("GET via pool with server_name %q = %d %q, want %d", tt.serverName, code, body, tt.wantCode)
			}
			if code == http.StatusOK && sni != tt.serverName {
				t.Errorf("SNI seen by the backend = %q, want %q", sni, tt.serverName)
			}
			checkProbe(t, p, tt.wantErr)
		})
	}
}

func TestPoolInsecureSkipVerifyOneBackend(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, _, _ := ca.issue(t, "backend", x509.ExtKeyUsageServerAuth, true)
	insecure := tlsBackend(t, "insecure", cert, nil)
	checked := tlsBackend(t, "checked", cert, nil)
	cfg := tlsUpstream(config.UpstreamTLS{}, insecure.URL, checked.URL)
	cfg.Backends[0].InsecureSkipVerify = true

	var logs bytes.Buffer
	p := newTestPool(t, cfg, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	out := logs.String() // NewPool logs synchronously; nothing else logs before traffic
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "insecure_skip_verify") ||
		!strings.Contains(out, "backend="+insecure.URL) || strings.Contains(out, checked.URL) {
		t.Errorf("NewPool() logs = %q, want one warning naming %s only", out, insecure.URL)
	}
	if err := probeBackend(t, p, 0); err != nil {
		t.Errorf("probe of the insecure_skip_verify backend = %v, want nil", err)
	}
	if err := probeBackend(t, p, 1); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("probe of the verified backend = %v, want a certificate error", err)
	}
	// Round-robin: one request goes to each backend.
	got := map[int]string{}
	for range 2 {
		code, body, _ := get(t, p)
		got[code] += body
	}
	if got[http.StatusOK] != "insecure" || len(got) != 2 || got[http.StatusBadGateway] == "" {
		t.Errorf("two GETs via pool = %v, want 200 from the insecure backend and 502 from the checked one", got)
	}
}

func TestNewPoolTLSFileErrors(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	_, crt, key := ca.issue(t, "gateway", x509.ExtKeyUsageClientAuth, false)
	_, _, otherKey := ca.issue(t, "other", x509.ExtKeyUsageClientAuth, false)
	missing := filepath.Join(ca.dir, "missing.pem")
	tests := []struct {
		name string
		tls  config.UpstreamTLS
		want string
	}{
		{"missing ca", config.UpstreamTLS{CAFile: missing}, "ca_file"},
		{"ca without certificates", config.UpstreamTLS{CAFile: key}, "no PEM certificate"},
		{"missing key", config.UpstreamTLS{CertFile: crt, KeyFile: missing}, "key_file"},
		{"not a pair", config.UpstreamTLS{CertFile: crt, KeyFile: otherKey}, "key pair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewPool(Options{Name: "p", Config: tlsUpstream(tt.tls, "https://127.0.0.1:1")})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewPool(%+v) error = %v, want one with %q", tt.tls, err, tt.want)
			}
		})
	}
}
