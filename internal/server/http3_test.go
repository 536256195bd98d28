package server

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/edge"
)

// startHTTP3 serves h over HTTP/3 with the listener's TLS config and the
// certificate dir/a.crt for a.test (serial 1), and returns the UDP
// address and the certificates.
func startHTTP3(t *testing.T, dir string, cfg config.Server, h http.Handler) (*HTTP3, *Certificates, string) {
	t.Helper()
	return startHTTP3Limited(t, dir, cfg, h, nil)
}

// startHTTP3Limited is startHTTP3 with QUIC connections under limiter.
func startHTTP3Limited(t *testing.T, dir string, cfg config.Server, h http.Handler, limiter *edge.ConnLimiter) (*HTTP3, *Certificates, string) {
	t.Helper()
	files := []config.CertificateFiles{writeCert(t, dir, "a", 1, "a.test")}
	certs, err := NewCertificates(files, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := NewHTTP3(cfg, h, TLSConfig(cfg.TLS, certs), nil)
	if limiter != nil {
		s.LimitConnections(limiter.Admit)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("HTTP3.Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("HTTP3.Serve: %v", err)
		}
	})
	return s, certs, s.Addr().String()
}

func h3Client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http3.Transport{TLSClientConfig: &tls.Config{ServerName: "a.test", InsecureSkipVerify: true}} //nolint:gosec // the test reads the serial
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// TestHTTP3ServesWithReloadedCertificates: a request over HTTP/3 reaches the
// handler, a certificate reloaded on the TLS listener serves the next QUIC
// handshake, and headers beyond max_header_bytes are refused.
func TestHTTP3ServesWithReloadedCertificates(t *testing.T) {
	cfg, dir := defaults(), t.TempDir()
	_, certs, addr := startHTTP3(t, dir, cfg, ok)
	get := func(hdr http.Header) (*http.Response, string, error) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := h3Client(t).Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}
	resp, body, err := get(nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 3 || body != "HTTP/3.0" || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 1 {
		t.Errorf("GET over HTTP/3 = %s %q serial %d, want HTTP/3.0 %q serial 1", resp.Proto, body, resp.TLS.PeerCertificates[0].SerialNumber, "HTTP/3.0")
	}

	writeCert(t, dir, "a", 2, "a.test")
	if err := certs.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if resp, _, err = get(nil); err != nil {
		t.Fatal(err)
	}
	if got := resp.TLS.PeerCertificates[0].SerialNumber.Int64(); got != 2 {
		t.Errorf("serial over HTTP/3 after reload = %d, want 2", got)
	}

	big := http.Header{"X-Big": {strings.Repeat("a", 2*cfg.MaxHeaderBytes)}}
	if resp, _, err = get(big); err == nil && resp.StatusCode < 400 {
		t.Errorf("GET with %d bytes of headers over HTTP/3 = %d, want refused", 2*cfg.MaxHeaderBytes, resp.StatusCode)
	}
}

// TestHTTP3ShutdownFinishesInFlight: Shutdown lets a running request finish.
func TestHTTP3ShutdownFinishesInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})
	s, _, addr := startHTTP3(t, t.TempDir(), defaults(), h)
	got := make(chan string, 1)
	go func() {
		resp, err := h3Client(t).Get("https://" + addr + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	close(release)
	if b := <-got; b != "done" {
		t.Errorf("request in flight at Shutdown = %q, want %q", b, "done")
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
}

func TestAdvertiseHTTP3(t *testing.T) {
	const want = `h3=":8443"; ma=86400`
	tests := []struct {
		name string
		h    http.HandlerFunc
	}{
		{"write", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") }},
		{"nothing written", func(w http.ResponseWriter, r *http.Request) {}},
		{"backend alt-svc replaced", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Alt-Svc", `h2=":9000"`)
			w.WriteHeader(http.StatusTeapot)
		}},
		{"flushed", func(w http.ResponseWriter, r *http.Request) {
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Error(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			advertiseHTTP3(8443, tt.h).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if got := rec.Result().Header.Values("Alt-Svc"); len(got) != 1 || got[0] != want {
				t.Errorf("Alt-Svc = %q, want [%q]", got, want)
			}
		})
	}
}

// TestHTTP3ConnectionCaps: QUIC connections count under the connection caps
// (here one per IP): a second client is refused while the first is
// connected, and admitted once it has gone.
func TestHTTP3ConnectionCaps(t *testing.T) {
	limiter := edge.NewConnLimiter(config.ConnectionLimits{MaxConnectionsPerIP: 1}, nil)
	_, _, addr := startHTTP3Limited(t, t.TempDir(), defaults(), ok, limiter)
	get := func(c *http.Client) error {
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	first := &http3.Transport{TLSClientConfig: &tls.Config{ServerName: "a.test", InsecureSkipVerify: true}} //nolint:gosec // a test certificate
	if err := get(&http.Client{Transport: first, Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("first client: %v", err)
	}
	second := &http3.Transport{TLSClientConfig: &tls.Config{ServerName: "a.test", InsecureSkipVerify: true}} //nolint:gosec // a test certificate
	err := get(&http.Client{Transport: second, Timeout: 2 * time.Second})
	second.Close()
	if err == nil {
		t.Fatal("a second QUIC connection from the same IP was served over the per-IP cap of 1")
	}
	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tr := &http3.Transport{TLSClientConfig: &tls.Config{ServerName: "a.test", InsecureSkipVerify: true}} //nolint:gosec // a test certificate
		err := get(&http.Client{Transport: tr, Timeout: 2 * time.Second})
		tr.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no QUIC connection admitted after the first closed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
