package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

// testCA is a certificate authority that signs client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+".pem")}
	replace(t, ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

// client issues a client certificate for cn.
func (ca *testCA) client(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn, Organization: []string{"Acme"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startClientAuth serves, over TLS with client_auth ca, a handler that
// answers the verified client's common name.
func startClientAuth(t *testing.T, dir string, ca config.ClientAuth) string {
	t.Helper()
	files := []config.CertificateFiles{writeCert(t, dir, "srv", 1, "a.test")}
	certs, err := NewCertificates(files, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaults()
	cfg.Listen = "127.0.0.1:0"
	tc := TLSConfig(cfg.TLS, certs)
	if err := ApplyClientAuth(tc, ca); err != nil {
		t.Fatal(err)
	}
	s := New(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.VerifiedChains) > 0 {
			_, _ = io.WriteString(w, r.TLS.VerifiedChains[0][0].Subject.CommonName)
		}
	}), nil)
	s.UseTLS(tc)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	})
	return s.Addr().String()
}

func TestClientAuthModes(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "client-ca")
	other := newTestCA(t, dir, "other-ca")
	good, foreign := ca.client(t, "alice"), other.client(t, "mallory")
	tests := []struct {
		mode    string
		client  string
		cert    *tls.Certificate
		want    string // the body: the verified common name
		refused bool
	}{
		{config.ClientAuthRequire, "none", nil, "", true},
		{config.ClientAuthRequire, "other CA", &foreign, "", true},
		{config.ClientAuthRequire, "client CA", &good, "alice", false},
		{config.ClientAuthRequest, "none", nil, "", false},
		{config.ClientAuthRequest, "other CA", &foreign, "", true},
		{config.ClientAuthRequest, "client CA", &good, "alice", false},
	}
	addrs := map[string]string{
		config.ClientAuthRequire: startClientAuth(t, dir, config.ClientAuth{CAFile: ca.file, Mode: config.ClientAuthRequire}),
		config.ClientAuthRequest: startClientAuth(t, dir, config.ClientAuth{CAFile: ca.file, Mode: config.ClientAuthRequest}),
	}
	for _, tt := range tests {
		name := tt.mode + "/" + tt.client
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tc := &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", MinVersion: tls.VersionTLS12}
			if tt.cert != nil {
				// Sent even when the server names other CAs (Go's client
				// would otherwise send none).
				tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tt.cert, nil }
			}
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
			defer c.CloseIdleConnections()
			resp, err := c.Get("https://" + addrs[tt.mode] + "/")
			if tt.refused {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("GET with %s = %d, want the handshake refused", name, resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET with %s: %v, want an answer", name, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if string(body) != tt.want {
				t.Errorf("GET with %s: verified subject %q, want %q", name, body, tt.want)
			}
		})
	}
}

func TestApplyClientAuthBadCA(t *testing.T) {
	dir := t.TempDir()
	files := writeCert(t, dir, "srv", 1, "a.test")
	for _, ca := range []config.ClientAuth{
		{CAFile: filepath.Join(dir, "none.pem"), Mode: config.ClientAuthRequire},
		{CAFile: files.KeyFile, Mode: config.ClientAuthRequire},
	} {
		if err := ApplyClientAuth(&tls.Config{}, ca); err == nil {
			t.Errorf("ApplyClientAuth(%+v) = nil, want an error", ca)
		}
	}
	tc := &tls.Config{}
	if err := ApplyClientAuth(tc, config.ClientAuth{}); err != nil || tc.ClientAuth != tls.NoClientCert {
		t.Errorf("ApplyClientAuth(zero) = %v, ClientAuth %v; want nil and no client certificates", err, tc.ClientAuth)
	}
}
