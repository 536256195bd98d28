package edge

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

// acceptAll runs Accept on ln until it fails, handing over the connections.
func acceptAll(t *testing.T, ln net.Listener) <-chan net.Conn {
	t.Helper()
	ch := make(chan net.Conn)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ch
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// expectAccepted waits for the listener to hand over a connection.
func expectAccepted(t *testing.T, ch <-chan net.Conn, what string) net.Conn {
	t.Helper()
	select {
	case c := <-ch:
		t.Cleanup(func() { _ = c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not accepted within 10s", what)
		return nil
	}
}

// expectRefused checks that the server closed c without a byte.
func expectRefused(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	if n != 0 || err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("%s: Read = %d, %v; want the connection closed by the server", what, n, err)
	}
	if !errors.Is(err, io.EOF) {
		t.Logf("%s: refused with %v", what, err)
	}
}

func listen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	return ln
}

func TestLimitListenerPerIP(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			ln := listen(t, "tcp", host+":0")
			lln := LimitListener(ln, config.ConnectionLimits{MaxConnectionsPerIP: 2}, nil)
			ll := lln.(*limitListener)
			ch := acceptAll(t, lln)
			addr := ln.Addr().String()

			dial(t, addr)
			s1 := expectAccepted(t, ch, "1st")
			dial(t, addr)
			expectAccepted(t, ch, "2nd")
			expectRefused(t, dial(t, addr), "3rd from one IP")
			if got := ll.l.perIP.size(); got != 1 {
				t.Errorf("per-IP entries = %d, want 1", got)
			}

			// Closing one frees its place; closing twice frees it once.
			_ = s1.Close()
			_ = s1.Close()
			dial(t, addr)
			expectAccepted(t, ch, "after a close")
			expectRefused(t, dial(t, addr), "over the cap again")
		})
	}
}

func TestLimitListenerTotal(t *testing.T) {
	t.Parallel()
	ln := listen(t, "tcp", "127.0.0.1:0")
	lln := LimitListener(ln, config.ConnectionLimits{MaxConnections: 2, MaxConnectionsPerIP: 5}, nil)
	ll := lln.(*limitListener)
	ch := acceptAll(t, lln)
	addr := ln.Addr().String()

	dial(t, addr)
	s1 := expectAccepted(t, ch, "1st")
	dial(t, addr)
	s2 := expectAccepted(t, ch, "2nd")
	expectRefused(t, dial(t, addr), "3rd over the total cap")
	if got := ll.l.open.Load(); got != 2 {
		t.Errorf("open = %d, want 2", got)
	}
	if got := ll.l.perIP.count(mustAddr("127.0.0.1")); got != 2 {
		t.Errorf("per-IP count = %d, want 2 (the refused one was given back)", got)
	}
	_ = s1.Close()
	_ = s2.Close()
	if got := ll.l.open.Load(); got != 0 {
		t.Errorf("open after closing = %d, want 0", got)
	}
	if got := ll.l.perIP.size(); got != 0 {
		t.Errorf("per-IP entries after closing = %d, want 0", got)
	}
	dial(t, addr)
	expectAccepted(t, ch, "after closing all")
}

func TestLimitListenerAllowListExempt(t *testing.T) {
	t.Parallel()
	lists := NewLists()
	if err := lists.Add(Allow, "127.0.0.0/8"); err != nil {
		t.Fatal(err)
	}
	ln := listen(t, "tcp", "127.0.0.1:0")
	lln := LimitListener(ln, config.ConnectionLimits{MaxConnections: 3, MaxConnectionsPerIP: 1}, lists)
	ch := acceptAll(t, lln)
	addr := ln.Addr().String()
	for i := range 3 {
		dial(t, addr)
		expectAccepted(t, ch, "allow-listed peer #"+string(rune('1'+i)))
	}
	// Not exempt from the total cap.
	expectRefused(t, dial(t, addr), "allow-listed peer over the total cap")
}

func TestLimitListenerNoCaps(t *testing.T) {
	t.Parallel()
	ln := listen(t, "tcp", "127.0.0.1:0")
	defer func() { _ = ln.Close() }()
	if got := LimitListener(ln, config.ConnectionLimits{MaxInFlight: 5}, nil); got != ln {
		t.Errorf("LimitListener(no connection caps) = %T, want the listener itself", got)
	}
}

func TestLimitListenerAcceptError(t *testing.T) {
	t.Parallel()
	ln := listen(t, "tcp", "127.0.0.1:0")
	lln := LimitListener(ln, config.ConnectionLimits{MaxConnections: 1}, nil)
	_ = lln.Close()
	if _, err := lln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept() on a closed listener = %v, want net.ErrClosed", err)
	}
}

// TestConnLimiterAdmitSharesCaps: connections admitted without a listener
// (QUIC) count under the same caps as the TCP listener's.
func TestConnLimiterAdmitSharesCaps(t *testing.T) {
	l := NewConnLimiter(config.ConnectionLimits{MaxConnections: 3, MaxConnectionsPerIP: 1}, nil)
	udp := func(ip string) net.Addr { return &net.UDPAddr{IP: net.ParseIP(ip), Port: 4433} }
	release, ok := l.Admit(udp("127.0.0.1"))
	if !ok {
		t.Fatal("first QUIC connection refused")
	}
	if _, ok := l.Admit(udp("::ffff:127.0.0.1")); ok {
		t.Fatal("a second connection from 127.0.0.1 (mapped) admitted over the per-IP cap of 1")
	}
	// The TCP listener shares the count: its connection from 127.0.0.1 is
	// refused while the QUIC one is open.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lln := l.Listener(ln)
	defer lln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := lln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("a TCP connection from 127.0.0.1 accepted while its QUIC one holds the per-IP cap")
	case <-time.After(200 * time.Millisecond):
	}
	release()
	release() // idempotent
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("no TCP connection accepted after the QUIC one was released")
	}
	if n := l.open.Load(); n != 0 {
		t.Errorf("open = %d after everything closed, want 0", n)
	}
	var none *ConnLimiter
	if r, ok := none.Admit(udp("10.0.0.1")); !ok || r == nil {
		t.Error("a nil ConnLimiter refused a connection")
	}
}
