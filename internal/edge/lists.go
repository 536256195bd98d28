package edge

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// ListKind names one of the two lists.
type ListKind int

// The lists.
const (
	// Allow lists clients that skip every other edge check.
	Allow ListKind = iota
	// Deny lists clients that get 403.
	Deny
)

// String returns "allow" or "deny".
func (k ListKind) String() string {
	switch k {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("ListKind(%d)", int(k))
}

// Sources of a list entry, as reported in ListEntry.Source.
const (
	SourceConfig  = "config"
	SourceRuntime = "runtime"
)

// ListEntry is one entry of a list, for the admin API.
type ListEntry struct {
	// CIDR is the canonical prefix: "10.0.0.0/8", "192.0.2.7/32",
	// "2001:db8::/32".
	CIDR string `json:"cidr"`
	// Source is SourceConfig or SourceRuntime.
	Source string `json:"source"`
}

// Lists are the allow and deny lists: IPs and CIDRs from the config, plus
// entries added at run time (the admin API, or a peer replica). The gateway
// owns one Lists for the life of the process, so run-time entries survive
// config reloads.
//
// Lookups are lock-free and do not allocate: each list is an immutable
// snapshot (sorted, merged address ranges searched in O(log n)) behind an
// atomic pointer. Changes copy the entries, rebuild the snapshot under a
// mutex and publish it.
//
// A prefix may be in a list twice, once from each source; it then stays in
// effect until both are gone. IPv6 prefixes never match IPv4 addresses,
// except IPv4-mapped ones (::ffff:0:0/96 and longer), which are stored as
// IPv4.
type Lists struct {
	mu    sync.Mutex // serialises writers
	lists [2]list
	// onChange, when set, hears of every run-time Add and Remove (not of
	// changes applied from peers), so they can be shared (ListSync).
	onChange atomic.Pointer[func(k ListKind, p netip.Prefix, added bool)]
}

type list struct {
	config  map[netip.Prefix]struct{} // guarded by Lists.mu
	runtime map[netip.Prefix]struct{} // guarded by Lists.mu
	set     atomic.Pointer[prefixSet]
}

// NewLists returns empty lists.
func NewLists() *Lists {
	l := &Lists{}
	for i := range l.lists {
		l.lists[i].config = map[netip.Prefix]struct{}{}
		l.lists[i].runtime = map[netip.Prefix]struct{}{}
		l.lists[i].set.Store(newPrefixSet(nil))
	}
	return l
}

func (l *Lists) list(k ListKind) (*list, error) {
	if k != Allow && k != Deny {
		return nil, fmt.Errorf("unknown list %v", k)
	}
	return &l.lists[k], nil
}

// SetConfig replaces the entries that came from the config; run-time entries
// stay. Nothing changes unless every entry parses; the error then names each
// bad one (wrapping ErrBadAddress).
func (l *Lists) SetConfig(allow, deny []string) error {
	ap, aerr := parsePrefixes(allow)
	dp, derr := parsePrefixes(deny)
	if aerr != nil || derr != nil {
		switch {
		case aerr == nil:
			return fmt.Errorf("deny list: %w", derr)
		case derr == nil:
			return fmt.Errorf("allow list: %w", aerr)
		}
		return fmt.Errorf("allow list: %w; deny list: %w", aerr, derr)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, ps := range [2][]netip.Prefix{ap, dp} {
		li := &l.lists[i]
		li.config = make(map[netip.Prefix]struct{}, len(ps))
		for _, p := range ps {
			li.config[p] = struct{}{}
		}
		li.publish()
	}
	return nil
}

// Add puts a run-time entry in list k: an IP ("192.0.2.7", "2001:db8::1") or a
// CIDR ("10.0.0.0/8"). Host bits of a CIDR are masked off, a single IP is the
// same as its /32 or /128, and an IPv4-mapped IPv6 address counts as IPv4.
// Adding an entry that is already there is not an error. Bad input gives an
// error wrapping ErrBadAddress.
func (l *Lists) Add(k ListKind, ipOrCIDR string) error {
	li, err := l.list(k)
	if err != nil {
		return err
	}
	p, err := parsePrefix(ipOrCIDR)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if _, ok := li.runtime[p]; !ok {
		li.runtime[p] = struct{}{}
		li.publish()
	}
	l.mu.Unlock()
	// Announced even when it was there already: a peer may have missed it.
	l.notify(k, p, true)
	return nil
}

// Remove deletes the run-time entry ipOrCIDR (normalised as in Add) from list
// k and reports whether there was one. Entries from the config cannot be
// removed at run time; for them Remove returns false and the entry stays in
// effect.
func (l *Lists) Remove(k ListKind, ipOrCIDR string) bool {
	li, err := l.list(k)
	if err != nil {
		return false
	}
	p, err := parsePrefix(ipOrCIDR)
	if err != nil {
		return false
	}
	l.mu.Lock()
	_, ok := li.runtime[p]
	if ok {
		delete(li.runtime, p)
		li.publish()
	}
	l.mu.Unlock()
	if ok {
		l.notify(k, p, false)
	}
	return ok
}

func (l *Lists) notify(k ListKind, p netip.Prefix, added bool) {
	if fn := l.onChange.Load(); fn != nil {
		(*fn)(k, p, added)
	}
}

// applyRuntime adds or removes a run-time entry on a peer's word: nothing is
// announced.
func (l *Lists) applyRuntime(k ListKind, p netip.Prefix, add bool) {
	li := &l.lists[k]
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := li.runtime[p]
	switch {
	case add && !ok:
		li.runtime[p] = struct{}{}
	case !add && ok:
		delete(li.runtime, p)
	default:
		return
	}
	li.publish()
}

// replaceRuntime replaces list k's run-time entries with ps (the shared
// set); config entries stay.
func (l *Lists) replaceRuntime(k ListKind, ps map[netip.Prefix]struct{}) {
	li := &l.lists[k]
	l.mu.Lock()
	defer l.mu.Unlock()
	li.runtime = ps
	li.publish()
}

// runtimePrefixes returns list k's run-time entries.
func (l *Lists) runtimePrefixes(k ListKind) []netip.Prefix {
	li := &l.lists[k]
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]netip.Prefix, 0, len(li.runtime))
	for p := range li.runtime {
		out = append(out, p)
	}
	return out
}

// Entries returns list k's entries sorted by address, config entries before
// run-time ones for the same prefix.
func (l *Lists) Entries(k ListKind) []ListEntry {
	li, err := l.list(k)
	if err != nil {
		return nil
	}
	type ent struct {
		p   netip.Prefix
		src string
	}
	l.mu.Lock()
	es := make([]ent, 0, len(li.config)+len(li.runtime))
	for p := range li.config {
		es = append(es, ent{p, SourceConfig})
	}
	for p := range li.runtime {
		es = append(es, ent{p, SourceRuntime})
	}
	l.mu.Unlock()
	slices.SortFunc(es, func(a, b ent) int {
		if c := a.p.Addr().Compare(b.p.Addr()); c != 0 {
			return c
		}
		if c := a.p.Bits() - b.p.Bits(); c != 0 {
			return c
		}
		if a.src == b.src {
			return 0
		}
		if a.src == SourceConfig {
			return -1
		}
		return 1
	})
	out := make([]ListEntry, len(es))
	for i, e := range es {
		out[i] = ListEntry{CIDR: e.p.String(), Source: e.src}
	}
	return out
}

// Allowed reports whether ip is in the allow list.
func (l *Lists) Allowed(ip netip.Addr) bool {
	return l.lists[Allow].set.Load().contains(ip)
}

// Denied reports whether ip is in the deny list.
func (l *Lists) Denied(ip netip.Addr) bool {
	return l.lists[Deny].set.Load().contains(ip)
}

// publish rebuilds the lookup snapshot; l.mu must be held.
func (li *list) publish() {
	ps := make([]netip.Prefix, 0, len(li.config)+len(li.runtime))
	for p := range li.config {
		ps = append(ps, p)
	}
	for p := range li.runtime {
		ps = append(ps, p)
	}
	li.set.Store(newPrefixSet(ps))
}
