//go:build unix && !linux

package h1

import "syscall"

// peekEAGAIN peeks at one byte without waiting and reports whether the
// answer was EAGAIN: nothing to read and not closed.
func peekEAGAIN(fd uintptr, b []byte) bool {
	_, _, err := syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}
