package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/altair-gateway/altair/internal/config"
)

// protoBackend answers 200 with the protocol the request arrived with. h2c
// makes its cleartext listener accept HTTP/2 with prior knowledge.
func protoBackend(t *testing.T, h2c bool) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	if h2c {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.Config.Protocols = &p
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func TestPoolProtocol(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, _, _ := ca.issue(t, "backend", x509.ExtKeyUsageServerAuth, true, "backend.test")
	tlsBE := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	tlsBE.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tlsBE.EnableHTTP2 = true
	tlsBE.StartTLS()
	t.Cleanup(tlsBE.Close)
	plain := protoBackend(t, true)

	tests := []struct {
		name, protocol, url string
		method              string
		want                string
	}{
		{"http1 default, bodiless GET", "", plain.URL, http.MethodGet, "HTTP/1.1"},
		{"h2c GET skips the h1 fast path", config.ProtocolH2C, plain.URL, http.MethodGet, "HTTP/2.0"},
		{"h2c POST", config.ProtocolH2C, plain.URL, http.MethodPost, "HTTP/2.0"},
		{"h2 over TLS", config.ProtocolH2, tlsBE.URL, http.MethodGet, "HTTP/2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tlsUpstream(config.UpstreamTLS{CAFile: ca.file}, tt.url)
			cfg.Transport.Protocol = tt.protocol
			p := newTestPool(t, cfg)
			w := serve(p.Handler(RouteOptions{Route: "r"}), httptest.NewRequest(tt.method, "http://client.example/", nil))
			if w.Code != http.StatusOK || w.Body.String() != tt.want {
				t.Errorf("%s via pool with protocol %q = %d %q, want 200 %q", tt.method, tt.protocol, w.Code, w.Body.String(), tt.want)
			}
		})
	}
}
