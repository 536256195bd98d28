package http1

import (
	"context"
	"net/textproto"
	"time"
)

// DirectControl is what Server.Direct gets for its request beside w and r.
// The connection serves it with state of its own, reused from request to
// request, where a handler would make contexts and timers for each.
type DirectControl interface {
	// Timeout ends the request's context with cause once d has passed,
	// unless Stop is called first; Stop reports false when it has fired.
	// A request has one at most; it ends with the request.
	Timeout(d time.Duration, cause error) interface{ Stop() bool }
	// On1xx has f receive the informational (1xx) answers that upstream
	// requests made under exactly the request's context get, through
	// interrupt.Bind and interrupt.Informational (a caller may pass f on
	// to a context it derives for the same request, as the upstream pool
	// does under a per-try timeout).
	On1xx(f func(code int, header textproto.MIMEHeader) error)
	// RawHeader has every head of the request's response carry lines
	// (complete header lines, each ending in CRLF) before the header map's
	// fields: for fixed headers, written without a map entry each. The
	// caller must not change lines.
	RawHeader(lines []byte)
}

// directState is the per-connection state behind DirectControl and
// interrupt.Watcher; c.watchMu guards it.
type directState struct {
	// dctx is the context of the request Direct is serving, the only one
	// Watch takes; interruptFn is the function registered for it.
	dctx        context.Context
	interruptFn func()
	// stopInterrupt is c.unwatch, made once.
	stopInterrupt func() bool

	// The request timeout. Its timer is reused and left running when a
	// request ends: the next request's timeout, never earlier than the
	// pending run, needs no reset, and a run finding its request's
	// timeout not yet due sets the timer again for the rest.
	timer    *time.Timer
	timerAt  time.Time // when the timer's pending run is due; zero when none is pending
	armed    bool      // the timeout is set and has neither fired nor been stopped
	deadline time.Time // when it is due
	cause    error

	on1xx func(int, textproto.MIMEHeader) error
}

// Watch implements interrupt.Watcher for the context of the request Direct
// is serving (the connection's lane context, the same object from one
// answered request to the next: what a request registers must not outlive
// it, which Direct's contract of keeping nothing ensures): the connection runs f where it ends that context (the client
// went away, the connection's context ended, the timeout fired), or when
// the request ends with f still registered. There is one registration at a
// time, and its stop must be called before the request ends (the h1
// transport stops it when the exchange or its body ends): stop clears
// whatever is registered then.
func (c *conn) Watch(ctx context.Context, f func()) (func() bool, func(int, textproto.MIMEHeader) error, bool) {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.dctx == nil || ctx != c.dctx || c.interruptFn != nil {
		return nil, nil, false
	}
	if ctx.Err() != nil {
		go f() // as context.AfterFunc does for a context that has ended
		return stopped, c.on1xx, true
	}
	c.interruptFn = f
	return c.stopInterrupt, c.on1xx, true
}

func stopped() bool { return false }

// unwatch is the stop function Watch returns.
func (c *conn) unwatch() bool {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.interruptFn == nil {
		return false
	}
	c.interruptFn = nil
	return true
}

// cancelLocked ends the running request's context with cause, and runs
// what Watch registered for it. c.watchMu is held while that runs, so that
// a stop racing with it either wins or reports false after it: what is
// registered must not call back into the connection (the h1 transport's
// expiring of a deadline does not).
func (c *conn) cancelLocked(cancel context.CancelCauseFunc, cause error) {
	cancel(cause)
	if f := c.interruptFn; f != nil {
		c.interruptFn = nil
		f()
	}
}

// Timeout implements DirectControl.
func (c *conn) Timeout(d time.Duration, cause error) interface{ Stop() bool } {
	deadline := time.Now().Add(d)
	c.watchMu.Lock()
	c.armed, c.deadline, c.cause = true, deadline, cause
	switch {
	case c.timer == nil:
		c.timerAt = deadline
		c.timer = time.AfterFunc(d, c.timeout)
	case c.timerAt.IsZero() || c.timerAt.After(deadline):
		c.timerAt = deadline
		c.timer.Reset(d)
	}
	c.watchMu.Unlock()
	return (*directTimeout)(c)
}

// timeout is the timer's function: it cancels the request if its timeout
// is set and due, sets the timer again if it is set but not yet due (the
// run was due for an earlier request), and otherwise lets the timer rest.
func (c *conn) timeout() {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if !c.armed {
		c.timerAt = time.Time{}
		return
	}
	if rest := time.Until(c.deadline); rest > 0 {
		c.timerAt = c.deadline
		c.timer.Reset(rest)
		return
	}
	c.timerAt = time.Time{}
	c.armed = false
	if c.reqCancel != nil {
		c.cancelLocked(c.reqCancel, c.cause)
	}
}

// directTimeout is the Stop of Timeout.
type directTimeout conn

// Stop disarms the timeout; the timer stays pending (see directState).
func (t *directTimeout) Stop() bool {
	c := (*conn)(t)
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if !c.armed {
		return false
	}
	c.armed = false
	return true
}

// RawHeader implements DirectControl.
func (c *conn) RawHeader(lines []byte) { c.directResp.raw = lines }

// On1xx implements DirectControl.
func (c *conn) On1xx(f func(code int, header textproto.MIMEHeader) error) {
	c.watchMu.Lock()
	c.on1xx = f
	c.watchMu.Unlock()
}

// Informational implements interrupt.Watcher: the hook On1xx set, for the
// context of the request Direct is serving only (a context derived from
// it, or detached, is other work's).
func (c *conn) Informational(ctx context.Context) func(code int, header textproto.MIMEHeader) error {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.dctx == nil || ctx != c.dctx {
		return nil
	}
	return c.on1xx
}
