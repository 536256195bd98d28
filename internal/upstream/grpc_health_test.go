package upstream

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/altair-gateway/altair/internal/config"
)

// grpcHealthBackend serves grpc's standard health service over h2c and
// returns its URL and the server, whose statuses the test sets.
func grpcHealthBackend(t *testing.T) (string, *health.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := health.NewServer()
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return "http://" + ln.Addr().String(), hs
}

func TestProbeGRPC(t *testing.T) {
	t.Parallel()
	url, hs := grpcHealthBackend(t)
	hs.SetServingStatus("altair.Echo", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("altair.Down", healthpb.HealthCheckResponse_NOT_SERVING)
	tests := []struct {
		name, service, protocol, url string
		wantErr                      string // "" for a pass
	}{
		{"server serving", "", config.ProtocolH2C, url, ""},
		{"service serving", "altair.Echo", config.ProtocolH2C, url, ""},
		{"service not serving", "altair.Down", config.ProtocolH2C, url, "NOT_SERVING"},
		{"unknown service", "altair.Nope", config.ProtocolH2C, url, `grpc-status "5"`},
		{"dead backend", "", config.ProtocolH2C, deadURL(t), "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testUpstream(tt.url)
			cfg.Transport.Protocol = tt.protocol
			cfg.HealthCheck.Type, cfg.HealthCheck.Service = "grpc", tt.service
			p := newTestPool(t, cfg)
			err := probeBackend(t, p, 0)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("grpc probe of %q = %v, want nil", tt.service, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("grpc probe of %q = %v, want an error with %q", tt.service, err, tt.wantErr)
			}
		})
	}
}

// TestGRPCHealthMarksBackend: a backend whose overall health turns
// NOT_SERVING is taken out by the running checks, and comes back.
func TestGRPCHealthMarksBackend(t *testing.T) {
	t.Parallel()
	url, hs := grpcHealthBackend(t)
	cfg := testUpstream(url)
	cfg.Transport.Protocol = config.ProtocolH2C
	cfg.HealthCheck = config.HealthCheck{Type: "grpc", Interval: 10 * time.Millisecond, Timeout: 5 * time.Millisecond, Rise: 1, Fall: 1}
	p := newTestPool(t, cfg)
	p.Start(t.Context())
	healthy := func() bool { return p.Status().Healthy == 1 }
	waitFor(t, "healthy", 5*time.Second, healthy)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	waitFor(t, "unhealthy", 5*time.Second, func() bool { return !healthy() })
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	waitFor(t, "healthy again", 5*time.Second, healthy)
}
