package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeKeyPair writes a self-signed certificate for name and its key to dir.
func writeKeyPair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestLoadServerTLS(t *testing.T) {
	dir := t.TempDir()
	crt, key := writeKeyPair(t, dir, "a.test")
	c := mustLoad(t, fmt.Sprintf("server:\n  h2c: true\n  tls:\n    certificates:\n      - {cert_file: %q, key_file: %q}\n    redirect_listen: \"8080\"\n  http3:\n    enabled: true\n    listen: \"8443\"\n", crt, key))
	if got, want := c.Server.HTTP3, (ServerHTTP3{Enabled: true, Listen: ":8443"}); got != want {
		t.Errorf("Load().Server.HTTP3 = %+v, want %+v", got, want)
	}
	want := ServerTLS{Certificates: []CertificateFiles{{CertFile: crt, KeyFile: key}}, MinVersion: "1.2", RedirectListen: ":8080"}
	if got := c.Server.TLS; !got.Enabled() || got.MinVersion != want.MinVersion || got.RedirectListen != want.RedirectListen || got.Certificates[0] != want.Certificates[0] {
		t.Errorf("Load().Server.TLS = %+v, want %+v", got, want)
	}
	if !c.Server.H2C {
		t.Error("Load().Server.H2C = false, want true")
	}
	if !c.Server.TLS.StaplesOCSP() {
		t.Error("Load().Server.TLS.StaplesOCSP() = false without ocsp_stapling, want true (the default)")
	}
	for _, give := range []bool{false, true} {
		c := mustLoad(t, fmt.Sprintf("server:\n  tls:\n    certificates:\n      - {cert_file: %q, key_file: %q}\n    ocsp_stapling: %t\n", crt, key, give))
		if got := c.Server.TLS.StaplesOCSP(); got != give {
			t.Errorf("Load(ocsp_stapling: %t).Server.TLS.StaplesOCSP() = %t, want %t", give, got, give)
		}
	}
	if plain := mustLoad(t, "server:\n  listen: \":0\"\n"); plain.Server.TLS.Enabled() || plain.Server.H2C {
		t.Errorf("Load() of a plain config: TLS %+v, h2c %v; want neither", plain.Server.TLS, plain.Server.H2C)
	}
}

func TestLoadServerTLSProblems(t *testing.T) {
	dir := t.TempDir()
	crt, key := writeKeyPair(t, dir, "a.test")
	_, otherKey := writeKeyPair(t, dir, "b.test")
	pair := func(c, k string) string {
		return fmt.Sprintf("server:\n  tls:\n    certificates:\n      - cert_file: %q\n        key_file: %q\n", c, k)
	}
	tests := []struct {
		name, yaml, path, marker, msg string
	}{
		{"min version", "server:\n  tls:\n    min_version: \"1.1\"\n", "server.tls.min_version", "min_version:", `invalid value "1.1"`},
		{"missing cert", pair(filepath.Join(dir, "none.crt"), key), "server.tls.certificates[0].cert_file", "cert_file:", "no such file"},
		{"directory as key", pair(crt, dir), "server.tls.certificates[0].key_file", "key_file:", "not a regular file"},
		{"key required", "server:\n  tls:\n    certificates:\n      - cert_file: " + crt + "\n", "server.tls.certificates[0].key_file", "cert_file:", "is required"},
		{"not a pair", pair(crt, otherKey), "server.tls.certificates[0]", "cert_file:", "not a key pair"},
		{"not PEM", pair(key, key), "server.tls.certificates[0]", "cert_file:", "not a key pair"},
		{"redirect without certificates", "server:\n  tls:\n    redirect_listen: \":80\"\n", "server.tls.redirect_listen", "redirect_listen:", "needs server.tls.certificates"},
		{"redirect on the listener", pair(crt, key) + "    redirect_listen: \"9777\"\n", "server.tls.redirect_listen", "redirect_listen:", "must differ from server.listen"},
		{"redirect address", pair(crt, key) + "    redirect_listen: \"a:b:c\"\n", "server.tls.redirect_listen", "redirect_listen:", "invalid listen address"},
		{"http3 without certificates", "server:\n  http3:\n    enabled: true\n", "server.http3.enabled", "enabled:", "needs server.tls.certificates"},
		{"http3 address", pair(crt, key) + "  http3:\n    enabled: true\n    listen: \"a:b:c\"\n", "server.http3.listen", "listen:", "invalid listen address"},
		{"acme without domains", "server:\n  tls:\n    acme:\n      enabled: true\n", "server.tls.acme.domains", "acme:", "is required"},
		{"acme wildcard", "server:\n  tls:\n    acme:\n      enabled: true\n      domains: [a.test, \"*.b.test\"]\n", "server.tls.acme.domains[1]", "domains:", "DNS-01"},
		{"acme IP", "server:\n  tls:\n    acme:\n      enabled: true\n      domains:\n        - 192.0.2.1\n", "server.tls.acme.domains[0]", "- 192", "IP address"},
		{"acme bad name", "server:\n  tls:\n    acme:\n      enabled: true\n      domains:\n        - a_b.test\n", "server.tls.acme.domains[0]", "- a_b", "not a DNS name"},
		{"acme twice", "server:\n  tls:\n    acme:\n      enabled: true\n      domains:\n        - a.test\n        - A.test\n", "server.tls.acme.domains[1]", "- A.test", "listed twice"},
		{"acme http directory", "server:\n  tls:\n    acme:\n      enabled: true\n      domains: [a.test]\n      directory_url: http://ca.test/dir\n", "server.tls.acme.directory_url", "directory_url:", "https://"},
		{"acme email", "server:\n  tls:\n    acme:\n      enabled: true\n      domains: [a.test]\n      email: ops\n", "server.tls.acme.email", "email:", "not an email"},
		{"acme ca file", "server:\n  tls:\n    acme:\n      enabled: true\n      domains: [a.test]\n      ca_file: " + key + "\n", "server.tls.acme.ca_file", "ca_file:", "no PEM certificate"},
		{"acme keys while off", "server:\n  tls:\n    acme:\n      domains: [a.test]\n", "server.tls.acme.enabled", "acme:", "must be true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadText(t, tt.yaml)
			wantLine := lineOf(t, tt.yaml, tt.marker)
			for _, p := range problemsOf(t, err) {
				if p.Path == tt.path && strings.Contains(p.Msg, tt.msg) {
					if p.Line != wantLine {
						t.Errorf("Load(%q): %q line = %d, want %d", tt.yaml, p, p.Line, wantLine)
					}
					return
				}
			}
			t.Errorf("Load(%q) problems:\n%v\nwant one at %q with %q", tt.yaml, err, tt.path, tt.msg)
		})
	}
}

func TestLoadUpstreamTLS(t *testing.T) {
	dir := t.TempDir()
	ca, _ := writeKeyPair(t, dir, "ca.test")
	crt, key := writeKeyPair(t, dir, "gw.test")
	ownCrt, ownKey := writeKeyPair(t, dir, "own.test")
	c := mustLoad(t, fmt.Sprintf(`defaults:
  transport:
    tls: {ca_file: %q, cert_file: %q, key_file: %q, server_name: backend.internal, min_version: "1.3"}
upstreams:
  inherits:
    backends: [{url: "https://a:8443"}]
  own:
    transport:
      tls: {cert_file: %q, key_file: %q, server_name: own.internal}
    backends: [{url: "https://b:8443", insecure_skip_verify: true}, {url: "https://c:8443"}]
routes:
  - {name: r, match: {prefix: /}, upstream: inherits}
`, ca, crt, key, ownCrt, ownKey))
	tests := []struct {
		upstream string
		want     UpstreamTLS
	}{
		{"inherits", UpstreamTLS{CAFile: ca, CertFile: crt, KeyFile: key, ServerName: "backend.internal", MinVersion: "1.3"}},
		// The key pair is inherited whole or not at all.
		{"own", UpstreamTLS{CAFile: ca, CertFile: ownCrt, KeyFile: ownKey, ServerName: "own.internal", MinVersion: "1.3"}},
	}
	for _, tt := range tests {
		if got := c.Upstreams[tt.upstream].Transport.TLS; got != tt.want {
			t.Errorf("Load().Upstreams[%q].Transport.TLS = %+v, want %+v", tt.upstream, got, tt.want)
		}
	}
	if bs := c.Upstreams["own"].Backends; !bs[0].InsecureSkipVerify || bs[1].InsecureSkipVerify {
		t.Errorf("Load().Upstreams[own].Backends = %+v, want insecure_skip_verify on the first only", bs)
	}
	if got := Default().Defaults.Transport.TLS; got != (UpstreamTLS{MinVersion: "1.2"}) {
		t.Errorf("Default().Defaults.Transport.TLS = %+v, want min_version 1.2 only", got)
	}
}

func TestLoadUpstreamTLSProblems(t *testing.T) {
	dir := t.TempDir()
	crt, key := writeKeyPair(t, dir, "a.test")
	_, otherKey := writeKeyPair(t, dir, "b.test")
	missing := filepath.Join(dir, "none.pem")
	upstream := func(tlsBlock string) string {
		return "upstreams:\n  api:\n    transport:\n      tls:\n" + tlsBlock + "    backends: [{url: \"https://a:8443\"}]\n"
	}
	tests := []struct {
		name, yaml, path, marker, msg string
	}{
		{"missing ca", upstream("        ca_file: " + missing + "\n"), "upstreams.api.transport.tls.ca_file", "ca_file:", "no such file"},
		{"ca not PEM certificates", upstream("        ca_file: " + key + "\n"), "upstreams.api.transport.tls.ca_file", "ca_file:", "holds no PEM certificate"},
		{"key required", upstream("        cert_file: " + crt + "\n"), "upstreams.api.transport.tls.key_file", "tls:", "is required with cert_file"},
		{"cert required", upstream("        key_file: " + key + "\n"), "upstreams.api.transport.tls.cert_file", "tls:", "is required with key_file"},
		{"unreadable key", upstream("        cert_file: " + crt + "\n        key_file: " + dir + "\n"), "upstreams.api.transport.tls.key_file", "key_file:", "not a regular file"},
		{"not a pair", upstream("        cert_file: " + crt + "\n        key_file: " + otherKey + "\n"), "upstreams.api.transport.tls", "tls:", "not a key pair"},
		{"min version", upstream("        min_version: \"1.0\"\n"), "upstreams.api.transport.tls.min_version", "min_version:", `invalid value "1.0"`},
		{"server name", upstream("        server_name: \"a b\"\n"), "upstreams.api.transport.tls.server_name", "server_name:", "not a host name"},
		{"default reported once, under defaults", "defaults:\n  transport:\n    tls:\n      ca_file: " + missing + "\nupstreams:\n  api:\n    backends: [{url: \"https://a:8443\"}]\n",
			"defaults.transport.tls.ca_file", "ca_file:", "no such file"},
		{"insecure on http", "upstreams:\n  api:\n    backends:\n      - url: http://a:8080\n        insecure_skip_verify: true\n",
			"upstreams.api.backends[0].insecure_skip_verify", "insecure_skip_verify:", "https backends only"},
		{"insecure on a route's http backend", "routes:\n  - name: r\n    match: {prefix: /}\n    backends:\n      - url: http://a:8080\n        insecure_skip_verify: true\n",
			"routes[0].backends[0].insecure_skip_verify", "insecure_skip_verify:", "https backends only"},
		{"insecure is no default", "defaults:\n  transport:\n    insecure_skip_verify: true\n", "defaults.transport.insecure_skip_verify", "insecure_skip_verify:", "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadText(t, tt.yaml)
			wantLine := lineOf(t, tt.yaml, tt.marker)
			ps := problemsOf(t, err)
			for _, p := range ps {
				if strings.HasPrefix(p.Path, "upstreams.api.transport") && strings.HasPrefix(tt.path, "defaults.") {
					t.Errorf("Load(%q): %q, want the inherited default reported under defaults only", tt.yaml, p)
				}
			}
			for _, p := range ps {
				if p.Path == tt.path && strings.Contains(p.Msg, tt.msg) {
					if p.Line != wantLine {
						t.Errorf("Load(%q): %q line = %d, want %d", tt.yaml, p, p.Line, wantLine)
					}
					return
				}
			}
			t.Errorf("Load(%q) problems:\n%v\nwant one at %q with %q", tt.yaml, err, tt.path, tt.msg)
		})
	}
}

func TestLoadServerTLSACME(t *testing.T) {
	c := mustLoad(t, "server:\n  tls:\n    redirect_listen: \":80\"\n    acme:\n      enabled: true\n      domains: [a.test, b.test]\n      email: ops@a.test\n")
	a := c.Server.TLS.ACME
	if !c.Server.TLS.Enabled() {
		t.Error("TLS not enabled by acme alone")
	}
	if a.CacheDir != "acme-cache" || a.RenewBefore != 30*24*time.Hour || a.DirectoryURL != "" || len(a.Domains) != 2 {
		t.Errorf("Load().Server.TLS.ACME = %+v, want defaults cache_dir acme-cache, renew_before 720h", a)
	}
	if !a.Equal(a) {
		t.Error("ACME.Equal(itself) = false")
	}
	b := a
	b.Domains = []string{"a.test"}
	if a.Equal(b) {
		t.Error("ACME.Equal ignores domains")
	}
}
