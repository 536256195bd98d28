package edge

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/altair-gateway/altair/internal/testclock"
)

func TestMain(m *testing.M) {
	// go-redis probes a pool whose dials all failed from a goroutine that
	// sleeps a second between tries and ends after its pool closes.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

// fakeClock is a settable clock for time-driven logic.
type fakeClock = testclock.Clock

// newFakeClock starts at a minute boundary, so DDoS windows are predictable.
func newFakeClock() *fakeClock {
	return testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
