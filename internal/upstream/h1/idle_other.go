//go:build !unix

package h1

import "net"

// canCheckIdle is false where a non-blocking peek is not implemented; the
// transport then hands every request to its Fallback.
const canCheckIdle = false

type idleCheck struct{}

func (*idleCheck) init(net.Conn) {}

func (*idleCheck) check() bool { return false }

func (*idleCheck) rawPeek() func(fd uintptr) bool { return nil }
