package edge

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// go-redis probes a pool whose dials all failed from a goroutine that
	// sleeps a second between tries and ends after its pool closes.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

// fakeClock is a settable clock for time-driven logic.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// newFakeClock starts at a minute boundary, so DDoS windows are predictable.
func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
