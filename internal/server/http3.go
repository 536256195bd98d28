package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/altair-gateway/altair/internal/config"
)

// HTTP3 is the HTTP/3 (QUIC) listener beside a TLS listener: the same
// handler, the same certificates (the GetCertificate of the TLS config, so a
// reloaded certificate serves QUIC handshakes too), the header limit and idle
// timeout of server.
type HTTP3 struct {
	log  *slog.Logger
	srv  *http3.Server
	conn net.PacketConn
	// admit, when set, counts each QUIC connection under the connection
	// caps; ln is then the QUIC listener Serve made.
	admit func(net.Addr) (release func(), ok bool)
	ln    *quic.EarlyListener
}

// LimitConnections puts QUIC connections under admit (edge.ConnLimiter's
// Admit, shared with the TCP listener): a connection over a cap is closed
// at once with H3_EXCESSIVE_LOAD. Call it before Listen.
func (s *HTTP3) LimitConnections(admit func(net.Addr) (release func(), ok bool)) {
	s.admit = admit
}

// h3ExcessiveLoad is HTTP/3's H3_EXCESSIVE_LOAD error code (RFC 9114,
// section 8.1).
const h3ExcessiveLoad = 0x0107

// limitedListener closes, right after the handshake, the connections that
// admit refuses, and releases the others' places when they end.
type limitedListener struct {
	*quic.EarlyListener
	admit func(net.Addr) (release func(), ok bool)
	log   *slog.Logger
}

func (l limitedListener) Accept(ctx context.Context) (*quic.Conn, error) {
	for {
		c, err := l.EarlyListener.Accept(ctx)
		if err != nil {
			return nil, err
		}
		release, ok := l.admit(c.RemoteAddr())
		if !ok {
			_ = c.CloseWithError(h3ExcessiveLoad, "connection limit")
			continue
		}
		go func() {
			<-c.Context().Done()
			release()
		}()
		return c, nil
	}
}

// NewHTTP3 returns an HTTP/3 server for h configured by cfg, terminating TLS
// with a copy of tc that offers only h3. Call it before the TLS listener
// serves with tc (http.Server adds to it then). Call Listen, then Serve.
func NewHTTP3(cfg config.Server, h http.Handler, tc *tls.Config, log *slog.Logger) *HTTP3 {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	qtc := tc.Clone()
	qtc.NextProtos = []string{http3.NextProtoH3}
	qtc.MinVersion = tls.VersionTLS13 // QUIC is TLS 1.3 only
	return &HTTP3{log: log, srv: &http3.Server{
		Handler:        h,
		TLSConfig:      qtc,
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		IdleTimeout:    cfg.IdleTimeout,
		QUICConfig: &quic.Config{
			// A handshake that stalls this long is dropped, as a TCP client
			// that sends no headers within read_header_timeout is.
			HandshakeIdleTimeout: cfg.ReadHeaderTimeout,
			MaxIdleTimeout:       cfg.IdleTimeout,
		},
		Logger: log,
	}}
}

// Listen binds the UDP socket at addr.
func (s *HTTP3) Listen(addr string) error {
	conn, err := net.ListenPacket("udp", ListenAddr(addr))
	if err != nil {
		return fmt.Errorf("listen on udp %q: %w", addr, err)
	}
	s.conn = conn
	if s.admit != nil {
		// A listener of our own, so that each connection passes the caps;
		// configured as http3.Server would configure its own.
		ln, err := quic.ListenEarly(conn, http3.ConfigureTLSConfig(s.srv.TLSConfig), s.srv.QUICConfig.Clone())
		if err != nil {
			_ = conn.Close()
			return fmt.Errorf("listen on udp %q: %w", addr, err)
		}
		s.ln = ln
	}
	return nil
}

// Addr is the bound UDP address.
func (s *HTTP3) Addr() net.Addr { return s.conn.LocalAddr() }

// Serve answers HTTP/3 requests until Shutdown; it returns nil after a clean
// shutdown.
func (s *HTTP3) Serve() error {
	s.log.Info("listening", "addr", s.conn.LocalAddr().String(), "protocol", "http3")
	var err error
	if s.ln == nil {
		err = s.srv.Serve(s.conn)
	} else {
		err = s.srv.ServeListener(limitedListener{EarlyListener: s.ln, admit: s.admit, log: s.log})
	}
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, quic.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown sends GOAWAY, lets requests finish within ctx, closes the
// remaining connections, then the socket. It returns ctx's error if the
// drain did not finish in time.
func (s *HTTP3) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if s.ln != nil {
		_ = s.ln.Close() // http3.Server leaves a listener it was given open
	}
	if cerr := s.conn.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// AltSvcMaxAge is the Alt-Svc lifetime advertised, in seconds (one day).
const AltSvcMaxAge = 86400

// advertiseHTTP3 makes h's responses say that HTTP/3 is served on UDP port:
// Alt-Svc: h3=":port"; ma=86400. A backend's own Alt-Svc is dropped, since it
// describes the backend, not the gateway.
func advertiseHTTP3(port int, h http.Handler) http.Handler {
	v := []string{`h3=":` + strconv.Itoa(port) + `"; ma=` + strconv.Itoa(AltSvcMaxAge)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		aw := &altSvcWriter{ResponseWriter: w, v: v}
		h.ServeHTTP(aw, r)
		aw.set() // a handler that wrote nothing: the server writes the header after it returns
	})
}

// altSvcWriter sets Alt-Svc just before the header is written, replacing
// whatever the handler put there.
type altSvcWriter struct {
	http.ResponseWriter
	v     []string
	wrote bool
}

func (w *altSvcWriter) set() {
	if !w.wrote {
		w.wrote = true
		w.ResponseWriter.Header()["Alt-Svc"] = w.v
	}
}

func (w *altSvcWriter) WriteHeader(code int) {
	if code >= 200 {
		w.set()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *altSvcWriter) Write(b []byte) (int, error) {
	w.set()
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming (SSE) working; http.ResponseController finds the
// rest (hijacking, deadlines) through Unwrap.
func (w *altSvcWriter) Flush() {
	w.set()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *altSvcWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
