package edge

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sync"
	"testing"
)

func TestListsAddRemove(t *testing.T) {
	t.Parallel()
	l := NewLists()
	for _, s := range []string{"10.0.0.1", "192.168.1.7/16", "2001:db8::/32", "::ffff:172.16.0.1"} {
		if err := l.Add(Deny, s); err != nil {
			t.Fatalf("Add(Deny, %q) = %v, want nil", s, err)
		}
	}
	denied := []struct {
		give string
		want bool
	}{
		{"10.0.0.1", true},
		{"::ffff:10.0.0.1", true},
		{"10.0.0.2", false},
		{"192.168.200.1", true},
		{"192.169.0.1", false},
		{"2001:db8:1::1", true},
		{"2001:db9::1", false},
		{"172.16.0.1", true},
	}
	for _, tt := range denied {
		if got := l.Denied(netip.MustParseAddr(tt.give)); got != tt.want {
			t.Errorf("Denied(%s) = %v, want %v", tt.give, got, tt.want)
		}
		if l.Allowed(netip.MustParseAddr(tt.give)) {
			t.Errorf("Allowed(%s) = true, want false (only the deny list has entries)", tt.give)
		}
	}

	removes := []struct {
		give string
		want bool
	}{
		{"10.0.0.1/32", true}, // normalised: same entry as "10.0.0.1"
		{"10.0.0.1", false},   // gone already
		{"192.168.0.0/16", true},
		{"2001:db8::1/32", true},
		{"172.16.0.1", true},
		{"not an ip", false},
	}
	for _, tt := range removes {
		if got := l.Remove(Deny, tt.give); got != tt.want {
			t.Errorf("Remove(Deny, %q) = %v, want %v", tt.give, got, tt.want)
		}
	}
	if got := l.Entries(Deny); len(got) != 0 {
		t.Errorf("Entries(Deny) = %v, want none", got)
	}
	if l.Denied(netip.MustParseAddr("10.0.0.1")) {
		t.Errorf("Denied(10.0.0.1) after Remove = true, want false")
	}
}

func TestListsAddErrors(t *testing.T) {
	t.Parallel()
	l := NewLists()
	for _, s := range []string{"", "nope", "10.0.0.0/33", "1.2.3", "fe80::1%eth0", "10.0.0.1/8/8"} {
		if err := l.Add(Allow, s); !errors.Is(err, ErrBadAddress) {
			t.Errorf("Add(Allow, %q) = %v, want an error wrapping ErrBadAddress", s, err)
		}
	}
	if err := l.Add(ListKind(7), "10.0.0.1"); err == nil {
		t.Errorf("Add(ListKind(7), ...) = nil, want error")
	}
	if err := l.Add(Allow, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Add(Allow, "10.0.0.1/32"); err != nil {
		t.Errorf("Add of an existing entry = %v, want nil", err)
	}
	if got := len(l.Entries(Allow)); got != 1 {
		t.Errorf("len(Entries(Allow)) = %d, want 1", got)
	}
}

func TestListsConfigAndRuntime(t *testing.T) {
	t.Parallel()
	l := NewLists()
	if err := l.SetConfig([]string{"10.0.0.0/8"}, []string{"203.0.113.0/24", "198.51.100.1"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Add(Deny, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Add(Deny, "198.51.100.1"); err != nil { // also in config
		t.Fatal(err)
	}
	want := []ListEntry{
		{CIDR: "192.0.2.1/32", Source: SourceRuntime},
		{CIDR: "198.51.100.1/32", Source: SourceConfig},
		{CIDR: "198.51.100.1/32", Source: SourceRuntime},
		{CIDR: "203.0.113.0/24", Source: SourceConfig},
	}
	if got := l.Entries(Deny); !reflect.DeepEqual(got, want) {
		t.Errorf("Entries(Deny) = %v, want %v", got, want)
	}
	if l.Remove(Deny, "203.0.113.0/24") {
		t.Errorf("Remove(Deny, config entry) = true, want false")
	}
	if !l.Denied(netip.MustParseAddr("203.0.113.9")) {
		t.Errorf("Denied(203.0.113.9) = false after refused Remove, want true")
	}

	// A reload replaces config entries and keeps runtime ones.
	if err := l.SetConfig(nil, []string{"203.0.114.0/24"}); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		give string
		want bool
	}{
		{"203.0.113.9", false},
		{"203.0.114.9", true},
		{"192.0.2.1", true},    // runtime, kept
		{"198.51.100.1", true}, // its runtime entry keeps it
	}
	for _, tt := range checks {
		if got := l.Denied(netip.MustParseAddr(tt.give)); got != tt.want {
			t.Errorf("Denied(%s) after reload = %v, want %v", tt.give, got, tt.want)
		}
	}
	if l.Allowed(netip.MustParseAddr("10.1.1.1")) {
		t.Errorf("Allowed(10.1.1.1) after reload dropped it = true, want false")
	}

	// A bad config changes nothing.
	if err := l.SetConfig([]string{"1.1.1.1", "bad"}, []string{"worse"}); !errors.Is(err, ErrBadAddress) {
		t.Errorf("SetConfig(bad) = %v, want error wrapping ErrBadAddress", err)
	}
	if !l.Denied(netip.MustParseAddr("203.0.114.9")) || l.Allowed(netip.MustParseAddr("1.1.1.1")) {
		t.Errorf("a failed SetConfig changed the lists")
	}
}

func TestListKindString(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		give ListKind
		want string
	}{{Allow, "allow"}, {Deny, "deny"}, {ListKind(5), "ListKind(5)"}} {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("ListKind(%d).String() = %q, want %q", int(tt.give), got, tt.want)
		}
	}
}

// TestListsConcurrent reads while writers change the lists; run with -race.
func TestListsConcurrent(t *testing.T) {
	t.Parallel()
	l := NewLists()
	stable := netip.MustParseAddr("10.200.0.1")
	if err := l.SetConfig([]string{"10.200.0.0/16"}, nil); err != nil {
		t.Fatal(err)
	}
	var writers, readers sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		writers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cidr := fmt.Sprintf("10.%d.%d.0/24", w, i%256)
				if err := l.Add(Allow, cidr); err != nil {
					t.Error(err)
					return
				}
				l.Remove(Allow, cidr)
				_ = l.Entries(Allow)
			}
		})
	}
	for range 4 {
		readers.Go(func() {
			for range 20000 {
				if !l.Allowed(stable) {
					t.Error("Allowed(stable config entry) = false during writes, want true")
					return
				}
				l.Denied(stable)
			}
		})
	}
	readers.Wait()
	close(stop)
	writers.Wait()
}

// naiveContains is the reference for prefixSet: a linear scan.
func naiveContains(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func TestPrefixSetAgreesWithLinearScan(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.IntN(4)) // few distinct values: many overlaps
			}
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	for round := range 50 {
		var ps []netip.Prefix
		for range rng.IntN(40) {
			v6 := rng.IntN(2) == 0
			a := randAddr(v6)
			ps = append(ps, canonPrefix(netip.PrefixFrom(a, rng.IntN(a.BitLen()+1))))
		}
		s := newPrefixSet(ps)
		for range 500 {
			a := randAddr(rng.IntN(2) == 0)
			if got, want := s.contains(a), naiveContains(ps, a); got != want {
				t.Fatalf("round %d: contains(%v) = %v, want %v (prefixes %v)", round, a, got, want, ps)
			}
		}
	}
}

func TestPrefixSetEdges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefixes []string
		give     string
		want     bool
	}{
		{[]string{"0.0.0.0/0"}, "255.255.255.255", true},
		{[]string{"0.0.0.0/0"}, "::1", false},
		{[]string{"::/0"}, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
		{[]string{"::/0"}, "1.2.3.4", false},
		{[]string{"::/0"}, "::ffff:1.2.3.4", false}, // mapped is IPv4
		{[]string{"::ffff:0:0/96"}, "1.2.3.4", true},
		{[]string{"255.255.255.255/32", "255.255.255.254/32"}, "255.255.255.255", true},
		{[]string{"10.0.0.0/9", "10.128.0.0/9"}, "10.200.0.1", true},
		{[]string{"10.0.0.0/9", "10.128.0.0/9"}, "11.0.0.0", false},
		{[]string{"8000::/1", "::/1"}, "ffff::", true},
		{[]string{"::1/128"}, "::2", false},
		{[]string{"::1/128"}, "::", false},
	}
	for _, tt := range tests {
		var ps []netip.Prefix
		for _, s := range tt.prefixes {
			p, err := parsePrefix(s)
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		if got := newPrefixSet(ps).contains(netip.MustParseAddr(tt.give)); got != tt.want {
			t.Errorf("set %v: contains(%s) = %v, want %v", tt.prefixes, tt.give, got, tt.want)
		}
	}
}
