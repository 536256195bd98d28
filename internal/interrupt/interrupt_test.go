package interrupt

import (
	"context"
	"net/textproto"
	"testing"
	"time"
)

// owner is a Watcher that owns one context.
type owner struct {
	ctx     context.Context
	watched int
	f       func()
}

func (o *owner) Watch(ctx context.Context, f func()) (func() bool, func(int, textproto.MIMEHeader) error, bool) {
	if ctx != o.ctx {
		return nil, nil, false
	}
	o.watched++
	o.f = f
	return func() bool { o.f = nil; return true }, o.Informational(ctx), true
}

func (o *owner) Informational(ctx context.Context) func(int, textproto.MIMEHeader) error {
	if ctx != o.ctx {
		return nil
	}
	return func(int, textproto.MIMEHeader) error { return nil }
}

func TestAfterFunc(t *testing.T) {
	// A context that can never end: no registration.
	if stop := AfterFunc(context.Background(), func() { t.Error("ran") }); stop != nil {
		t.Error("AfterFunc(Background) returned a stop; want nil")
	}

	// No Watcher: context.AfterFunc.
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	if stop := AfterFunc(ctx, func() { close(ran) }); stop == nil {
		t.Fatal("AfterFunc on a cancellable context returned a nil stop")
	}
	cancel()
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("f did not run when the context ended")
	}

	// The Watcher that owns the context takes it; a derived context is
	// left to context.AfterFunc.
	o := &owner{}
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	o.ctx = With(base, o)
	stop := AfterFunc(o.ctx, func() {})
	if o.watched != 1 || o.f == nil || stop == nil || !stop() || o.f != nil {
		t.Errorf("owned context: watched %d times, stop %v; want the Watcher's registration and stop", o.watched, stop != nil)
	}
	derived, cancelDerived := context.WithCancel(o.ctx)
	ran2 := make(chan struct{})
	AfterFunc(derived, func() { close(ran2) })
	cancelDerived()
	select {
	case <-ran2:
	case <-time.After(5 * time.Second):
		t.Fatal("a derived context's f did not run")
	}
	if o.watched != 1 {
		t.Errorf("the Watcher was given a context it does not own")
	}
	// A context the Watcher owns that can never end (Done is nil) still
	// goes to the Watcher, which is asked before Done.
	never := &owner{}
	never.ctx = With(context.Background(), never)
	if stop := AfterFunc(never.ctx, func() {}); stop == nil || never.watched != 1 {
		t.Errorf("owned context with a nil Done: watched %d times, stop %v; want the Watcher's", never.watched, stop != nil)
	}
	o.f = nil
	if stop, hook, owned := Bind(o.ctx, func() {}); !owned || hook == nil || stop == nil || o.f == nil {
		t.Errorf("Bind(owned): owned %v, hook %v, stop %v; want the Watcher's registration and hook", owned, hook != nil, stop != nil)
	}
	if _, hook, owned := Bind(derived, func() {}); owned || hook != nil {
		t.Errorf("Bind(derived): owned %v, hook %v; want neither", owned, hook != nil)
	}
	if stop, hook, owned := Bind(context.Background(), func() {}); owned || hook != nil || stop != nil {
		t.Errorf("Bind(Background): owned %v, hook %v, stop %v; want none", owned, hook != nil, stop != nil)
	}
	if Informational(o.ctx) == nil || Informational(derived) != nil || Informational(context.Background()) != nil {
		t.Error("Informational: want the hook for the owned context only")
	}
}
