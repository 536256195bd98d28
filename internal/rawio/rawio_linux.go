//go:build linux

package rawio

import (
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// raw is a Conn over a socket's descriptor. It is used by one reader and
// one writer at a time (a connection's own goroutines), as a net.Conn is
// read and written.
type raw struct {
	rc syscall.RawConn

	rp     []byte
	rn     int
	rerrno syscall.Errno
	rfn    func(fd uintptr) bool

	wp     []byte
	wn     int
	werrno syscall.Errno
	wfn    func(fd uintptr) bool
}

func newRaw(nc net.Conn) *raw {
	sc, ok := underlying(nc).(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	c := &raw{rc: rc}
	c.rfn, c.wfn = c.read, c.write
	return c
}

// Read reads into p; io.EOF at the end of the stream.
func (c *raw) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rp, c.rn, c.rerrno = p, 0, 0
	err := c.rc.Read(c.rfn)
	n, errno := c.rn, c.rerrno
	c.rp = nil
	runtime.KeepAlive(p)
	switch {
	case err != nil:
		return n, err // a deadline, or the connection closed
	case errno != 0:
		return n, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errno)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *raw) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rp[0])), uintptr(len(c.rp)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait until readable
		}
		if e == 0 {
			c.rn = int(n)
		}
		c.rerrno = e
		return true
	}
}

// Write writes all of p (a short write happens only with an error).
func (c *raw) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wp, c.wn, c.werrno = p, 0, 0
	err := c.rc.Write(c.wfn)
	n, errno := c.wn, c.werrno
	c.wp = nil
	runtime.KeepAlive(p)
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", errno)}
	}
	return n, nil
}

func (c *raw) write(fd uintptr) bool {
	for c.wn < len(c.wp) {
		// sendto with MSG_NOSIGNAL: a peer that has gone is an EPIPE
		// error, never a SIGPIPE.
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&c.wp[c.wn])),
			uintptr(len(c.wp)-c.wn), syscall.MSG_NOSIGNAL, 0, 0)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait until writable, then go on
		case 0:
			c.wn += int(n)
			continue
		}
		c.werrno = e
		return true
	}
	return true
}
