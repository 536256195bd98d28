package upstream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/altair-gateway/altair/internal/config"
)

// Health check types.
const (
	checkHTTP = "http"
	checkTCP  = "tcp"
	checkGRPC = "grpc"
)

// healthConfig is a pool's active health settings, with unusable values replaced.
type healthConfig struct {
	disabled bool
	kind     string
	path     string
	service  string // of a grpc check
	expected int
	interval time.Duration
	timeout  time.Duration
	rise     int64
	fall     int64
}

func newHealthConfig(c config.HealthCheck) (healthConfig, error) {
	h := healthConfig{
		disabled: c.Disabled,
		kind:     c.Type,
		path:     c.Path,
		service:  c.Service,
		expected: c.ExpectedStatus,
		interval: c.Interval,
		timeout:  c.Timeout,
		rise:     int64(max(1, c.Rise)),
		fall:     int64(max(1, c.Fall)),
	}
	if h.kind == "" {
		h.kind = checkTCP
		if h.path != "" {
			h.kind = checkHTTP
		}
	}
	if h.kind != checkHTTP && h.kind != checkTCP && h.kind != checkGRPC {
		return h, fmt.Errorf("unknown health check type %q", c.Type)
	}
	if h.interval <= 0 {
		h.interval = 10 * time.Second
	}
	if h.timeout <= 0 || h.timeout > h.interval {
		h.timeout = min(2*time.Second, h.interval)
	}
	return h, nil
}

// healthClient returns the client for HTTP probes over t, the transport (and
// so the TLS settings) that the probed backends' traffic uses. It does not
// follow redirects: a 3xx is an answer.
func (p *Pool) healthClient(t transport) *http.Client {
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// checkLoop probes b at once and then every interval until ctx is done.
func (p *Pool) checkLoop(ctx context.Context, client *http.Client, b *backend) {
	t := time.NewTicker(p.health.interval)
	defer t.Stop()
	for {
		err := p.probe(ctx, client, b)
		if ctx.Err() != nil {
			return // a probe cut short by Close says nothing about the backend
		}
		p.recordProbe(b, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe runs one health check of b; nil means it passed.
func (p *Pool) probe(ctx context.Context, client *http.Client, b *backend) error {
	ctx, cancel := context.WithTimeout(ctx, p.health.timeout)
	defer cancel()
	if p.health.kind == checkTCP {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", hostPort(b.target))
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		return conn.Close()
	}
	if p.health.kind == checkGRPC {
		return p.probeGRPC(ctx, client, b)
	}
	u := *b.target
	u.Path = joinPath(b.target.Path, p.health.path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("build probe: %w", err)
	}
	req.Header.Set("User-Agent", "altair-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	_ = resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 400
	if p.health.expected != 0 {
		ok = resp.StatusCode == p.health.expected
	}
	if !ok {
		return fmt.Errorf("probe: status %d", resp.StatusCode)
	}
	return nil
}

// probeGRPC calls grpc.health.v1.Health/Check on b over the pool's HTTP/2
// transport: one length-prefixed message each way, and the status in the
// trailers (or, trailers-only, in the headers). SERVING passes.
func (p *Pool) probeGRPC(ctx context.Context, client *http.Client, b *backend) error {
	msg, err := proto.Marshal(&healthpb.HealthCheckRequest{Service: p.health.service})
	if err != nil {
		return fmt.Errorf("encode grpc health request: %w", err)
	}
	frame := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(msg)))
	copy(frame[5:], msg)
	u := *b.target
	u.Path = joinPath(b.target.Path, healthpb.Health_Check_FullMethodName)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(frame))
	if err != nil {
		return fmt.Errorf("build probe: %w", err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	req.Header.Set("User-Agent", "altair-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, drainLimit))
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("probe: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe: status %d", resp.StatusCode)
	}
	st := resp.Trailer
	if st.Get("Grpc-Status") == "" {
		st = resp.Header // a trailers-only answer
	}
	if code := st.Get("Grpc-Status"); code != "0" {
		return fmt.Errorf("probe: grpc-status %q: %s", code, st.Get("Grpc-Message"))
	}
	if len(body) < 5 || body[0] != 0 || uint64(len(body)-5) < uint64(binary.BigEndian.Uint32(body[1:5])) {
		return errors.New("probe: malformed grpc health response")
	}
	var out healthpb.HealthCheckResponse
	if err := proto.Unmarshal(body[5:5+binary.BigEndian.Uint32(body[1:5])], &out); err != nil {
		return fmt.Errorf("probe: decode grpc health response: %w", err)
	}
	if out.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("probe: grpc health %s", out.Status)
	}
	return nil
}

// recordProbe applies one probe result: rise consecutive passes make b healthy,
// fall consecutive failures make it unhealthy.
func (p *Pool) recordProbe(b *backend, err error) {
	s := b.state
	if err == nil {
		s.fails.Store(0)
		if s.passes.Add(1) >= p.health.rise && !s.healthy.Load() {
			s.healthy.Store(true)
			p.logger.Info("backend healthy", "pool", p.name, "backend", b.name)
		}
		return
	}
	s.passes.Store(0)
	if s.fails.Add(1) >= p.health.fall && s.healthy.Load() {
		s.healthy.Store(false)
		p.logger.Warn("backend unhealthy", "pool", p.name, "backend", b.name, "error", err.Error())
	}
}

// hostPort returns u's host with its port, defaulting to the scheme's.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}
