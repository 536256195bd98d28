package edge

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/altair-gateway/altair/internal/config"
)

// LimitListener returns ln capped at limits.MaxConnections open connections
// in total and limits.MaxConnectionsPerIP per peer IP (zero: no cap; with
// neither cap ln itself is returned). A peer in the allow list of lists (may
// be nil) is exempt from the per-IP cap, not from the total one. It is
// NewConnLimiter(limits, lists).Listener(ln).
func LimitListener(ln net.Listener, limits config.ConnectionLimits, lists *Lists) net.Listener {
	return NewConnLimiter(limits, lists).Listener(ln)
}

// ConnLimiter counts client connections against the caps of
// edge.connections, for every listener it is given: the TCP listener and
// the QUIC (HTTP/3) one share it, so a client cannot double its share by
// switching protocol. A nil ConnLimiter has no caps.
//
// Caps apply to the transport peer: behind a load balancer, per-IP caps
// count the balancer's connections (exempt it with the allow list).
type ConnLimiter struct {
	max, maxPerIP int
	lists         *Lists
	open          atomic.Int64
	perIP         *ipCounter
}

// NewConnLimiter returns the limiter of limits, or nil when neither
// connection cap is set.
func NewConnLimiter(limits config.ConnectionLimits, lists *Lists) *ConnLimiter {
	if limits.MaxConnections <= 0 && limits.MaxConnectionsPerIP <= 0 {
		return nil
	}
	return &ConnLimiter{max: limits.MaxConnections, maxPerIP: limits.MaxConnectionsPerIP, lists: lists, perIP: newIPCounter()}
}

// Listener returns ln under the caps.
//
// A connection over a cap is closed right after accept, without a byte
// written: the listener may sit below TLS, where a plain-text HTTP answer
// would be garbage. Accept then waits for the next connection, so the server
// never sees refused ones. A connection stops counting when it is closed (the
// first Close; Close is idempotent), including after a Hijack. Wrap the TCP
// listener, below any TLS listener, so that net/http still sees *tls.Conn.
func (l *ConnLimiter) Listener(ln net.Listener) net.Listener {
	if l == nil {
		return ln
	}
	return &limitListener{Listener: ln, l: l}
}

// Admit counts a connection from peer in, for a listener that is not a
// net.Listener (QUIC): ok is false when it is over a cap, else release
// gives its place back (call it once, when the connection ends).
func (l *ConnLimiter) Admit(peer net.Addr) (release func(), ok bool) {
	if l == nil {
		return func() {}, true
	}
	counted, ip, ok := l.take(peer)
	if !ok {
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { l.giveBack(counted, ip) }) }, true
}

// take counts a connection from peer in: counted under the total cap, ip
// (valid) under the per-IP cap; ok is false when it is over one.
func (l *ConnLimiter) take(peer net.Addr) (counted bool, ip netip.Addr, ok bool) {
	if l.max > 0 {
		if l.open.Add(1) > int64(l.max) {
			l.open.Add(-1)
			return false, netip.Addr{}, false
		}
		counted = true
	}
	if l.maxPerIP > 0 {
		a := peerAddr(peer)
		if a.IsValid() && (l.lists == nil || !l.lists.Allowed(a)) {
			if !l.perIP.acquire(a, l.maxPerIP) {
				if counted {
					l.open.Add(-1)
				}
				return false, netip.Addr{}, false
			}
			ip = a
		}
	}
	return counted, ip, true
}

// giveBack undoes take.
func (l *ConnLimiter) giveBack(counted bool, ip netip.Addr) {
	if counted {
		l.open.Add(-1)
	}
	if ip.IsValid() {
		l.perIP.release(ip)
	}
}

type limitListener struct {
	net.Listener
	l *ConnLimiter
}

// Accept returns the next connection within the caps.
func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if counted, ip, ok := ll.l.take(c.RemoteAddr()); ok {
			return &limitConn{Conn: c, l: ll.l, counted: counted, ip: ip}, nil
		}
		_ = c.Close()
	}
}

func peerAddr(a net.Addr) netip.Addr {
	switch x := a.(type) {
	case *net.TCPAddr:
		return x.AddrPort().Addr().WithZone("").Unmap()
	case *net.UDPAddr:
		return x.AddrPort().Addr().WithZone("").Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ip, _ := parseHop(a.String())
	return ip
}

// limitConn gives back its place under the caps when closed.
type limitConn struct {
	net.Conn
	l       *ConnLimiter
	counted bool       // counted under the total cap
	ip      netip.Addr // counted under the per-IP cap when valid
	once    sync.Once
}

// Close closes the connection and, the first time, gives back its place.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.giveBack(c.counted, c.ip) })
	return err
}

// NetConn returns the wrapped connection, for I/O straight on its socket
// (rawio); closing goes through the wrapper.
func (c *limitConn) NetConn() net.Conn { return c.Conn }

// ReadFrom lets io.Copy into the connection use the underlying one's
// ReadFrom (sendfile, splice), as net/http does for file bodies.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(c.Conn, r)
}

// CloseWrite half-closes the connection if the underlying one can, as
// net/http does before closing a connection after an error.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
