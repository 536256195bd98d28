package gateway

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/altair-gateway/altair/internal/httperr"
)

// isUpgrade reports whether r asks for a protocol switch the reverse proxy
// will hand over (Connection: upgrade and an Upgrade protocol).
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// proxyUpgrade proxies an upgrade request under the route's websocket
// limits. The reverse proxy copies the upgraded connection inside
// ServeHTTP, so the request's lifetime is the connection's: the count is
// held until it returns.
func (rt *route) proxyUpgrade(w http.ResponseWriter, r *http.Request) {
	c := rt.counters
	n := c.upgrades.Add(1)
	defer c.upgrades.Add(-1)
	if limit := rt.cfg.WebSocket.MaxConnections; limit > 0 && n > int64(limit) {
		httperr.Write(w, r, http.StatusServiceUnavailable, httperr.CodeWebSocketLimit)
		return
	}
	uw := &upgradeWriter{ResponseWriter: w, idle: rt.cfg.WebSocket.Idle()}
	defer func() {
		if uw.hijacked && c.metrics != nil {
			c.metrics.websockets.Dec()
		}
	}()
	uw.metrics = c.metrics
	rt.handler.ServeHTTP(uw, r)
}

// upgradeWriter wraps the client connection when the reverse proxy hijacks
// it: the gauge counts it and the idle timeout watches it.
type upgradeWriter struct {
	http.ResponseWriter
	idle     time.Duration
	metrics  *requestMetrics // nil when the graph does not serve
	hijacked bool
}

func (w *upgradeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the reverse proxy the client connection, wrapped.
func (w *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	if w.metrics != nil {
		w.metrics.websockets.Inc()
	}
	if w.idle > 0 {
		conn = newIdleConn(conn, w.idle)
	}
	return conn, brw, nil
}

// idleConn closes its connection when no byte has been read or written for
// idle. Every byte of an upgraded connection passes through the client side
// in one direction or the other, so watching it watches both.
type idleConn struct {
	net.Conn
	idle time.Duration

	mu     sync.Mutex
	last   time.Time
	timer  *time.Timer
	closed bool
}

func newIdleConn(c net.Conn, idle time.Duration) *idleConn {
	ic := &idleConn{Conn: c, idle: idle, last: time.Now()}
	ic.mu.Lock()
	ic.timer = time.AfterFunc(idle, ic.check)
	ic.mu.Unlock()
	return ic
}

// check runs when the timer fires: close if quiet for idle, else wait for
// the rest.
func (c *idleConn) check() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	quiet := time.Since(c.last)
	if quiet < c.idle {
		c.timer.Reset(c.idle - quiet)
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	_ = c.Conn.Close() // unblocks both copies; the proxy then closes the backend side
}

func (c *idleConn) touch() {
	c.mu.Lock()
	c.last = time.Now()
	c.mu.Unlock()
}

func (c *idleConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.touch() // a slow reader is not an idle one
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *idleConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.timer.Stop()
	c.mu.Unlock()
	return c.Conn.Close()
}
