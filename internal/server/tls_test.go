package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

// writeCert writes a self-signed ECDSA certificate for names, with serial as
// its serial number, to name.crt and name.key in dir (replacing them by
// rename, as cert-manager and editors do).
func writeCert(t *testing.T, dir, name string, serial int64, names ...string) config.CertificateFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := config.CertificateFiles{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	replace(t, f.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	replace(t, f.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return f
}

func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// startTLS serves h over TLS with the certificates of files.
func startTLS(t *testing.T, cfg config.Server, files []config.CertificateFiles, log *slog.Logger, h http.Handler) (*Server, *Certificates, string) {
	t.Helper()
	certs, err := NewCertificates(files, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	s := New(cfg, h, nil)
	s.UseTLS(TLSConfig(cfg.TLS, certs))
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, certs, s.Addr().String()
}

// handshake connects with SNI name and TLS versions lo..hi and returns the
// serial of the certificate served.
func handshake(addr, name string, lo, hi uint16) (int64, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true, MinVersion: lo, MaxVersion: hi}) //nolint:gosec // the test inspects the certificate itself
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) })

func TestTLSPicksCertificateBySNI(t *testing.T) {
	dir := t.TempDir()
	files := []config.CertificateFiles{
		writeCert(t, dir, "a", 1, "a.test"),
		writeCert(t, dir, "b", 2, "b.test", "*.wild.test"),
	}
	_, _, addr := startTLS(t, defaults(), files, nil, ok)
	tests := []struct {
		name string
		give string
		want int64
	}{
		{"first host", "a.test", 1},
		{"second host", "b.test", 2},
		{"case-insensitive", "B.Test", 2},
		{"wildcard", "api.wild.test", 2},
		{"unknown name gets the default", "other.test", 1},
		{"no SNI gets the default", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := handshake(addr, tt.give, tls.VersionTLS12, tls.VersionTLS13)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("handshake(%q) serial = %d, want %d", tt.give, got, tt.want)
			}
		})
	}
}

func TestTLSVersions(t *testing.T) {
	dir := t.TempDir()
	files := []config.CertificateFiles{writeCert(t, dir, "a", 1, "a.test")}
	cfg12 := defaults()
	cfg13 := defaults()
	cfg13.TLS.MinVersion = "1.3"
	_, _, addr12 := startTLS(t, cfg12, files, nil, ok)
	_, _, addr13 := startTLS(t, cfg13, files, nil, ok)
	tests := []struct {
		name    string
		addr    string
		version uint16
		wantOK  bool
	}{
		{"1.1 refused", addr12, tls.VersionTLS11, false},
		{"1.2 accepted", addr12, tls.VersionTLS12, true},
		{"1.3 accepted", addr12, tls.VersionTLS13, true},
		{"1.2 refused with min_version 1.3", addr13, tls.VersionTLS12, false},
		{"1.3 accepted with min_version 1.3", addr13, tls.VersionTLS13, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := handshake(tt.addr, "a.test", tt.version, tt.version)
			if (err == nil) != tt.wantOK {
				t.Errorf("handshake at %x: err = %v, want ok %v", tt.version, err, tt.wantOK)
			}
		})
	}
	// A client offering both gets 1.3.
	c, err := tls.Dial("tcp", addr12, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated version = %x, want TLS 1.3", v)
	}
}

func TestTLSCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	files := []config.CertificateFiles{writeCert(t, dir, "a", 1, "a.test")}
	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	_, certs, addr := startTLS(t, defaults(), files, log, ok)
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	stopped := make(chan struct{})
	go func() { defer close(stopped); certs.Watch(ctx, func() { close(watched) }) }()
	defer func() { cancel(); <-stopped }()
	<-watched

	writeCert(t, dir, "a", 2, "a.test")
	waitSerial(t, addr, 2)

	// A broken certificate is logged and the current one keeps serving.
	replace(t, files[0].CertFile, []byte("not a certificate"))
	waitLog(t, &logs, "certificate reload failed")
	if got, err := handshake(addr, "a.test", tls.VersionTLS12, tls.VersionTLS13); err != nil || got != 2 {
		t.Errorf("after a bad file: serial = %d, %v; want 2", got, err)
	}

	// Reload (as on SIGHUP) picks up a good pair again.
	writeCert(t, dir, "a", 3, "a.test")
	if err := certs.Reload("SIGHUP"); err != nil {
		t.Fatal(err)
	}
	if got, err := handshake(addr, "a.test", tls.VersionTLS12, tls.VersionTLS13); err != nil || got != 3 {
		t.Errorf("after Reload: serial = %d, %v; want 3", got, err)
	}
}

// TestCertificatesUpdate: a new list of files (a reloaded config) is served
// at once and its new files are watched; a bad list changes nothing.
func TestCertificatesUpdate(t *testing.T) {
	dir := t.TempDir()
	a := writeCert(t, dir, "a", 1, "a.test")
	_, certs, addr := startTLS(t, defaults(), []config.CertificateFiles{a}, nil, ok)
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	stopped := make(chan struct{})
	go func() { defer close(stopped); certs.Watch(ctx, func() { close(watched) }) }()
	defer func() { cancel(); <-stopped }()
	<-watched

	b := writeCert(t, dir, "b", 10, "b.test")
	if got, _ := handshake(addr, "b.test", tls.VersionTLS12, tls.VersionTLS13); got != 1 {
		t.Fatalf("before the update b.test got serial %d, want the default 1", got)
	}
	if err := certs.Update([]config.CertificateFiles{a, b}, "test"); err != nil {
		t.Fatal(err)
	}
	if got, err := handshake(addr, "b.test", tls.VersionTLS12, tls.VersionTLS13); err != nil || got != 10 {
		t.Fatalf("after the update b.test: serial %d, %v; want 10", got, err)
	}
	// The new file is watched: rewriting it is picked up without a reload.
	writeCert(t, dir, "b", 11, "b.test")
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := handshake(addr, "b.test", tls.VersionTLS12, tls.VersionTLS13)
		if err == nil && got == 11 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b.test serial %d (%v) after its file changed, want 11", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A list with a missing file keeps the current one.
	if err := certs.Update([]config.CertificateFiles{a, {CertFile: filepath.Join(dir, "none.crt"), KeyFile: b.KeyFile}}, "test"); err == nil {
		t.Fatal("Update with a missing file = nil")
	}
	if got, err := handshake(addr, "b.test", tls.VersionTLS12, tls.VersionTLS13); err != nil || got != 11 {
		t.Fatalf("after a bad update b.test: serial %d, %v; want 11", got, err)
	}
	if err := certs.Update(nil, "test"); err == nil {
		t.Fatal("Update to no certificates = nil; want an error (the listener would lose TLS)")
	}
}

func TestCertificatesReloadBadKeepsOld(t *testing.T) {
	dir := t.TempDir()
	files := []config.CertificateFiles{writeCert(t, dir, "a", 1, "a.test")}
	var logs syncBuf
	certs, err := NewCertificates(files, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	other := writeCert(t, dir, "b", 2, "a.test")
	// The key of another certificate: not a pair.
	data, err := os.ReadFile(other.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	replace(t, files[0].KeyFile, data)
	if err := certs.Reload("test"); err == nil {
		t.Fatal("Reload with a mismatched key = nil, want an error")
	}
	if !strings.Contains(logs.String(), "certificate reload failed") {
		t.Errorf("log = %q, want the failure", logs.String())
	}
	got, err := certs.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.test"})
	if err != nil || got.Leaf.SerialNumber.Int64() != 1 {
		t.Errorf("GetCertificate after a bad reload = %v, %v; want serial 1", got.Leaf.SerialNumber, err)
	}
}

func TestRedirectHandler(t *testing.T) {
	probe := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "probe") })
	tests := []struct {
		name, port, host, target string
		wantCode                 int
		wantLocation             string
	}{
		{"path and query", "8443", "example.com:8080", "/a/b%20c?x=1&y=2", 308, "https://example.com:8443/a/b%20c?x=1&y=2"},
		{"default port left out", "443", "example.com", "/", 308, "https://example.com/"},
		{"IPv6 literal", "8443", "[::1]:80", "/x", 308, "https://[::1]:8443/x"},
		{"health served", "443", "example.com", "/health", 200, ""},
		{"ready served", "443", "example.com", "/ready", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := http.NewRequest(http.MethodPost, "http://"+tt.host+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			RedirectHandler(tt.port, probe).ServeHTTP(w, r)
			if w.Code != tt.wantCode || w.Header().Get("Location") != tt.wantLocation {
				t.Errorf("RedirectHandler(%s %s) = %d %q, want %d %q", tt.host, tt.target, w.Code, w.Header().Get("Location"), tt.wantCode, tt.wantLocation)
			}
		})
	}
}

func TestHTTP2OverTLSKeepsHardening(t *testing.T) {
	dir := t.TempDir()
	files := []config.CertificateFiles{writeCert(t, dir, "a", 1, "a.test")}
	certs, err := NewCertificates(files, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaults()
	cfg.Listen = "127.0.0.1:0"
	s := New(cfg, ok, nil)
	s.UseTLS(TLSConfig(cfg.TLS, certs))
	var accepted atomic.Int64
	s.WrapListener(func(ln net.Listener) net.Listener { return countingListener{ln, &accepted} })
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()

	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true} //nolint:gosec // test
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "HTTP/2.0" {
		t.Errorf("GET over TLS: proto %s, body %q; want HTTP/2.0", resp.Proto, body)
	}

	// max_header_bytes holds on HTTP/2: the server advertises it as its
	// header list limit, which Go's client then respects; a client that
	// ignores it gets 431.
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 8192))
	resp, err = c.Do(req)
	switch {
	case err != nil:
		if !strings.Contains(err.Error(), "larger than peer's advertised limit") {
			t.Errorf("big header over h2: %v, want the advertised limit", err)
		}
	default:
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("big header over h2: status %d, want 431", resp.StatusCode)
		}
	}
	if accepted.Load() == 0 {
		t.Error("the listener wrapper saw no connection")
	}

	// Shutdown drains HTTP/2 connections too.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func TestH2C(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		t.Run(map[bool]string{true: "enabled", false: "disabled"}[enabled], func(t *testing.T) {
			cfg := defaults()
			cfg.H2C = enabled
			s, addr, served := start(t, cfg, ok)
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = s.Shutdown(ctx)
				<-served
			}()
			p := new(http.Protocols)
			p.SetUnencryptedHTTP2(true)
			tr := &http.Transport{Protocols: p}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://" + addr + "/")
			if !enabled {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("h2c with h2c off: %s, want an error", resp.Proto)
				}
				// HTTP/1.1 still works.
				code, body := get11(t, addr)
				if code != 200 || body != "HTTP/1.1" {
					t.Errorf("HTTP/1.1 with h2c off: %d %q", code, body)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || string(body) != "HTTP/2.0" {
				t.Errorf("h2c: proto %s, body %q; want HTTP/2.0", resp.Proto, body)
			}
			if code, body := get11(t, addr); code != 200 || body != "HTTP/1.1" {
				t.Errorf("HTTP/1.1 with h2c on: %d %q", code, body)
			}
		})
	}
}

func get11(t *testing.T, addr string) (int, string) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitSerial(t *testing.T, addr string, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := handshake(addr, "a.test", tls.VersionTLS12, tls.VersionTLS13)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serial = %d (%v), want %d within 5s", got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitLog(t *testing.T, logs *syncBuf, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log has no %q within 5s: %s", want, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
