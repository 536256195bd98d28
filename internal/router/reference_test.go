package router

import (
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
)

// The reference matcher below is a deliberately naive restatement of the
// package's rules: it checks every spec and compares candidates with an
// explicit ranking. Tests compare Match against it, so the index structures
// are checked against the documented rule rather than against themselves.

type refRank struct {
	hostTier  int // 2 exact, 1 wildcard, 0 any
	wildLen   int
	class     int   // 2 exact path, 1 parameter path, 0 prefix
	kinds     []int // per segment: 2 literal, 1 {param}, 0 {rest...}
	prefixLen int
	conds     int
	index     int
}

func (a refRank) better(b refRank) bool {
	if a.hostTier != b.hostTier {
		return a.hostTier > b.hostTier
	}
	if a.wildLen != b.wildLen {
		return a.wildLen > b.wildLen
	}
	if a.class != b.class {
		return a.class > b.class
	}
	if c := slices.Compare(a.kinds, b.kinds); c != 0 {
		// Lexicographic compare also makes the longer of two equal-so-far
		// lists win: "then more segments wins".
		return c > 0
	}
	if a.prefixLen != b.prefixLen {
		return a.prefixLen > b.prefixLen
	}
	if a.conds != b.conds {
		return a.conds > b.conds
	}
	return a.index < b.index
}

// refMatch returns the best spec for the request and its parameters.
func refMatch(specs []Spec, r *http.Request, path string) (int, map[string]string) {
	best, bestParams := -1, map[string]string(nil)
	var bestRank refRank
	for i, s := range specs {
		rank := refRank{index: i}
		var ok bool
		if rank.hostTier, rank.wildLen, ok = refHost(s.Hosts, r); !ok {
			continue
		}
		if len(s.Methods) > 0 {
			if !slices.ContainsFunc(s.Methods, func(m string) bool { return strings.ToUpper(m) == r.Method }) {
				continue
			}
			rank.conds++
		}
		if !refHeaders(s.Headers, r) || !refQuery(s.Query, r) {
			continue
		}
		rank.conds += len(s.Headers) + len(s.Query)
		params, ok := refPath(s, path, &rank)
		if !ok {
			continue
		}
		if best < 0 || rank.better(bestRank) {
			best, bestRank, bestParams = i, rank, params
		}
	}
	return best, bestParams
}

func refHost(hosts []string, r *http.Request) (tier, wildLen int, ok bool) {
	if len(hosts) == 0 {
		return 0, 0, true
	}
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	tier = -1
	for _, want := range hosts {
		want = strings.TrimSuffix(strings.ToLower(want), ".")
		if suffix, isWild := strings.CutPrefix(want, "*"); isWild {
			if len(h) > len(suffix) && strings.HasSuffix(h, suffix) && (tier < 1 || tier == 1 && len(suffix) > wildLen) {
				tier, wildLen = 1, len(suffix)
			}
		} else if h == want {
			tier, wildLen = 2, 0
		}
	}
	return tier, wildLen, tier >= 0
}

func refHeaders(want map[string]string, r *http.Request) bool {
	for k, v := range want {
		vals := r.Header.Values(textproto.CanonicalMIMEHeaderKey(k))
		if len(vals) == 0 || v != "*" && !slices.Contains(vals, v) {
			return false
		}
	}
	return true
}

func refQuery(want map[string]string, r *http.Request) bool {
	q, _ := url.ParseQuery(r.URL.RawQuery) // keeps the valid pairs on error
	for k, v := range want {
		vals, ok := q[k]
		if !ok || v != "*" && !slices.Contains(vals, v) {
			return false
		}
	}
	return true
}

// refPath matches the spec's Prefix or Path against path, filling the path
// part of rank.
func refPath(s Spec, path string, rank *refRank) (map[string]string, bool) {
	if s.Path == "" {
		p := s.Prefix
		if p == "" {
			p = "/"
		}
		if len(p) > 1 {
			p = strings.TrimSuffix(p, "/")
		}
		rank.class, rank.prefixLen = 0, len(p)
		return nil, p == "/" || path == p || strings.HasPrefix(path, p+"/")
	}
	if !strings.Contains(s.Path, "{") {
		rank.class = 2
		return nil, path == s.Path
	}
	rank.class = 1
	params := map[string]string{}
	psegs := strings.Split(s.Path[1:], "/")
	rsegs := strings.Split(path[1:], "/")
	for j, ps := range psegs {
		if strings.HasSuffix(ps, "...}") {
			if j >= len(rsegs) {
				return nil, false
			}
			params[ps[1:len(ps)-4]] = strings.Join(rsegs[j:], "/")
			rank.kinds = append(rank.kinds, 0)
			return params, true
		}
		if j >= len(rsegs) {
			return nil, false
		}
		if strings.HasPrefix(ps, "{") {
			if rsegs[j] == "" {
				return nil, false
			}
			params[ps[1:len(ps)-1]] = rsegs[j]
			rank.kinds = append(rank.kinds, 1)
			continue
		}
		if ps != rsegs[j] {
			return nil, false
		}
		rank.kinds = append(rank.kinds, 2)
	}
	return params, len(psegs) == len(rsegs)
}

// paramsMap turns p into a map for comparisons; nil when empty.
func paramsMap(p *Params) map[string]string {
	if p.Len() == 0 {
		return nil
	}
	m := make(map[string]string, p.Len())
	for i := 0; i < p.Len(); i++ {
		m[p.Name(i)] = p.Value(i)
	}
	return m
}
