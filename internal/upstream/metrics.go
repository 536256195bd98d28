package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// Metrics receives a pool's per-backend events. The gateway implements it over
// Prometheus; this package depends on no metrics library.
type Metrics interface {
	// Backend returns the sink of one backend's events. NewPool calls it once
	// per backend, so an implementation resolves its label values then and
	// not per attempt. backend is the URL with any password redacted.
	Backend(pool, backend string) BackendMetrics
}

// BackendMetrics counts one backend's attempts and breaker trips. It must be
// safe for concurrent use and cheap: it is called on every attempt.
type BackendMetrics interface {
	// Attempt records one attempt: the time until its response headers (or
	// its failure), and why it failed ("" when it did not).
	Attempt(d time.Duration, failure ErrorKind)
	// BreakerOpened counts a trip of the backend's circuit breaker (closed or
	// half-open to open).
	BreakerOpened()
}

// ErrorKind classifies a failed attempt; the set is closed so that it can be a
// metric label.
type ErrorKind string

// The kinds of failed attempts.
const (
	// KindNone: the attempt did not fail.
	KindNone ErrorKind = ""
	// KindTimeout: the route or per-try timeout elapsed.
	KindTimeout ErrorKind = "timeout"
	// KindConnect: no connection could be made.
	KindConnect ErrorKind = "connect"
	// KindReset: the backend closed or reset the connection mid-exchange.
	KindReset ErrorKind = "reset"
	// KindOther: any other transport error.
	KindOther ErrorKind = "other"
	// KindStatus5xx: the backend answered with a 5xx status.
	KindStatus5xx ErrorKind = "status_5xx"
)

// ErrorKinds lists every failure kind (KindNone excluded), for metrics that
// want to expose all of them from the start.
func ErrorKinds() []ErrorKind {
	return []ErrorKind{KindTimeout, KindConnect, KindReset, KindOther, KindStatus5xx}
}

// kindOf classifies the result of one attempt under ctx.
func kindOf(ctx context.Context, status int, err error) ErrorKind {
	switch {
	case err == nil && status >= 500:
		return KindStatus5xx
	case err == nil:
		return KindNone
	}
	return errorKind(ctx, err)
}

// errorKind classifies a transport error. It is apart from kindOf so that a
// successful attempt does not pay for the heap-allocated target of errors.As.
func errorKind(ctx context.Context, err error) ErrorKind {
	var ne net.Error
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(context.Cause(ctx), ErrTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case isDialError(err):
		return KindConnect
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return KindReset
	}
	return KindOther
}

type noMetrics struct{}

func (noMetrics) Backend(string, string) BackendMetrics { return noMetrics{} }
func (noMetrics) Attempt(time.Duration, ErrorKind)      {}
func (noMetrics) BreakerOpened()                        {}
