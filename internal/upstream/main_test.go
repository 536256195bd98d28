package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/testclock"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is an injectable clock for breaker, outlier and budget logic.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock { return testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) }

// testUpstream returns a fully defaulted pool config (as the config package would
// produce) with round-robin balancing, active checks off and fast retries.
func testUpstream(urls ...string) config.Upstream {
	u := config.Upstream{UpstreamSettings: config.UpstreamSettings{
		LoadBalancing:  AlgorithmRoundRobin,
		PanicThreshold: 0.5,
		HealthCheck: config.HealthCheck{
			Disabled: true, Type: "http", Path: "/health",
			Interval: 10 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3,
		},
		PassiveHealth:  config.PassiveHealth{ConsecutiveFailures: 5, EjectionTime: 30 * time.Second, MaxEjectedShare: 0.5},
		CircuitBreaker: config.CircuitBreaker{MaxFailures: 5, Timeout: 30 * time.Second, MinRequests: 5},
		Retry: config.Retry{
			Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
			Budget: 0.2, MaxBodyBytes: 65536, OnStatus: []int{502, 503, 504},
		},
		Transport: config.Transport{MaxIdleConns: 100, IdleConnTimeout: 90 * time.Second, DialTimeout: 2 * time.Second},
	}}
	for _, s := range urls {
		u.Backends = append(u.Backends, config.Backend{URL: s, Weight: 1})
	}
	return u
}

// newTestPool builds a pool that is closed when the test ends.
func newTestPool(t testing.TB, cfg config.Upstream, opts ...func(*Options)) *Pool {
	t.Helper()
	o := Options{Name: "test", Config: cfg, Registry: NewRegistry()}
	for _, f := range opts {
		f(&o)
	}
	p, err := NewPool(o)
	if err != nil {
		t.Fatalf("NewPool() error = %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func withClock(c *fakeClock) func(*Options) { return func(o *Options) { o.Now = c.Now } }

// fakeURLs returns n backend URLs that are never dialled.
func fakeURLs(n int) []string {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = "http://backend-" + strconv.Itoa(i) + ".test:8080"
	}
	return urls
}

// newBackend starts an httptest backend that is closed when the test ends.
func newBackend(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// okBackend answers 200 with its name as the body.
func okBackend(t testing.TB, name string) *httptest.Server {
	return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, name)
	})
}

// deadURL returns the URL of a loopback port that was bound and closed, so
// connecting to it is refused.
func deadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

// newFront serves h on a real listener and returns its URL and a client whose
// idle connections are closed when the test ends.
func newFront(t testing.TB, h http.Handler) (string, *http.Client) {
	t.Helper()
	s := httptest.NewServer(h)
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		s.Close()
	})
	return s.URL, c
}

// serve runs one request through h in-process.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxWithTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func withAlgorithm(c config.Upstream, algorithm string) config.Upstream {
	c.LoadBalancing = algorithm
	return c
}

// manualTimers replaces a pool's time.AfterFunc so that a test fires the route
// and per-try timeouts itself, exactly when it wants, instead of sleeping past
// them.
type manualTimers struct {
	mu     sync.Mutex
	timers []*manualTimer
}

type manualTimer struct {
	d      time.Duration
	f      func()
	mu     sync.Mutex
	active bool
}

// withManualTimers makes p use timers fired by hand. Call it before p serves.
func withManualTimers(p *Pool) *manualTimers {
	m := &manualTimers{}
	p.afterFunc = m.afterFunc
	return m
}

func (m *manualTimers) afterFunc(d time.Duration, f func()) stopper {
	t := &manualTimer{d: d, f: f, active: true}
	m.mu.Lock()
	m.timers = append(m.timers, t)
	m.mu.Unlock()
	return t
}

// Stop reports whether it stopped t before it fired, as time.Timer.Stop does.
func (t *manualTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

// fire expires every timer started so far, as if all their durations had
// elapsed, and returns their durations and how many were still running (and so
// ran their function).
func (m *manualTimers) fire() (started []time.Duration, fired int) {
	m.mu.Lock()
	timers := append([]*manualTimer(nil), m.timers...)
	m.mu.Unlock()
	for _, t := range timers {
		started = append(started, t.d)
		t.mu.Lock()
		run := t.active
		t.active = false
		t.mu.Unlock()
		if run {
			fired++
			t.f()
		}
	}
	return started, fired
}
