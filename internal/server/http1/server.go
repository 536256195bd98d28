// Package http1 is the gateway's HTTP/1.1 server for cleartext listeners: a
// lean replacement for net/http's server side that hands handlers the same
// *http.Request and an http.ResponseWriter with Flush, Hijack and the
// http.ResponseController deadlines, so every middleware and the reverse
// proxy run unchanged on it.
//
// It exists for speed. Profiles of the gateway under load put a large share
// of its per-request CPU in net/http's server: a goroutine and a read per
// request to notice a client going away, a context and a header-map copy per
// response, sorted header writing, many small allocations. This server
// parses a head with one allocation for all its strings, writes a response
// head without copying or sorting the header map, keeps per-connection
// buffers, and watches for a vanished client only once a request has run for
// watchDelay.
//
// What it keeps from net/http: the request checks (method, URI, Host,
// header names and values, Content-Length), the response framing rules
// (Content-Length when the handler sets it or finishes early, chunked
// otherwise, none for HEAD, 1xx, 204 and 304, Content-Type sniffing, Date),
// 100-continue, trailers, the unread-body handling, panics and
// http.ErrAbortHandler, ConnState hooks and a graceful Shutdown. It is
// stricter on framing a proxy must not guess at: obs-fold, Transfer-Encoding
// beside Content-Length, and Transfer-Encoding on HTTP/1.0 are refused with
// 400 instead of repaired. HTTP/2 is not served here: TLS listeners (h2 by
// ALPN) and h2c stay on net/http.
package http1

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/altair-gateway/altair/internal/interrupt"
)

// Server serves HTTP/1.x on the listeners given to Serve.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request head, from its first byte
	// (or, on a new connection, from the accept). Zero: no limit.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request. Zero: ReadHeaderTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request head; a larger one gets 431. Zero:
	// http.DefaultMaxHeaderBytes. As with net/http, 4096 bytes of slack are
	// allowed on top.
	MaxHeaderBytes int
	// BaseContext returns the parent context of the requests of ln's
	// connections. Nil: context.Background. It must carry no
	// httptrace.ClientTrace: the upstream exchanges of the requests Direct
	// answers run under the connection's own context, which the h1
	// transport knows to be untraced (see interrupt.Bind).
	BaseContext func(ln net.Listener) context.Context
	// ConnState, if set, is called as a connection changes state, as
	// http.Server.ConnState is.
	ConnState func(net.Conn, http.ConnState)
	// Log receives panics (error) and refused requests (debug). Nil: discard.
	Log *slog.Logger
	// Direct, if set, is offered every bodiless request before Handler; a
	// request it answers (it returns true) does not reach Handler. It must
	// decline before it writes to w or changes r. w and its header map, and
	// r's header map, its values and r.URL, belong to the connection and are
	// reused for its next such request, so nothing may keep any of them past
	// the return. ctl serves the request's timeout and the
	// informational answers of the upstream requests made under its
	// context (through interrupt.Informational), which the connection also
	// makes interrupt.AfterFunc watch without a registration of its own.
	Direct func(w http.ResponseWriter, r *http.Request, ctl DirectControl) bool

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[*conn]struct{}
	inShutdown atomic.Bool
	closed     atomic.Bool
}

// serverMarker is the http.ServerContextKey value of this server's requests:
// code that looks for it expects an *http.Server, which this one is not, so
// it gets an empty one.
var serverMarker = &http.Server{}

func (s *Server) maxHeaderBytes() int {
	n := s.MaxHeaderBytes
	if n <= 0 {
		n = http.DefaultMaxHeaderBytes
	}
	return n + 4096
}

func (s *Server) shuttingDown() bool { return s.inShutdown.Load() }

func (s *Server) logf(format string, args ...any) {
	if l := s.logger(); l.Enabled(context.Background(), slog.LevelDebug) {
		l.Debug(fmt.Sprintf(format, args...))
	}
}

var discardLog = slog.New(slog.DiscardHandler)

func (s *Server) logger() *slog.Logger {
	if s.Log == nil {
		return discardLog
	}
	return s.Log
}

// temporary reports whether an Accept error is worth retrying: the
// descriptor and buffer shortages (EMFILE, ENFILE, ENOBUFS, ENOMEM) and
// aborted handshakes that net/http retries too.
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Serve accepts connections on ln and serves each on its own goroutine. It
// returns http.ErrServerClosed after Shutdown or Close, and otherwise the
// listener's error.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close() //nolint:errcheck // Shutdown may have closed it
	base := context.Background()
	if s.BaseContext != nil {
		base = s.BaseContext(ln)
	}
	// Handlers (httputil.ReverseProxy among them) take this value as the
	// sign that a server recovers their http.ErrAbortHandler panics.
	base = context.WithValue(base, http.ServerContextKey, serverMarker)
	if !s.trackListener(ln, true) {
		return http.ErrServerClosed
	}
	defer s.trackListener(ln, false)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shuttingDown() || s.closed.Load() {
				return http.ErrServerClosed
			}
			if temporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger().Warn("http1: accept failed; retrying", "error", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := &conn{srv: s, nc: nc, remoteAddr: nc.RemoteAddr().String(), accepted: time.Now()}
		c.ctx, c.cancel = context.WithCancel(base)
		if _, ok := c.ctx.Deadline(); !ok {
			c.reqBase = context.WithoutCancel(c.ctx)
			if s.Direct != nil {
				// For the requests Direct answers (see DirectControl).
				c.reqBase = interrupt.With(c.reqBase, c)
				c.stopInterrupt = c.unwatch
			}
		}
		c.stopLink = context.AfterFunc(c.ctx, c.cancelRequest)
		c.state.Store(int32(http.StateNew))
		if !s.track(c) {
			_ = nc.Close()
			c.cancel()
			return http.ErrServerClosed
		}
		if h := s.ConnState; h != nil {
			h(nc, http.StateNew)
		}
		go c.serve()
	}
}

func (s *Server) trackListener(ln net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.shuttingDown() || s.closed.Load() {
			return false
		}
		if s.listeners == nil {
			s.listeners = make(map[net.Listener]struct{})
		}
		s.listeners[ln] = struct{}{}
	} else {
		delete(s.listeners, ln)
	}
	return true
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) closeListeners() error {
	var err error
	for ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// Shutdown stops accepting, closes idle connections, and waits for active
// ones to finish their request (their responses say Connection: close), or
// for ctx to end, when it returns ctx's error. Hijacked connections are not
// waited for: their owner closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	err := s.closeListeners()
	s.mu.Unlock()
	wait := time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		if s.closeIdle() {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			wait = min(2*wait, 500*time.Millisecond)
			t.Reset(wait)
		}
	}
}

// closeIdle closes the connections waiting for a request and reports
// whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := false
	for c := range s.conns {
		// A connection accepted a moment ago has its request on the way
		// (net/http gives it 5 s too); an idle one is closed at once.
		if c.state.CompareAndSwap(int32(http.StateIdle), int32(http.StateClosed)) ||
			(time.Since(c.accepted) > newConnGrace && c.state.CompareAndSwap(int32(http.StateNew), int32(http.StateClosed))) {
			_ = c.nc.Close()
			continue
		}
		if st := http.ConnState(c.state.Load()); st != http.StateHijacked && st != http.StateClosed {
			left = true
		}
	}
	return !left
}

// newConnGrace is how long Shutdown waits for a new connection's first
// request.
const newConnGrace = 5 * time.Second

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closed.Store(true)
	s.inShutdown.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.closeListeners()
	for c := range s.conns {
		if http.ConnState(c.state.Load()) != http.StateHijacked {
			_ = c.nc.Close()
		}
	}
	return err
}
