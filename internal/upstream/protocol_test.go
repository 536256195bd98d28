package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

// TestPoolH2CResponseEndsBeforeRequestBody: a backend that ends the response
// (with trailers) while the client still streams its body, as a gRPC server
// ending a bidi call does, ends the proxied call at once instead of when the
// client next sends.
func TestPoolH2CResponseEndsBeforeRequestBody(t *testing.T) {
	t.Parallel()
	be := protoBackend(t, true)
	be.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		buf := make([]byte, 16)
		n, _ := r.Body.Read(buf)
		_, _ = w.Write(buf[:n])
		w.Header().Set("Grpc-Status", "11")
	})
	cfg := testUpstream(be.URL)
	cfg.Transport.Protocol = config.ProtocolH2C
	p := newTestPool(t, cfg)
	front := httptest.NewUnstartedServer(p.Handler(RouteOptions{Route: "r"}))
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	front.Config.Protocols = &protos
	front.Start()
	t.Cleanup(front.Close)
	tr := &http.Transport{Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections)

	rd, wr := io.Pipe()
	defer wr.Close()
	req, _ := http.NewRequestWithContext(ctxWithTimeout(t, 5*time.Second), http.MethodPost, front.URL+"/", rd)
	req.Header.Set("Content-Type", "application/grpc")
	go func() { _, _ = wr.Write([]byte("hello")) }()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "hello" || resp.Trailer.Get("Grpc-Status") != "11" {
		t.Errorf("streamed POST = %q, %v, trailer Grpc-Status %q; want hello, nil, 11", body, err, resp.Trailer.Get("Grpc-Status"))
	}
}

// TestProxyGRPCBodyNeverReplayed: a gRPC body is streamed, never buffered,
// so a dial error that would retry a buffered POST elsewhere ends the call.
func TestProxyGRPCBodyNeverReplayed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, contentType string
		want              string // status, and Grpc-Status if any
	}{
		{"json POST is replayed", "application/json", "200 "},
		{"gRPC POST is not", "application/grpc+proto", "200 14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testUpstream(deadURL(t), okBackend(t, "ok").URL)
			cfg.PassiveHealth.Disabled, cfg.CircuitBreaker.Disabled = true, true
			p := newTestPool(t, cfg)
			r := httptest.NewRequest(http.MethodPost, "http://client.example/svc/M", strings.NewReader("msg"))
			r.Header.Set("Content-Type", tt.contentType)
			w := serve(p.Handler(RouteOptions{Route: "r"}), r)
			if got := fmt.Sprint(w.Code, " ", w.Header().Get("Grpc-Status")); got != tt.want {
				t.Errorf("POST %s with the first backend dead = %q, want %q", tt.contentType, got, tt.want)
			}
		})
	}
}
