package router

import (
	"cmp"
	"fmt"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// SpecError describes a problem with one field of specs[Index].
type SpecError struct {
	// Index is the position of the spec in the slice given to New.
	Index int
	// Field is "hosts", "methods", "prefix", "path", "headers" or "query", or
	// "" when the problem concerns the spec as a whole (a duplicate).
	Field string
	// Msg says what is wrong, in lower case.
	Msg string
}

// Error implements error.
func (e *SpecError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("spec %d: %s", e.Index, e.Msg)
	}
	return fmt.Sprintf("spec %d: %s: %s", e.Index, e.Field, e.Msg)
}

// Errors lists every problem New found, so that a config can be fixed in one
// pass. Match it with errors.As.
type Errors []*SpecError

// Error implements error.
func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the single problems, so that errors.As finds a *SpecError.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// New compiles specs into a Router. It normalizes defensively (hosts
// lower-case, methods upper-case, a trailing slash dropped from prefixes) and
// reports every invalid spec, and every spec whose conditions repeat an
// earlier one's, as an Errors. New(nil) returns a Router that matches nothing.
func New(specs []Spec) (*Router, error) {
	c := compiler{
		rt:   &Router{specs: make([]Spec, len(specs))},
		seen: make(map[string]int, len(specs)),
	}
	for i, s := range specs {
		c.add(i, s)
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	c.sort()
	return c.rt, nil
}

type compiler struct {
	rt   *Router
	errs Errors
	seen map[string]int // canonical conditions → first spec index
}

func (c *compiler) fail(i int, field, format string, args ...any) {
	c.errs = append(c.errs, &SpecError{Index: i, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// pattern is a parsed Path or Prefix.
type pattern struct {
	kind   int      // kindExact, kindParams or kindPrefix
	value  string   // normalized prefix, or literal path
	segs   []patSeg // for kindParams
	canon  string   // parameter names erased, for duplicate detection
	params []string
}

const (
	kindExact = iota
	kindParams
	kindPrefix
)

type patSeg struct {
	lit  string
	kind int // segLit, segParam or segRest
}

const (
	segLit = iota
	segParam
	segRest
)

func (c *compiler) add(i int, s Spec) {
	nerr := len(c.errs)
	hosts := c.hosts(i, s.Hosts)
	methods := c.methods(i, s.Methods)
	pat := c.pattern(i, s)
	headers := c.conds(i, "headers", s.Headers, textproto.CanonicalMIMEHeaderKey)
	query := c.conds(i, "query", s.Query, func(k string) string { return k })

	norm := Spec{Hosts: hosts, Methods: methods, Headers: map[string]string{}, Query: map[string]string{}}
	if pat.kind == kindPrefix {
		norm.Prefix = pat.value
	} else {
		norm.Path = s.Path
	}
	for _, h := range headers {
		norm.Headers[h.key] = h.value
	}
	for _, q := range query {
		norm.Query[q.key] = q.value
	}
	c.rt.specs[i] = norm
	if len(c.errs) > nerr {
		return
	}

	key := canonical(hosts, methods, pat, headers, query)
	if first, ok := c.seen[key]; ok {
		c.fail(i, "", "same conditions as spec %d, which always wins", first)
		return
	}
	c.seen[key] = i

	rt := &route{index: i, methods: methods, headers: headers, query: query, paramNames: pat.params}
	if len(methods) > 0 {
		rt.conds++
	}
	rt.conds += len(headers) + len(query)

	if len(hosts) == 0 {
		if c.rt.anyHost == nil {
			c.rt.anyHost = &bucket{}
		}
		c.rt.anyHost.add(rt, pat)
	}
	for _, h := range hosts {
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			c.rt.wildHosts = addTo(c.rt.wildHosts, suffix, rt, pat)
			c.rt.maxWild = max(c.rt.maxWild, len(suffix))
		} else {
			c.rt.exactHosts = addTo(c.rt.exactHosts, h, rt, pat)
		}
	}
}

// canonical identifies a spec's conditions regardless of order and of
// parameter names: /users/{id} and /users/{uid} match the same requests.
func canonical(hosts, methods []string, pat pattern, headers, query []cond) string {
	var b strings.Builder
	b.WriteString(strings.Join(hosts, ","))
	b.WriteByte(0)
	b.WriteString(strings.Join(methods, ","))
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(pat.kind))
	b.WriteString(pat.canon)
	for _, cs := range [][]cond{headers, query} {
		b.WriteByte(0)
		for _, c := range cs {
			b.WriteString(strconv.Quote(c.key))
			b.WriteString(strconv.Quote(c.value))
		}
	}
	return b.String()
}

func addTo(m map[string]*bucket, key string, rt *route, pat pattern) map[string]*bucket {
	if m == nil {
		m = make(map[string]*bucket)
	}
	b := m[key]
	if b == nil {
		b = &bucket{}
		m[key] = b
	}
	b.add(rt, pat)
	return m
}

func (b *bucket) add(rt *route, pat pattern) {
	switch pat.kind {
	case kindExact:
		if b.exact == nil {
			b.exact = make(map[string][]*route)
		}
		b.exact[pat.value] = append(b.exact[pat.value], rt)
	case kindPrefix:
		if b.prefixes == nil {
			b.prefixes = make(map[string][]*route)
		}
		b.prefixes[pat.value] = append(b.prefixes[pat.value], rt)
		b.maxPrefix = max(b.maxPrefix, len(pat.value))
	case kindParams:
		if b.params == nil {
			b.params = &node{}
		}
		n := b.params
		for _, s := range pat.segs {
			switch s.kind {
			case segLit:
				if n.lit == nil {
					n.lit = make(map[string]*node)
				}
				c := n.lit[s.lit]
				if c == nil {
					c = &node{}
					n.lit[s.lit] = c
				}
				n = c
			case segParam:
				if n.param == nil {
					n.param = &node{}
				}
				n = n.param
			case segRest:
				n.rest = append(n.rest, rt)
				return
			}
		}
		n.routes = append(n.routes, rt)
	}
}

// sort orders every route list by rule 3 (more conditions first) and rule 4
// (config order), so that Match can take the first route that accepts.
func (c *compiler) sort() {
	buckets := []*bucket{c.rt.anyHost}
	for _, b := range c.rt.exactHosts {
		buckets = append(buckets, b)
	}
	for _, b := range c.rt.wildHosts {
		buckets = append(buckets, b)
	}
	for _, b := range buckets {
		if b == nil {
			continue
		}
		for _, rts := range b.exact {
			sortRoutes(rts)
		}
		for _, rts := range b.prefixes {
			sortRoutes(rts)
		}
		if b.params != nil {
			b.params.sort()
		}
	}
}

func (n *node) sort() {
	sortRoutes(n.routes)
	sortRoutes(n.rest)
	for _, c := range n.lit {
		c.sort()
	}
	if n.param != nil {
		n.param.sort()
	}
}

func sortRoutes(rts []*route) {
	slices.SortFunc(rts, func(a, b *route) int {
		if a.conds != b.conds {
			return b.conds - a.conds
		}
		return cmp.Compare(a.index, b.index)
	})
}

// hosts validates and normalizes hosts: lower-case, no trailing dot, sorted
// and without repeats.
func (c *compiler) hosts(i int, hosts []string) []string {
	var out []string
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		name := h
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			name = rest
		}
		switch {
		case h == "*":
			c.fail(i, "hosts", "%q: omit hosts to match any host", h)
			continue
		case name == "":
			c.fail(i, "hosts", "empty host")
			continue
		case strings.ContainsAny(name, "*"):
			c.fail(i, "hosts", "%q: a wildcard is allowed only as a leading \"*.\"", h)
			continue
		case !isASCII(name):
			// Hosts arrive in punycode, and the request side lower-cases
			// ASCII only, to stay allocation-free.
			c.fail(i, "hosts", "%q: write an international name in its xn-- form", h)
			continue
		case strings.ContainsAny(name, ":/ \t[]@?#"):
			c.fail(i, "hosts", "%q: a host is a name without scheme, port or path", h)
			continue
		case strings.HasPrefix(name, ".") || strings.Contains(name, ".."):
			c.fail(i, "hosts", "%q: empty label", h)
			continue
		}
		out = append(out, h)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// methods validates and normalizes methods: upper-case, sorted, no repeats.
func (c *compiler) methods(i int, methods []string) []string {
	var out []string
	for _, m := range methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" || !isToken(m) {
			c.fail(i, "methods", "%q is not a method name", m)
			continue
		}
		out = append(out, m)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// conds validates header or query conditions and returns them sorted by key.
func (c *compiler) conds(i int, field string, m map[string]string, canon func(string) string) []cond {
	var out []cond
	for k, v := range m {
		if k == "" {
			c.fail(i, field, "empty name")
			continue
		}
		if field == "headers" && !isToken(k) {
			c.fail(i, field, "%q is not a header name", k)
			continue
		}
		if field == "headers" && canon(k) == "Host" {
			// net/http moves Host out of Request.Header, so this could never match.
			c.fail(i, field, "match the host with hosts, not a Host header")
			continue
		}
		out = append(out, cond{key: canon(k), value: v, any: v == "*"})
	}
	slices.SortFunc(out, func(a, b cond) int { return strings.Compare(a.key, b.key) })
	for j := 1; j < len(out); j++ {
		if out[j].key == out[j-1].key {
			c.fail(i, field, "%q given twice (header names are case-insensitive)", out[j].key)
		}
	}
	return out
}

// isToken reports whether s is an HTTP token (RFC 9110, section 5.6.2).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

// pattern parses the spec's Prefix or Path.
func (c *compiler) pattern(i int, s Spec) pattern {
	switch {
	case s.Prefix != "" && s.Path != "":
		c.fail(i, "path", "give at most one of prefix and path")
		return pattern{kind: kindPrefix, value: s.Prefix}
	case s.Path != "":
		p, err := parsePath(s.Path)
		if err != "" {
			c.fail(i, "path", "%q: %s", s.Path, err)
		}
		return p
	}
	p := s.Prefix
	if p == "" {
		p = "/"
	}
	switch {
	case p[0] != '/':
		c.fail(i, "prefix", "%q must start with /", s.Prefix)
	case strings.ContainsAny(p, "{}"):
		c.fail(i, "prefix", "%q: a prefix has no parameters; use path for {name}", s.Prefix)
	case CleanPath(p) != p:
		c.fail(i, "prefix", "%q is not a clean path (did you mean %q?)", s.Prefix, CleanPath(p))
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return pattern{kind: kindPrefix, value: p, canon: p}
}

// parsePath parses a Path pattern; the error is "" when it is valid.
func parsePath(p string) (pattern, string) {
	pat := pattern{kind: kindExact, value: p, canon: p}
	if p[0] != '/' {
		return pat, "must start with /"
	}
	var canon strings.Builder
	parts := strings.Split(p[1:], "/")
	for j, part := range parts {
		last := j == len(parts)-1
		canon.WriteByte('/')
		switch {
		case part == "" && !last:
			return pat, "empty segment (request paths are cleaned, so it never matches)"
		case part == "." || part == "..":
			return pat, "dot segment (request paths are cleaned, so it never matches)"
		case !strings.ContainsAny(part, "{}"):
			pat.segs = append(pat.segs, patSeg{lit: part, kind: segLit})
			canon.WriteString(part)
			continue
		case part[0] != '{' || part[len(part)-1] != '}' || len(part) < 2:
			if part[0] == '{' && !strings.Contains(part, "}") {
				return pat, fmt.Sprintf("unclosed brace in %q", part)
			}
			return pat, fmt.Sprintf("segment %q mixes text and braces; a segment is literal text or one {name}", part)
		}
		name := part[1 : len(part)-1]
		kind := segParam
		if n, ok := strings.CutSuffix(name, "..."); ok {
			name, kind = n, segRest
			if !last {
				return pat, fmt.Sprintf("{%s...} must be the last segment", name)
			}
		}
		if name == "" {
			return pat, "empty parameter name"
		}
		if !isIdent(name) {
			return pat, fmt.Sprintf("parameter name %q: use letters, digits and _", name)
		}
		if slices.Contains(pat.params, name) {
			return pat, fmt.Sprintf("duplicate parameter name %q", name)
		}
		pat.params = append(pat.params, name)
		pat.segs = append(pat.segs, patSeg{kind: kind})
		if kind == segRest {
			canon.WriteString("{...}")
		} else {
			canon.WriteString("{}")
		}
	}
	if len(pat.params) > 0 {
		pat.kind = kindParams
		pat.canon = canon.String()
	}
	return pat, ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Describe returns a one-line description of spec i's conditions, such as
// `host=*.example.com method=GET,POST path=/users/{id} header[X-Env]=canary`,
// or "" if i is out of range. Values with spaces or quotes are quoted.
func (rt *Router) Describe(i int) string {
	if i < 0 || i >= len(rt.specs) {
		return ""
	}
	s := rt.specs[i]
	var parts []string
	if len(s.Hosts) > 0 {
		parts = append(parts, "host="+strings.Join(s.Hosts, ","))
	}
	if len(s.Methods) > 0 {
		parts = append(parts, "method="+strings.Join(s.Methods, ","))
	}
	if s.Path != "" {
		parts = append(parts, "path="+quoteIfNeeded(s.Path))
	} else {
		parts = append(parts, "prefix="+quoteIfNeeded(s.Prefix))
	}
	for _, k := range sortedKeys(s.Headers) {
		parts = append(parts, "header["+k+"]="+quoteIfNeeded(s.Headers[k]))
	}
	for _, k := range sortedKeys(s.Query) {
		parts = append(parts, "query["+quoteIfNeeded(k)+"]="+quoteIfNeeded(s.Query[k]))
	}
	return strings.Join(parts, " ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// quoteIfNeeded keeps the line splittable on spaces.
func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\"=[]") || !strconv.CanBackquote(s) {
		return strconv.Quote(s)
	}
	return s
}
