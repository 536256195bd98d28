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
// be nil) is exempt from the per-IP cap, not from the total one.
//
// A connection over a cap is closed right after accept, without a byte
// written: the listener may sit below TLS, where a plain-text HTTP answer
// would be garbage. Accept then waits for the next connection, so the server
// never sees refused ones. A connection stops counting when it is closed (the
// first Close; Close is idempotent), including after a Hijack.
//
// Caps apply to the TCP peer: behind a load balancer, per-IP caps count the
// balancer's connections (exempt it with the allow list). Wrap the TCP
// listener, below any TLS listener, so that net/http still sees *tls.Conn.
func LimitListener(ln net.Listener, limits config.ConnectionLimits, lists *Lists) net.Listener {
	if limits.MaxConnections <= 0 && limits.MaxConnectionsPerIP <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, max: limits.MaxConnections, maxPerIP: limits.MaxConnectionsPerIP, lists: lists, perIP: newIPCounter()}
}

type limitListener struct {
	net.Listener
	max, maxPerIP int
	lists         *Lists
	open          atomic.Int64
	perIP         *ipCounter
}

// Accept returns the next connection within the caps.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
		_ = c.Close()
	}
}

// admit counts c in, or returns nil if it is over a cap.
func (l *limitListener) admit(c net.Conn) net.Conn {
	lc := &limitConn{Conn: c, l: l}
	if l.max > 0 {
		if l.open.Add(1) > int64(l.max) {
			l.open.Add(-1)
			return nil
		}
		lc.counted = true
	}
	if l.maxPerIP > 0 {
		ip := peerAddr(c.RemoteAddr())
		if ip.IsValid() && (l.lists == nil || !l.lists.Allowed(ip)) {
			if !l.perIP.acquire(ip, l.maxPerIP) {
				if lc.counted {
					l.open.Add(-1)
				}
				return nil
			}
			lc.ip = ip
		}
	}
	return lc
}

func peerAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip := ta.AddrPort().Addr()
		return ip.WithZone("").Unmap()
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
	l       *limitListener
	counted bool       // counted under the total cap
	ip      netip.Addr // counted under the per-IP cap when valid
	once    sync.Once
}

// Close closes the connection and, the first time, gives back its place.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.counted {
			c.l.open.Add(-1)
		}
		if c.ip.IsValid() {
			c.l.perIP.release(c.ip)
		}
	})
	return err
}

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
