package router

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// tableSpecs exercises every rule; the comments give the index.
var tableSpecs = []Spec{
	{Prefix: "/api"},                                                // 0
	{Prefix: "/api/studio"},                                         // 1
	{Prefix: "/api/studio2/"},                                       // 2: trailing slash ignored
	{Path: "/api/users"},                                            // 3
	{Path: "/api/users/{id}"},                                       // 4
	{Path: "/api/users/{id}/posts/{rest...}"},                       // 5
	{Path: "/api/users/me"},                                         // 6
	{Hosts: []string{"api.example.com"}, Prefix: "/api"},            // 7
	{Hosts: []string{"*.example.com"}, Prefix: "/api"},              // 8
	{Hosts: []string{"*.eu.example.com"}, Prefix: "/api"},           // 9
	{Methods: []string{"POST"}, Path: "/orders"},                    // 10
	{Methods: []string{"GET", "HEAD"}, Path: "/orders"},             // 11
	{Headers: map[string]string{"X-Env": "canary"}, Prefix: "/svc"}, // 12
	{Prefix: "/svc"},                                                // 13
	{Headers: map[string]string{"x-debug": "*"}, Prefix: "/dbg"},    // 14
	{Query: map[string]string{"version": "2 beta"}, Prefix: "/q"},   // 15
	{Query: map[string]string{"flag": "*"}, Prefix: "/q"},           // 16
	{Prefix: "/q"}, // 17
	{Methods: []string{"GET"}, Prefix: "/tie"},               // 18
	{Headers: map[string]string{"X-A": "1"}, Prefix: "/tie"}, // 19
	{Path: "/files/{path...}"},                               // 20
	{Path: "/t/{tenant}/dashboard"},                          // 21
	{Path: "/t/{tenant}/{page}"},                             // 22
	{Path: "/t/{tenant}/{rest...}"},                          // 23
	{Methods: []string{"PUT"}, Path: "/put/{id}"},            // 24
	{Prefix: "/put"},                                         // 25
	{Headers: map[string]string{"X-A": "1"}, Query: map[string]string{"b": "2"}, Prefix: "/more"}, // 26
	{Methods: []string{"GET"}, Prefix: "/more"},                                                   // 27
}

type matchCase struct {
	name    string
	method  string
	host    string
	target  string // path and query
	header  http.Header
	want    int
	wantPar map[string]string
}

func TestMatch(t *testing.T) {
	t.Parallel()
	rt, err := New(tableSpecs)
	if err != nil {
		t.Fatal(err)
	}
	tests := []matchCase{
		{name: "longest prefix", target: "/api/studio2/foo", want: 2},
		{name: "longest prefix exact", target: "/api/studio2", want: 2},
		{name: "shorter prefix", target: "/api/studio/foo", want: 1},
		{name: "segment boundary", target: "/api/studio2x", want: 0},
		{name: "no partial segment", target: "/apix", want: -1},
		{name: "prefix itself", target: "/api", want: 0},
		{name: "prefix with slash", target: "/api/", want: 0},
		{name: "exact beats prefix", target: "/api/users", want: 3},
		{name: "param", target: "/api/users/7", want: 4, wantPar: map[string]string{"id": "7"}},
		{name: "literal beats param", target: "/api/users/me", want: 6},
		{name: "rest", target: "/api/users/7/posts/a/b", want: 5, wantPar: map[string]string{"id": "7", "rest": "a/b"}},
		{name: "empty rest", target: "/api/users/7/posts/", want: 5, wantPar: map[string]string{"id": "7", "rest": ""}},
		{name: "rest needs its slash", target: "/api/users/7/posts", want: 0},
		{name: "trailing slash is significant for path", target: "/api/users/7/", want: 0},
		{name: "exact host", host: "api.example.com", target: "/api/x", want: 7},
		{name: "host case and port", host: "API.Example.COM:8443", target: "/api/x", want: 7},
		{name: "host trailing dot", host: "api.example.com.", target: "/api/x", want: 7},
		{name: "host beats path", host: "api.example.com", target: "/api/users/7", want: 7},
		{name: "wildcard", host: "x.example.com", target: "/api/x", want: 8},
		{name: "longer wildcard", host: "a.eu.example.com", target: "/api/x", want: 9},
		{name: "wildcard needs a label", host: "eu.example.com", target: "/api/x", want: 8},
		{name: "wildcard not apex", host: "example.com", target: "/api/x", want: 0},
		{name: "host falls back to any", host: "api.example.com", target: "/orders", want: 11},
		{name: "host route misses", host: "api.example.com", target: "/nope", want: -1},
		{name: "method POST", method: "POST", target: "/orders", want: 10},
		{name: "method GET", target: "/orders", want: 11},
		{name: "method HEAD", method: "HEAD", target: "/orders", want: 11},
		{name: "method none", method: "DELETE", target: "/orders", want: -1},
		{name: "method miss falls to prefix", method: "GET", target: "/put/1", want: 25},
		{name: "method hit", method: "PUT", target: "/put/1", want: 24, wantPar: map[string]string{"id": "1"}},
		{name: "header", target: "/svc/a", header: http.Header{"X-Env": {"canary"}}, want: 12},
		{name: "header second value", target: "/svc/a", header: http.Header{"X-Env": {"prod", "canary"}}, want: 12},
		{name: "header other value", target: "/svc/a", header: http.Header{"X-Env": {"prod"}}, want: 13},
		{name: "header absent", target: "/svc/a", want: 13},
		{name: "header any", target: "/dbg", header: http.Header{"X-Debug": {""}}, want: 14},
		{name: "header any absent", target: "/dbg", want: -1},
		{name: "query plus", target: "/q?version=2+beta", want: 15},
		{name: "query percent", target: "/q?a=1&version=2%20beta", want: 15},
		{name: "query encoded key", target: "/q?vers%69on=2+beta", want: 15},
		{name: "query other value", target: "/q?version=2", want: 17},
		{name: "query malformed", target: "/q?version=2%2", want: 17},
		{name: "query semicolon pair ignored", target: "/q?a=1;version=2+beta", want: 17},
		{name: "query any bare", target: "/q?flag", want: 16},
		{name: "query any empty", target: "/q?flag=&x=y", want: 16},
		{name: "query both, config order", target: "/q?flag=1&version=2+beta", want: 15},
		{name: "tie config order", target: "/tie", header: http.Header{"X-A": {"1"}}, want: 18},
		{name: "tie other", method: "POST", target: "/tie", header: http.Header{"X-A": {"1"}}, want: 19},
		{name: "tie none", method: "POST", target: "/tie", want: -1},
		{name: "more conditions win", target: "/more?b=2", header: http.Header{"X-A": {"1"}}, want: 26},
		{name: "fewer conditions", target: "/more?b=3", header: http.Header{"X-A": {"1"}}, want: 27},
		{name: "files rest", target: "/files/a/b.txt", want: 20, wantPar: map[string]string{"path": "a/b.txt"}},
		{name: "files root", target: "/files/", want: 20, wantPar: map[string]string{"path": ""}},
		{name: "literal segment beats param", target: "/t/acme/dashboard", want: 21, wantPar: map[string]string{"tenant": "acme"}},
		{name: "param beats rest", target: "/t/acme/home", want: 22, wantPar: map[string]string{"tenant": "acme", "page": "home"}},
		{name: "rest after param", target: "/t/acme/a/b", want: 23, wantPar: map[string]string{"tenant": "acme", "rest": "a/b"}},
		{name: "param is not empty", target: "/files", want: -1},
		{name: "no match", target: "/", want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkMatch(t, rt, tableSpecs, tt)
		})
	}
}

func newRequest(method, host, target string, header http.Header) *http.Request {
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, target, nil)
	if host != "" {
		r.Host = host
	}
	maps.Copy(r.Header, header)
	return r
}

func checkMatch(t *testing.T, rt *Router, specs []Spec, tt matchCase) {
	t.Helper()
	r := newRequest(tt.method, tt.host, tt.target, tt.header)
	path := CleanPath(r.URL.Path)
	var p Params
	desc := fmt.Sprintf("%s %s%s", r.Method, r.Host, tt.target)
	if got := rt.Match(r, path, &p); got != tt.want {
		t.Fatalf("Match(%s) = %d (%s), want %d (%s)", desc, got, rt.Describe(got), tt.want, rt.Describe(tt.want))
	}
	if got := paramsMap(&p); !maps.Equal(got, tt.wantPar) {
		t.Errorf("Match(%s) params = %v, want %v", desc, got, tt.wantPar)
	}
	// The naive reference must agree, so the table also checks it.
	if got, _ := refMatch(specs, r, path); got != tt.want {
		t.Errorf("refMatch(%s) = %d, want %d", desc, got, tt.want)
	}
	if got := rt.Match(r, path, nil); got != tt.want {
		t.Errorf("Match(%s, nil params) = %d, want %d", desc, got, tt.want)
	}
}

func TestMatchRootAndEmpty(t *testing.T) {
	t.Parallel()
	rt, err := New([]Spec{{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/a", "/a/b/"} {
		if got := rt.Match(newRequest("", "", path, nil), path, nil); got != 0 {
			t.Errorf("Match(%q) = %d, want 0", path, got)
		}
	}
	empty, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := empty.Match(newRequest("", "", "/", nil), "/", nil); got != -1 {
		t.Errorf("New(nil).Match(/) = %d, want -1", got)
	}
	// A path that CleanPath did not produce matches nothing rather than panic.
	if got := rt.Match(newRequest("", "", "/", nil), "", nil); got != -1 {
		t.Errorf(`Match("") = %d, want -1`, got)
	}
}

func TestMatchHostOnly(t *testing.T) {
	t.Parallel()
	// Only host-specific routes: no any-host bucket at all.
	specs := []Spec{
		{Hosts: []string{"a.test", "*.b.test"}, Path: "/x/{id}"},
		{Hosts: []string{"*.test"}},
	}
	rt, err := New(specs)
	if err != nil {
		t.Fatal(err)
	}
	tests := []matchCase{
		{name: "exact", host: "a.test", target: "/x/1", want: 0, wantPar: map[string]string{"id": "1"}},
		{name: "exact falls to wildcard", host: "a.test", target: "/y", want: 1},
		{name: "wildcard of same spec", host: "c.b.test", target: "/x/1", want: 0, wantPar: map[string]string{"id": "1"}},
		{name: "ipv6", host: "[::1]:80", target: "/x/1", want: -1},
		{name: "no host", host: "other", target: "/x/1", want: -1},
		{name: "long host", host: strings.Repeat("a", 300) + ".test", target: "/", want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkMatch(t, rt, specs, tt)
		})
	}
}

func TestParamsOverflow(t *testing.T) {
	t.Parallel()
	var pat, path strings.Builder
	want := map[string]string{}
	for i := range 11 {
		fmt.Fprintf(&pat, "/{p%d}", i)
		fmt.Fprintf(&path, "/v%d", i)
		want[fmt.Sprintf("p%d", i)] = fmt.Sprintf("v%d", i)
	}
	rt, err := New([]Spec{{Path: pat.String()}})
	if err != nil {
		t.Fatal(err)
	}
	var p Params
	if got := rt.Match(newRequest("", "", path.String(), nil), path.String(), &p); got != 0 {
		t.Fatalf("Match(%s) = %d, want 0", path.String(), got)
	}
	if got := paramsMap(&p); !maps.Equal(got, want) {
		t.Errorf("Match(%s) params = %v, want %v", path.String(), got, want)
	}
	if got := p.Get("p10"); got != "v10" {
		t.Errorf("Get(p10) = %q, want v10", got)
	}
	if got := p.Get("nope"); got != "" {
		t.Errorf("Get(nope) = %q, want empty", got)
	}
	p.Reset()
	if p.Len() != 0 {
		t.Errorf("Len() after Reset = %d, want 0", p.Len())
	}
}

func TestMatchAllocs(t *testing.T) {
	rt, err := New(tableSpecs)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, host, target string
		header             http.Header
	}{
		{name: "prefix", target: "/api/studio2/foo/bar"},
		{name: "exact", target: "/api/users"},
		{name: "param", target: "/api/users/7"},
		{name: "rest", target: "/api/users/7/posts/a/b"},
		{name: "wildcard host upper-case", host: "X.EU.Example.com:443", target: "/api/x"},
		{name: "header", target: "/svc/x", header: http.Header{"X-Env": {"canary"}}},
		{name: "query escaped", target: "/q?x=1&version=2%20beta"},
		{name: "miss", target: "/nothing/here"},
	}
	for _, tt := range tests {
		r := newRequest("", tt.host, tt.target, tt.header)
		path := CleanPath(r.URL.Path)
		var p Params
		if n := testing.AllocsPerRun(100, func() { rt.Match(r, path, &p) }); n != 0 {
			t.Errorf("Match(%s) allocs = %v, want 0", tt.target, n)
		}
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		specs []Spec
		want  []SpecError // Msg is a substring
	}{
		{name: "empty param", specs: []Spec{{Path: "/a/{}"}}, want: []SpecError{{0, "path", "empty parameter name"}}},
		{name: "empty rest", specs: []Spec{{Path: "/a/{...}"}}, want: []SpecError{{0, "path", "empty parameter name"}}},
		{name: "rest not last", specs: []Spec{{Path: "/{a...}/b"}}, want: []SpecError{{0, "path", "must be the last segment"}}},
		{name: "rest then slash", specs: []Spec{{Path: "/{a...}/"}}, want: []SpecError{{0, "path", "must be the last segment"}}},
		{name: "duplicate names", specs: []Spec{{Path: "/{a}/{a}"}}, want: []SpecError{{0, "path", `duplicate parameter name "a"`}}},
		{name: "unclosed", specs: []Spec{{Path: "/{a"}}, want: []SpecError{{0, "path", "unclosed brace"}}},
		{name: "mixed", specs: []Spec{{Path: "/a{b}"}}, want: []SpecError{{0, "path", "mixes text and braces"}}},
		{name: "mixed after", specs: []Spec{{Path: "/{b}.json"}}, want: []SpecError{{0, "path", "mixes text and braces"}}},
		{name: "bad name", specs: []Spec{{Path: "/{a-b}"}}, want: []SpecError{{0, "path", "parameter name"}}},
		{name: "path relative", specs: []Spec{{Path: "a/b"}}, want: []SpecError{{0, "path", "must start with /"}}},
		{name: "path empty segment", specs: []Spec{{Path: "/a//b"}}, want: []SpecError{{0, "path", "empty segment"}}},
		{name: "path dot segment", specs: []Spec{{Path: "/a/../b"}}, want: []SpecError{{0, "path", "dot segment"}}},
		{name: "prefix and path", specs: []Spec{{Prefix: "/a", Path: "/a"}}, want: []SpecError{{0, "path", "at most one"}}},
		{name: "prefix relative", specs: []Spec{{Prefix: "api"}}, want: []SpecError{{0, "prefix", "must start with /"}}},
		{name: "prefix unclean", specs: []Spec{{Prefix: "/a//b"}}, want: []SpecError{{0, "prefix", `did you mean "/a/b"`}}},
		{name: "prefix params", specs: []Spec{{Prefix: "/a/{b}"}}, want: []SpecError{{0, "prefix", "use path"}}},
		{name: "host star", specs: []Spec{{Hosts: []string{"*"}}}, want: []SpecError{{0, "hosts", "omit hosts"}}},
		{name: "host inner star", specs: []Spec{{Hosts: []string{"a.*.com"}}}, want: []SpecError{{0, "hosts", "leading"}}},
		{name: "host port", specs: []Spec{{Hosts: []string{"a.com:80"}}}, want: []SpecError{{0, "hosts", "without scheme, port"}}},
		{name: "host empty label", specs: []Spec{{Hosts: []string{"a..com"}}}, want: []SpecError{{0, "hosts", "empty label"}}},
		{name: "method", specs: []Spec{{Methods: []string{"GE T"}}}, want: []SpecError{{0, "methods", "not a method"}}},
		{name: "header name", specs: []Spec{{Headers: map[string]string{"X A": "1"}}}, want: []SpecError{{0, "headers", "not a header name"}}},
		{name: "header host", specs: []Spec{{Headers: map[string]string{"host": "a"}}}, want: []SpecError{{0, "headers", "with hosts"}}},
		{name: "header twice", specs: []Spec{{Headers: map[string]string{"x-a": "1", "X-A": "2"}}}, want: []SpecError{{0, "headers", "given twice"}}},
		{name: "query empty key", specs: []Spec{{Query: map[string]string{"": "1"}}}, want: []SpecError{{0, "query", "empty name"}}},
		{
			name:  "duplicate spec",
			specs: []Spec{{Prefix: "/a"}, {Prefix: "/b"}, {Prefix: "/a/"}},
			want:  []SpecError{{2, "", "same conditions as spec 0"}},
		},
		{
			name: "duplicate modulo order, case and names",
			specs: []Spec{
				{Hosts: []string{"b.com", "A.com"}, Methods: []string{"get", "POST"}, Path: "/u/{id}", Headers: map[string]string{"x-a": "1"}},
				{Hosts: []string{"a.com", "b.com"}, Methods: []string{"POST", "GET"}, Path: "/u/{uid}", Headers: map[string]string{"X-A": "1"}},
			},
			want: []SpecError{{1, "", "same conditions as spec 0"}},
		},
		{
			name:  "all problems at once",
			specs: []Spec{{Path: "/{"}, {Prefix: "x"}, {Hosts: []string{""}}},
			want:  []SpecError{{0, "path", "unclosed"}, {1, "prefix", "start with /"}, {2, "hosts", "empty host"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rt, err := New(tt.specs)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("New(%+v) = %v, %v, want Errors", tt.specs, rt, err)
			}
			if rt != nil {
				t.Errorf("New(%+v) router = %v, want nil", tt.specs, rt)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("New(%+v) = %v, want %d problems", tt.specs, err, len(tt.want))
			}
			for i, want := range tt.want {
				got := errs[i]
				if got.Index != want.Index || got.Field != want.Field || !strings.Contains(got.Msg, want.Msg) {
					t.Errorf("New(%+v) problem %d = %+v, want %+v", tt.specs, i, *got, want)
				}
			}
			var se *SpecError
			if !errors.As(err, &se) || se != errs[0] {
				t.Errorf("errors.As(New(%+v), *SpecError) = %v, want %v", tt.specs, se, errs[0])
			}
		})
	}
}

func TestNewValid(t *testing.T) {
	t.Parallel()
	// Specs that look alike but are not duplicates.
	specs := []Spec{
		{Prefix: "/a"},
		{Path: "/a"},
		{Path: "/a/"},
		{Prefix: "/a", Methods: []string{"GET"}},
		{Prefix: "/a", Hosts: []string{"x.com"}},
		{Prefix: "/a", Hosts: []string{"*.x.com"}},
		{Path: "/{a}"},
		{Path: "/{a...}"},
		{Path: "/{a}/{b...}"},
		{Path: "/a/{b}", Query: map[string]string{"a": "*"}},
		{Path: "/a/{b}", Headers: map[string]string{"a": "*"}},
	}
	if _, err := New(specs); err != nil {
		t.Errorf("New(%+v) = %v, want nil error", specs, err)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	rt, err := New([]Spec{
		{Hosts: []string{"*.Example.com"}, Methods: []string{"post", "GET"}, Path: "/users/{id}", Headers: map[string]string{"x-env": "canary"}},
		{},
		{Prefix: "/api/", Query: map[string]string{"q": "a b", "flag": "*"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give int
		want string
	}{
		{0, "host=*.example.com method=GET,POST path=/users/{id} header[X-Env]=canary"},
		{1, "prefix=/"},
		{2, `prefix=/api query[flag]=* query[q]="a b"`},
		{3, ""},
		{-1, ""},
	}
	for _, tt := range tests {
		if got := rt.Describe(tt.give); got != tt.want {
			t.Errorf("Describe(%d) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// TestMatchRandom compares Match with the reference on random route sets and
// requests drawn from small pools, so that overlaps are common.
func TestMatchRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	patterns := []string{"/", "/a", "/a/", "/a/b", "/{x}", "/{x}/", "/a/{x}", "/{x}/b", "/{x}/{y}", "/{r...}", "/a/{r...}", "/{x}/{r...}", "/a/b/{r...}", "/{x}/b/{y}"}
	prefixes := []string{"/", "/a", "/a/b", "/b", "/a/b/c"}
	hosts := []string{"a.test", "*.test", "*.a.test", "b.a.test"}
	paths := []string{"/", "/a", "/a/", "/a/b", "/a/b/", "/a/b/c", "/b", "/b/b", "/c/b/d", "/a//b", "/a/b/c/d/e", "/x/y/z/"}
	reqHosts := []string{"a.test", "b.a.test", "c.a.test", "x.test", "other", "A.TEST:80"}
	matched := 0
	for round := range 300 {
		var specs []Spec
		for range 1 + rng.IntN(12) {
			var s Spec
			if rng.IntN(2) == 0 {
				s.Path = pick(patterns)
			} else {
				s.Prefix = pick(prefixes)
			}
			if rng.IntN(3) == 0 {
				s.Hosts = []string{pick(hosts)}
			}
			if rng.IntN(3) == 0 {
				s.Methods = []string{pick([]string{"GET", "POST"})}
			}
			if rng.IntN(4) == 0 {
				s.Headers = map[string]string{"X-A": pick([]string{"1", "*"})}
			}
			if rng.IntN(4) == 0 {
				s.Query = map[string]string{"q": pick([]string{"1", "*"})}
			}
			specs = append(specs, s)
		}
		rt, err := New(specs)
		var errs Errors
		if errors.As(err, &errs) {
			// Drop the duplicates and build again.
			specs = dropSpecs(specs, errs)
			if rt, err = New(specs); err != nil {
				t.Fatalf("round %d: New(%+v) = %v", round, specs, err)
			}
		}
		for range 30 {
			target := pick(paths) + pick([]string{"", "?q=1", "?q=2", "?q"})
			var h http.Header
			if rng.IntN(2) == 0 {
				h = http.Header{"X-A": {pick([]string{"1", "2"})}}
			}
			r := newRequest(pick([]string{"GET", "POST"}), pick(reqHosts), target, h)
			path := CleanPath(r.URL.Path)
			var p Params
			got := rt.Match(r, path, &p)
			want, wantPar := refMatch(specs, r, path)
			if got != want || !maps.Equal(paramsMap(&p), wantPar) {
				t.Fatalf("round %d: specs %+v\nMatch(%s %s%s) = %d %v, want %d %v", round, specs, r.Method, r.Host, target, got, paramsMap(&p), want, wantPar)
			}
			if got >= 0 {
				matched++
			}
		}
	}
	// Guard against a generator that stops producing matches.
	if matched < 300*30/4 {
		t.Errorf("only %d of %d random requests matched; the test checks too little", matched, 300*30)
	}
}
