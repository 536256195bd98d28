package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/cluster"
	"github.com/altair-gateway/altair/internal/cluster/redistest"
	"github.com/altair-gateway/altair/internal/config"
)

// sharedGateway is a gateway on yaml sharing state through the Redis at addr.
func sharedGateway(t *testing.T, addr, yaml string) (*Gateway, *cluster.Client) {
	t.Helper()
	cl, err := cluster.New(cluster.Options{
		// A timeout generous enough that a loaded test machine does not mark
		// Redis down (and the gateways fall back to local limits) by accident.
		Config:    config.Redis{Addrs: []string{addr}, Timeout: 500 * time.Millisecond, KeyPrefix: "gw:"},
		PingEvery: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	g := New(Options{Version: "test", Cluster: cl})
	t.Cleanup(func() {
		g.Close()
		_ = cl.Close()
	})
	if err := g.Apply(load(t, yaml)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	cl.Start(context.Background())
	return g, cl
}

func TestGatewaySharesThroughRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := echo(t, "b")
	yaml := fmt.Sprintf(`
defaults:
  health_check: { disabled: true }
edge:
  rate_limit: { requests_per_second: 0.5, burst: 3 }
  ddos: { disabled: true }
routes:
  - name: r
    backends: [{url: %q}]
`, b.URL)
	g1, _ := sharedGateway(t, srv.Addr, yaml)
	g2, cl2 := sharedGateway(t, srv.Addr, yaml)

	var codes []int
	for i := range 6 {
		g := g1
		if i%2 == 1 {
			g = g2
		}
		w := do(g, "GET", "/x")
		codes = append(codes, w.Code)
		if i == 2 && w.Header().Get("RateLimit-Remaining") != "0" {
			t.Fatalf("third request's RateLimit-Remaining = %q, want 0 (one bucket for both gateways)", w.Header().Get("RateLimit-Remaining"))
		}
	}
	if fmt.Sprint(codes) != "[200 200 200 429 429 429]" {
		t.Fatalf("6 requests alternating between two gateways, burst 3: %v", codes)
	}

	var st statsReport
	if err := json.Unmarshal(do(g2, "GET", "/stats").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Features["redis"] || !st.Edge.Shared {
		t.Fatalf("/stats features.redis = %v, edge.shared = %v; want both true", st.Features["redis"], st.Edge.Shared)
	}
	m := scrape(t, g2)
	wantSample(t, m, "redis_up", 1)
	if seriesOf(m, "redis_errors_total") != len(cluster.Ops()) || seriesOf(m, "redis_fallbacks_total") != len(cluster.Ops()) {
		t.Fatalf("redis_errors_total and redis_fallbacks_total should have a series per op from the start")
	}

	// Redis gone: every request is still answered, by local limits.
	srv.Kill()
	for range 5 {
		if w := do(g2, "GET", "/y"); w.Code != 200 && w.Code != 429 {
			t.Fatalf("GET with Redis down = %d, want 200 or 429 (the local fallback)", w.Code)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for cl2.Up() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st = statsReport{}
	_ = json.Unmarshal(do(g2, "GET", "/stats").Body.Bytes(), &st)
	if !st.Features["redis"] || st.Edge.Shared {
		t.Fatalf("/stats with Redis down: features.redis = %v, edge.shared = %v; want true, false", st.Features["redis"], st.Edge.Shared)
	}
	m = scrape(t, g2)
	wantSample(t, m, "redis_up", 0)
	if m[`redis_fallbacks_total{op="ratelimit"}`] == 0 {
		t.Errorf("redis_fallbacks_total{op=\"ratelimit\"} = 0 after requests with Redis down")
	}
}

func TestGatewayWithoutRedis(t *testing.T) {
	t.Parallel()
	g := newGateway(t, quiet)
	var st statsReport
	if err := json.Unmarshal(do(g, "GET", "/stats").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Features["redis"] || st.Edge.Shared {
		t.Fatalf("/stats without Redis: features.redis = %v, edge.shared = %v", st.Features["redis"], st.Edge.Shared)
	}
	if seriesOf(scrape(t, g), "redis_errors_total") != 0 {
		t.Fatal("redis metrics exported without Redis")
	}
}

func TestCheckRedisCAFile(t *testing.T) {
	t.Parallel()
	cfg := load(t, "redis:\n  addrs: [\"127.0.0.1:6379\"]\n  tls:\n    enabled: true\n    ca_file: /nonexistent/ca.pem\n")
	err := Check(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "redis.tls.ca_file") {
		t.Fatalf("Check with a missing Redis CA file = %v, want a problem at redis.tls.ca_file", err)
	}
}
