package upstream

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

func TestRegistryStateSurvivesReloadAndRetain(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	urls := fakeURLs(3)
	build := func(name string, urls ...string) *Pool {
		cfg := testUpstream(urls...)
		cfg.HealthCheck.Disabled = false // (never started) so health is carried over
		p, err := NewPool(Options{Name: name, Config: cfg, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	old := build("api", urls[0], urls[1])
	other := build("web", urls[0])
	old.backends[0].state.healthy.Store(false)
	old.backends[1].state.requests.Add(7)

	// Reload: api keeps backend 0, drops 1, adds 2; web is removed.
	next := build("api", urls[0], urls[2])
	if next.backends[0].state != old.backends[0].state {
		t.Fatal("state of a kept backend was not carried over")
	}
	if next.backends[0].state.healthy.Load() {
		t.Error("health of a kept backend was reset")
	}
	if other.backends[0].state == old.backends[0].state {
		t.Error("pools share state for the same URL, want it keyed by pool")
	}

	reg.Retain([]*Pool{next})
	reg.mu.Lock()
	n, pools := len(reg.backends), len(reg.pools)
	reg.mu.Unlock()
	if n != 2 || pools != 1 {
		t.Errorf("after Retain: %d backend states and %d pools, want 2 and 1", n, pools)
	}
	if s := reg.backend("api", urls[0]); s != old.backends[0].state {
		t.Error("Retain dropped the state of a kept backend")
	}
	if s := reg.backend("api", urls[1]); s == old.backends[1].state || s.requests.Load() != 0 {
		t.Error("Retain kept the state of a removed backend")
	}
	if s := reg.backend("web", urls[0]); s == other.backends[0].state {
		t.Error("Retain kept the state of a removed pool")
	}
}

func TestStatusJSON(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	be := okBackend(t, "ok")
	cfg := testUpstream(be.URL, deadURL(t))
	cfg.Backends[0].Weight = 3
	cfg.Retry.Attempts = 1
	cfg.CircuitBreaker.MaxFailures = 1
	cfg.CircuitBreaker.MinRequests = 1
	p := newTestPool(t, cfg, withClock(clock))
	h := p.Handler(RouteOptions{})
	for range 4 {
		serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	}
	b, err := json.Marshal(p.Status())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "test", "algorithm": "round-robin", "healthy": 2.0, "total": 2.0, "panic": false,
		"backends": []any{
			map[string]any{"url": be.URL, "weight": 3.0, "healthy": true, "ejected": false,
				"breaker": "closed", "in_flight": 0.0, "requests": 3.0, "failures": 0.0},
			map[string]any{"url": cfg.Backends[1].URL, "weight": 1.0, "healthy": true, "ejected": false,
				"breaker": "open", "in_flight": 0.0, "requests": 1.0, "failures": 1.0},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Status() JSON = %s\nwant %v", b, want)
	}
	clock.Advance(cfg.CircuitBreaker.Timeout)
	if s := p.Status().Backends[1].Breaker; s != "half-open" {
		t.Errorf("breaker after its timeout = %s, want half-open", s)
	}
}

func TestNewPoolErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*Options)
		want   string
	}{
		{"no backends", func(o *Options) { o.Config.Backends = nil }, "no backends"},
		{"bad scheme", func(o *Options) { o.Config.Backends[0].URL = "ftp://x" }, "scheme must be http or https"},
		{"missing host", func(o *Options) { o.Config.Backends[0].URL = "http:///path" }, "missing host"},
		{"bad url", func(o *Options) { o.Config.Backends[0].URL = "http://[::1" }, "parse url"},
		{"bad algorithm", func(o *Options) { o.Config.LoadBalancing = "random" }, "unknown load balancing algorithm"},
		{"bad check type", func(o *Options) { o.Config.HealthCheck.Type = "udp" }, "unknown health check type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := Options{Name: "p", Config: testUpstream(fakeURLs(1)...)}
			tt.modify(&o)
			_, err := NewPool(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewPool(%s) error = %v, want it to mention %q", tt.name, err, tt.want)
			}
		})
	}
}

func TestNewPoolGuardsZeroConfig(t *testing.T) {
	t.Parallel()
	// A config nobody defaulted must not panic or misbehave.
	o := Options{Name: "bare"}
	o.Config.Backends = append(o.Config.Backends, testUpstream(okBackend(t, "ok").URL).Backends...)
	o.Config.HealthCheck.Path = "/"
	p, err := NewPool(o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Start(t.Context())
	if w := serve(p.Handler(RouteOptions{Timeout: time.Second}), httptest.NewRequest(http.MethodGet, "/", nil)); w.Code != 200 {
		t.Errorf("ServeHTTP() on a bare pool = %d, want 200", w.Code)
	}
	if st := p.Status(); st.Algorithm != AlgorithmLeastConn {
		t.Errorf("Status().Algorithm = %q, want %q", st.Algorithm, AlgorithmLeastConn)
	}
}

func TestNewPoolFromDefaultedConfig(t *testing.T) {
	t.Parallel()
	be := okBackend(t, "ok")
	c := &config.Config{Upstreams: map[string]*config.Upstream{
		"api": {Backends: []config.Backend{{URL: be.URL}}},
	}}
	c.ApplyDefaults()
	p := newTestPool(t, *c.Upstreams["api"], func(o *Options) { o.Name = "api" })
	p.Start(t.Context())
	if w := serve(p.Handler(RouteOptions{Timeout: c.Defaults.Timeout}), httptest.NewRequest(http.MethodGet, "/", nil)); w.Code != 200 || w.Body.String() != "ok" {
		t.Errorf("ServeHTTP() = %d %q, want 200 ok", w.Code, w.Body)
	}
	if st := p.Status(); st.Algorithm != AlgorithmLeastConn || st.Backends[0].Weight != 1 {
		t.Errorf("Status() = %+v, want least-conn, weight 1", st)
	}
}
