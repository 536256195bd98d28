package upstream

import (
	"testing"
	"time"
)

func TestOutlierEjection(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	cfg := testUpstream(fakeURLs(4)...)
	cfg.PassiveHealth.ConsecutiveFailures = 2
	cfg.PassiveHealth.EjectionTime = 10 * time.Second
	cfg.PassiveHealth.MaxEjectedShare = 0.5 // 2 of 4
	cfg.CircuitBreaker.Disabled = true
	p := newTestPool(t, cfg, withClock(clock))
	fail := func(i int) { p.record(p.backends[i], false, outcomeFailure, p.now().UnixNano()) }
	ok := func(i int) { p.record(p.backends[i], false, outcomeSuccess, p.now().UnixNano()) }
	ejected := func() []bool {
		var e []bool
		for _, b := range p.Status().Backends {
			e = append(e, b.Ejected)
		}
		return e
	}
	check := func(step string, want ...bool) {
		t.Helper()
		got := ejected()
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: ejected = %v, want %v", step, got, want)
			}
		}
	}

	fail(0)
	ok(0)
	fail(0)
	check("a success resets the count", false, false, false, false)
	fail(0)
	check("two consecutive failures eject", true, false, false, false)
	fail(1)
	fail(1)
	check("second ejection within the cap", true, true, false, false)
	fail(2)
	fail(2)
	fail(2)
	check("cap of half the pool holds", true, true, false, false)
	if st := p.Status(); st.Healthy != 2 || st.Panic {
		t.Errorf("Status() = healthy %d panic %v, want 2 false", st.Healthy, st.Panic)
	}
	clock.Advance(10 * time.Second)
	check("ejection time over", false, false, false, false)
	fail(2)
	check("over-threshold backend ejected once there is room", false, false, true, false)
}

func TestOutlierCapAllowsOne(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		members int
		share   float64
		want    int
	}{
		{"tiny share still ejects one", 4, 0.1, 1},
		{"single backend may be ejected", 1, 0.5, 1},
		{"share of ten", 10, 0.3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			cfg := testUpstream(fakeURLs(tt.members)...)
			cfg.PassiveHealth.ConsecutiveFailures = 1
			cfg.PassiveHealth.MaxEjectedShare = tt.share
			p := newTestPool(t, cfg, withClock(clock))
			for _, b := range p.backends {
				p.record(b, false, outcomeFailure, p.now().UnixNano())
			}
			got := 0
			for _, b := range p.Status().Backends {
				if b.Ejected {
					got++
				}
			}
			if got != tt.want {
				t.Errorf("ejected(%d backends, share %v) = %d, want %d", tt.members, tt.share, got, tt.want)
			}
		})
	}
}

func TestOutlierDisabled(t *testing.T) {
	t.Parallel()
	cfg := testUpstream(fakeURLs(2)...)
	cfg.PassiveHealth.Disabled = true
	cfg.PassiveHealth.ConsecutiveFailures = 1
	p := newTestPool(t, cfg)
	for range 10 {
		p.record(p.backends[0], false, outcomeFailure, p.now().UnixNano())
	}
	if p.Status().Backends[0].Ejected {
		t.Error("Status() ejected = true with passive health disabled, want false")
	}
}
