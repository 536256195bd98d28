// Package interrupt lets the server that owns a request's context stop a
// call blocked under it (an upstream read) without a context.AfterFunc per
// call, whose registration costs a proxied request several allocations and
// two locks. The server puts a Watcher in the context's values; AfterFunc
// uses it for exactly the context the server ends itself, and
// context.AfterFunc for any other (a derived one, which something else may
// end).
package interrupt

import "context"

// Watcher runs functions when contexts it owns end.
type Watcher interface {
	// Watch arranges for f to run when ctx ends, as context.AfterFunc
	// does, and reports true; stop reports whether it kept f from running.
	// It reports false when it does not own ctx, or has a function for it
	// already.
	Watch(ctx context.Context, f func()) (stop func() bool, ok bool)
}

type key struct{}

// With returns ctx carrying w, for the contexts derived from it.
func With(ctx context.Context, w Watcher) context.Context {
	return context.WithValue(ctx, key{}, w)
}

// AfterFunc is context.AfterFunc(ctx, f), through the Watcher ctx carries
// when that Watcher owns ctx.
func AfterFunc(ctx context.Context, f func()) (stop func() bool) {
	if w, ok := ctx.Value(key{}).(Watcher); ok {
		if stop, ok := w.Watch(ctx, f); ok {
			return stop
		}
	}
	return context.AfterFunc(ctx, f)
}
