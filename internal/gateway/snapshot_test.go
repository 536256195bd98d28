package gateway

import (
	"fmt"
	"testing"
)

func TestSnapshot(t *testing.T) {
	a := echo(t, "a")
	g := newGateway(t, quiet+fmt.Sprintf(`
routes:
  - name: api
    match: { prefix: /api }
    backends: [ { url: %[1]q } ]
  - name: web
    match: { prefix: /web }
    require_auth: false
    backends: [ { url: %[1]q } ]
`, a.URL))
	for range 3 {
		do(g, "GET", "/api/x")
	}
	do(g, "GET", "/web/")
	do(g, "GET", "/nowhere") // unmatched: in latency, not in routed counts

	s := g.Snapshot(true)
	if s.Requests != 4 || s.Responses[2] != 4 || s.InFlight != 0 {
		t.Fatalf("totals = %d requests, %v responses, %d in flight; want 4, 4 2xx, 0", s.Requests, s.Responses, s.InFlight)
	}
	if len(s.Routes) != 2 || s.Routes[0].Name != "api" || s.Routes[0].Requests != 3 || s.Routes[1].Requests != 1 {
		t.Fatalf("routes = %+v", s.Routes)
	}
	if len(s.Upstreams) != 2 || len(s.Upstreams[0].Backends) != 1 || s.Upstreams[0].Backends[0].Breaker != "closed" {
		t.Fatalf("upstreams = %+v", s.Upstreams)
	}
	if s.Latency.Count != 5 || s.Latency.Counts[len(s.Latency.Counts)-1] != 5 || s.Latency.Sum <= 0 {
		t.Fatalf("latency = %+v, want 5 observations", s.Latency)
	}
	if s.Version != "test" || s.Uptime <= 0 || s.Time.IsZero() {
		t.Fatalf("version %q uptime %v time %v", s.Version, s.Uptime, s.Time)
	}
	if g.Snapshot(false).Latency.Count != 0 {
		t.Fatal("Snapshot(false) summed the histograms")
	}
}
