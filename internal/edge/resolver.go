// Package edge holds the checks every request passes before routing: who the
// client is (trusted proxies applied), allow and deny lists, DDoS threshold
// blocking, per-key rate limits, and caps on in-flight requests and open
// connections.
//
// Everything here is safe for concurrent use and takes no lock shared by all
// requests: lists are immutable snapshots behind an atomic pointer, counters
// live in sharded maps. Time comes from an injected clock, and the only
// background work (expiry of idle state) runs inside the Run method of the
// type that owns it.
package edge

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver decides a request's client IP from its TCP peer and, when the peer
// is a trusted proxy, from the forwarding headers that proxy set.
type Resolver struct {
	trusted *prefixSet
}

// NewResolver returns a Resolver that believes forwarding headers only from
// peers inside trustedProxies (IPs or CIDRs, see Lists.Add for the accepted
// forms). No trusted proxies means the client IP is always the TCP peer. All
// bad entries are reported at once, each wrapping ErrBadAddress.
func NewResolver(trustedProxies []string) (*Resolver, error) {
	ps, err := parsePrefixes(trustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	return &Resolver{trusted: newPrefixSet(ps)}, nil
}

// parsePrefixes parses every entry and joins the errors of the bad ones.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	ps := make([]netip.Prefix, 0, len(ss))
	var errs []error
	for _, s := range ss {
		p, err := parsePrefix(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps = append(ps, p)
	}
	return ps, errors.Join(errs...)
}

// Trusted reports whether a is inside a trusted proxy CIDR.
func (rv *Resolver) Trusted(a netip.Addr) bool {
	return rv.trusted.contains(a)
}

// ClientIP returns the request's client IP, IPv4-mapped IPv6 addresses
// unmapped and zones dropped:
//
//   - The TCP peer (r.RemoteAddr), unless the peer is a trusted proxy. The
//     headers of an untrusted peer are never read, so a client cannot choose
//     its own IP by sending them.
//   - For a trusted peer, X-Forwarded-For: the values of all its header lines,
//     in order, form one comma-separated list of hops, walked from the right
//     (the hop nearest to us). Trusted hops are skipped; the first untrusted
//     hop is the client. Empty entries are ignored. A malformed entry stops
//     the walk, because nothing left of it can be believed: the last good hop
//     (a trusted one) is then the answer, and if every hop is trusted the
//     leftmost one is. A hop is an IP, optionally with a port ("1.2.3.4:80",
//     "[2001:db8::1]:80") or in brackets.
//   - If X-Forwarded-For yields no hop (absent, empty, or malformed at its
//     rightmost entry), X-Real-IP when it is present exactly once and is a
//     valid IP.
//   - Otherwise the peer.
//
// If r.RemoteAddr is not an IP (a Unix socket, say) the result is the zero
// Addr, which is not valid and matches no list.
func (rv *Resolver) ClientIP(r *http.Request) netip.Addr {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok || !rv.trusted.contains(peer) {
		return peer
	}
	var last netip.Addr
	vals := r.Header["X-Forwarded-For"]
walk:
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for v != "" {
			entry := v
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				entry, v = v[j+1:], v[:j]
			} else {
				v = ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			a, ok := parseHop(entry)
			if !ok {
				break walk
			}
			if !rv.trusted.contains(a) {
				return a
			}
			last = a
		}
	}
	if last.IsValid() {
		return last
	}
	if xr := r.Header["X-Real-Ip"]; len(xr) == 1 {
		if a, ok := parseHop(strings.TrimSpace(xr[0])); ok {
			return a
		}
	}
	return peer
}

// parseHop reads an IP, "IP:port", "[IPv6]:port" or "[IPv6]" and returns it
// unmapped and without zone. The form is chosen by its shape before parsing,
// because a failed parse allocates its error: RemoteAddr always has a port.
func parseHop(s string) (netip.Addr, bool) {
	var a netip.Addr
	var err error
	switch {
	case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
		if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
	case len(s) > 0 && s[0] == '[' || strings.Count(s, ":") == 1:
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(s); err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	default:
		if a, err = netip.ParseAddr(s); err != nil {
			return netip.Addr{}, false
		}
	}
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	return a.Unmap(), true
}
