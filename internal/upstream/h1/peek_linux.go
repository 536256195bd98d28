package h1

import (
	"syscall"
	"unsafe"
)

// peekEAGAIN peeks at one byte without waiting and reports whether the
// answer was EAGAIN: nothing to read and not closed.
func peekEAGAIN(fd uintptr, b []byte) bool {
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return e == syscall.EAGAIN || e == syscall.EWOULDBLOCK
}
