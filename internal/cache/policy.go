package cache

import (
	"net/http"
	"strings"
	"time"
)

// This file is the cache's policy, RFC 9111 for a shared cache plus the
// stale-while-revalidate and stale-if-error extensions of RFC 5861: which
// responses may be stored, how long they stay fresh, how old they are and
// when a stored response may answer a request. It does no I/O.

// maxDelta is the largest delta-seconds value the cache distinguishes: RFC
// 9111 §1.2.2 says a larger value, or one that overflows, is taken as 2^31.
const maxDelta = 1 << 31

// heuristicFraction and heuristicMax bound the heuristic freshness of a
// response with Last-Modified and no explicit lifetime in strict mode
// (CACHE_TTL=0): 10% of the time since the last modification (the fraction
// RFC 9111 §4.2.2 suggests), never more than a day, so a resource unchanged
// for a year is not cached for five weeks on a guess.
const (
	heuristicFraction = 10
	heuristicMax      = 24 * time.Hour
)

// directive flags.
const (
	ccNoStore uint32 = 1 << iota
	ccNoCache
	ccPrivate
	ccPublic
	ccMustRevalidate
	ccProxyRevalidate
	ccOnlyIfCached
	ccMaxAge
	ccSMaxAge
	ccMaxStale
	ccMaxStaleAny // max-stale without a value: any staleness
	ccMinFresh
	ccStaleWhileRevalidate
	ccStaleIfError
)

// directives are the Cache-Control directives of a request or a response, in
// seconds. Parsing follows RFC 9111 §5.2: names are case-insensitive,
// arguments may be tokens or quoted strings, a field-name list on no-cache or
// private counts as the unqualified directive (the cache does not store
// responses partially), a directive that appears twice keeps its most
// restrictive value, and an invalid argument makes the directive restrictive:
// a response's max-age or s-maxage becomes 0 (stale, §4.2.1), a request's
// max-age 0 and min-fresh "forever" (the request is revalidated), while an
// invalid max-stale, stale-while-revalidate or stale-if-error grants nothing.
type directives struct {
	flags    uint32
	maxAge   int64
	sMaxAge  int64
	maxStale int64
	minFresh int64
	swr      int64 // stale-while-revalidate (RFC 5861 §3)
	sie      int64 // stale-if-error (RFC 5861 §4)
}

func (d *directives) has(f uint32) bool { return d.flags&f != 0 }

// parseDirectives parses the Cache-Control field lines vs. It allocates
// nothing.
func parseDirectives(vs []string) directives {
	var d directives
	for _, v := range vs {
		for v != "" {
			var name, arg string
			var hasArg bool
			name, arg, hasArg, v = nextDirective(v)
			d.add(name, arg, hasArg)
		}
	}
	return d
}

// nextDirective splits the first directive off a Cache-Control value: its
// name, its argument (unquoted when it is a quoted string without escapes;
// quoted-pairs are kept, which no numeric argument contains) and the rest
// after the next comma outside quotes.
func nextDirective(s string) (name, arg string, hasArg bool, rest string) {
	s = trimOWS(s)
	i := 0
	for i < len(s) && s[i] != ',' && s[i] != '=' {
		i++
	}
	name = trimOWS(s[:i])
	if i == len(s) {
		return name, "", false, ""
	}
	if s[i] == ',' {
		return name, "", false, s[i+1:]
	}
	s = trimOWS(s[i+1:])
	if s != "" && s[0] == '"' {
		j := 1
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(s) { // unterminated: the argument is invalid
			return name, s, true, ""
		}
		arg = s[1:j]
		s = s[j+1:]
		// Anything between the closing quote and the next comma is junk
		// that makes the argument invalid.
		k := strings.IndexByte(s, ',')
		if k < 0 {
			k = len(s)
		}
		if trimOWS(s[:k]) != "" {
			arg = s[:k] + "\x00" // never a valid number
		}
		if k == len(s) {
			return name, arg, true, ""
		}
		return name, arg, true, s[k+1:]
	}
	k := strings.IndexByte(s, ',')
	if k < 0 {
		return name, trimOWS(s), true, ""
	}
	return name, trimOWS(s[:k]), true, s[k+1:]
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// deltaSeconds parses delta-seconds (1*DIGIT), capped at maxDelta.
func deltaSeconds(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDelta), true
}

// add records one directive. Request and response directives share the
// struct; each side reads only its own.
func (d *directives) add(name, arg string, hasArg bool) {
	switch {
	case strings.EqualFold(name, "no-store"):
		d.flags |= ccNoStore
	case strings.EqualFold(name, "no-cache"):
		d.flags |= ccNoCache
	case strings.EqualFold(name, "private"):
		d.flags |= ccPrivate
	case strings.EqualFold(name, "public"):
		d.flags |= ccPublic
	case strings.EqualFold(name, "must-revalidate"):
		d.flags |= ccMustRevalidate
	case strings.EqualFold(name, "proxy-revalidate"):
		d.flags |= ccProxyRevalidate
	case strings.EqualFold(name, "only-if-cached"):
		d.flags |= ccOnlyIfCached
	case strings.EqualFold(name, "max-age"):
		d.bound(ccMaxAge, &d.maxAge, arg, hasArg)
	case strings.EqualFold(name, "s-maxage"):
		d.bound(ccSMaxAge, &d.sMaxAge, arg, hasArg)
	case strings.EqualFold(name, "max-stale"):
		if !hasArg {
			if !d.has(ccMaxStale) {
				d.flags |= ccMaxStaleAny
			}
			return
		}
		n, ok := deltaSeconds(arg)
		if !ok {
			return
		}
		// A bounded max-stale is more restrictive than an unbounded one.
		d.maxStale = lower(d, ccMaxStale, d.maxStale, n)
		d.flags = d.flags&^ccMaxStaleAny | ccMaxStale
	case strings.EqualFold(name, "min-fresh"):
		n, ok := deltaSeconds(arg)
		if !ok || !hasArg {
			n = maxDelta
		}
		if !d.has(ccMinFresh) || n > d.minFresh {
			d.minFresh = n
		}
		d.flags |= ccMinFresh
	case strings.EqualFold(name, "stale-while-revalidate"):
		d.bound(ccStaleWhileRevalidate, &d.swr, arg, hasArg)
	case strings.EqualFold(name, "stale-if-error"):
		d.bound(ccStaleIfError, &d.sie, arg, hasArg)
	}
}

// bound records the delta-seconds directive f in *v: its argument, or 0
// when the argument is missing or invalid; of repeats, the smallest.
func (d *directives) bound(f uint32, v *int64, arg string, hasArg bool) {
	n, ok := deltaSeconds(arg)
	if !ok || !hasArg {
		n = 0
	}
	*v = lower(d, f, *v, n)
	d.flags |= f
}

// lower returns n, or old when the directive f was already seen with a
// smaller value.
func lower(d *directives, f uint32, old, n int64) int64 {
	if d.has(f) && old < n {
		return old
	}
	return n
}

// requestDirectives returns the Cache-Control directives of a request; a
// request without Cache-Control but with Pragma: no-cache is no-cache (RFC
// 9111 §5.4).
func requestDirectives(h http.Header) directives {
	if cc := h["Cache-Control"]; len(cc) > 0 {
		return parseDirectives(cc)
	}
	var d directives
	for _, v := range h["Pragma"] {
		for v != "" {
			var name string
			name, _, _, v = nextDirective(v)
			if strings.EqualFold(name, "no-cache") {
				d.flags |= ccNoCache
			}
		}
	}
	return d
}

// understood reports whether the cache knows the semantics of a final status
// well enough to store it (RFC 9111 §3: "final and understood"). 206 is left
// out because the cache does not combine or serve ranges, 304 because it only
// updates a stored response, and 5xx other than 501 because an error the
// origin states a lifetime for is still better retried (stale-if-error covers
// failures).
func understood(status int) bool {
	switch status {
	case 200, 203, 204, 300, 301, 302, 303, 307, 308,
		400, 403, 404, 405, 410, 414, 451, 501:
		return true
	}
	return false
}

// heuristicallyCacheable reports whether status is cacheable by default (RFC
// 9110 §15.1, RFC 9111 §4.2.2), 206 excluded as above.
func heuristicallyCacheable(status int) bool {
	switch status {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// storable reports whether a response to a GET may be stored by this shared
// cache (RFC 9111 §3), before its body is known. authorized says whether the
// request carried Authorization or an API key (§3.5). The stored freshness
// must then also be positive or the response revalidatable (see keepFor).
func storable(status int, h http.Header, cc *directives, authorized bool) bool {
	switch {
	case !understood(status):
		return false
	case cc.has(ccNoStore), cc.has(ccPrivate):
		return false
	case authorized && !cc.has(ccPublic|ccSMaxAge|ccMustRevalidate):
		return false
	case len(h["Set-Cookie"]) > 0:
		// Our decision, stricter than RFC 9111 (which lets a public response
		// with Set-Cookie be stored): a cookie is almost always meant for one
		// client, and replaying it to others is a session-fixation risk.
		return false
	case len(h["Content-Range"]) > 0, len(h["Trailer"]) > 0:
		// Partial content is never stored; trailers would be dropped.
		return false
	case isEventStream(h):
		// An event stream never ends; buffering it would hold waiters forever.
		return false
	}
	for _, v := range h["Vary"] {
		for v != "" {
			var name string
			name, v = nextToken(v)
			if name == "*" {
				return false
			}
		}
	}
	if cc.has(ccMaxAge|ccSMaxAge|ccPublic) || len(h["Expires"]) > 0 {
		return true
	}
	return heuristicallyCacheable(status)
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && strings.EqualFold(ct[0][:17], "text/event-stream")
}

// nextToken splits the first comma-separated element off a list value.
func nextToken(s string) (tok, rest string) {
	i := strings.IndexByte(s, ',')
	if i < 0 {
		return trimOWS(s), ""
	}
	return trimOWS(s[:i]), s[i+1:]
}

// freshness is what the policy derives from a stored response once.
type freshness struct {
	cc directives
	// explicit reports an explicit lifetime (s-maxage, max-age or Expires),
	// explicitLife that lifetime.
	explicit     bool
	explicitLife time.Duration
	// heuristicLife is the strict-mode lifetime of a response without an
	// explicit one: 10% of Date − Last-Modified when the response may be
	// given a heuristic lifetime at all (§4.2.2), otherwise 0.
	heuristicLife time.Duration
	// initialAge is corrected_initial_age of §4.2.3.
	initialAge time.Duration
	// date is the Date header's value, or the response time without one.
	date         time.Time
	lastModified time.Time // zero when absent or invalid
	etag         string
}

// computeFreshness derives the freshness information of a response received
// at respTime for a request sent at reqTime (RFC 9111 §4.2.1–§4.2.3).
func computeFreshness(status int, h http.Header, reqTime, respTime time.Time) freshness {
	f := freshness{cc: parseDirectives(h["Cache-Control"])}
	f.date = respTime
	if d := h["Date"]; len(d) == 1 {
		if t, err := http.ParseTime(d[0]); err == nil {
			f.date = t
		}
	}
	if lm := h["Last-Modified"]; len(lm) == 1 {
		if t, err := http.ParseTime(lm[0]); err == nil {
			f.lastModified = t
		}
	}
	if et := h["Etag"]; len(et) > 0 {
		f.etag = et[0]
	}

	// §4.2.1: s-maxage, then max-age, then Expires − Date.
	switch {
	case f.cc.has(ccSMaxAge):
		f.explicit, f.explicitLife = true, seconds(f.cc.sMaxAge)
	case f.cc.has(ccMaxAge):
		f.explicit, f.explicitLife = true, seconds(f.cc.maxAge)
	case len(h["Expires"]) > 0:
		f.explicit = true
		// Two Expires lines, or an invalid date such as "0", mean already
		// expired (§4.2.1, §5.3).
		if exp := h["Expires"]; len(exp) == 1 {
			if t, err := http.ParseTime(exp[0]); err == nil {
				f.explicitLife = max(0, t.Sub(f.date))
			}
		}
	}

	// §4.2.2: a heuristic only for a heuristically cacheable status or a
	// response marked public, from Last-Modified.
	if !f.explicit && (heuristicallyCacheable(status) || f.cc.has(ccPublic)) && !f.lastModified.IsZero() {
		if since := f.date.Sub(f.lastModified); since > 0 {
			f.heuristicLife = min(since/heuristicFraction, heuristicMax)
		}
	}

	// §4.2.3.
	var ageValue time.Duration
	if a := h["Age"]; len(a) > 0 {
		if n, ok := deltaSeconds(trimOWS(a[0])); ok {
			ageValue = seconds(n)
		}
	}
	apparentAge := max(0, respTime.Sub(f.date))
	responseDelay := max(0, respTime.Sub(reqTime))
	f.initialAge = max(apparentAge, ageValue+responseDelay)
	return f
}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// lifetime is the freshness lifetime of the response for a route whose
// CACHE_TTL is ttl: the explicit lifetime, else ttl when positive, else the
// heuristic one.
func (f *freshness) lifetime(ttl time.Duration) time.Duration {
	switch {
	case f.explicit:
		return f.explicitLife
	case ttl > 0:
		return ttl
	}
	return f.heuristicLife
}

// noStale reports whether the response forbids being served stale by a
// shared cache in any way (§4.2.4): must-revalidate, proxy-revalidate and
// s-maxage (§5.2.2.10). RFC 5861 does not say whether its extensions
// override these; we read them as the origin's stronger word, so neither
// stale-while-revalidate nor stale-if-error applies then, and neither does a
// client's max-stale. no-cache forbids any reuse without validation.
func (f *freshness) noStale() bool {
	return f.cc.has(ccMustRevalidate | ccProxyRevalidate | ccSMaxAge | ccNoCache)
}

// hasValidator reports whether the response can be revalidated.
func (f *freshness) hasValidator() bool { return f.etag != "" || !f.lastModified.IsZero() }

// keepFor is how long a store keeps the response from now (its current age
// age): until its freshness and the stale windows it grants run out, then
// keepStale more when it can still be of use, revalidated (it has a
// validator) or taken stale by a client that allows it (max-stale,
// stale-if-error in the request). Zero or less: not worth storing, as a
// response that is stale on arrival, grants no stale window and cannot be
// revalidated.
func (f *freshness) keepFor(ttl, age, keepStale time.Duration) time.Duration {
	keep := f.lifetime(ttl) - age
	if !f.noStale() {
		keep += max(seconds(f.cc.swr), seconds(f.cc.sie))
	}
	switch {
	case keep <= 0 && !f.hasValidator():
		return 0
	case f.hasValidator() || !f.noStale():
		return max(keep, 0) + keepStale
	}
	return keep
}

// verdict says how a stored response may answer a request.
type verdict uint8

const (
	// mustValidate: the response cannot be used without the origin.
	mustValidate verdict = iota
	// useFresh: fresh and acceptable to the request.
	useFresh
	// useStale: stale, but the client accepts it (max-stale).
	useStale
	// useStaleRevalidate: stale within stale-while-revalidate: serve it and
	// revalidate in the background.
	useStaleRevalidate
)

// decide applies RFC 9111 §4 (and §4.2.4, §5.2.1, RFC 5861 §3) to a stored
// response of current age age and lifetime life and the request directives
// rc.
func decide(f *freshness, rc *directives, life, age time.Duration) verdict {
	if f.cc.has(ccNoCache) || rc.has(ccNoCache) {
		return mustValidate
	}
	if rc.has(ccMaxAge) && age > seconds(rc.maxAge) {
		return mustValidate
	}
	if age < life {
		if rc.has(ccMinFresh) && life-age < seconds(rc.minFresh) {
			return mustValidate
		}
		return useFresh
	}
	if f.noStale() || rc.has(ccMinFresh) {
		return mustValidate
	}
	staleness := age - life
	if rc.has(ccMaxStaleAny) || rc.has(ccMaxStale) && staleness <= seconds(rc.maxStale) {
		return useStale
	}
	if f.cc.has(ccStaleWhileRevalidate) && staleness < seconds(f.cc.swr) {
		return useStaleRevalidate
	}
	return mustValidate
}

// staleIfError reports whether a stored response may answer after the origin
// failed (RFC 5861 §4): within the response's stale-if-error window or the
// request's, unless the response forbids stale use. A fresh response may,
// unless the response or the request asked for validation with no-cache (a
// request's max-age=0, as a browser's reload sends, may still get it).
func staleIfError(f *freshness, rc *directives, life, age time.Duration) bool {
	if age < life && !f.cc.has(ccNoCache) && !rc.has(ccNoCache) {
		return true
	}
	if f.noStale() {
		return false
	}
	staleness := age - life
	return f.cc.has(ccStaleIfError) && staleness < seconds(f.cc.sie) ||
		rc.has(ccStaleIfError) && staleness < seconds(rc.sie)
}

// isServerError reports whether an origin status counts as an error for
// stale-if-error: 500, 502, 503 and 504 (RFC 5861 §4), which is also what
// the proxy answers when a backend cannot be reached or times out.
func isServerError(status int) bool {
	switch status {
	case 500, 502, 503, 504:
		return true
	}
	return false
}
