package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

// TestE2EClientCertificates runs the binary with server.tls.client_auth in
// require mode: a client without a certificate is refused in the handshake;
// one with a certificate the client CA signed reaches the backend, which
// sees its subject (and not the copy the client sent).
func TestE2EClientCertificates(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "subject=%s", r.Header.Get("X-Client-Cert-Subject"))
	}))
	t.Cleanup(be.Close)
	dir := t.TempDir()
	crt, key, srvCert := writeTLSCert(t, dir, "gw.test", 1)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "client-ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "svc-a"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCert := tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}

	cfg := header(fmt.Sprintf("  tls:\n    certificates:\n      - {cert_file: %q, key_file: %q}\n    client_auth: {ca_file: %q, mode: require}\n", crt, key, caFile), "") +
		fmt.Sprintf("routes:\n  - name: a\n    match: {prefix: /}\n    require_client_cert: true\n    backends:\n      - url: %s\n", be.URL)
	p := launchAltair(t, cfg)

	roots := x509.NewCertPool()
	roots.AddCert(srvCert)
	client := func(cert *tls.Certificate) *http.Client {
		tc := &tls.Config{RootCAs: roots, ServerName: "gw.test"}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 5 * time.Second}
	}
	withCert, without := client(&clientCert), client(nil)
	base := "https://" + p.addr
	waitFor(t, 10*time.Second, "ready over https with a client certificate", func() bool {
		resp, err := withCert.Get(base + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	req, err := http.NewRequest("GET", base+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Client-Cert-Subject", "CN=admin")
	resp, err := withCert.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "subject=CN=svc-a" {
		t.Errorf("GET /x with a client certificate = %d %q, want 200 %q", resp.StatusCode, body, "subject=CN=svc-a")
	}
	if resp, err := without.Get(base + "/x"); err == nil {
		resp.Body.Close()
		t.Errorf("GET /x without a client certificate = %d, want the handshake refused", resp.StatusCode)
	}
}
