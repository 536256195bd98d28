package main

// End-to-end: gateways sharing state through a Sentinel-watched,
// password-protected Redis, configured through the environment only, and
// one with the wrong password that serves on its own.

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/cluster/redistest"
)

func TestE2ERedisSentinelWithPassword(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-pw"
	st := redistest.StartSentinel(t, redistest.SentinelOptions{Password: secret})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String() // a Sentinel that is down, listed first
	ln.Close()
	b := backend(t, "b")
	// The Redis timeout is above the default so that a machine loaded by
	// parallel tests does not mark Redis down by accident.
	cfg := header("", "  rate_limit: { requests_per_second: 100000, burst: 100000 }\n  ddos: { disabled: true }\n") + fmt.Sprintf(`
redis:
  timeout: 250ms
routes:
  - name: limited
    rate_limit: { requests_per_second: 0.5, burst: 5 }
    backends: [ { url: %q } ]
`, b.URL)
	env := []string{"REDIS_ADDR=" + dead + "," + st.Addrs()[0], "REDIS_MASTER_NAME=" + redistest.MasterName}
	ps := []*proc{
		startAltair(t, cfg, append(env, "REDIS_PASSWORD="+secret)...),
		startAltair(t, cfg, append(env, "REDIS_PASSWORD="+secret)...),
	}
	for _, p := range ps {
		waitFor(t, 3*time.Second, "shared state on "+p.addr, func() bool { return shared(t, p) })
		if l := p.logs.String(); !strings.Contains(l, "mode=sentinel") && !strings.Contains(l, `"mode":"sentinel"`) {
			t.Fatalf("%s does not log that it connected in Sentinel mode:\n%s", p.addr, l)
		}
	}
	// One limit over both: 12 requests, burst 5.
	allowed := 0
	for i := range 12 {
		if status(http.DefaultClient, ps[i%2].url("/x")) == 200 {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("12 requests over two gateways on a burst of 5: %d allowed, want 5", allowed)
	}

	// The wrong password: it says why, and serves with local state.
	lone := startAltair(t, cfg, append(env, "REDIS_PASSWORD=not-"+secret)...)
	waitFor(t, 3*time.Second, "the Redis error logged", func() bool { return strings.Contains(lone.logs.String(), "WRONGPASS") })
	if shared(t, lone) {
		t.Fatal("the gateway with the wrong password says it shares state")
	}
	if code := status(http.DefaultClient, lone.url("/x")); code != 200 {
		t.Fatalf("GET on the gateway with the wrong password = %d, want 200 from its local limiter", code)
	}
	for _, p := range append(ps, lone) {
		if strings.Contains(p.logs.String(), secret) {
			t.Fatalf("%s logs the password:\n%s", p.addr, p.logs)
		}
	}
}
