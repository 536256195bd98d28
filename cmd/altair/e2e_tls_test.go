package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeTLSCert writes a self-signed certificate for host with the given
// serial, and its key, to dir/host.crt and dir/host.key (replaced by rename),
// and returns the certificate.
func writeTLSCert(t *testing.T, dir, host string, serial int64) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, host+".crt"), filepath.Join(dir, host+".key")
	for path, data := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		writeFile(t, path+".tmp", string(data))
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, cert
}

// TestE2ETLS runs the binary with TLS: HTTP/2 through it to a backend, a
// certificate rotated on disk without a restart, the redirect listener, and
// a clean stop.
func TestE2ETLS(t *testing.T) {
	t.Parallel()
	be := backend(t, "a")
	dir := t.TempDir()
	crt, key, cert := writeTLSCert(t, dir, "gw.test", 1)
	cfg := header(fmt.Sprintf("  tls:\n    certificates:\n      - {cert_file: %q, key_file: %q}\n    redirect_listen: \"127.0.0.1:0\"\n", crt, key), "") +
		fmt.Sprintf("routes:\n  - name: a\n    match: {prefix: /}\n    backends:\n      - url: %s\n", be.URL)
	p := launchAltair(t, cfg)

	roots := x509.NewCertPool()
	roots.AddCert(cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "gw.test"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	base := "https://" + p.addr
	waitFor(t, 10*time.Second, "ready over https", func() bool {
		resp, err := client.Get(base + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	resp, err := client.Get(base + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || string(body) != "a /x" {
		t.Errorf("GET /x over TLS = %d %s %q, want 200 HTTP/2.0 %q", resp.StatusCode, resp.Proto, body, "a /x")
	}

	// Rotation: new files on disk, served by the next handshake.
	writeTLSCert(t, dir, "gw.test", 2)
	waitFor(t, 10*time.Second, "the rotated certificate", func() bool { return servedSerial(p.addr, "gw.test") == 2 })

	// A certificate added to the config: served after the reload, no restart.
	crt2, key2, _ := writeTLSCert(t, dir, "other.test", 5)
	p.rewrite(strings.Replace(cfg, "    redirect_listen:", fmt.Sprintf("      - {cert_file: %q, key_file: %q}\n    redirect_listen:", crt2, key2), 1))
	waitFor(t, 10*time.Second, "the added certificate", func() bool { return servedSerial(p.addr, "other.test") == 5 })
	if strings.Contains(p.logs.String(), "keeps its TLS settings until restart") {
		t.Errorf("adding a certificate warned about a restart:\n%s", p.logs.String())
	}

	// The redirect listener.
	raddr := redirectAddr(t, p)
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get("http://" + raddr + "/a/b?q=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, httpsPort, _ := net.SplitHostPort(p.addr)
	rhost, _, _ := net.SplitHostPort(raddr)
	if want := "https://" + rhost + ":" + httpsPort + "/a/b?q=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("GET on the redirect listener = %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if code, _, _ := get(t, "http://"+raddr+"/ready"); code != 200 {
		t.Errorf("GET /ready on the redirect listener = %d, want 200", code)
	}

	tr.CloseIdleConnections()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.exitErr != nil {
			t.Errorf("exit after SIGTERM: %v", p.exitErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("altair did not stop after SIGTERM")
	}
}

// servedSerial is the serial of the certificate addr serves for SNI name, or
// -1 when the handshake fails.
func servedSerial(addr, name string) int64 {
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true}) //nolint:gosec // the test reads the serial
	if err != nil {
		return -1
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// redirectAddr is the redirect listener's address from the start line.
func redirectAddr(t *testing.T, p *proc) string {
	t.Helper()
	for _, line := range strings.Split(p.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "altair started" {
			if a, ok := rec["redirect_addr"].(string); ok {
				_, port, _ := net.SplitHostPort(a)
				return "127.0.0.1:" + port
			}
		}
	}
	t.Fatalf("no redirect_addr in the start line:\n%s", p.logs.String())
	return ""
}

// TestE2EH2C: h2c when server.h2c is on; refused (HTTP/1.1 only) when off.
func TestE2EH2C(t *testing.T) {
	t.Parallel()
	be := backend(t, "a")
	route := fmt.Sprintf("routes:\n  - name: a\n    match: {prefix: /}\n    backends:\n      - url: %s\n", be.URL)
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("h2c=", on), func(t *testing.T) {
			t.Parallel()
			extra := ""
			if on {
				extra = "  h2c: true\n"
			}
			p := startAltair(t, header(extra, "")+route)
			protos := new(http.Protocols)
			protos.SetUnencryptedHTTP2(true)
			tr := &http.Transport{Protocols: protos}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(p.url("/x"))
			if !on {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("h2c with server.h2c off: %s %d, want an error", resp.Proto, resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != 2 || string(body) != "a /x" {
				t.Errorf("h2c GET /x = %d %s %q, want 200 HTTP/2.0 %q", resp.StatusCode, resp.Proto, body, "a /x")
			}
		})
	}
}
