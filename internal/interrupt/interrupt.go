// Package interrupt lets the server that owns a request's context stop a
// call blocked under it (an upstream read) without a context.AfterFunc per
// call, whose registration costs a proxied request several allocations and
// two locks, and hand it the informational answers that call gets. The
// server puts a Watcher in the context's values; AfterFunc and
// Informational use it for exactly the context the server ends itself (a
// derived or detached context, which something else may end or which
// belongs to other work, falls back to context.AfterFunc and gets no
// informational hook from here; the upstream pool hands the hook to an
// attempt's own context under a per-try timeout as a client trace). A
// context a Watcher owns carries no client trace: Bind's caller need not
// look for one.
package interrupt

import (
	"context"
	"net/textproto"
)

// Watcher runs functions when contexts it owns end.
type Watcher interface {
	// Watch arranges for f to run when ctx ends, as context.AfterFunc
	// does, and reports true; stop reports whether it kept f from running.
	// hook is what Informational(ctx) returns. It reports false when it does
	// not own ctx, or has a function for it already.
	Watch(ctx context.Context, f func()) (stop func() bool, hook func(code int, header textproto.MIMEHeader) error, ok bool)
	// Informational returns what receives the informational (1xx) answers
	// of a request made under ctx, or nil when it does not own ctx.
	Informational(ctx context.Context) func(code int, header textproto.MIMEHeader) error
}

type key struct{}

// With returns ctx carrying w, for the contexts derived from it.
func With(ctx context.Context, w Watcher) context.Context {
	return context.WithValue(ctx, key{}, w)
}

// AfterFunc is context.AfterFunc(ctx, f), through the Watcher ctx carries
// when that Watcher owns ctx. A context that can never end (Done returns
// nil) gets no registration, and a nil stop. The Watcher is asked first, so
// that a context it owns is not made to allocate its Done channel.
func AfterFunc(ctx context.Context, f func()) (stop func() bool) {
	stop, _, _ = Bind(ctx, f)
	return stop
}

// Bind is AfterFunc(ctx, f) and, when the Watcher ctx carries takes f, that
// Watcher's Informational(ctx) too, from one look-up of ctx's values (the
// look-ups walk the whole chain of contexts when they find nothing). owned
// reports that the Watcher took f: ctx is then exactly a context it owns.
func Bind(ctx context.Context, f func()) (stop func() bool, hook func(code int, header textproto.MIMEHeader) error, owned bool) {
	if w, ok := ctx.Value(key{}).(Watcher); ok {
		if stop, hook, ok := w.Watch(ctx, f); ok {
			return stop, hook, true
		}
	}
	if ctx.Done() == nil {
		return nil, nil, false
	}
	return context.AfterFunc(ctx, f), nil, false
}

// Informational returns the informational-answer hook of the Watcher ctx
// carries when that Watcher owns ctx, else nil.
func Informational(ctx context.Context) func(code int, header textproto.MIMEHeader) error {
	if w, ok := ctx.Value(key{}).(Watcher); ok {
		return w.Informational(ctx)
	}
	return nil
}
