// Package testclock is a manually advanced clock for tests of time-driven
// logic (rate limits, breakers, caches, blocks): pass its Now where the code
// takes a func() time.Time.
package testclock

import (
	"sync/atomic"
	"time"
)

// Clock is a clock that moves only when told to. It is safe for concurrent
// use.
type Clock struct{ ns atomic.Int64 }

// New returns a Clock reading start.
func New(start time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(start.UnixNano())
	return c
}

// Now returns the clock's time, in UTC.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
