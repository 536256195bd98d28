// Package rawio reads and writes a TCP connection with raw system calls
// that the Go scheduler does not see as blocking.
//
// net.Conn's Read and Write enter the runtime's syscall state for every
// call. A socket is non-blocking, so the call itself is short, but when it
// wakes a process on the same CPU (a backend beside the gateway) the kernel
// may switch to that process before the call returns; the runtime's monitor
// then finds the goroutine "in a system call" for over 20 µs, hands its P to
// another thread, and the two threads trade the P back: context switches and
// monitor wake-ups that, measured under load, cost a proxied request about a
// tenth of its CPU. These calls are made with syscall.RawSyscall inside
// syscall.RawConn's Read and Write (on Linux; elsewhere the net.Conn is used
// as it is), which keep the netpoller's waiting for
// readiness and the connection's deadlines: a call that would block returns
// EAGAIN, and RawConn waits for the socket as net.Conn would.
//
// Only the I/O goes this way; closing, deadlines and everything else stay on
// the net.Conn, so wrappers (connection caps) keep working.
package rawio

import (
	"crypto/tls"
	"io"
	"net"
)

// Conn is an io.ReadWriter over a connection; see New.
type Conn interface {
	io.Reader
	io.Writer
}

// New returns raw I/O over nc's socket, or nc itself where that is not
// available (not a socket, not unix, or wrapped without a NetConn method to
// reach it). A wrapper exposes the connection it wraps with
// NetConn() net.Conn, as crypto/tls does.
func New(nc net.Conn) Conn {
	if c := newRaw(nc); c != nil {
		return c
	}
	return nc
}

// underlying unwraps NetConn() until it reaches a connection that is not a
// wrapper. A TLS connection is never unwrapped: its socket carries
// ciphertext, so it returns nil, and New keeps the connection as it is.
func underlying(nc net.Conn) net.Conn {
	for i := 0; i < 8; i++ {
		if _, ok := nc.(*tls.Conn); ok {
			return nil
		}
		w, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nc
		}
		nc = w.NetConn()
	}
	return nc
}
