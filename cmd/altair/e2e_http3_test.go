package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestE2EHTTP3 runs the binary with server.http3 on and off: on, a request
// over HTTP/3 (quic-go's client, trusting the test certificate) reaches the
// backend, HTTPS responses over TCP carry Alt-Svc naming the UDP port, and
// SIGTERM stops it cleanly; off, no Alt-Svc and nothing bound on UDP.
func TestE2EHTTP3(t *testing.T) {
	t.Parallel()
	be := backend(t, "a")
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("http3=", on), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			crt, key, cert := writeTLSCert(t, dir, "gw.test", 1)
			extra := fmt.Sprintf("  tls:\n    certificates:\n      - {cert_file: %q, key_file: %q}\n", crt, key)
			if on {
				extra += "  http3:\n    enabled: true\n"
			}
			p := launchAltair(t, header(extra, "")+fmt.Sprintf("routes:\n  - name: a\n    match: {prefix: /}\n    backends:\n      - url: %s\n", be.URL))
			roots := x509.NewCertPool()
			roots.AddCert(cert)
			tlsConf := &tls.Config{RootCAs: roots, ServerName: "gw.test"}
			tr := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			var resp *http.Response
			waitFor(t, 10*time.Second, "ready over https", func() bool {
				r, err := client.Get("https://" + p.addr + "/ready")
				if err != nil {
					return false
				}
				r.Body.Close()
				resp = r
				return r.StatusCode == 200
			})
			_, port, _ := net.SplitHostPort(p.addr)
			altSvc := resp.Header.Values("Alt-Svc")

			// Whether UDP port is free tells whether altair listens there.
			udp, udpErr := net.ListenPacket("udp", p.addr)
			if udpErr == nil {
				udp.Close()
			}
			if !on {
				if len(altSvc) != 0 {
					t.Errorf("Alt-Svc with http3 off = %q, want none", altSvc)
				}
				if udpErr != nil {
					t.Errorf("UDP %s with http3 off: %v, want free", p.addr, udpErr)
				}
				return
			}
			if want := `h3=":` + port + `"; ma=86400`; len(altSvc) != 1 || altSvc[0] != want {
				t.Errorf("Alt-Svc over TCP = %q, want [%q]", altSvc, want)
			}
			if udpErr == nil {
				t.Errorf("UDP %s with http3 on is free, want altair's", p.addr)
			}

			h3 := &http3.Transport{TLSClientConfig: tlsConf}
			defer h3.Close()
			resp, err := (&http.Client{Transport: h3, Timeout: 5 * time.Second}).Get("https://" + p.addr + "/x")
			if err != nil {
				t.Fatalf("GET over HTTP/3: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != 3 || string(body) != "a /x" {
				t.Errorf("GET /x over HTTP/3 = %d %s %q, want 200 HTTP/3.0 %q", resp.StatusCode, resp.Proto, body, "a /x")
			}

			h3.Close()
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
		})
	}
}
