package http1

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// statusError is a request the server refuses before any handler sees it: it
// answers status and closes the connection.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func badRequest(msg string) error { return &statusError{http.StatusBadRequest, msg} }

var (
	errHeadTooLarge = &statusError{http.StatusRequestHeaderFieldsTooLarge, "request header fields too large"}
	errVersion      = &statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	errTE           = &statusError{http.StatusNotImplemented, "unsupported transfer encoding"}
)

// head is what parseHead learnt about a request beyond the http.Request
// fields: how to frame its body and whether the connection may stay open.
type head struct {
	contentLength int64 // -1: chunked
	chunked       bool
	wantsClose    bool // Connection: close, or HTTP/1.0 without keep-alive
	keepAlive10   bool // HTTP/1.0 with Connection: keep-alive
	expect        bool // Expect: 100-continue on an HTTP/1.1 request with a body
}

// parseHead parses a request head (request line, header lines, blank line;
// lines end in CRLF or LF) into r and h. The head is copied into one string
// that the method, URI, header keys and values are sliced from, so a request
// costs one allocation for all of them.
//
// The checks are net/http's, made stricter where it is lenient about framing
// (RFC 9112 allows both, and a proxy must not guess): obs-fold, Transfer-
// Encoding on HTTP/1.0 and Transfer-Encoding beside Content-Length are
// refused rather than repaired.
func parseHead(raw []byte, r *http.Request, h *head, sp *spares) error {
	s := string(raw)
	line, rest, _ := strings.Cut(s, "\n")
	line = strings.TrimSuffix(line, "\r")
	method, uri, ok1 := strings.Cut(line, " ")
	uri, proto, ok2 := strings.Cut(uri, " ")
	if !ok1 || !ok2 {
		return badRequest("malformed HTTP request")
	}
	if !validMethod(method) {
		return badRequest("invalid method")
	}
	switch proto {
	case "HTTP/1.1":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	case "HTTP/1.0":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
	default:
		major, minor, ok := http.ParseHTTPVersion(proto)
		if !ok {
			return badRequest("malformed HTTP version")
		}
		if major != 1 {
			return errVersion
		}
		// HTTP/1.x for x > 1 is served as HTTP/1.1 (RFC 9112 §2.3), with
		// the version the client sent, as net/http does.
		r.Proto, r.ProtoMajor, r.ProtoMinor = proto, 1, minor
	}
	r.Method = internMethod(method)
	if uri == "" {
		return badRequest("empty request URI")
	}
	r.RequestURI = uri
	u, err := parseURI(r.Method, uri, sp)
	if err != nil {
		return badRequest("malformed HTTP request URI")
	}
	r.URL = u

	n := strings.Count(rest, "\n") - 1 // the last line is the blank one
	hdr, vals := sp.header(n)
	var hosts, cls []string
	var te, conn, expect string
	nte := 0
	first := true
	for i := 0; ; i++ {
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if first {
				return badRequest("malformed MIME header initial line")
			}
			return badRequest("obsolete line folding")
		}
		first = false
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return badRequest("malformed MIME header line")
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return badRequest("invalid header name")
		}
		v = strings.Trim(v, " \t")
		if !httpguts.ValidHeaderFieldValue(v) {
			return badRequest("invalid header value")
		}
		k = canonicalKey(k)
		switch k {
		case "Host":
			hosts = append(hosts, v)
		case "Content-Length":
			cls = append(cls, v)
		case "Transfer-Encoding":
			te = v
			nte++
		case "Connection":
			if conn == "" {
				conn = v
			} else {
				conn += "," + v
			}
		case "Expect":
			expect = v
		}
		if old, ok := hdr[k]; ok {
			hdr[k] = append(old, v)
			continue
		}
		vals[i] = v
		hdr[k] = vals[i : i+1 : i+1]
	}
	r.Header = hdr

	// Host (RFC 9112 §3.2): exactly one on HTTP/1.1, and a valid one; the
	// absolute form's authority wins over it.
	switch {
	case len(hosts) > 1:
		return badRequest("too many Host headers")
	case len(hosts) == 0 && r.ProtoMinor >= 1 && r.Method != http.MethodConnect:
		return badRequest("missing required Host header")
	case len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]):
		return badRequest("malformed Host header")
	}
	r.Host = u.Host
	if r.Host == "" && len(hosts) == 1 {
		r.Host = hosts[0]
	}
	delete(hdr, "Host")

	// Framing (RFC 9112 §6).
	h.contentLength = 0
	if nte > 0 {
		if r.ProtoMinor == 0 {
			return badRequest("Transfer-Encoding on an HTTP/1.0 request")
		}
		if nte > 1 || !strings.EqualFold(te, "chunked") {
			return errTE
		}
		if len(cls) > 0 {
			return badRequest("both Transfer-Encoding and Content-Length")
		}
		h.chunked, h.contentLength = true, -1
		r.TransferEncoding = chunkedTE
		delete(hdr, "Transfer-Encoding")
	} else if len(cls) > 0 {
		for _, v := range cls[1:] {
			if v != cls[0] {
				return badRequest("multiple Content-Length headers")
			}
		}
		n, ok := parseContentLength(cls[0])
		if !ok {
			return badRequest("bad Content-Length")
		}
		h.contentLength = n
		if len(cls) > 1 {
			hdr["Content-Length"] = cls[:1:1] // as net/http: duplicates dropped
		}
	}
	r.ContentLength = h.contentLength
	if p := hdr["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"} // as net/http
		}
	}

	h.wantsClose = hasToken(conn, "close") || (r.ProtoMinor == 0 && !hasToken(conn, "keep-alive"))
	h.keepAlive10 = r.ProtoMinor == 0 && hasToken(conn, "keep-alive")
	r.Close = h.wantsClose
	if expect != "" {
		if !strings.EqualFold(expect, "100-continue") {
			return &statusError{http.StatusExpectationFailed, "unsupported Expect"}
		}
		h.expect = r.ProtoMinor >= 1 && h.contentLength != 0
	}
	if tr := hdr["Trailer"]; len(tr) > 0 && h.chunked {
		delete(hdr, "Trailer") // as net/http: the declaration moves to r.Trailer
		r.Trailer = make(http.Header)
		for _, v := range tr {
			for f := range strings.SplitSeq(v, ",") {
				f = http.CanonicalHeaderKey(textproto.TrimString(f)) // f may be no valid name
				switch f {
				case "":
					continue
				case "Transfer-Encoding", "Trailer", "Content-Length":
					return badRequest("bad trailer key") // as net/http
				}
				r.Trailer[f] = nil
			}
		}
		if len(r.Trailer) == 0 {
			r.Trailer = nil // as net/http: an empty declaration declares nothing
		}
	}
	return nil
}

var chunkedTE = []string{"chunked"}

// spares are a connection's header map, value slice and URL for its next
// request, kept from a request Server.Direct answered (nothing keeps them
// once it returns); parseHead takes them, or makes new ones when there are
// none, and leaves in sp what the request uses. A nil *spares makes new
// ones every time.
type spares struct {
	hdr  http.Header
	vals []string
	url  *url.URL
}

// maxSpareFields bounds the header map and values a connection keeps for
// its next request: a larger head gets its own, left to the collector.
const maxSpareFields = 32

// header returns an empty header map and n empty values: the spare ones
// for a head of at most maxSpareFields fields, new ones (not kept) for a
// larger head.
func (sp *spares) header(n int) (http.Header, []string) {
	if sp == nil || n > maxSpareFields {
		return make(http.Header, n), make([]string, n)
	}
	if sp.hdr == nil {
		sp.hdr = make(http.Header, n)
	}
	if cap(sp.vals) < n {
		sp.vals = make([]string, n)
	}
	return sp.hdr, sp.vals[:n]
}

// newURL returns a zero URL.
func (sp *spares) newURL() *url.URL {
	if sp == nil {
		return new(url.URL)
	}
	if sp.url == nil {
		sp.url = new(url.URL)
	}
	return sp.url
}

// keep readies what a request Direct answered used for the next one. A
// map that grew past maxSpareFields fields (a lane request adds a few) is
// not kept; the values never grow past it (see header).
func (sp *spares) keep() {
	if len(sp.hdr) > maxSpareFields {
		sp.hdr = nil
	} else {
		clear(sp.hdr)
	}
	clear(sp.vals)
	if sp.url != nil {
		*sp.url = url.URL{}
	}
}

// release gives what the request used away: a handler may keep it.
func (sp *spares) release() { *sp = spares{} }

// parseURI parses a request target. The common origin form ("/path?query",
// with a path of characters url.URL keeps as they are) is split without
// net/url, giving the URL url.ParseRequestURI would give; anything else goes
// to url.ParseRequestURI, with CONNECT's authority form handled as net/http
// does.
func parseURI(method, uri string, sp *spares) (*url.URL, error) {
	if uri[0] == '/' {
		path, query, hasQuery := strings.Cut(uri, "?")
		if plainPath(path) && plainQuery(query) {
			u := sp.newURL()
			u.Path, u.RawQuery = path, query
			if hasQuery && query == "" {
				u.ForceQuery = true
			}
			return u, nil
		}
	}
	if method == http.MethodConnect && uri[0] != '/' {
		u, err := url.ParseRequestURI("http://" + uri)
		if err != nil {
			return nil, err
		}
		u.Scheme = ""
		return u, nil
	}
	return url.ParseRequestURI(uri)
}

// pathByte marks the bytes a path may hold for url.URL to keep it unchanged
// in Path with no RawPath: unreserved characters and the sub-delimiters that
// net/url does not escape in a path.
var pathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if !pathByte[p[i]] {
			return false
		}
	}
	return true
}

// plainQuery reports whether q holds no byte url.ParseRequestURI refuses
// (control characters) and no '?' (which makes ForceQuery ambiguous).
func plainQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		if c := q[i]; c < 0x20 || c == 0x7f || c == '?' || c == '#' {
			return false
		}
	}
	return true
}

// parseContentLength parses a Content-Length value: decimal digits only, as
// net/http requires.
func parseContentLength(v string) (int64, bool) {
	if v == "" {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// hasToken reports whether the comma-separated list v holds token,
// case-insensitively.
func hasToken(v, token string) bool {
	for v != "" {
		var f string
		f, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(textproto.TrimString(f), token) {
			return true
		}
	}
	return false
}

// validMethod reports whether m is an RFC 9110 token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

// internMethod returns the constant for a standard method, so requests do not
// keep the head string alive through their method.
func internMethod(m string) string {
	switch m {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodOptions:
		return http.MethodOptions
	case http.MethodPatch:
		return http.MethodPatch
	}
	return m
}

// commonKeys interns the canonical forms of common header names: looking one
// up by a byte slice allocates nothing.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Authorization", "Cache-Control", "Cc", "Connection", "Content-Disposition",
		"Content-Encoding", "Content-Id", "Content-Language", "Content-Length",
		"Content-Transfer-Encoding", "Content-Type", "Cookie", "Date", "Dkim-Signature",
		"Etag", "Expect", "Expires", "Forwarded", "From", "Host", "If-Match", "If-Modified-Since",
		"If-None-Match", "If-Range", "If-Unmodified-Since", "Keep-Alive", "Last-Modified",
		"Location", "Max-Forwards", "Origin", "Pragma", "Proxy-Authorization", "Proxy-Connection",
		"Range", "Referer", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol",
		"Sec-Websocket-Extensions", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"User-Agent", "Via", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-Ip", "X-Request-Id", "X-Api-Key", "Traceparent", "Tracestate", "Baggage",
		"Access-Control-Request-Method", "Access-Control-Request-Headers", "Sec-Fetch-Mode",
		"Sec-Fetch-Site", "Sec-Fetch-Dest", "Upgrade-Insecure-Requests", "Dnt", "Priority",
		"Idempotency-Key", "Grpc-Timeout", "Grpc-Encoding", "Grpc-Accept-Encoding",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey returns textproto.CanonicalMIMEHeaderKey(k) for a valid field
// name, without allocating when k is already canonical or common.
func canonicalKey(k string) string {
	if c, ok := commonKeys[k]; ok {
		return c
	}
	if len(k) > 64 {
		return textproto.CanonicalMIMEHeaderKey(k)
	}
	var buf [64]byte
	b := buf[:len(k)]
	upper := true
	same := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != k[i] {
			same = false
		}
		b[i] = c
		upper = c == '-'
	}
	if same {
		return k
	}
	if c, ok := commonKeys[string(b)]; ok {
		return c
	}
	return string(b)
}

// headEnd returns the length of the head at the start of b (through its blank
// line), or 0 when b does not hold a whole head yet. from is where a previous
// call stopped looking.
func headEnd(b []byte, from int) int {
	for i := from; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}
