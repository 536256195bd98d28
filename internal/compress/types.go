package compress

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// pattern is one media type pattern: typ "" means any type, sub "" any
// subtype; suffix, when set, must end the subtype ("+json").
type pattern struct {
	typ, sub, suffix string
}

// exact reports whether p names one type, with no wildcard.
func (p pattern) exact() bool { return p.typ != "" && p.sub != "" }

func (p pattern) match(typ, sub string) bool {
	if p.typ != "" && !strings.EqualFold(p.typ, typ) {
		return false
	}
	if p.sub != "" {
		return strings.EqualFold(p.sub, sub)
	}
	return p.suffix == "" || (len(sub) > len(p.suffix) && strings.EqualFold(sub[len(sub)-len(p.suffix):], p.suffix))
}

// never are types that a wildcard never selects: formats that are compressed
// already, where encoding again costs CPU and saves nothing; gRPC, whose
// framing has its own compression and whose clients reject a
// Content-Encoding; and server-sent events, whose streams are long-lived, so
// each would hold an encoder (0.4 to 1.5 MiB) for as long as it is open.
// Listing "text/event-stream" in Options.Types compresses them, flushed
// event by event.
var never = mustPatterns(
	"text/event-stream",
	"image/*", "video/*", "audio/*", "multipart/*",
	"font/woff", "font/woff2",
	"application/octet-stream",
	"application/zip", "application/*+zip", "application/gzip", "application/x-gzip",
	"application/zstd", "application/x-bzip2", "application/x-xz", "application/x-compress",
	"application/x-7z-compressed", "application/x-rar-compressed", "application/vnd.rar",
	"application/java-archive", "application/pdf",
	"application/grpc", "application/grpc+proto", "application/grpc+json",
	"application/grpc-web", "application/grpc-web+proto", "application/grpc-web+json",
	"application/grpc-web-text", "application/grpc-web-text+proto",
)

// typeSet is a compiled list of compressible types.
type typeSet struct {
	exact []pattern // win over never
	wild  []pattern // lose to never
	seen  *typeCache
}

// typeCache remembers match's answers for the Content-Type values seen,
// which are few: the patterns are tried once per value, not per response.
type typeCache struct {
	answers sync.Map // Content-Type value → bool
	n       atomic.Int32
}

// maxCachedTypes bounds typeCache: past it, media types not seen yet are
// matched every time. maxCachedTypeLen is the longest media type it keeps.
const (
	maxCachedTypes   = 256
	maxCachedTypeLen = 100
)

func compileTypes(list []string) (typeSet, error) {
	ts := typeSet{seen: new(typeCache)}
	var bad []string
	for _, s := range list {
		p, ok := parsePattern(s)
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%q", s))
		case p.exact():
			ts.exact = append(ts.exact, p)
		default:
			ts.wild = append(ts.wild, p)
		}
	}
	if len(bad) > 0 {
		return ts, fmt.Errorf("types %s: %w", strings.Join(bad, ", "), ErrType)
	}
	return ts, nil
}

func mustPatterns(list ...string) []pattern {
	out := make([]pattern, len(list))
	for i, s := range list {
		p, ok := parsePattern(s)
		if !ok {
			panic("compress: bad built-in pattern " + s)
		}
		out[i] = p
	}
	return out
}

// parsePattern parses "type/subtype", "type/*", "type/*+suffix" or
// "*/*+suffix" (and "*/*", everything).
func parsePattern(s string) (pattern, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || !isToken(typ) || sub == "" {
		return pattern{}, false
	}
	var p pattern
	if typ != "*" {
		p.typ = typ
	}
	switch {
	case sub == "*":
	case strings.HasPrefix(sub, "*+"):
		p.suffix = sub[1:]
		if !isToken(p.suffix[1:]) || strings.Contains(p.suffix[1:], "*") {
			return pattern{}, false
		}
	case isToken(sub) && !strings.Contains(sub, "*"):
		if p.typ == "" {
			return pattern{}, false // "*/json" means nothing
		}
		p.sub = sub
	default:
		return pattern{}, false
	}
	if strings.Contains(typ, "*") && typ != "*" {
		return pattern{}, false
	}
	return p, true
}

// mediaType splits a Content-Type value into type and subtype, dropping
// parameters and whitespace; ok is false for anything without a "/".
func mediaType(ct string) (typ, sub string, ok bool) {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = trimOWS(ct)
	typ, sub, ok = strings.Cut(ct, "/")
	if !ok || typ == "" || sub == "" {
		return "", "", false
	}
	return trimOWS(typ), trimOWS(sub), true
}

// match reports whether the Content-Type value ct is compressible.
func (ts *typeSet) match(ct string) bool {
	// The answer depends on the media type only, not on its parameters
	// (a charset, a multipart boundary), so those are not part of the key.
	key := ct
	if i := strings.IndexByte(key, ';'); i >= 0 {
		key = key[:i]
	}
	if ts.seen == nil || len(key) > maxCachedTypeLen {
		return ts.matchPatterns(key)
	}
	if v, ok := ts.seen.answers.Load(key); ok {
		return v.(bool)
	}
	ok := ts.matchPatterns(key)
	if ts.seen.n.Load() < maxCachedTypes {
		// A copy: ct may share its memory with a whole response head.
		if _, loaded := ts.seen.answers.LoadOrStore(strings.Clone(key), ok); !loaded {
			ts.seen.n.Add(1)
		}
	}
	return ok
}

// matchPatterns is match without the cache.
func (ts *typeSet) matchPatterns(ct string) bool {
	typ, sub, ok := mediaType(ct)
	if !ok {
		return false
	}
	for _, p := range ts.exact {
		if p.match(typ, sub) {
			return true
		}
	}
	for _, p := range never {
		if p.match(typ, sub) {
			return false
		}
	}
	for _, p := range ts.wild {
		if p.match(typ, sub) {
			return true
		}
	}
	return false
}
