// Package server runs the gateway's client-facing HTTP listener: timeouts and
// limits that harden it, TLS termination with certificates picked by SNI and
// reloaded from their files, HTTP/2 (over TLS, and h2c when asked), HTTP/3
// over QUIC beside TLS when asked (advertised with Alt-Svc), and a
// graceful shutdown that finishes ordinary requests first and closes upgraded
// (WebSocket) connections last.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/server/http1"
	"github.com/altair-gateway/altair/internal/upstream"
)

// Server is one HTTP listener in front of a handler.
type Server struct {
	cfg  config.Server
	log  *slog.Logger
	srv  *http.Server  // TLS listeners (HTTP/2 by ALPN) and h2c
	h1   *http1.Server // cleartext HTTP/1.1, the common case
	ln   net.Listener
	done chan struct{}
	err  error

	// base is the parent context of every request. It is cancelled only after
	// ordinary requests have drained, which ends upgraded connections (the
	// reverse proxy closes them when their request context ends).
	base       context.Context
	cancelBase context.CancelFunc
	upgrades   sync.WaitGroup
	wrap       func(net.Listener) net.Listener
	h          http.Handler
}

// New returns a server for h configured by cfg. Call Listen, then Serve.
func New(cfg config.Server, h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, done: make(chan struct{}), h: h}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           s.track(h),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	s.h1 = &http1.Server{
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		Log:               log,
	}
	if cfg.H2C {
		// HTTP/2 with prior knowledge beside HTTP/1.1 on a cleartext
		// listener; HTTP/2 over TLS stays on for UseTLS.
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
		s.srv.Protocols = p
	}
	return s
}

// UseTLS terminates TLS with c on the listener (HTTP/2 is negotiated by ALPN
// when c offers h2). The timeouts, header limit, listener wrapper and drain
// apply as on a cleartext listener; the handshake must finish within
// read_header_timeout. Call it before Serve.
func (s *Server) UseTLS(c *tls.Config) { s.srv.TLSConfig = c }

// TLSConfig is the configuration UseTLS installed, nil on a cleartext
// listener.
func (s *Server) TLSConfig() *tls.Config { return s.srv.TLSConfig }

// AdvertiseHTTP3 makes every response say, with Alt-Svc, that HTTP/3 is
// served on UDP port. Call it before Serve.
func (s *Server) AdvertiseHTTP3(port int) { s.srv.Handler = s.track(advertiseHTTP3(port, s.h)) }

// ListenAddr normalises a listen setting: "9777" becomes ":9777".
func ListenAddr(s string) string {
	if s != "" && !strings.Contains(s, ":") {
		return ":" + s
	}
	return s
}

// WrapListener installs f around the listener Listen binds (connection
// caps, for instance). Call it before Listen.
func (s *Server) WrapListener(f func(net.Listener) net.Listener) { s.wrap = f }

// OnConnState installs f as the http.Server's ConnState hook (the gateway
// counts open client connections with it). Call it before Serve.
func (s *Server) OnConnState(f func(net.Conn, http.ConnState)) { s.srv.ConnState = f }

// Listen binds the listener, so the caller knows the port is ours before it
// reports readiness.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", ListenAddr(s.cfg.Listen))
	if err != nil {
		return fmt.Errorf("listen on %q: %w", s.cfg.Listen, err)
	}
	if s.wrap != nil {
		ln = s.wrap(ln)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Shutdown. It returns nil after a clean
// shutdown.
func (s *Server) Serve() error {
	defer close(s.done)
	s.log.Info("listening", "addr", s.ln.Addr().String())
	var err error
	switch {
	case s.srv.TLSConfig != nil:
		err = s.srv.ServeTLS(s.ln, "", "")
	case s.cfg.H2C:
		err = s.srv.Serve(s.ln)
	default:
		s.h1.Handler, s.h1.ConnState = s.srv.Handler, s.srv.ConnState
		if d, ok := s.h.(directHandler); ok {
			// Requests the direct lane takes ask for no upgrade: track
			// has nothing to count.
			s.h1.Direct = func(w http.ResponseWriter, r *http.Request, ctl http1.DirectControl) bool {
				return d.ServeDirect(w, r, ctl)
			}
		}
		err = s.h1.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	s.err = err
	return err
}

// Shutdown stops accepting, lets ordinary requests finish, then closes
// upgraded connections; all within ctx. It returns ctx's error if the drain did
// not finish in time (the remaining connections are closed regardless).
func (s *Server) Shutdown(ctx context.Context) error {
	// One of the two served; the other returns at once.
	err := s.srv.Shutdown(ctx)
	if herr := s.h1.Shutdown(ctx); err == nil {
		err = herr
	}
	// Ordinary requests are done (or out of time): now end upgraded ones.
	s.cancelBase()
	waited := make(chan struct{})
	go func() { s.upgrades.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		_ = s.srv.Close()
		_ = s.h1.Close()
	}
	return err
}

// directHandler is a handler with a direct lane (the gateway's).
type directHandler interface {
	ServeDirect(w http.ResponseWriter, r *http.Request, ctl upstream.Control) bool
}

// track counts requests that ask for a protocol upgrade, so Shutdown can wait
// for the connections it closes last. Ordinary requests pay one header lookup.
func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			h.ServeHTTP(w, r)
			return
		}
		s.upgrades.Add(1)
		defer s.upgrades.Done()
		h.ServeHTTP(w, r)
	})
}
