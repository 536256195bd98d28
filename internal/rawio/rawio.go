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
	"errors"
	"io"
	"net"
)

// Conn is an io.ReadWriter over a connection; see New.
type Conn interface {
	io.Reader
	io.Writer
}

// Holder is implemented by the raw Conn (on Linux): it sends a request with
// the Read that waits for the answer, saving that Read a system call when
// the connection is checked as it sends (see Hold).
//
// A plain Read tries the socket first and, finding nothing there yet (a
// request's answer cannot have come), waits for the netpoller and tries
// again. Hold makes the Writes until the next Read be held back, and that
// Read send them itself after the netpoller's readiness for the socket is
// reset, then wait for readiness before it reads: an answer arriving after
// the send always wakes it, and the try that could only fail is skipped.
type Holder interface {
	// Hold holds back the Writes until the next Read, which the same
	// goroutine must make. check, if not nil, is called with the socket
	// first, in that Read: when it reports false, nothing is sent and the
	// Read fails with ErrStale. A check there (a peek at an idle
	// connection) sees everything that arrived before the send, and the
	// readiness reset before it catches everything after; only then is
	// the first try skipped. Without a check the Read tries the socket
	// after the send, as a plain Read would. The held bytes stay in a
	// buffer of the Conn's (up to 16 KiB of it is kept for the next Hold).
	Hold(check func(fd uintptr) bool)
}

// ErrStale is the error of a Read whose Hold check failed; the held
// Writes were not sent.
var ErrStale = errors.New("rawio: connection not clean before the send")

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
