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
// read and written; while a Hold is on, the Read sends what the Writes
// held, so one goroutine must make both.
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

	// Held Writes (see Holder): holding is set by Hold; held is what the
	// Writes since gave, sent by the next Read; hn how much of it went.
	holding bool
	held    []byte
	hn      int
	sent    bool
	stale   bool
	check   func(fd uintptr) bool
	xfn     func(fd uintptr) bool
}

// maxKeptHeld is the largest held-write buffer kept for the next exchange.
const maxKeptHeld = 16 << 10

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
	c.rfn, c.wfn, c.xfn = c.read, c.write, c.exchange
	return c
}

// Hold implements Holder.
func (c *raw) Hold(check func(fd uintptr) bool) {
	c.holding, c.check = true, check
	c.held, c.hn = c.held[:0], 0
}

// Read reads into p; io.EOF at the end of the stream.
func (c *raw) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.holding {
		c.holding = false
		if len(c.held) > 0 {
			return c.readHeld(p)
		}
	}
	c.rp, c.rn, c.rerrno = p, 0, 0
	err := c.rc.Read(c.rfn)
	n, errno := c.rn, c.rerrno
	c.rp = nil
	runtime.KeepAlive(p)
	if err != nil {
		return n, err // a deadline, or the connection closed
	}
	return readResult(n, errno)
}

// readResult is what a read system call's n and errno make for Read.
func readResult(n int, errno syscall.Errno) (int, error) {
	switch {
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

// readHeld is Read sending the held Writes first (see Holder).
func (c *raw) readHeld(p []byte) (int, error) {
	c.rp, c.rn, c.rerrno = p, 0, 0
	c.hn, c.sent, c.stale, c.werrno = 0, false, false, 0
	err := c.rc.Read(c.xfn)
	n, errno := c.rn, c.rerrno
	c.rp, c.check = nil, nil
	runtime.KeepAlive(p)
	held := c.held[c.hn:]
	if cap(c.held) > maxKeptHeld {
		c.held = nil
	} else {
		c.held = c.held[:0]
	}
	switch {
	case err != nil:
		return 0, err // a deadline, or the connection closed
	case c.stale:
		return 0, ErrStale
	case c.werrno != 0:
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", c.werrno)}
	case !c.sent:
		// The socket would not take it all at once: the rest, and then
		// the read, the ordinary way.
		if _, err := c.Write(held); err != nil {
			return 0, err
		}
		return c.Read(p)
	}
	return readResult(n, errno)
}

// exchange is readHeld's RawConn.Read function. RawConn.Read resets the
// netpoller's readiness for the socket before its first call, which checks
// the socket and sends: with a check, which saw everything that came
// before, an answer can only come after that, so instead of trying the
// socket the call asks to wait, and the calls after read.
func (c *raw) exchange(fd uintptr) bool {
	if c.sent {
		return c.read(fd)
	}
	if c.check != nil && !c.check(fd) {
		c.stale = true
		return true
	}
	if e := send(fd, c.held, &c.hn); e != 0 {
		if e != syscall.EAGAIN { // on EAGAIN, readHeld writes the rest
			c.werrno = e
		}
		return true
	}
	c.sent = true
	if c.check == nil {
		// Unchecked, the socket may hold bytes that came before the
		// readiness reset (a server that speaks first): look, rather than
		// wait for readiness that will not come again.
		return c.read(fd)
	}
	return false
}

// Write writes all of p (a short write happens only with an error); while
// a Hold is on, it only adds p to what the next Read sends.
func (c *raw) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.holding {
		c.held = append(c.held, p...)
		return len(p), nil
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
	switch e := send(fd, c.wp, &c.wn); e {
	case 0:
		return true
	case syscall.EAGAIN:
		return false // wait until writable, then go on
	default:
		c.werrno = e
		return true
	}
}

// send writes b[*off:] with sendto, advancing *off, until all of it is
// written (0), the socket would block (EAGAIN) or the call fails (its
// errno). MSG_NOSIGNAL: a peer that has gone is an EPIPE error, never a
// SIGPIPE.
func send(fd uintptr, b []byte, off *int) syscall.Errno {
	for *off < len(b) {
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[*off])),
			uintptr(len(b)-*off), syscall.MSG_NOSIGNAL, 0, 0)
		switch e {
		case syscall.EINTR:
			continue
		case 0:
			*off += int(n)
			continue
		}
		return e
	}
	return 0
}
