// Package router selects the route for a request: by host, path, method,
// headers and query parameters. It does no I/O and holds no mutable state; a
// Router is built once per config by New and is then safe for concurrent use.
//
// # Conditions
//
// A Spec lists the conditions of one route; all that are given must hold.
//
//   - Hosts: "api.example.com" matches that host exactly; "*.example.com"
//     matches one or more labels before ".example.com" (a.example.com,
//     a.b.example.com) but not example.com itself. The request host is taken
//     from the Host header without port and without a trailing dot, compared
//     case-insensitively. No hosts means any host.
//   - Methods: the request method must be one of them (case-sensitive, as in
//     HTTP; New upper-cases the configured ones). HEAD is not implied by GET.
//   - Prefix: matches on segment boundaries: "/api" matches "/api", "/api/"
//     and "/api/x" but not "/apix". A trailing slash is ignored ("/api/" is
//     "/api"), and "/" matches every path.
//   - Path: matches the whole path. "{name}" matches exactly one non-empty
//     segment; a final "{name...}" matches the rest of the path after its
//     slash, which may be empty ("/files/{p...}" matches "/files/" and
//     "/files/a/b" but not "/files"). A trailing slash is significant:
//     "/users/{id}" does not match "/users/7/".
//   - Headers: the header must be present with exactly this value (any one of
//     its values, if it is repeated); "*" means present with any value.
//   - Query: the parameter must be present with exactly this value once
//     decoded (any one occurrence, if it is repeated); "*" means present with
//     any value, even an empty one.
//
// # Priority
//
// When several routes match a request, the most specific one wins, decided in
// this order:
//
//  1. Host: an exact host beats a wildcard host, which beats no host
//     condition. Among wildcards, the longer suffix wins (*.api.example.com
//     beats *.example.com).
//  2. Path: an exact literal path beats a path with parameters, which beats a
//     prefix. Among paths with parameters, the first segment in which they
//     differ decides: a literal beats {param}, which beats {rest...}. Among
//     prefixes, the longest wins.
//  3. The route with more conditions wins: one for giving methods, plus one
//     per header and per query condition.
//  4. The route that comes first in the config wins. Routes with identical
//     conditions are rejected by New, since the later could never match.
//
// A route whose host and path match but whose method, headers or query do not
// is skipped, and the next route in this order may match. There is no 405:
// when nothing matches, the answer is 404.
//
// # How matching stays fast
//
// New indexes the routes by host: a map of exact hosts, a map of wildcard
// suffixes (looked up once per dot in the request host, left to right, so
// longer suffixes come first) and one bucket for routes without hosts. Each
// bucket holds a map of exact paths, a segment trie of parameter paths walked
// depth-first in priority order (literal child, then parameter, then rest),
// and a map of prefixes looked up once per slash of the request path, longest
// first. Within each entry, routes are pre-sorted by rule 3 and 4. So Match
// does a handful of map lookups regardless of the number of routes, and
// allocates nothing for up to 8 path parameters.
package router

import (
	"net/http"
	"strings"
)

// Spec is one route's match conditions. See the package documentation for
// their meaning.
type Spec struct {
	// Hosts are exact host names or wildcards such as "*.example.com". Empty
	// means any host.
	Hosts []string
	// Methods are HTTP methods. Empty means any method.
	Methods []string
	// Prefix matches the path on segment boundaries. At most one of Prefix and
	// Path; both empty means Prefix "/".
	Prefix string
	// Path matches the whole path, with {name} and a final {name...}.
	Path string
	// Headers must be present with exactly these values; "*" means present with
	// any value.
	Headers map[string]string
	// Query parameters must be present with exactly these values; "*" means
	// present with any value.
	Query map[string]string
}

// Router selects the best route for a request. It is immutable after New and
// safe for concurrent use.
type Router struct {
	specs      []Spec // normalized copies, for Describe
	exactHosts map[string]*bucket
	wildHosts  map[string]*bucket // keyed by suffix including the dot: ".example.com"
	anyHost    *bucket            // nil when every route names hosts
	// maxWild bounds the host suffixes worth looking up.
	maxWild int
}

// bucket holds the routes of one host key, indexed by path.
type bucket struct {
	exact    map[string][]*route // literal Path → routes, best first
	params   *node               // trie of Paths with parameters
	prefixes map[string][]*route // Prefix → routes, best first
	// maxPrefix is the length of the longest prefix, so that long request
	// paths skip lookups that cannot succeed.
	maxPrefix int
}

// route is the compiled, request-independent form of a Spec.
type route struct {
	index      int
	methods    []string
	headers    []cond // keys in canonical MIME form
	query      []cond
	conds      int      // methods given + len(headers) + len(query), for rule 3
	paramNames []string // in path order, for params
}

// cond is one header or query condition.
type cond struct {
	key, value string
	any        bool // value "*": present with any value
}

// node is one segment position of the parameter-path trie.
type node struct {
	lit    map[string]*node
	param  *node
	rest   []*route // routes whose pattern ends in {rest...} after this node
	routes []*route // routes whose pattern ends at this node
}

// Match returns the index of the best spec matching r, or -1. path must be
// the cleaned request path (see CleanPath); r.URL.Path is not consulted. If
// params is non-nil it is reset and, for a Path route, filled with the path
// parameters of the match; prefix and exact routes leave it empty.
func (rt *Router) Match(r *http.Request, path string, params *Params) int {
	if params != nil {
		params.Reset()
	}
	if len(path) == 0 || path[0] != '/' {
		return -1
	}
	if len(rt.exactHosts) > 0 || len(rt.wildHosts) > 0 {
		if i := rt.matchHost(r, path, params); i >= 0 {
			return i
		}
	}
	if rt.anyHost != nil {
		return rt.anyHost.match(r, path, params)
	}
	return -1
}

// matchHost tries the buckets of hosts, exact first, then wildcards with the
// longest suffix first. The host is lower-cased into a stack buffer, and map
// lookups index with string(buf[...]) directly, which the compiler does
// without allocating.
func (rt *Router) matchHost(r *http.Request, path string, params *Params) int {
	host := requestHost(r)
	var arr [256]byte
	buf := arr[:0]
	if len(host) > len(arr) {
		buf = make([]byte, 0, len(host)) // longer than any DNS name; rare
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	if b := rt.exactHosts[string(buf)]; b != nil {
		if i := b.match(r, path, params); i >= 0 {
			return i
		}
	}
	if len(rt.wildHosts) == 0 {
		return -1
	}
	// The first dot is skipped on purpose: a wildcard needs at least one
	// character before its suffix.
	for i := 1; i < len(buf); i++ {
		if buf[i] != '.' || len(buf)-i > rt.maxWild {
			continue
		}
		if b := rt.wildHosts[string(buf[i:])]; b != nil {
			if i := b.match(r, path, params); i >= 0 {
				return i
			}
		}
	}
	return -1
}

// requestHost returns the request's host without port, IPv6 brackets or
// trailing dot.
func requestHost(r *http.Request) string {
	h := r.Host
	if h == "" && r.URL != nil {
		h = r.URL.Host
	}
	if strings.HasPrefix(h, "[") {
		// A bracketed IPv6 address, perhaps with a port. Anything else is
		// malformed and kept whole, so that it matches no configured host.
		if end := strings.IndexByte(h, ']'); end > 0 && (end == len(h)-1 || h[end+1] == ':' && strings.IndexByte(h[end+2:], ':') < 0) {
			return h[1:end]
		}
		return h
	}
	// A single colon separates the port; more colons mean an unbracketed IPv6
	// address, which keeps them all.
	if i := strings.IndexByte(h, ':'); i >= 0 && strings.LastIndexByte(h, ':') == i {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

// match returns the best route of b for the request, or -1.
func (b *bucket) match(r *http.Request, path string, params *Params) int {
	if b.exact != nil {
		if i := firstAccepted(b.exact[path], r); i >= 0 {
			return i
		}
	}
	if b.params != nil {
		if i := b.params.match(r, path[1:], 0, params); i >= 0 {
			return i
		}
		if params != nil {
			params.Reset() // drop values recorded by branches that failed
		}
	}
	if b.prefixes == nil {
		return -1
	}
	// Candidates, longest first: the path itself, then the path before each
	// slash, then "/".
	if len(path) <= b.maxPrefix {
		if i := firstAccepted(b.prefixes[path], r); i >= 0 {
			return i
		}
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '/' || i > b.maxPrefix {
			continue
		}
		if i := firstAccepted(b.prefixes[path[:i]], r); i >= 0 {
			return i
		}
	}
	if len(path) > 1 {
		return firstAccepted(b.prefixes["/"], r)
	}
	return -1
}

// match walks the trie depth-first in priority order. rem is the part of the
// path after the slash that ends the previous segment; depth is the number of
// parameters recorded so far.
func (n *node) match(r *http.Request, rem string, depth int, params *Params) int {
	seg, next, more := strings.Cut(rem, "/")
	if more {
		if c := n.lit[seg]; c != nil {
			if i := c.match(r, next, depth, params); i >= 0 {
				return i
			}
		}
		if n.param != nil && seg != "" {
			params.set(depth, seg)
			if i := n.param.match(r, next, depth+1, params); i >= 0 {
				return i
			}
		}
	} else {
		if c := n.lit[seg]; c != nil {
			if i := c.accept(r, params); i >= 0 {
				return i
			}
		}
		if n.param != nil && seg != "" {
			params.set(depth, seg)
			if i := n.param.accept(r, params); i >= 0 {
				return i
			}
		}
	}
	for _, rt := range n.rest {
		if rt.accepts(r) {
			params.set(depth, rem)
			params.finish(rt.paramNames)
			return rt.index
		}
	}
	return -1
}

// accept returns the best route ending at n that accepts r, with its
// parameter names attached, or -1.
func (n *node) accept(r *http.Request, params *Params) int {
	for _, rt := range n.routes {
		if rt.accepts(r) {
			params.finish(rt.paramNames)
			return rt.index
		}
	}
	return -1
}

// firstAccepted returns the index of the first route in rts that accepts r,
// or -1.
func firstAccepted(rts []*route, r *http.Request) int {
	for _, rt := range rts {
		if rt.accepts(r) {
			return rt.index
		}
	}
	return -1
}

// accepts reports whether r meets rt's method, header and query conditions.
// Host and path are decided by where rt sits in the index.
func (rt *route) accepts(r *http.Request) bool {
	if len(rt.methods) > 0 {
		m := r.Method
		if m == "" {
			m = http.MethodGet // as net/http defines an empty method
		}
		found := false
		for _, want := range rt.methods {
			if m == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for _, c := range rt.headers {
		vals := r.Header[c.key]
		if len(vals) == 0 {
			return false
		}
		if c.any {
			continue
		}
		found := false
		for _, v := range vals {
			if v == c.value {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if len(rt.query) > 0 {
		raw := ""
		if r.URL != nil {
			raw = r.URL.RawQuery
		}
		for _, c := range rt.query {
			if !queryHas(raw, c) {
				return false
			}
		}
	}
	return true
}

// queryHas reports whether the raw query string has the parameter of c. It
// scans in place instead of calling url.ParseQuery, so that matching does not
// allocate. Like url.ParseQuery, it ignores pairs containing a semicolon or a
// malformed escape.
func queryHas(raw string, c cond) bool {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if !unescapedEqual(k, c.key) {
			continue
		}
		if c.any || unescapedEqual(v, c.value) {
			return true
		}
	}
	return false
}

// unescapedEqual reports whether the query-escaped enc decodes to want,
// decoding on the fly. A malformed escape never equals anything.
func unescapedEqual(enc, want string) bool {
	if strings.IndexByte(enc, '%') < 0 && strings.IndexByte(enc, '+') < 0 {
		return enc == want
	}
	j := 0
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(enc) {
				return false
			}
			hi, ok1 := unhex(enc[i+1])
			lo, ok2 := unhex(enc[i+2])
			if !ok1 || !ok2 {
				return false
			}
			c = hi<<4 | lo
			i += 2
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
