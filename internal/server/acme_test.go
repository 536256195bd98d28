package server

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"

	"golang.org/x/crypto/acme"

	"github.com/altair-gateway/altair/internal/config"
)

// unreachableACME is an ACME manager for names whose CA cannot be reached:
// asking it for a certificate fails at once.
func unreachableACME(t *testing.T, domains ...string) *ACME {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	a, err := NewACME(config.ACME{Enabled: true, Domains: domains, DirectoryURL: "https://" + addr + "/dir", CacheDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCertificatesWithACME: a file certificate naming the host exactly wins;
// a name ACME manages goes to ACME (which fails here: no CA), even when a
// file wildcard covers it; other names get the wildcard or the first file;
// without files, a name ACME does not manage fails the handshake.
func TestCertificatesWithACME(t *testing.T) {
	dir := t.TempDir()
	files := []config.CertificateFiles{
		writeCert(t, dir, "def", 1, "def.test"),
		writeCert(t, dir, "exact", 2, "both.example.com"),
		writeCert(t, dir, "wild", 3, "*.example.com"),
	}
	a := unreachableACME(t, "both.example.com", "acme.example.com")
	certs, err := NewCertificates(files, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	serial := func(name string) (int64, error) {
		c, err := certs.GetCertificate(&tls.ClientHelloInfo{ServerName: name, SupportedProtos: []string{"h2"}})
		if err != nil {
			return 0, err
		}
		return c.Leaf.SerialNumber.Int64(), nil
	}
	for name, want := range map[string]int64{"both.example.com": 2, "other.example.com": 3, "": 1, "x.test": 1} {
		if got, err := serial(name); err != nil || got != want {
			t.Errorf("GetCertificate(%q) = serial %d, %v; want %d", name, got, err, want)
		}
	}
	if _, err := serial("acme.example.com"); err == nil {
		t.Error("GetCertificate(acme.example.com) did not go to ACME (whose CA is down)")
	}

	only, err := NewCertificates(nil, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "x.test"} {
		if _, err := only.GetCertificate(&tls.ClientHelloInfo{ServerName: name}); !errors.Is(err, errNoCertificate) {
			t.Errorf("ACME only: GetCertificate(%q) error %v, want %v", name, err, errNoCertificate)
		}
	}
	if tc := TLSConfig(config.ServerTLS{}, only); tc.NextProtos[len(tc.NextProtos)-1] != acme.ALPNProto {
		t.Errorf("NextProtos %v: want %s offered with ACME", tc.NextProtos, acme.ALPNProto)
	}
	if _, err := NewCertificates(nil, nil, nil); err == nil {
		t.Error("NewCertificates without files or ACME succeeded")
	}
}

// TestClientAuthSparesACMEChallenge: with client certificates required, a
// CA's TLS-ALPN-01 handshake (which has none to show) is not asked for one;
// every other handshake is.
func TestClientAuthSparesACMEChallenge(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "clients")
	certs, err := NewCertificates([]config.CertificateFiles{writeCert(t, dir, "srv", 1, "a.test")}, unreachableACME(t, "a.test"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := TLSConfig(config.ServerTLS{}, certs)
	if err := ApplyClientAuth(tc, config.ClientAuth{CAFile: ca.file, Mode: config.ClientAuthRequire}); err != nil {
		t.Fatal(err)
	}
	got, err := tc.GetConfigForClient(&tls.ClientHelloInfo{ServerName: "a.test", SupportedProtos: []string{acme.ALPNProto}})
	if err != nil || got == nil || got.ClientAuth != tls.NoClientCert {
		t.Fatalf("challenge hello: config %v, %v; want one without client auth", got, err)
	}
	if got, err := tc.GetConfigForClient(&tls.ClientHelloInfo{ServerName: "a.test", SupportedProtos: []string{"h2", acme.ALPNProto}}); got != nil || err != nil {
		t.Fatalf("ordinary hello: config %v, %v; want the listener's (nil)", got, err)
	}
	if tc.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("listener ClientAuth = %v, want require", tc.ClientAuth)
	}
}
