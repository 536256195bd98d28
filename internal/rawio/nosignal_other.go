//go:build !linux && (darwin || freebsd || netbsd || openbsd || dragonfly)

package rawio

// Elsewhere SIGPIPE is off per socket (SO_NOSIGPIPE, set by Go's net
// package on darwin) or ignored by the Go runtime for sockets.
const msgNoSignal = 0
