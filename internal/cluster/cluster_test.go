package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/altair-gateway/altair/internal/cluster"
	"github.com/altair-gateway/altair/internal/cluster/redistest"
	"github.com/altair-gateway/altair/internal/config"
)

func TestMain(m *testing.M) {
	// go-redis probes a pool whose dials all failed from a goroutine that
	// sleeps a second between tries and ends after its pool closes.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newClient(t *testing.T, addr string, logs *logBuffer) *cluster.Client {
	t.Helper()
	var logger *slog.Logger
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	c, err := cluster.New(cluster.Options{
		Config:    config.Redis{Addrs: []string{addr}, Timeout: 50 * time.Millisecond, KeyPrefix: "test:"},
		Logger:    logger,
		PingEvery: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClientHealth(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	logs := &logBuffer{}
	c := newClient(t, srv.Addr, logs)
	var resyncs atomic.Int32
	c.OnResync(func(context.Context) { resyncs.Add(1) })
	c.Start(context.Background())
	if !c.Up() {
		t.Fatalf("Up() after Start with Redis running = false\n%s", logs)
	}
	waitFor(t, 2*time.Second, "resync at connect", func() bool { return resyncs.Load() > 0 })

	srv.Kill()
	waitFor(t, 2*time.Second, "down after the kill", func() bool { return !c.Up() })
	// Fail marks Redis down before it logs, so the line may follow by a moment.
	waitFor(t, 2*time.Second, "the 'redis unreachable' line", func() bool { return strings.Contains(logs.String(), "redis unreachable") })
	// More failures do not log again.
	c.Fail(cluster.OpRateLimit, errors.New("dial tcp: connection refused"))
	c.Fail(cluster.OpRateLimit, errors.New("dial tcp: connection refused"))
	if n := strings.Count(logs.String(), "redis unreachable"); n != 1 {
		t.Fatalf("log has %d 'redis unreachable' lines, want 1:\n%s", n, logs)
	}
	if st := c.Stats(); st.Up || st.Errors[cluster.OpRateLimit] != 2 || st.Errors[cluster.OpPing]+st.Errors[cluster.OpPubSub] == 0 {
		t.Fatalf("Stats() = %+v, want down, 2 ratelimit errors and ping or pubsub errors", st)
	}

	before := resyncs.Load()
	srv.Restart()
	waitFor(t, 2*time.Second, "up after the restart", c.Up)
	waitFor(t, 2*time.Second, "resync after the restart", func() bool { return resyncs.Load() > before })
	// The line may follow Up and the resync by a moment.
	waitFor(t, 2*time.Second, "the 'redis back' line", func() bool { return strings.Contains(logs.String(), "redis back") })
	if n := strings.Count(logs.String(), "redis back"); n != 1 {
		t.Fatalf("log has %d 'redis back' lines, want 1:\n%s", n, logs)
	}
}

func TestClientDownAtStart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	srv.Kill()
	logs := &logBuffer{}
	c := newClient(t, srv.Addr, logs)
	start := time.Now()
	c.Start(context.Background())
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Start with Redis down took %v, want it bounded", d)
	}
	if c.Up() {
		t.Fatal("Up() with Redis down = true")
	}
	if !strings.Contains(logs.String(), "redis unreachable") {
		t.Fatalf("log does not say Redis is unreachable:\n%s", logs)
	}
	srv.Restart()
	waitFor(t, 2*time.Second, "up once Redis starts", c.Up)
}

func TestClientPublish(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := newClient(t, srv.Addr, nil), newClient(t, srv.Addr, nil)
	type got struct {
		payload string
		own     bool
	}
	gotA, gotB := make(chan got, 4), make(chan got, 4)
	subA, subB := make(chan struct{}, 4), make(chan struct{}, 4)
	a.Handle("t", func(_ context.Context, m cluster.Message) { gotA <- got{m.Payload, m.Own} })
	b.Handle("t", func(_ context.Context, m cluster.Message) { gotB <- got{m.Payload, m.Own} })
	a.OnResync(func(context.Context) { subA <- struct{}{} })
	b.OnResync(func(context.Context) { subB <- struct{}{} })
	a.Start(context.Background())
	b.Start(context.Background())
	// A resync follows each subscription: wait for both subscriptions.
	for _, ch := range []chan struct{}{subA, subA, subB, subB} {
		select {
		case <-ch:
		case <-time.After(2 * time.Second):
			t.Fatal("no resync after subscribing")
		}
	}
	ctx, cancel := a.RequestContext()
	defer cancel()
	if err := a.Publish(ctx, "t", "hello world"); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		ch   chan got
		want got
	}{"a": {gotA, got{"hello world", true}}, "b": {gotB, got{"hello world", false}}} {
		select {
		case g := <-tt.ch:
			if g != tt.want {
				t.Errorf("client %s got %+v, want %+v", name, g, tt.want)
			}
		case <-time.After(time.Second):
			t.Errorf("client %s got nothing within a second", name)
		}
	}
}

func TestNewRejectsBadTLS(t *testing.T) {
	t.Parallel()
	_, err := cluster.New(cluster.Options{Config: config.Redis{Addrs: []string{"127.0.0.1:1"}, TLS: config.RedisTLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}}})
	if err == nil || !strings.Contains(err.Error(), "read redis CA file") {
		t.Fatalf("New with a missing CA file = %v, want an error naming it", err)
	}
}
