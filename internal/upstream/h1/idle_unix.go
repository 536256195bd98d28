//go:build unix

package h1

import (
	"net"
	"syscall"
)

const canCheckIdle = true

// idleClean reports whether an idle pooled connection is still as it was
// left: open, with nothing unread. One non-blocking peek; a backend that sent
// bytes or closed while the connection was idle fails it.
func idleClean(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	clean := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing to read and not closed. Data (n > 0) or EOF
		// (n == 0, no error) both disqualify the connection.
		clean = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true // never wait for readability
	})
	return err == nil && clean
}
