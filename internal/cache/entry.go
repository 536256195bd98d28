package cache

import (
	"encoding/binary"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Entry is one stored response. Its exported fields are all a Store has to
// keep (MarshalBinary encodes them); the cache derives everything else from
// them. An Entry is immutable once it has been given to a Store, which may
// hand the same Entry to many requests at once.
type Entry struct {
	// Status is the response's status code.
	Status int
	// Header holds the response's header fields as the origin sent them
	// (after the route's response header operations), without
	// Content-Length, hop-by-hop fields and the request id.
	Header http.Header
	// Body is the complete response body.
	Body []byte
	// RequestTime is when the request that produced the response was sent,
	// ResponseTime when its header arrived (RFC 9111 §4.2.3).
	RequestTime, ResponseTime time.Time
	// Variant is the secondary key (RFC 9111 §4.1): the request's values of
	// the header fields the response varies on, "" when it varies on none.
	// A Store keeps one entry per Variant under a key and sub-key.
	Variant string

	once sync.Once
	d    derived
}

// derived is what the cache computes from an Entry once.
type derived struct {
	fresh freshness
	size  int64
	// contentLength is len(Body) formatted.
	contentLength string
	// nvals counts the header values copied when serving the entry.
	nvals int
}

// entryOverhead approximates the memory an entry takes besides its body and
// header bytes (structs, slice and map headers, the LRU links).
const entryOverhead = 320

// derive returns the entry's derived data, computing it on first use.
func (e *Entry) derive() *derived {
	e.once.Do(func() {
		d := &e.d
		d.fresh = computeFreshness(e.Status, e.Header, e.RequestTime, e.ResponseTime)
		d.contentLength = strconv.Itoa(len(e.Body))
		size := int64(len(e.Body) + len(e.Variant) + entryOverhead)
		for k, vs := range e.Header {
			size += int64(len(k)) + 16
			for _, v := range vs {
				size += int64(len(v)) + 16
			}
			if !servedByCache(k) {
				d.nvals += len(vs)
			}
		}
		d.size = size
	})
	return &e.d
}

// Size is the number of bytes the entry is accounted for in a memory store:
// its body, header fields and a fixed overhead.
func (e *Entry) Size() int64 { return e.derive().size }

// Fresh reports whether the entry is still fresh at now for a route whose
// CACHE_TTL is ttl. Stores may use it; the cache's own decisions take the
// request into account too.
func (e *Entry) Fresh(now time.Time, ttl time.Duration) bool {
	d := e.derive()
	return d.fresh.initialAge+now.Sub(e.ResponseTime) < d.fresh.lifetime(ttl)
}

// age is the entry's current age at now (RFC 9111 §4.2.3).
func (e *Entry) age(now time.Time) time.Duration {
	return e.derive().fresh.initialAge + max(0, now.Sub(e.ResponseTime))
}

// hXCache is the header field that says what the cache did.
const hXCache = "X-Cache"

// servedByCache reports whether the cache sets header k itself when serving
// an entry, rather than copying the stored one.
func servedByCache(k string) bool {
	return k == "Age" || k == hXCache || k == "Content-Length"
}

// notStored reports whether a response header is left out of an entry:
// Content-Length (recomputed from the body), the proxy-specific fields RFC
// 9111 §3.1 excludes, and the request id, which names the request that
// filled the cache, not the one being answered. Hop-by-hop fields never
// reach the cache (the proxy removes them).
func notStored(k string) bool {
	switch k {
	case "Content-Length", "Proxy-Authenticate", "Proxy-Authentication-Info",
		"Proxy-Authorization", "X-Request-Id", "Connection", "Keep-Alive",
		"Transfer-Encoding", "Upgrade", "Te", "Trailer", "Proxy-Connection":
		return true
	}
	return false
}

// varyNames returns the canonical, sorted, unique names of the request
// fields a response varies on (its Vary field, RFC 9111 §4.1). A response
// with a Content-Encoding that does not say it varies on Accept-Encoding
// varies on it anyway: a client that cannot decode the coding must not get
// it because the origin forgot Vary.
func varyNames(h http.Header) []string {
	var names []string
	for _, v := range h["Vary"] {
		for v != "" {
			var name string
			name, v = nextToken(v)
			if name != "" {
				names = append(names, http.CanonicalHeaderKey(name))
			}
		}
	}
	if ce := h["Content-Encoding"]; len(ce) > 0 && !(len(ce) == 1 && strings.EqualFold(trimOWS(ce[0]), "identity")) {
		names = append(names, "Accept-Encoding")
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// variantKey computes the secondary key of a request for a response varying
// on names: "Name:value\n" for each present field (its lines joined by ", ",
// whitespace around them trimmed), "Name\n" for an absent one. A header name
// never contains ':' and a value never contains '\n'.
func variantKey(names []string, h http.Header) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		if vs := h[n]; len(vs) > 0 {
			b.WriteByte(':')
			for i, v := range vs {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(trimOWS(v))
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// matchVariant reports whether request header h has the values recorded in
// variant. It allocates nothing.
func matchVariant(variant string, h http.Header) bool {
	for variant != "" {
		line, rest, _ := strings.Cut(variant, "\n")
		variant = rest
		name, want, present := strings.Cut(line, ":")
		vs := h[name]
		if !present {
			if len(vs) > 0 {
				return false
			}
			continue
		}
		if len(vs) == 0 || !equalJoined(vs, want) {
			return false
		}
	}
	return true
}

// equalJoined reports whether the trimmed lines vs joined by ", " equal s.
func equalJoined(vs []string, s string) bool {
	for i, v := range vs {
		if i > 0 {
			if !strings.HasPrefix(s, ", ") {
				return false
			}
			s = s[2:]
		}
		v = trimOWS(v)
		if !strings.HasPrefix(s, v) {
			return false
		}
		s = s[len(v):]
	}
	return s == ""
}

// selectEntry returns the most recent of variants that matches request
// header h (RFC 9111 §4.1), or nil.
func selectEntry(variants []*Entry, h http.Header) *Entry {
	var best *Entry
	for _, e := range variants {
		if matchVariant(e.Variant, h) && (best == nil || e.ResponseTime.After(best.ResponseTime)) {
			best = e
		}
	}
	return best
}

// freshen returns a copy of e updated by a 304 response with header h (RFC
// 9111 §4.3.4 and §3.2): every field of the 304 replaces the stored one,
// except those the cache never stores. It reports false when the 304's
// validators show it is about another representation: a strong or weak ETag
// other than the stored one, or without an ETag a Last-Modified other than
// the stored one. A 304 without validators is taken as answering the
// conditional the cache sent for e (RFC 9110 §15.4.5 has origins repeat the
// ETag, and our conditional named only e).
func (e *Entry) freshen(h http.Header, reqTime, respTime time.Time) (*Entry, bool) {
	if et := h["Etag"]; len(et) > 0 {
		if !weakMatch(et[0], e.derive().fresh.etag) {
			return nil, false
		}
	} else if lm := h["Last-Modified"]; len(lm) > 0 {
		if old := e.Header["Last-Modified"]; len(old) == 0 || old[0] != lm[0] {
			return nil, false
		}
	}
	hdr := e.Header.Clone()
	for k, vs := range h {
		if notStored(k) || servedByCache(k) && k != "Age" {
			continue
		}
		hdr[k] = slices.Clone(vs)
	}
	if _, ok := h["Age"]; !ok {
		delete(hdr, "Age") // the stored Age described the old response
	}
	return &Entry{
		Status:       e.Status,
		Header:       hdr,
		Body:         e.Body,
		RequestTime:  reqTime,
		ResponseTime: respTime,
		Variant:      e.Variant,
	}, true
}

// opaqueTag returns an entity tag without its weakness indicator.
func opaqueTag(t string) string {
	t = trimOWS(t)
	if strings.HasPrefix(t, "W/") {
		return t[2:]
	}
	return t
}

// weakMatch is the weak comparison of RFC 9110 §8.8.3.2.
func weakMatch(a, b string) bool {
	a, b = opaqueTag(a), opaqueTag(b)
	return a != "" && a == b && len(a) >= 2 && a[0] == '"'
}

// noneMatch reports whether a request's If-None-Match list (RFC 9110
// §13.1.2) matches etag by weak comparison; "*" matches any stored
// response.
func noneMatch(vs []string, etag string) bool {
	for _, v := range vs {
		for {
			v = strings.TrimLeft(v, " \t,")
			if v == "" {
				break
			}
			if v[0] == '*' {
				return true
			}
			weak := strings.HasPrefix(v, "W/")
			if weak {
				v = v[2:]
			}
			if v == "" || v[0] != '"' {
				break // malformed: stop reading this line
			}
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				break
			}
			if etag != "" && weakMatch(v[:end+2], etag) {
				return true
			}
			v = v[end+2:]
		}
	}
	return false
}

// errCorrupt reports an entry encoding that cannot be decoded.
var errCorrupt = errors.New("cache: corrupt entry encoding")

// entryVersion is the first byte of an encoded entry.
const entryVersion = 1

// MarshalBinary encodes the entry's exported fields, for stores that keep
// bytes (Redis).
func (e *Entry) MarshalBinary() ([]byte, error) {
	n := 64 + len(e.Body) + len(e.Variant)
	keys := make([]string, 0, len(e.Header))
	for k, vs := range e.Header {
		keys = append(keys, k)
		n += len(k) + 4
		for _, v := range vs {
			n += len(v) + 4
		}
	}
	slices.Sort(keys)
	b := make([]byte, 0, n)
	b = append(b, entryVersion)
	b = binary.AppendUvarint(b, uint64(e.Status))
	b = binary.AppendVarint(b, e.RequestTime.UnixNano())
	b = binary.AppendVarint(b, e.ResponseTime.UnixNano())
	b = appendString(b, e.Variant)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		vs := e.Header[k]
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(e.Body)))
	return append(b, e.Body...), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary decodes what MarshalBinary encoded into a zero Entry.
func (e *Entry) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	if d.byte() != entryVersion {
		return errCorrupt
	}
	status := d.uvarint()
	req, resp := d.varint(), d.varint()
	variant := d.string()
	nkeys := d.uvarint()
	if d.err != nil || status > 999 || nkeys > uint64(len(d.b)) {
		return errCorrupt
	}
	h := make(http.Header, nkeys)
	for range nkeys {
		k := d.string()
		nv := d.uvarint()
		if d.err != nil || nv > uint64(len(d.b)) {
			return errCorrupt
		}
		vs := make([]string, nv)
		for i := range vs {
			vs[i] = d.string()
		}
		h[k] = vs
	}
	n := d.uvarint()
	if d.err != nil || n != uint64(len(d.b)) {
		return errCorrupt
	}
	e.Status = int(status)
	e.Header = h
	e.Body = slices.Clone(d.b)
	e.RequestTime = time.Unix(0, req)
	e.ResponseTime = time.Unix(0, resp)
	e.Variant = variant
	return nil
}

// decoder reads MarshalBinary's encoding; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
