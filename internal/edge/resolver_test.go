package edge

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestResolverClientIP(t *testing.T) {
	t.Parallel()
	trusted := []string{"10.0.0.0/8", "2001:db8:ffff::/48", " 192.0.2.1 "}
	tests := []struct {
		name   string
		remote string
		xff    []string // X-Forwarded-For lines
		real   []string // X-Real-IP lines
		want   string   // "" for the zero Addr
	}{
		{name: "untrusted peer, no headers", remote: "203.0.113.5:1234", want: "203.0.113.5"},
		{name: "untrusted peer spoofs XFF and X-Real-IP", remote: "203.0.113.5:1234", xff: []string{"1.1.1.1"}, real: []string{"2.2.2.2"}, want: "203.0.113.5"},
		{name: "untrusted mapped peer", remote: "[::ffff:203.0.113.5]:1234", xff: []string{"1.1.1.1"}, want: "203.0.113.5"},
		{name: "trusted peer, rightmost untrusted hop", remote: "10.0.0.1:1234", xff: []string{"6.6.6.6, 198.51.100.7, 10.1.2.3"}, want: "198.51.100.7"},
		{name: "trusted peer, single hop", remote: "10.0.0.1:1234", xff: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "trusted single-IP proxy", remote: "192.0.2.1:1", xff: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "all hops trusted: leftmost", remote: "10.0.0.1:1234", xff: []string{"10.9.9.9, 10.1.1.1,10.2.2.2"}, want: "10.9.9.9"},
		{name: "multiple XFF lines concatenated", remote: "10.0.0.1:1234", xff: []string{"6.6.6.6, 198.51.100.7", "10.1.1.1, 10.2.2.2"}, want: "198.51.100.7"},
		{name: "multiple XFF lines, client in last line", remote: "10.0.0.1:1234", xff: []string{"6.6.6.6", "198.51.100.8, 10.2.2.2"}, want: "198.51.100.8"},
		{name: "malformed hop stops walk: last good hop", remote: "10.0.0.1:1234", xff: []string{"198.51.100.7, garbage, 10.1.1.1"}, want: "10.1.1.1"},
		{name: "malformed rightmost hop: X-Real-IP", remote: "10.0.0.1:1234", xff: []string{"198.51.100.7, bad"}, real: []string{"198.51.100.9"}, want: "198.51.100.9"},
		{name: "malformed rightmost hop, no X-Real-IP: peer", remote: "10.0.0.1:1234", xff: []string{"198.51.100.7, bad"}, want: "10.0.0.1"},
		{name: "empty entries skipped", remote: "10.0.0.1:1234", xff: []string{" , 198.51.100.7,, ,"}, want: "198.51.100.7"},
		{name: "empty XFF: X-Real-IP", remote: "10.0.0.1:1234", xff: []string{""}, real: []string{" 198.51.100.9 "}, want: "198.51.100.9"},
		{name: "X-Real-IP only", remote: "10.0.0.1:1234", real: []string{"198.51.100.9"}, want: "198.51.100.9"},
		{name: "X-Real-IP invalid: peer", remote: "10.0.0.1:1234", real: []string{"nope"}, want: "10.0.0.1"},
		{name: "X-Real-IP twice: peer", remote: "10.0.0.1:1234", real: []string{"198.51.100.9", "198.51.100.8"}, want: "10.0.0.1"},
		{name: "XFF beats X-Real-IP", remote: "10.0.0.1:1234", xff: []string{"198.51.100.7"}, real: []string{"198.51.100.9"}, want: "198.51.100.7"},
		{name: "hop with port", remote: "10.0.0.1:1234", xff: []string{"198.51.100.7:5555"}, want: "198.51.100.7"},
		{name: "IPv6 hop with port", remote: "10.0.0.1:1234", xff: []string{"[2001:db8::7]:5555"}, want: "2001:db8::7"},
		{name: "bracketed IPv6 hop", remote: "10.0.0.1:1234", xff: []string{"[2001:db8::7]"}, want: "2001:db8::7"},
		{name: "bracketed IPv4 hop is malformed", remote: "10.0.0.1:1234", xff: []string{"[198.51.100.7]"}, want: "10.0.0.1"},
		{name: "mapped hop unmapped", remote: "10.0.0.1:1234", xff: []string{"::ffff:198.51.100.7"}, want: "198.51.100.7"},
		{name: "mapped trusted hop skipped", remote: "10.0.0.1:1234", xff: []string{"198.51.100.7, ::ffff:10.3.3.3"}, want: "198.51.100.7"},
		{name: "IPv6 trusted peer", remote: "[2001:db8:ffff::1]:443", xff: []string{"2001:db8:1::5, 2001:db8:ffff::2"}, want: "2001:db8:1::5"},
		{name: "IPv6 untrusted peer", remote: "[2001:db8:1::1]:443", xff: []string{"1.1.1.1"}, want: "2001:db8:1::1"},
		{name: "mapped trusted peer", remote: "[::ffff:10.0.0.1]:443", xff: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "zone dropped", remote: "[fe80::1%eth0]:443", want: "fe80::1"},
		{name: "RemoteAddr without port", remote: "203.0.113.5", want: "203.0.113.5"},
		{name: "RemoteAddr not an IP", remote: "@", xff: []string{"1.1.1.1"}, want: ""},
		{name: "empty RemoteAddr", remote: "", want: ""},
	}
	rv, err := NewResolver(trusted)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tt.real {
				r.Header.Add("X-Real-IP", v)
			}
			got := rv.ClientIP(r)
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("ClientIP(remote %q, xff %q, real %q) = %v, want %v", tt.remote, tt.xff, tt.real, got, want)
			}
		})
	}
}

func TestResolverNoTrustedProxies(t *testing.T) {
	t.Parallel()
	rv, err := NewResolver(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "127.0.0.1:80"
	r.Header.Set("X-Forwarded-For", "1.1.1.1")
	r.Header.Set("X-Real-IP", "2.2.2.2")
	if got, want := rv.ClientIP(r), netip.MustParseAddr("127.0.0.1"); got != want {
		t.Errorf("ClientIP() = %v, want %v", got, want)
	}
}

func TestNewResolverErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give    []string
		wantErr bool
	}{
		{give: nil},
		{give: []string{"10.0.0.0/8", "::1", "2001:db8::/32", "10.1.2.3/8"}},
		{give: []string{"10.0.0.0/33"}, wantErr: true},
		{give: []string{"10.0.0.0/8", "nope", ""}, wantErr: true},
		{give: []string{"fe80::1%eth0"}, wantErr: true},
	}
	for _, tt := range tests {
		_, err := NewResolver(tt.give)
		if (err != nil) != tt.wantErr {
			t.Errorf("NewResolver(%q) error = %v, want error %v", tt.give, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadAddress) {
			t.Errorf("NewResolver(%q) error = %v, want one wrapping ErrBadAddress", tt.give, err)
		}
	}
}

func TestResolverTrusted(t *testing.T) {
	t.Parallel()
	rv, err := NewResolver([]string{"10.0.0.0/8", "::ffff:192.168.0.0/112", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give string
		want bool
	}{
		{"10.255.0.1", true},
		{"::ffff:10.1.1.1", true},
		{"11.0.0.1", false},
		{"192.168.3.4", true},
		{"192.169.3.4", false},
		{"2001:db8::1", true},
		{"2001:db9::1", false},
	}
	for _, tt := range tests {
		if got := rv.Trusted(netip.MustParseAddr(tt.give)); got != tt.want {
			t.Errorf("Trusted(%s) = %v, want %v", tt.give, got, tt.want)
		}
	}
	if rv.Trusted(netip.Addr{}) {
		t.Errorf("Trusted(zero Addr) = true, want false")
	}
}
