package upstream

import (
	"strings"
	"testing"
	"time"
)

// TestBreaker drives the state machine with a fake clock. Each step is an
// operation followed by the state the breaker must then report:
//
//	ok, fail         outcome of a non-probe request
//	allow, deny      allow() must admit (and, if half-open, make this the probe) / refuse
//	probe-ok/-fail   outcome of the probe admitted by the last allow
//	release          the probe's client went away
//	wait D           advance the clock by D
func TestBreaker(t *testing.T) {
	t.Parallel()
	enabled := newBreakerConfig(false, 3, 5, 10*time.Second)
	tests := []struct {
		name  string
		cfg   breakerConfig
		steps []string
	}{
		{
			name: "opens after max consecutive failures once min requests seen",
			cfg:  enabled,
			steps: []string{
				"ok=closed", "ok=closed", "fail=closed", "fail=closed", "fail=open", "deny=open",
			},
		},
		{
			name: "min requests holds it closed",
			cfg:  enabled,
			steps: []string{
				"fail=closed", "fail=closed", "fail=closed", "fail=closed", "fail=open",
			},
		},
		{
			name: "success resets consecutive failures",
			cfg:  enabled,
			steps: []string{
				"ok=closed", "ok=closed", "fail=closed", "fail=closed", "ok=closed",
				"fail=closed", "fail=closed", "fail=open",
			},
		},
		{
			name: "open until timeout then one probe; success closes",
			cfg:  enabled,
			steps: []string{
				"ok=closed", "ok=closed", "fail=closed", "fail=closed", "fail=open",
				"wait 9s=open", "deny=open", "wait 1s=half-open",
				"allow=half-open", "deny=half-open", "deny=half-open",
				"probe-ok=closed", "allow=closed", "allow=closed",
			},
		},
		{
			name: "probe failure reopens for another timeout",
			cfg:  enabled,
			steps: []string{
				"fail=closed", "fail=closed", "fail=closed", "fail=closed", "fail=open",
				"wait 10s=half-open", "allow=half-open", "probe-fail=open",
				"deny=open", "wait 9s=open", "deny=open", "wait 1s=half-open", "allow=half-open",
			},
		},
		{
			name: "released probe lets the next request probe at once",
			cfg:  enabled,
			steps: []string{
				"fail=closed", "fail=closed", "fail=closed", "fail=closed", "fail=open",
				"wait 10s=half-open", "allow=half-open", "deny=half-open",
				"release=half-open", "allow=half-open", "probe-ok=closed",
			},
		},
		{
			name: "hung probe is replaced after a timeout",
			cfg:  enabled,
			steps: []string{
				"fail=closed", "fail=closed", "fail=closed", "fail=closed", "fail=open",
				"wait 10s=half-open", "allow=half-open", "wait 5s=half-open", "deny=half-open",
				"wait 5s=half-open", "allow=half-open", "probe-ok=closed",
			},
		},
		{
			name: "late outcomes of requests admitted while closed are ignored",
			cfg:  enabled,
			steps: []string{
				"fail=closed", "fail=closed", "fail=closed", "fail=closed", "fail=open",
				"ok=open", "ok=open", "fail=open", "wait 10s=half-open", "ok=half-open",
			},
		},
		{
			name: "closing resets the request volume",
			cfg:  enabled,
			steps: []string{
				"fail=closed", "fail=closed", "fail=closed", "fail=closed", "fail=open",
				"wait 10s=half-open", "allow=half-open", "probe-ok=closed",
				"fail=closed", "fail=closed", "fail=closed", "fail=closed", "fail=open",
			},
		},
		{
			name: "min requests below max failures opens at max failures",
			cfg:  newBreakerConfig(false, 2, 0, time.Second),
			steps: []string{
				"fail=closed", "fail=open",
			},
		},
		{
			name: "disabled never opens",
			cfg:  newBreakerConfig(true, 1, 0, time.Second),
			steps: []string{
				"fail=closed", "fail=closed", "fail=closed", "allow=closed",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b breaker
			clock := newFakeClock()
			now := func() int64 { return clock.Now().UnixNano() }
			for i, s := range tt.steps {
				op, want, _ := strings.Cut(s, "=")
				switch {
				case op == "ok" || op == "fail":
					b.record(tt.cfg, now(), false, op == "fail")
				case op == "probe-ok" || op == "probe-fail":
					b.record(tt.cfg, now(), true, op == "probe-fail")
				case op == "allow" || op == "deny":
					if ok, _, _ := b.allow(tt.cfg, now()); ok != (op == "allow") {
						t.Fatalf("step %d %q: allow() = %v, want %v", i, s, ok, op == "allow")
					}
				case op == "release":
					b.release(tt.cfg, now())
				case strings.HasPrefix(op, "wait "):
					d, err := time.ParseDuration(strings.TrimPrefix(op, "wait "))
					if err != nil {
						t.Fatal(err)
					}
					clock.Advance(d)
				default:
					t.Fatalf("bad step %q", s)
				}
				if got := b.state(tt.cfg, now()).String(); got != want {
					t.Fatalf("step %d %q: state() = %s, want %s", i, s, got, want)
				}
			}
		})
	}
}

// TestBreakerSingleProbe checks that of many concurrent requests on a breaker
// whose timeout has elapsed exactly one is admitted.
func TestBreakerSingleProbe(t *testing.T) {
	t.Parallel()
	cfg := newBreakerConfig(false, 1, 0, time.Second)
	var b breaker
	now := time.Now().UnixNano()
	b.record(cfg, now, false, true)
	now += int64(time.Second)
	admitted := make(chan bool, 64)
	start := make(chan struct{})
	for range 64 {
		go func() {
			<-start
			ok, probe, _ := b.allow(cfg, now)
			admitted <- ok && probe
		}()
	}
	close(start)
	n := 0
	for range 64 {
		if <-admitted {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("allow() admitted %d probes, want 1", n)
	}
}

// TestBreakerTransitionsReported checks the transitions returned for logging.
func TestBreakerTransitionsReported(t *testing.T) {
	t.Parallel()
	cfg := newBreakerConfig(false, 1, 0, time.Second)
	var b breaker
	now := time.Now().UnixNano()
	want := []transition{
		{from: stateClosed, to: stateOpen, changed: true},
		{from: stateOpen, to: stateHalfOpen, changed: true},
		{from: stateHalfOpen, to: stateClosed, changed: true},
	}
	var got []transition
	got = append(got, b.record(cfg, now, false, true))
	_, _, tr := b.allow(cfg, now+int64(time.Second))
	got = append(got, tr)
	got = append(got, b.record(cfg, now+int64(time.Second), true, false))
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("transition %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
