package edge

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ErrBadAddress is returned (wrapped) for a string that is neither an IP
// address nor a CIDR.
var ErrBadAddress = errors.New("not an IP address or CIDR")

// parsePrefix reads a single IP ("10.0.0.1", "2001:db8::1") or a CIDR
// ("10.0.0.0/8") into its canonical prefix: surrounding space is ignored, a
// single IP becomes a /32 (IPv4) or /128 (IPv6), host bits are masked off
// ("10.1.2.3/8" is 10.0.0.0/8), and IPv4-mapped IPv6 forms
// ("::ffff:10.0.0.1", "::ffff:10.0.0.0/104") become IPv4. Zones are refused.
func parsePrefix(s string) (netip.Prefix, error) {
	t := strings.TrimSpace(s)
	var p netip.Prefix
	if strings.IndexByte(t, '/') >= 0 {
		var err error
		if p, err = netip.ParsePrefix(t); err != nil {
			return netip.Prefix{}, fmt.Errorf("parse %q: %w", s, ErrBadAddress)
		}
	} else {
		a, err := netip.ParseAddr(t)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("parse %q: %w", s, ErrBadAddress)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return canonPrefix(p), nil
}

// canonPrefix masks p and turns an IPv4-mapped IPv6 prefix of length 96 or
// more into the IPv4 prefix it denotes, so that it matches unmapped
// addresses. A shorter IPv6 prefix stays IPv6 and so never matches IPv4.
func canonPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// u128 is an IPv6 address (or an IPv4 address in the low 32 bits) as an
// integer, for ordered comparisons.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// next returns a+1 and whether it did not wrap around.
func (a u128) next() (u128, bool) {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
		if hi == 0 {
			return u128{}, false
		}
	}
	return u128{hi, lo}, true
}

// addrU128 returns a's value; a must be valid and unmapped for IPv4.
func addrU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// prefixRange returns the first and last address of a canonical prefix.
func prefixRange(p netip.Prefix) (first, last u128) {
	first = addrU128(p.Addr())
	width := 32
	if p.Addr().Is6() {
		width = 128
	}
	host := width - p.Bits() // number of host bits
	last = first
	switch {
	case host >= 128:
		last = u128{^uint64(0), ^uint64(0)}
	case host >= 64:
		last.lo = ^uint64(0)
		last.hi |= (uint64(1) << (host - 64)) - 1
	case host > 0:
		last.lo |= (uint64(1) << host) - 1
	}
	return first, last
}

// span is an inclusive address range.
type span struct{ first, last u128 }

// prefixSet answers "is this address inside any of these prefixes" in
// O(log n): the prefixes become address ranges, overlapping and adjacent
// ranges are merged, and a lookup is one binary search over the sorted,
// disjoint result. IPv4 and IPv6 are kept apart. A prefixSet is immutable.
type prefixSet struct {
	v4, v6 []span
}

// newPrefixSet builds a set from canonical prefixes (see canonPrefix).
func newPrefixSet(ps []netip.Prefix) *prefixSet {
	s := &prefixSet{}
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		f, l := prefixRange(p)
		if p.Addr().Is4() {
			s.v4 = append(s.v4, span{f, l})
		} else {
			s.v6 = append(s.v6, span{f, l})
		}
	}
	s.v4 = mergeSpans(s.v4)
	s.v6 = mergeSpans(s.v6)
	return s
}

func mergeSpans(in []span) []span {
	if len(in) == 0 {
		return nil
	}
	slices.SortFunc(in, func(a, b span) int { return a.first.cmp(b.first) })
	out := in[:1]
	for _, sp := range in[1:] {
		cur := &out[len(out)-1]
		if nx, ok := cur.last.next(); !ok || sp.first.cmp(nx) <= 0 {
			// Overlapping or adjacent (or cur already reaches the top).
			if sp.last.cmp(cur.last) > 0 {
				cur.last = sp.last
			}
			continue
		}
		out = append(out, sp)
	}
	return slices.Clip(out)
}

// contains reports whether a is in the set. An IPv4-mapped address counts
// as IPv4; a zone is ignored.
func (s *prefixSet) contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	spans := s.v6
	if a.Is4() {
		spans = s.v4
	}
	if len(spans) == 0 {
		return false
	}
	v := addrU128(a)
	// Find the first span starting after v; the candidate is the one before.
	lo, hi := 0, len(spans)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if spans[m].first.cmp(v) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && v.cmp(spans[lo-1].last) <= 0
}
