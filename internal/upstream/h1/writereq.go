package h1

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// defaultUserAgent is what net/http sends when a request has no User-Agent
// header at all (one present but empty sends none; ReverseProxy relies on
// that to suppress it).
const defaultUserAgent = "Go-http-client/1.1"

// errMissingHost mirrors net/http's error for a request with neither Host nor
// URL.
var errMissingHost = errors.New("http: Request.Write on Request with no Host or URL set")

// writeRequest writes the head of r, a request Handles accepts (bodiless, no
// Transfer-Encoding), into bw: the same request line, Host, User-Agent,
// Connection: close and header lines net/http's Request.Write produces for
// such a request, without its formatting, sorting and per-call allocations.
// Header lines are written in map order, not sorted; that is the only
// difference on the wire, and HTTP gives header order between different
// fields no meaning.
//
// Requests the lean path does not reproduce byte for byte — a non-ASCII host
// (net/http converts it to punycode) or a client trace that wants the
// per-field write callbacks — are written by r.Write itself.
//
// untraced says r's context is known to carry no client trace (it is the
// connection's own, see interrupt.Bind), sparing the look-up.
//
// An error means nothing was written: the checks (missing host, control
// bytes in the request-URI, a ContentLength without a Body) all run before
// the first byte, where net/http may already have buffered part of the head.
func writeRequest(bw *bufio.Writer, r *http.Request, untraced bool) error {
	if r.URL == nil {
		return errMissingHost
	}
	if !untraced {
		if trace := httptrace.ContextClientTrace(r.Context()); trace != nil &&
			(trace.WroteHeaderField != nil || trace.WroteHeaders != nil || trace.WroteRequest != nil) {
			return r.Write(bw)
		}
	}
	// net/http's transferWriter refuses this combination.
	if r.ContentLength != 0 && r.Body == nil {
		return fmt.Errorf("http: Request.ContentLength=%d with nil Body", r.ContentLength)
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if !isASCII(host) {
		return r.Write(bw) // punycode conversion lives in net/http's vendored idna
	}
	// An invalid Host is sent empty rather than altered (an altered Host is
	// a smuggling vector); net/http does the same when not using a proxy.
	if !httpguts.ValidHostHeader(host) {
		host = ""
	}
	host = removeZone(host)

	// The request-URI, in the pieces URL.RequestURI would concatenate.
	var pre, path, query string
	hasQuery := r.URL.ForceQuery || r.URL.RawQuery != ""
	if op := r.URL.Opaque; op != "" {
		path = op
		if strings.HasPrefix(op, "//") {
			pre = r.URL.Scheme + ":"
		}
	} else {
		path = r.URL.EscapedPath()
		if path == "" {
			path = "/"
		}
	}
	if hasQuery {
		query = r.URL.RawQuery
	}
	if containsCTL(pre) || containsCTL(path) || containsCTL(query) {
		return errors.New("net/http: can't write control character in Request.URL")
	}

	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	// The head is appended into the writer's free space and written at
	// once (a head larger than that space grows a buffer of its own).
	b := bw.AvailableBuffer()
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, pre...)
	b = append(b, path...)
	if hasQuery {
		b = append(b, '?')
		b = append(b, query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)

	ua := defaultUserAgent
	if vv, ok := r.Header["User-Agent"]; ok {
		ua = ""
		if len(vv) > 0 {
			ua = vv[0]
		}
	}
	if ua != "" {
		b = append(b, "User-Agent: "...)
		b = appendHeaderValue(b, ua)
		b = append(b, "\r\n"...)
	}
	if r.Close {
		var conn string
		if vv := r.Header["Connection"]; len(vv) > 0 {
			conn = vv[0]
		}
		if !hasToken(conn, "close") {
			b = append(b, "Connection: close\r\n"...)
		}
	}
	for k, vv := range r.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		// net/http drops (does not fail on) fields whose name is not a
		// token; writing one could inject header lines.
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vv {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendHeaderValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	_, err := bw.Write(b)
	return err
}

// appendHeaderValue appends v as net/http writes it: CR and LF become
// spaces (so a value cannot start a new header line) and surrounding ASCII
// white space (SP, HT, CR, LF) is trimmed.
func appendHeaderValue(b []byte, v string) []byte {
	for len(v) > 0 && isASCIISpace(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isASCIISpace(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	for {
		i := indexCRLF(v)
		if i < 0 {
			return append(b, v...)
		}
		b = append(b, v[:i]...)
		b = append(b, ' ')
		v = v[i+1:]
	}
}

// indexCRLF is strings.IndexAny(v, "\r\n") without its set-building.
func indexCRLF(v string) int {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			return i
		}
	}
	return -1
}

// isASCIISpace is textproto's notion of white space for TrimString.
func isASCIISpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// isASCII reports whether s has only 7-bit bytes.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// containsCTL reports whether s has a control byte (< 0x20 or DEL), which
// net/http refuses in a request-URI.
func containsCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}

// removeZone strips an IPv6 zone ("[fe80::1%eth0]:80" → "[fe80::1]:80"),
// which RFC 6874 says must not leave the client; as net/http's removeZone.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

// hasToken reports whether the lower-case token appears in v, ASCII
// case-insensitively, between space, tab or comma boundaries; net/http's
// hasToken, used for the request's own Connection header.
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if b := v[sp]; b != token[0] && b|0x20 != token[0] {
			continue
		}
		if sp > 0 && !isTokenBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isTokenBoundary(v[end]) {
			continue
		}
		if equalFoldASCII(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

// equalFoldASCII compares s and t ignoring ASCII case only (internal/ascii's
// EqualFold): non-ASCII bytes must match exactly.
func equalFoldASCII(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerASCII(s[i]) != lowerASCII(t[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}
