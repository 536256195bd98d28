//go:build unix

package h1

import (
	"net"
	"syscall"
)

const canCheckIdle = true

// idleCheck peeks at an idle pooled connection. It is made once per
// connection, so a check allocates nothing.
type idleCheck struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool
	clean bool
	b     [1]byte
}

func (ic *idleCheck) init(nc net.Conn) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	ic.rc, ic.fn = rc, ic.peek
}

// peek is the raw read: EAGAIN means nothing to read and not closed; data
// (n > 0) or EOF (n == 0, no error) both disqualify the connection. It never
// waits for readability.
//
// On Linux the peek is a raw system call, which the scheduler does not
// treat as one that may block (it cannot: MSG_DONTWAIT); see package rawio.
func (ic *idleCheck) peek(fd uintptr) bool {
	ic.clean = peekEAGAIN(fd, ic.b[:])
	return true
}

// rawPeek returns the peek as a function of the socket, reporting whether
// the connection is open with nothing unread; nil where check cannot peek.
func (ic *idleCheck) rawPeek() func(fd uintptr) bool {
	if ic.rc == nil {
		return nil
	}
	return func(fd uintptr) bool { return peekEAGAIN(fd, ic.b[:]) }
}

// check reports whether the idle connection is still as it was left: open,
// with nothing unread. One non-blocking peek; a backend that sent bytes or
// closed while the connection was idle fails it.
func (ic *idleCheck) check() bool {
	if ic.rc == nil {
		return false
	}
	ic.clean = false
	err := ic.rc.Read(ic.fn)
	return err == nil && ic.clean
}
