// Package middleware holds small cross-cutting pieces of the request path:
// security headers, CORS, and request body and URI limits. Everything is
// compiled once from validated config; the per-request work allocates as
// little as possible.
package middleware

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/altair-gateway/altair/internal/config"
)

// off is the value that leaves a security header out.
const off = "off"

// Defaults of config.SecurityHeaders, used for a field left empty (config
// normally arrives defaulted; an empty field must not silently drop a header).
const (
	defaultContentTypeOptions      = "nosniff"
	defaultFrameOptions            = "DENY"
	defaultStrictTransportSecurity = "max-age=31536000; includeSubDomains"
	defaultContentSecurityPolicy   = "default-src 'none'; frame-ancestors 'none'"
	defaultReferrerPolicy          = "no-referrer"
)

// SecurityHeaders is a compiled set of security headers.
//
// Each header's value is one []string built at construction and shared by
// every response it is applied to, so Apply does not allocate. Sharing is
// safe because each slice has len == cap: an append (http.Header.Add, or
// httputil.ReverseProxy copying upstream headers) copies it, and neither
// net/http nor this package writes an element in place. Code that does
// (h[k][0] = v) must not run on these headers.
type SecurityHeaders struct {
	headers []header
	// lines are the headers but X-Content-Type-Options as HTTP/1 header
	// lines, and mapped that one; see Lines.
	lines  []byte
	mapped []header
}

// header is one header with its canonical key and shared value.
type header struct {
	key   string
	value []string
}

// MergeSecurityHeaders returns base with each non-empty field of override
// replacing it, field by field: a route that sets frame_options "SAMEORIGIN"
// changes only X-Frame-Options. "off" on either side leaves the header out
// (the override's "off" wins over a base value; an override value wins over
// a base "off"). Disabled in either disables them all.
func MergeSecurityHeaders(base, override config.SecurityHeaders) config.SecurityHeaders {
	out := base
	out.Disabled = base.Disabled || override.Disabled
	pick := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	pick(&out.ContentTypeOptions, override.ContentTypeOptions)
	pick(&out.FrameOptions, override.FrameOptions)
	pick(&out.StrictTransportSecurity, override.StrictTransportSecurity)
	pick(&out.ContentSecurityPolicy, override.ContentSecurityPolicy)
	pick(&out.ReferrerPolicy, override.ReferrerPolicy)
	return out
}

// NewSecurityHeaders compiles cfg. A field set to "off" (any case) leaves its
// header out; an empty field gets the documented default, so a config that
// skipped defaulting fails safe. Disabled sends none.
func NewSecurityHeaders(cfg config.SecurityHeaders) *SecurityHeaders {
	s := &SecurityHeaders{}
	if cfg.Disabled {
		return s
	}
	add := func(key, v, def string) {
		if v == "" {
			v = def
		}
		if strings.EqualFold(v, off) {
			return
		}
		s.headers = append(s.headers, header{key: http.CanonicalHeaderKey(key), value: []string{v}})
	}
	add("X-Content-Type-Options", cfg.ContentTypeOptions, defaultContentTypeOptions)
	add("X-Frame-Options", cfg.FrameOptions, defaultFrameOptions)
	add("Strict-Transport-Security", cfg.StrictTransportSecurity, defaultStrictTransportSecurity)
	add("Content-Security-Policy", cfg.ContentSecurityPolicy, defaultContentSecurityPolicy)
	add("Referrer-Policy", cfg.ReferrerPolicy, defaultReferrerPolicy)
	for _, hd := range s.headers {
		if hd.key == "X-Content-Type-Options" {
			s.mapped = append(s.mapped, hd)
			continue
		}
		// As an HTTP/1 server writes a field: line breaks become spaces,
		// surrounding white space goes.
		v := strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, textproto.TrimString(hd.value[0]))
		s.lines = append(s.lines, hd.key+": "+v+"\r\n"...)
	}
	return s
}

// Lines is Apply for a server that writes fixed header lines itself, before
// the header map's fields: it returns the headers as HTTP/1 header lines
// ("Key: value" and CRLF each, not to be changed), and sets on h those
// that must stay map fields. Written first, the lines come before the
// values an upstream's answer adds under the same names, as Apply's do
// (ModifyResponse removes the upstream's own; a route's response header
// operations, applied after it, may add some). X-Content-Type-Options stays
// a map field: the gateway's error answers set it, which must replace the
// value, not add a second one.
func (s *SecurityHeaders) Lines(h http.Header) []byte {
	if s == nil {
		return nil
	}
	for _, hd := range s.mapped {
		h[hd.key] = hd.value
	}
	return s.lines
}

// Apply sets the configured headers on h, replacing any value there. A header
// that is "off" is not touched: whatever h holds for it stays. Apply does not
// allocate (beyond h's own map growth). A nil *SecurityHeaders does nothing.
//
// The gateway calls Apply on w.Header() at the very start of every request,
// before anything can write, so its own error answers carry the headers.
func (s *SecurityHeaders) Apply(h http.Header) {
	if s == nil {
		return
	}
	for _, hd := range s.headers {
		h[hd.key] = hd.value
	}
}

// ModifyResponse makes the configured values win over an upstream's: it
// removes from resp.Header every header this set manages, so the value Apply
// already put on the ResponseWriter is the only one the client sees.
//
// It removes rather than sets because httputil.ReverseProxy copies
// resp.Header onto w.Header() with Add: setting the value again here would
// send it twice (X-Frame-Options: DENY, DENY). It therefore relies on Apply
// having run on w.Header() for this request, with the same set. Headers that
// are "off" are left alone, so the upstream's own value passes through.
// A nil *SecurityHeaders does nothing.
func (s *SecurityHeaders) ModifyResponse(resp *http.Response) error {
	if s == nil || resp == nil {
		return nil
	}
	h := resp.Header
	if len(h) < len(s.headers) {
		// Fewer fields than headers to drop: look at each field rather
		// than hash every name.
		for k := range h {
			for _, hd := range s.headers {
				if k == hd.key {
					delete(h, k)
					break
				}
			}
		}
		return nil
	}
	for _, hd := range s.headers {
		delete(h, hd.key)
	}
	return nil
}

// securityHeaderNames are every header SecurityHeaders may manage.
var securityHeaderNames = [...]string{
	"X-Content-Type-Options",
	"X-Frame-Options",
	"Strict-Transport-Security",
	"Content-Security-Policy",
	"Referrer-Policy",
}

// ResetSecurityHeaders removes every security header from h. The gateway
// applies the global set before routing (so errors carry it) and, for a route
// with its own set, resets and applies the route's, so that a route's "off"
// really leaves a header out.
func ResetSecurityHeaders(h http.Header) {
	for _, k := range securityHeaderNames {
		delete(h, k)
	}
}
