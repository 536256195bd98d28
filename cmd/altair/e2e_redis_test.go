package main

// End-to-end tests of scale-out through Redis: several altair processes
// against one real redis-server.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/cluster/redistest"
)

// shared reports whether p says it shares state through Redis now.
func shared(t *testing.T, p *proc) bool {
	t.Helper()
	resp, err := http.Get(p.url("/stats"))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		Edge struct {
			Shared bool `json:"shared"`
		} `json:"edge"`
		Features map[string]bool `json:"features"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil || !st.Features["redis"] {
		t.Fatalf("/stats of %s: features.redis is not true", p.addr)
	}
	return st.Edge.Shared
}

// replicas starts n gateways on cfg sharing the Redis at addr, and waits
// until each shares.
func replicas(t *testing.T, n int, cfg, addr string) []*proc {
	t.Helper()
	ps := make([]*proc, n)
	for i := range ps {
		ps[i] = startAltair(t, cfg, "REDIS_ADDR="+addr)
	}
	for _, p := range ps {
		waitFor(t, 3*time.Second, "shared state on "+p.addr, func() bool { return shared(t, p) })
	}
	return ps
}

// status sends GET url and returns its status, or 0 on a transport error.
func status(c *http.Client, url string) int {
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestE2ERedisGlobalLimitAndLists(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := backend(t, "b")
	cfg := header("", "  rate_limit: { requests_per_second: 20, burst: 20 }\n  ddos: { disabled: true }\n") + fmt.Sprintf(`
admin:
  token: %s
redis:
  timeout: 250ms # so a loaded test machine does not mark Redis down by accident
routes:
  - name: r
    backends: [ { url: %q } ]
`, adminToken, b.URL)
	ps := replicas(t, 3, cfg, srv.Addr)

	// One client (127.0.0.1) sends as fast as it can to all three for a
	// second: together they allow burst + rate × time, not three times that.
	var allowed, other atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			c := &http.Client{}
			for time.Since(start) < time.Second {
				switch status(c, p.url("/x")) {
				case 200:
					allowed.Add(1)
				case 429:
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	limit := 20 + 20*elapsed
	t.Logf("3 gateways, %.2fs: %d allowed (one global limit: %.0f; three local ones would allow %.0f)", elapsed, allowed.Load(), limit, 3*limit)
	if other.Load() > 0 {
		t.Fatalf("%d answers were neither 200 nor 429", other.Load())
	}
	if got := float64(allowed.Load()); got > limit+3 || got < limit-5 {
		t.Fatalf("allowed %v requests in %.2fs across 3 gateways, want about %.0f (burst 20 + 20/s)", got, elapsed, limit)
	}

	// A deny entry posted to one applies on the others within a second.
	bearer := "Bearer " + adminToken
	if code, body, _ := do(t, "POST", ps[0].url("/admin/blacklist?ip=127.0.0.1"), "Authorization", bearer); code != 200 {
		t.Fatalf("POST blacklist = %d %q", code, body)
	}
	posted := time.Now()
	for _, p := range ps[1:] {
		waitFor(t, time.Second, "the deny entry on "+p.addr, func() bool { return status(http.DefaultClient, p.url("/x")) == 403 })
	}
	t.Logf("deny entry applied on both other gateways %v after the POST returned", time.Since(posted))
}

func TestE2ERedisOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := backend(t, "b")
	cfg := header("", "  rate_limit: { requests_per_second: 100000, burst: 100000 }\n  ddos: { disabled: true }\n") + fmt.Sprintf(`
admin:
  token: %s
redis:
  timeout: 250ms # so a loaded test machine does not mark Redis down by accident
routes:
  - name: limited
    match: { prefix: /limited }
    rate_limit: { requests_per_second: 0.5, burst: 5 }
    backends: [ { url: %[2]q } ]
  - name: r
    backends: [ { url: %[2]q } ]
`, adminToken, b.URL)
	ps := replicas(t, 3, cfg, srv.Addr)

	// Traffic on every gateway while Redis is killed and restarted.
	outageUnderTraffic(t, srv, ps, func(c *http.Client, p *proc, _, _ int) (int, string) {
		return status(c, p.url("/x")), "/x"
	})

	// Shared limits resume: 15 requests over three gateways, one bucket of 5.
	allowed := 0
	for i := range 15 {
		if status(http.DefaultClient, ps[i%3].url("/limited")) == 200 {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("after the restart, 15 requests across 3 gateways on a burst of 5: %d allowed, want 5", allowed)
	}
	// List changes made after the restart propagate: a client on 127.0.0.2
	// is denied on one gateway (by an admin on 127.0.0.1) and allowed again
	// on another.
	other := clientFrom(t, "127.0.0.2")
	bearer := "Bearer " + adminToken
	if code, body, _ := do(t, "POST", ps[2].url("/admin/blacklist?ip=127.0.0.2"), "Authorization", bearer); code != 200 {
		t.Fatalf("POST blacklist = %d %q", code, body)
	}
	for _, p := range ps[:2] {
		waitFor(t, time.Second, "the deny entry on "+p.addr, func() bool { return status(other, p.url("/x")) == 403 })
	}
	if code, body, _ := do(t, "DELETE", ps[0].url("/admin/blacklist?ip=127.0.0.2"), "Authorization", bearer); code != 200 {
		t.Fatalf("DELETE blacklist on another gateway = %d %q", code, body)
	}
	for _, p := range ps {
		waitFor(t, time.Second, "the removal on "+p.addr, func() bool { return status(other, p.url("/x")) == 200 })
	}
}

// outageUnderTraffic sends requests through every gateway of ps (request
// makes gateway pi's i-th one and returns its status and a word for the
// failure message) while srv is killed, every gateway falls back to local
// state, srv restarts and every gateway shares again. Every request must
// answer 200, and each gateway must say once that Redis is unreachable and
// that it is back.
func outageUnderTraffic(t *testing.T, srv *redistest.Server, ps []*proc, request func(c *http.Client, p *proc, pi, i int) (int, string)) {
	t.Helper()
	var stop atomic.Bool
	var mu sync.Mutex
	var failures []string
	var requests, slowest atomic.Int64
	var wg sync.WaitGroup
	for pi, p := range ps {
		wg.Go(func() {
			c := &http.Client{Timeout: 5 * time.Second}
			for i := 0; !stop.Load(); i++ {
				t0 := time.Now()
				code, what := request(c, p, pi, i)
				d := time.Since(t0)
				requests.Add(1)
				if int64(d) > slowest.Load() {
					slowest.Store(int64(d))
				}
				if code != 200 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s %s: %d", p.addr, what, code))
					mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	srv.Kill()
	for _, p := range ps {
		waitFor(t, 3*time.Second, "fallback on "+p.addr, func() bool { return !shared(t, p) })
	}
	time.Sleep(200 * time.Millisecond)
	srv.Restart()
	restarted := time.Now()
	for _, p := range ps {
		waitFor(t, 3*time.Second, "shared state again on "+p.addr, func() bool { return shared(t, p) })
	}
	t.Logf("all %d share again %v after Redis restarted", len(ps), time.Since(restarted))
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed across the outage: %v", len(failures), requests.Load(), failures[:min(len(failures), 10)])
	}
	t.Logf("%d requests across the outage, all 200; slowest %v", requests.Load(), time.Duration(slowest.Load()))
	for _, p := range ps {
		logs := p.logs.String()
		if n := strings.Count(logs, "redis unreachable"); n != 1 || !strings.Contains(logs, "redis back") {
			t.Fatalf("%s logged 'redis unreachable' %d times and 'redis back' %v, want once each:\n%s", p.addr, n, strings.Contains(logs, "redis back"), logs)
		}
	}
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip, so the gateways see it as another client.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}
