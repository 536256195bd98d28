package edge

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientIP: any headers and peer → no panic; an untrusted (or unparsable)
// peer is always the answer; any answer is unmapped and zone-free.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:1234", "6.6.6.6, 198.51.100.7, 10.1.2.3", "", "", "10.0.0.0/8")
	f.Add("203.0.113.5:1", "1.1.1.1", "", "2.2.2.2", "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, remote, xff1, xff2, real, trusted string) {
		var ps []netip.Prefix
		for _, s := range strings.Split(trusted, ",") {
			if p, err := parsePrefix(s); err == nil {
				ps = append(ps, p)
			}
		}
		rv := &Resolver{trusted: newPrefixSet(ps)}
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		if xff1 != "" {
			r.Header.Add("X-Forwarded-For", xff1)
		}
		if xff2 != "" {
			r.Header.Add("X-Forwarded-For", xff2)
		}
		if real != "" {
			r.Header.Set("X-Real-IP", real)
		}
		got := rv.ClientIP(r)
		peer, ok := parseHop(remote)
		if !ok && got.IsValid() {
			t.Fatalf("ClientIP(remote %q) = %v, want the zero Addr for an unparsable peer", remote, got)
		}
		if ok && !naiveContains(ps, peer) && got != peer {
			t.Fatalf("ClientIP(untrusted remote %q, xff %q %q, real %q) = %v, want the peer %v", remote, xff1, xff2, real, got, peer)
		}
		if ok && !got.IsValid() {
			t.Fatalf("ClientIP(remote %q) = zero Addr, want a valid one", remote)
		}
		if got.Is4In6() || got.Zone() != "" {
			t.Fatalf("ClientIP(...) = %v, want unmapped and zone-free", got)
		}
	})
}

// FuzzLists: any entries → no panic, and Allowed agrees with a linear scan of
// the entries that parsed, before and after removing every other one.
func FuzzLists(f *testing.F) {
	f.Add("10.0.0.0/8,192.168.1.1", "10.1.2.3")
	f.Add("2001:db8::/32,::ffff:10.0.0.0/104", "::ffff:10.0.0.1")
	f.Fuzz(func(t *testing.T, cidrs, ip string) {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return
		}
		l := NewLists()
		var ps []netip.Prefix
		for _, s := range strings.Split(cidrs, ",") {
			p, perr := parsePrefix(s)
			if aerr := l.Add(Allow, s); (aerr == nil) != (perr == nil) {
				t.Fatalf("Add(%q) = %v, parsePrefix = %v: disagree", s, aerr, perr)
			}
			if perr == nil {
				ps = append(ps, p)
			}
		}
		if got, want := l.Allowed(a), naiveContains(ps, a); got != want {
			t.Fatalf("Allowed(%v) with %q = %v, want %v", a, cidrs, got, want)
		}
		// Entries are a set: removing a prefix at an even index removes it
		// however often it was added.
		removed := map[netip.Prefix]bool{}
		for i, p := range ps {
			if i%2 == 0 && !removed[p] {
				if !l.Remove(Allow, p.String()) {
					t.Fatalf("Remove(%v) = false, want true", p)
				}
				removed[p] = true
			}
		}
		var live []netip.Prefix
		for _, p := range ps {
			if !removed[p] {
				live = append(live, p)
			}
		}
		if got, want := l.Allowed(a), naiveContains(live, a); got != want {
			t.Fatalf("after removals: Allowed(%v) with %q = %v, want %v", a, cidrs, got, want)
		}
		if l.Denied(a) {
			t.Fatalf("Denied(%v) = true with an empty deny list", a)
		}
	})
}
