package h1

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strings"
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
// An error means nothing was written: the checks (missing host, control
// bytes in the request-URI, a ContentLength without a Body) all run before
// the first byte, where net/http may already have buffered part of the head.
func writeRequest(bw *bufio.Writer, r *http.Request) error {
	if r.URL == nil {
		return errMissingHost
	}
	if trace := httptrace.ContextClientTrace(r.Context()); trace != nil &&
		(trace.WroteHeaderField != nil || trace.WroteHeaders != nil || trace.WroteRequest != nil) {
		return r.Write(bw)
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
	if !validHostHeader(host) {
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
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(pre)
	bw.WriteString(path)
	if hasQuery {
		bw.WriteByte('?')
		bw.WriteString(query)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")

	ua := defaultUserAgent
	if vv, ok := r.Header["User-Agent"]; ok {
		ua = ""
		if len(vv) > 0 {
			ua = vv[0]
		}
	}
	if ua != "" {
		bw.WriteString("User-Agent: ")
		writeHeaderValue(bw, ua)
		bw.WriteString("\r\n")
	}
	if r.Close {
		var conn string
		if vv := r.Header["Connection"]; len(vv) > 0 {
			conn = vv[0]
		}
		if !hasToken(conn, "close") {
			bw.WriteString("Connection: close\r\n")
		}
	}
	for k, vv := range r.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		// net/http drops (does not fail on) fields whose name is not a
		// token; writing one could inject header lines.
		if !validHeaderFieldName(k) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeHeaderValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// writeHeaderValue writes v as net/http does: CR and LF become spaces (so a
// value cannot start a new header line) and surrounding ASCII white space
// (SP, HT, CR, LF) is trimmed.
func writeHeaderValue(bw *bufio.Writer, v string) {
	for len(v) > 0 && isASCIISpace(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isASCIISpace(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	for {
		i := strings.IndexAny(v, "\r\n")
		if i < 0 {
			bw.WriteString(v)
			return
		}
		bw.WriteString(v[:i])
		bw.WriteByte(' ')
		v = v[i+1:]
	}
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

// validHeaderFieldName reports whether v is a non-empty token (RFC 9110
// tchar), as httpguts.ValidHeaderFieldName.
func validHeaderFieldName(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !isTokenByte(v[i]) {
			return false
		}
	}
	return true
}

// isTokenByte reports whether c is an RFC 9110 tchar; the same set as
// httpguts' isTokenTable and textproto's validHeaderFieldByte.
func isTokenByte(c byte) bool {
	const mask = 0 |
		(1<<(10)-1)<<'0' |
		(1<<(26)-1)<<'a' |
		(1<<(26)-1)<<'A' |
		1<<'!' |
		1<<'#' |
		1<<'$' |
		1<<'%' |
		1<<'&' |
		1<<'\'' |
		1<<'*' |
		1<<'+' |
		1<<'-' |
		1<<'.' |
		1<<'^' |
		1<<'_' |
		1<<'`' |
		1<<'|' |
		1<<'~'
	return ((uint64(1)<<c)&(mask&(1<<64-1)) |
		(uint64(1)<<(c-64))&(mask>>64)) != 0
}

// validHostHeader is httpguts.ValidHostHeader: every byte one that can
// appear in a uri-host or port (lenient, but never SP, CR, LF, '/' ...).
func validHostHeader(h string) bool {
	for i := 0; i < len(h); i++ {
		if !validHostByte[h[i]] {
			return false
		}
	}
	return true
}

// validHostByte is httpguts' table of the bytes validHostHeader accepts.
var validHostByte = [256]bool{
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true,
	'8': true, '9': true,

	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true, 'g': true, 'h': true,
	'i': true, 'j': true, 'k': true, 'l': true, 'm': true, 'n': true, 'o': true, 'p': true,
	'q': true, 'r': true, 's': true, 't': true, 'u': true, 'v': true, 'w': true, 'x': true,
	'y': true, 'z': true,

	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true, 'G': true, 'H': true,
	'I': true, 'J': true, 'K': true, 'L': true, 'M': true, 'N': true, 'O': true, 'P': true,
	'Q': true, 'R': true, 'S': true, 'T': true, 'U': true, 'V': true, 'W': true, 'X': true,
	'Y': true, 'Z': true,

	'!':  true, // sub-delims
	'$':  true, // sub-delims
	'%':  true, // pct-encoded (and used in IPv6 zones)
	'&':  true, // sub-delims
	'(':  true, // sub-delims
	')':  true, // sub-delims
	'*':  true, // sub-delims
	'+':  true, // sub-delims
	',':  true, // sub-delims
	'-':  true, // unreserved
	'.':  true, // unreserved
	':':  true, // IPv6address + Host expression's optional port
	';':  true, // sub-delims
	'=':  true, // sub-delims
	'[':  true,
	'\'': true, // sub-delims
	']':  true,
	'_':  true, // unreserved
	'~':  true, // unreserved
}
