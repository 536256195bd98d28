package cache

import (
	"net/http"
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

// t0 is the fake clock's start, on a whole second as HTTP dates are.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a manually advanced clock.
type fakeClock = testclock.Clock

func newClock() *fakeClock { return testclock.New(t0) }

// httpDate formats t as an HTTP date.
func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }
