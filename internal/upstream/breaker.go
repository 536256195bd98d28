package upstream

import (
	"sync/atomic"
	"time"
)

// breakerState is the state of a circuit breaker.
type breakerState uint64

const (
	stateClosed   breakerState = iota // requests flow; consecutive failures are counted
	stateOpen                         // requests are refused until the timeout has passed
	stateHalfOpen                     // one probe request is in flight
)

// String returns the name used in Status and in logs.
func (s breakerState) String() string {
	switch s {
	case stateClosed:
		return "closed"
	case stateOpen:
		return "open"
	case stateHalfOpen:
		return "half-open"
	}
	return "unknown"
}

// breakerConfig is a pool's breaker settings, in the units the state machine uses.
type breakerConfig struct {
	disabled    bool
	maxFailures int64
	minRequests int64
	timeout     int64 // nanoseconds
}

// transition describes a state change, for logging; zero when nothing changed.
type transition struct {
	from, to breakerState
	changed  bool
}

// breaker is a per-backend circuit breaker:
//
//	closed --(maxFailures consecutive failures, >= minRequests since closed)--> open
//	open --(timeout elapsed; the next request becomes the probe)--> half-open
//	half-open --(probe succeeds)--> closed
//	half-open --(probe fails)--> open
//
// The state and the time it was entered are packed into one word so that every
// transition is a single compare-and-swap; nothing locks. In half-open exactly one
// probe is admitted; if it has not reported after another timeout (a hung request)
// a new probe is admitted in its place.
type breaker struct {
	word     atomic.Uint64 // since<<2 | state; since is Unix nanoseconds
	failures atomic.Int64  // consecutive failures while closed
	requests atomic.Int64  // requests seen since last closed
}

func packBreaker(s breakerState, since int64) uint64 { return uint64(since)<<2 | uint64(s) }

func unpackBreaker(w uint64) (breakerState, int64) {
	return breakerState(w & 3), int64(w >> 2)
}

// state returns the breaker's state as reported to operators at now: an open
// breaker whose timeout has passed reports half-open, because the next request
// will be let through as a probe.
func (b *breaker) state(c breakerConfig, now int64) breakerState {
	if c.disabled {
		return stateClosed
	}
	s, since := unpackBreaker(b.word.Load())
	if s == stateOpen && now-since >= c.timeout {
		return stateHalfOpen
	}
	return s
}

// usable reports, without side effects, whether allow could admit a request at
// now. Balancers use it to filter candidates.
func (b *breaker) usable(c breakerConfig, now int64) bool {
	if c.disabled {
		return true
	}
	s, since := unpackBreaker(b.word.Load())
	return s == stateClosed || now-since >= c.timeout
}

// allow admits a request at now. probe reports that the request is the half-open
// probe, whose outcome must be passed to record (or release) with probe set.
func (b *breaker) allow(c breakerConfig, now int64) (ok, probe bool, t transition) {
	if c.disabled {
		return true, false, transition{}
	}
	w := b.word.Load()
	s, since := unpackBreaker(w)
	switch {
	case s == stateClosed:
		return true, false, transition{}
	case now-since < c.timeout:
		return false, false, transition{}
	case b.word.CompareAndSwap(w, packBreaker(stateHalfOpen, now)):
		// Open with the timeout elapsed, or half-open with a probe that hung for a
		// whole timeout: this request is the (new) probe.
		return true, true, transition{from: s, to: stateHalfOpen, changed: s != stateHalfOpen}
	default:
		return false, false, transition{} // another request won the probe
	}
}

// record reports the outcome of a request admitted by allow.
func (b *breaker) record(c breakerConfig, now int64, probe, failed bool) transition {
	if c.disabled {
		return transition{}
	}
	w := b.word.Load()
	s, _ := unpackBreaker(w)
	if probe {
		if s != stateHalfOpen {
			return transition{}
		}
		if failed {
			if b.word.CompareAndSwap(w, packBreaker(stateOpen, now)) {
				return transition{from: stateHalfOpen, to: stateOpen, changed: true}
			}
			return transition{}
		}
		b.failures.Store(0)
		b.requests.Store(0)
		if b.word.CompareAndSwap(w, packBreaker(stateClosed, now)) {
			return transition{from: stateHalfOpen, to: stateClosed, changed: true}
		}
		return transition{}
	}
	if s != stateClosed {
		return transition{} // a request admitted before the breaker opened
	}
	n := b.requests.Add(1)
	if !failed {
		b.failures.Store(0)
		return transition{}
	}
	if b.failures.Add(1) >= c.maxFailures && n >= c.minRequests &&
		b.word.CompareAndSwap(w, packBreaker(stateOpen, now)) {
		return transition{from: stateClosed, to: stateOpen, changed: true}
	}
	return transition{}
}

// release gives back a probe whose outcome is unknown (the client went away):
// the breaker returns to open with its timeout already elapsed, so the next
// request probes at once.
func (b *breaker) release(c breakerConfig, now int64) {
	if c.disabled {
		return
	}
	w := b.word.Load()
	if s, _ := unpackBreaker(w); s == stateHalfOpen {
		b.word.CompareAndSwap(w, packBreaker(stateOpen, max(0, now-c.timeout)))
	}
}

// newBreakerConfig converts a pool's settings.
func newBreakerConfig(disabled bool, maxFailures, minRequests int, timeout time.Duration) breakerConfig {
	if maxFailures < 1 {
		maxFailures = 1
	}
	return breakerConfig{
		disabled:    disabled,
		maxFailures: int64(maxFailures),
		minRequests: int64(minRequests),
		timeout:     int64(timeout),
	}
}
