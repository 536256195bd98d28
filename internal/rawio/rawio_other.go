//go:build !linux

package rawio

import "net"

// raw is not available here; New returns the connection itself.
type raw struct{ Conn }

func newRaw(net.Conn) Conn { return nil }
