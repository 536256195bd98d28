package compress

import "strings"

// Header names, canonical so maps are indexed without canonicalizing.
const (
	hAcceptEncoding  = "Accept-Encoding"
	hAcceptRanges    = "Accept-Ranges"
	hCacheControl    = "Cache-Control"
	hContentEncoding = "Content-Encoding"
	hContentLength   = "Content-Length"
	hContentRange    = "Content-Range"
	hContentType     = "Content-Type"
	hETag            = "Etag"
	hRange           = "Range"
	hTrailer         = "Trailer"
	hVary            = "Vary"
)

// unset marks a coding the client did not name.
const unset = -1

// accepted is a parsed Accept-Encoding: each known coding's weight in
// thousandths, unset when not named. q[identity] is "identity"'s.
type accepted struct {
	q    [numCodings]int16
	star int16 // weight of "*"
}

// negotiate picks the coding for the Accept-Encoding field lines vs. No field
// at all means identity: RFC 9110 would allow any coding, but a client that
// says nothing may not decode one (many scripts and health checks).
func (c *Compressor) negotiate(vs []string) coding {
	if len(vs) == 0 {
		return identity
	}
	a := accepted{star: unset}
	for i := range a.q {
		a.q[i] = unset
	}
	for _, v := range vs {
		if !a.parse(v) {
			return identity
		}
	}
	return a.pick(c.prefs)
}

// negotiate1 is negotiate for one field value.
func (c *Compressor) negotiate1(v string) coding {
	return c.negotiate([]string{v})
}

// pick returns the enabled coding the client weighs most, ties going to the
// earlier in prefs, or identity when none is acceptable or when the client
// weighs identity (by name or through "*") above it.
func (a *accepted) pick(prefs []coding) coding {
	best, bestQ := identity, int16(0)
	for _, cd := range prefs {
		q := a.q[cd]
		if q == unset {
			q = a.star
		}
		if q > bestQ {
			best, bestQ = cd, q
		}
	}
	if best == identity {
		return identity
	}
	iq := a.q[identity]
	if iq == unset {
		iq = a.star
	}
	if iq > bestQ {
		return identity
	}
	return best
}

// parse adds one field value's codings to a; false means it is malformed.
// The grammar (RFC 9110, section 12.5.3) is a comma-separated list of
// codings, each optionally followed by ";q=" and a qvalue, with optional
// whitespace around the separators; empty list elements are allowed.
func (a *accepted) parse(s string) bool {
	for s != "" {
		elem := s
		if i := strings.IndexByte(s, ','); i >= 0 {
			elem, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		elem = trimOWS(elem)
		if elem == "" {
			continue
		}
		name, q := elem, int16(1000)
		if i := strings.IndexByte(elem, ';'); i >= 0 {
			name = trimOWS(elem[:i])
			p := trimOWS(elem[i+1:])
			if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
				return false
			}
			var ok bool
			if q, ok = parseQ(p[2:]); !ok {
				return false
			}
		}
		if !isToken(name) {
			return false
		}
		a.set(name, q)
	}
	return true
}

// set records name's weight. A coding named twice keeps its lower weight, so
// a q=0 anywhere excludes it.
func (a *accepted) set(name string, q int16) {
	p := &a.star
	switch {
	case name == "*":
	case strings.EqualFold(name, Gzip), strings.EqualFold(name, "x-gzip"):
		p = &a.q[gzipCoding]
	case strings.EqualFold(name, Brotli):
		p = &a.q[brotliCoding]
	case strings.EqualFold(name, Zstd):
		p = &a.q[zstdCoding]
	case strings.EqualFold(name, "identity"):
		p = &a.q[identity]
	default:
		return // a coding we do not offer
	}
	if *p == unset || q < *p {
		*p = q
	}
}

// parseQ parses a qvalue ("0", "0.5", "0.125", "1", "1.000") into
// thousandths.
func parseQ(s string) (int16, bool) {
	if s == "" || len(s) > 5 || (len(s) > 1 && s[1] != '.') {
		return 0, false
	}
	frac := ""
	if len(s) > 2 {
		frac = s[2:]
	}
	switch s[0] {
	case '0':
		v := int16(0)
		for i := range 3 {
			v *= 10
			if i < len(frac) {
				d := frac[i]
				if d < '0' || d > '9' {
					return 0, false
				}
				v += int16(d - '0')
			}
		}
		return v, true
	case '1':
		for i := range len(frac) {
			if frac[i] != '0' {
				return 0, false
			}
		}
		return 1000, true
	}
	return 0, false
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

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return true
}
