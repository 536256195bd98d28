// Package identity carries who is calling through a request's context: the
// client IP as decided once by the edge (trusted proxies applied), and the
// principal that authentication established. It is a leaf shared by the
// request-path packages, which do not import one another.
package identity

import (
	"context"
	"net/netip"
)

// Principal is an authenticated caller.
type Principal struct {
	// Method is how the caller authenticated: "jwt", "api_key" or "forward".
	Method string
	// Name identifies the caller in logs and rate-limit keys: the API key's
	// name, or the JWT subject. Never a credential.
	Name string
	// Claims holds a JWT's claims (nil for other methods).
	Claims map[string]any
}

type clientIPKey struct{}
type principalKey struct{}

// WithClientIP returns ctx carrying the client's IP.
func WithClientIP(ctx context.Context, ip netip.Addr) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns the client IP the edge decided on, if any.
func ClientIP(ctx context.Context) (netip.Addr, bool) {
	ip, ok := ctx.Value(clientIPKey{}).(netip.Addr)
	return ip, ok
}

// WithPrincipal returns ctx carrying an authenticated caller.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated caller, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
