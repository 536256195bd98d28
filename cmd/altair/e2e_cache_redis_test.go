package main

// End-to-end tests of the response cache shared through Redis: two altair
// processes against one real redis-server.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/cluster/redistest"
)

// cacheHost is the Host of every request in these tests: the cache key
// holds the host, and each process listens on its own port.
const cacheHost = "api.test"

// countingOrigin answers every request with Cache-Control: public,
// max-age=60 and counts them.
func countingOrigin(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		w.Header().Set("Cache-Control", "public, max-age=60")
		fmt.Fprintf(w, "%s %s #%d", r.Method, r.URL.Path, i)
	})
	return s, &n
}

// cacheCfg is a config with one caching route in front of origin, for
// processes sharing state through Redis (REDIS_ADDR). The Redis timeout is
// above the default so that a machine loaded by parallel tests does not
// mark Redis down by accident.
func cacheCfg(origin string) string {
	return header("", "") + fmt.Sprintf(`
redis:
  timeout: 250ms
routes:
  - name: c
    cache: { enabled: true }
    backends: [ { url: %q } ]
`, origin)
}

// send sends method path to p with Host cacheHost and returns the status and
// X-Cache; status 0 is a transport error.
func send(c *http.Client, p *proc, method, path string) (int, string) {
	req, err := http.NewRequest(method, p.url(path), nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Host = cacheHost
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Cache")
}

// xcache sends method path to p, fails the test unless it is answered 200,
// and returns X-Cache.
func xcache(t *testing.T, p *proc, method, path string) string {
	t.Helper()
	code, x := send(http.DefaultClient, p, method, path)
	if code != 200 {
		t.Fatalf("%s %s on %s = %d (%s), want 200", method, path, p.addr, code, x)
	}
	return x
}

func TestE2ECacheSharedThroughRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	origin, n := countingOrigin(t)
	ps := replicas(t, 2, cacheCfg(origin.URL), srv.Addr)

	// A fill through one is a hit through the other.
	if got := xcache(t, ps[0], "GET", "/item"); got != "MISS" {
		t.Fatalf("GET /item through process 1: X-Cache %s, want MISS", got)
	}
	if got := xcache(t, ps[1], "GET", "/item"); got != "HIT" || n.Load() != 1 {
		t.Fatalf("GET /item through process 2: X-Cache %s with %d origin requests, want HIT and 1", got, n.Load())
	}
	// A POST through process 2 invalidates; process 1 misses within a
	// second (until the announcement arrives, it may serve its copy).
	if got := xcache(t, ps[1], "POST", "/item"); got != "BYPASS" {
		t.Fatalf("POST /item through process 2: X-Cache %s, want BYPASS", got)
	}
	posted := time.Now()
	var got string
	waitFor(t, time.Second, "process 1 to miss after the POST", func() bool {
		got = xcache(t, ps[0], "GET", "/item")
		return got != "HIT"
	})
	t.Logf("process 1 missed %v after the POST through process 2 returned", time.Since(posted))
	if got != "MISS" || n.Load() != 3 {
		t.Fatalf("GET /item through process 1 after the POST: X-Cache %s with %d origin requests, want MISS and 3", got, n.Load())
	}
	if got := xcache(t, ps[1], "GET", "/item"); got != "HIT" || n.Load() != 3 {
		t.Fatalf("GET /item through process 2 after process 1's refill: X-Cache %s with %d origin requests, want HIT and 3", got, n.Load())
	}
}

func TestE2ECacheRedisOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	origin, n := countingOrigin(t)
	ps := replicas(t, 2, cacheCfg(origin.URL), srv.Addr)
	for i := range 4 {
		xcache(t, ps[0], "GET", fmt.Sprintf("/hot/%d", i))
	}

	// Traffic through both processes while Redis is killed and restarted:
	// hot URLs (from memory, or Redis while it is there) and new ones (the
	// origin).
	outageUnderTraffic(t, srv, ps, func(c *http.Client, p *proc, pi, i int) (int, string) {
		path := fmt.Sprintf("/hot/%d", i%4)
		if i%5 == 4 {
			path = fmt.Sprintf("/new/%d/%d", pi, i)
		}
		code, x := send(c, p, "GET", path)
		return code, path + " " + x
	})

	// Sharing resumes: a fill through one is a hit through the other.
	before := n.Load()
	if got := xcache(t, ps[1], "GET", "/after"); got != "MISS" {
		t.Fatalf("GET /after through process 2: X-Cache %s, want MISS", got)
	}
	if got := xcache(t, ps[0], "GET", "/after"); got != "HIT" || n.Load() != before+1 {
		t.Fatalf("GET /after through process 1: X-Cache %s with %d new origin requests, want HIT and 1", got, n.Load()-before)
	}
}
