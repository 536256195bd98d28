package upstream

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/altair-gateway/altair/internal/config"
)

// healthBackend answers /health with a switchable status and everything else 200.
type healthBackend struct {
	status atomic.Int64
	probes atomic.Int64
	hits   atomic.Int64
}

func newHealthBackend(t testing.TB) (*healthBackend, string) {
	hb := &healthBackend{}
	hb.status.Store(http.StatusOK)
	s := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			hb.probes.Add(1)
			w.WriteHeader(int(hb.status.Load()))
			return
		}
		hb.hits.Add(1)
	})
	return hb, s.URL
}

// Not parallel: it checks that Start and Close leave no goroutine behind.
func TestActiveHealthHTTP(t *testing.T) {
	// Registered first, so it runs after the backends' cleanups.
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	hb0, url0 := newHealthBackend(t)
	hb1, url1 := newHealthBackend(t)
	cfg := testUpstream(url0, url1)
	cfg.HealthCheck.Disabled = false
	cfg.HealthCheck.Interval = 10 * time.Millisecond
	cfg.HealthCheck.Timeout = 500 * time.Millisecond
	cfg.HealthCheck.Rise = 2
	cfg.HealthCheck.Fall = 2
	p, err := NewPool(Options{Name: "h", Config: cfg, Registry: NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Start(context.Background())
	p.Start(context.Background()) // idempotent

	healthy := func(i int) bool { return p.Status().Backends[i].Healthy }
	waitFor(t, "first probes", 5*time.Second, func() bool { return hb0.probes.Load() > 0 && hb1.probes.Load() > 0 })
	if !healthy(0) || !healthy(1) {
		t.Fatalf("Status() = %+v, want both healthy", p.Status())
	}

	hb1.status.Store(http.StatusInternalServerError)
	waitFor(t, "backend 1 unhealthy", 5*time.Second, func() bool { return !healthy(1) })
	h := p.Handler(RouteOptions{})
	for range 20 {
		req, _ := http.NewRequest(http.MethodGet, "http://gw/x", nil)
		serve(h, req)
	}
	if hb1.hits.Load() != 0 || hb0.hits.Load() != 20 {
		t.Errorf("hits = %d/%d, want all 20 on the healthy backend", hb0.hits.Load(), hb1.hits.Load())
	}
	if st := p.Status(); st.Healthy != 1 || st.Total != 2 || st.Panic {
		t.Errorf("Status() = healthy %d/%d panic %v, want 1/2 false", st.Healthy, st.Total, st.Panic)
	}

	hb1.status.Store(http.StatusOK)
	waitFor(t, "backend 1 healthy again", 5*time.Second, func() bool { return healthy(1) })

	p.Close()
	p.Close()                     // idempotent
	p.Start(context.Background()) // no-op after Close: goleak would catch its checkers
}

func TestActiveHealthExpectedStatusAndTCP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		kind        string
		expected    int
		status      int
		dead        bool
		wantHealthy bool
	}{
		{"2xx by default", "http", 0, 204, false, true},
		{"3xx by default", "http", 0, 302, false, true},
		{"4xx fails", "http", 0, 404, false, false},
		{"expected status matches", "http", 418, 418, false, true},
		{"expected status differs", "http", 200, 204, false, false},
		{"tcp connects", "tcp", 0, 500, false, true},
		{"tcp refused", "tcp", 0, 0, true, false},
		{"http refused", "http", 0, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hb, u := newHealthBackend(t)
			hb.status.Store(int64(tt.status))
			if tt.dead {
				u = deadURL(t)
			}
			cfg := testUpstream(u)
			cfg.HealthCheck = healthCfg(tt.kind, tt.expected)
			p := newTestPool(t, cfg)
			ctx := ctxWithTimeout(t, 5*time.Second)
			client := p.healthClient(p.backends[0].transport)
			for range 2 {
				p.recordProbe(p.backends[0], p.probe(ctx, client, p.backends[0]))
			}
			if got := p.Status().Backends[0].Healthy; got != tt.wantHealthy {
				t.Errorf("healthy after 2 probes (%s, status %d) = %v, want %v", tt.kind, tt.status, got, tt.wantHealthy)
			}
		})
	}
}

func healthCfg(kind string, expected int) (c config.HealthCheck) {
	c.Type = kind
	c.Path = "/health"
	c.ExpectedStatus = expected
	c.Interval = time.Second
	c.Timeout = time.Second
	c.Rise = 1
	c.Fall = 2
	return c
}

var errTestProbe = errors.New("probe failed")

func TestActiveHealthRiseFall(t *testing.T) {
	t.Parallel()
	cfg := testUpstream(fakeURLs(1)...)
	cfg.HealthCheck.Rise = 3
	cfg.HealthCheck.Fall = 2
	cfg.HealthCheck.Disabled = false
	p := newTestPool(t, cfg)
	b := p.backends[0]
	fail, pass := errTestProbe, error(nil)
	steps := []struct {
		result error
		want   bool
	}{
		{fail, true}, {pass, true}, {fail, true}, {fail, false}, // fall 2 (consecutive)
		{pass, false}, {pass, false}, {fail, false}, {pass, false}, {pass, false}, {pass, true}, // rise 3
	}
	for i, s := range steps {
		p.recordProbe(b, s.result)
		if got := b.state.healthy.Load(); got != s.want {
			t.Fatalf("step %d: healthy = %v, want %v", i, got, s.want)
		}
	}
}

func TestActiveHealthDisabledNeverProbes(t *testing.T) {
	t.Parallel()
	hb, u := newHealthBackend(t)
	cfg := testUpstream(u)
	cfg.HealthCheck.Disabled = true
	cfg.HealthCheck.Interval = time.Millisecond
	p := newTestPool(t, cfg)
	p.Start(context.Background())
	if p.cancel != nil || hb.probes.Load() != 0 {
		t.Error("Start() with checks disabled started probing")
	}
}
