package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchSpecs returns n routes shaped like a real gateway's: per service a
// prefix, an exact health path, parameter paths and a method-split route;
// every fifth service is bound to its own host and every tenth to a wildcard.
func benchSpecs(n int) []Spec {
	var specs []Spec
	for i := 0; len(specs) < n; i++ {
		svc := fmt.Sprintf("/svc%d", i)
		var hosts []string
		switch {
		case i%10 == 9:
			hosts = []string{fmt.Sprintf("*.tenant%d.example.com", i)}
		case i%5 == 4:
			hosts = []string{fmt.Sprintf("svc%d.example.com", i)}
		}
		for _, s := range []Spec{
			{Hosts: hosts, Prefix: svc},
			{Hosts: hosts, Path: svc + "/health"},
			{Hosts: hosts, Path: svc + "/users/{id}"},
			{Hosts: hosts, Path: svc + "/users/{id}/orders/{rest...}"},
			{Hosts: hosts, Methods: []string{"POST"}, Path: svc + "/orders"},
			{Hosts: hosts, Headers: map[string]string{"X-Env": "canary"}, Prefix: svc + "/v2"},
			{Hosts: hosts, Query: map[string]string{"version": "2"}, Prefix: svc + "/v2"},
			{Hosts: hosts, Prefix: svc + "/v2"},
			{Hosts: hosts, Path: svc + "/static/{file...}"},
			{Hosts: hosts, Methods: []string{"GET", "HEAD"}, Path: svc + "/orders"},
		} {
			if len(specs) < n {
				specs = append(specs, s)
			}
		}
	}
	return specs
}

func BenchmarkMatch10(b *testing.B)   { benchMatch(b, 10) }
func BenchmarkMatch1000(b *testing.B) { benchMatch(b, 1000) }

func benchMatch(b *testing.B, n int) {
	rt, err := New(benchSpecs(n))
	if err != nil {
		b.Fatal(err)
	}
	last := n/10 - 1 // the last service, on a wildcard host
	cases := []struct {
		name, host, target string
	}{
		{"prefix", "", "/svc0/some/deep/path/below/the/prefix"},
		{"exact", "", "/svc0/health"},
		{"param", "", "/svc0/users/12345"},
		{"rest", "", "/svc0/users/12345/orders/a/b/c"},
		{"query", "", "/svc0/v2/items?page=3&version=2"},
		{"miss", "", "/nothing/matches/this"},
		{"exacthost", fmt.Sprintf("svc%d.example.com", last-5), fmt.Sprintf("/svc%d/users/1", last-5)},
		{"wildcardhost", fmt.Sprintf("EU.tenant%d.example.com:443", last), fmt.Sprintf("/svc%d/health", last)},
	}
	if n < 100 {
		cases = cases[:6] // the first services have no hosts
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, c.target, nil)
		if c.host != "" {
			r.Host = c.host
		}
		path := CleanPath(r.URL.Path)
		if i, _ := refMatch(benchSpecs(n), r, path); rt.Match(r, path, nil) != i {
			b.Fatalf("%s: Match disagrees with the reference", c.name)
		}
		b.Run(c.name, func(b *testing.B) {
			var p Params
			b.ReportAllocs()
			for b.Loop() {
				rt.Match(r, path, &p)
			}
		})
	}
}

func BenchmarkCleanPath(b *testing.B) {
	for _, p := range []string{"/api/v1/users/12345/orders", "/api/v1/../v2//users/./12345/"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				CleanPath(p)
			}
		})
	}
}
