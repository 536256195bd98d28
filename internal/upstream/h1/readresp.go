package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// This file is a response-head parser and body framer that gives the same
// result as net/http.ReadResponse (status line, textproto's MIME header
// reader, transfer.go's readTransfer and body) for every input, with a
// fraction of its allocations: the head is copied into one string and the
// status, proto, header keys and values are substrings of it, common header
// keys that arrive in non-canonical case are interned, and the values share
// one backing slice. Any difference in how a head is split into fields or how
// a body is framed would let a backend smuggle a response past the gateway,
// so each step below names the net/http or textproto code it mirrors, and
// the differential tests and fuzz target compare the two on raw bytes.
//
// Deliberate difference: the GODEBUG setting httplaxcontentlength=1 (accept
// an empty Content-Length as "no length") is not honoured; an empty
// Content-Length is always an error, net/http's default.

// headRetainMax bounds the per-connection scratch buffer kept between
// responses, so one huge head does not pin its memory for the connection's
// life.
const headRetainMax = 16 << 10

// bodyMode is how a response body is delimited.
type bodyMode uint8

const (
	bodyNone    bodyMode = iota // resp.Body is http.NoBody
	bodyLength                  // Content-Length bytes
	bodyChunked                 // chunked transfer coding, then trailers
	bodyEOF                     // until the backend closes the connection
)

// respAlloc holds a response, the body that will read it, and the backing
// array for up to eight header values, so that a typical response costs one
// allocation for all three instead of three; they live exactly as long as
// each other anyway.
type respAlloc struct {
	resp http.Response
	body body
	vals [8]string
}

// framing is what readResponse learnt about the body that follows the head.
type framing struct {
	mode bodyMode
	n    int64 // bodyLength: the Content-Length
}

// protocolError formats a malformed-head error the way textproto does.
type protocolError = textproto.ProtocolError

// badStringError mirrors net/http's error text ("what "value"").
func badStringError(what, val string) error { return fmt.Errorf("%s %q", what, val) }

// readResponse reads one response head from br and returns the response, an
// unused body allocated with it for the caller to fill, and the body's
// framing; resp.Body is http.NoBody when the framing says there is no body
// and is left nil otherwise, for the caller to fill. buf is scratch space the
// caller keeps between responses. req is the request being answered (its
// method decides HEAD framing).
func readResponse(br *bufio.Reader, req *http.Request, buf *[]byte) (*http.Response, *body, framing, error) {
	head, keys, err := readRawHead(br, (*buf)[:0])
	if cap(head) <= headRetainMax {
		*buf = head[:0]
	} else {
		*buf = nil
	}
	if err != nil {
		return nil, nil, framing{}, err
	}
	s := string(head) // the one copy every string in the response shares

	// Status line, as net/http.ReadResponse.
	line, pos := nextLine(s, 0)
	proto, status, code, major, minor, err := parseStatusLine(line)
	if err != nil {
		return nil, nil, framing{}, err
	}
	ra := new(respAlloc)
	resp := &ra.resp
	*resp = http.Response{
		Status:     status,
		StatusCode: code,
		Proto:      proto,
		ProtoMajor: major,
		ProtoMinor: minor,
		Request:    req,
	}
	ra.body.smallHeader = keys <= maxPooledFields
	h, err := parseHeader(s, pos, keys, ra.vals[:])
	if err != nil {
		return nil, nil, framing{}, err
	}
	resp.Header = h
	// fixPragmaCacheControl.
	if hp, ok := h["Pragma"]; ok && len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	fr, err := readTransfer(resp, req)
	if err != nil {
		return nil, nil, framing{}, err
	}
	return resp, &ra.body, fr, nil
}

// readRawHead appends one response head (status line, header lines, blank line)
// from br to buf and returns it with the number of header fields (lines not
// starting with SP or HT) it holds. Lines end at LF, with an optional CR
// before it, as bufio.Reader.ReadLine and textproto split them. The status
// line is checked as soon as it is read, so a malformed one fails at once as
// it does in net/http rather than after the rest of the head.
func readRawHead(br *bufio.Reader, buf []byte) ([]byte, int, error) {
	keys := 0
	lineStart := 0
	first := true
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, keys, err
		}
		l := buf[lineStart : len(buf)-1]
		if n := len(l); n > 0 && l[n-1] == '\r' {
			l = l[:n-1]
		}
		switch {
		case first:
			if err := statusLineErr(l); err != nil {
				return buf, keys, err
			}
			first = false
		case len(l) == 0:
			return buf, keys, nil
		case l[0] != ' ' && l[0] != '\t':
			keys++
		}
		lineStart = len(buf)
	}
}

// nextLine returns the line of s starting at pos without its LF or CRLF, and
// the position of the next line. s comes from readRawHead, so every line ends in
// LF.
func nextLine(s string, pos int) (string, int) {
	i := strings.IndexByte(s[pos:], '\n')
	if i < 0 { // not reached for readRawHead's output; be safe
		return s[pos:], len(s)
	}
	l := s[pos : pos+i]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l, pos + i + 1
}

// parseStatusLine is net/http.ReadResponse's status-line parsing: proto up to
// the first space, the status after any further spaces, a code of exactly
// three characters that strconv.Atoi accepts and that is not negative (so
// "+99" and "-00" pass, as they do there), and an HTTP/x.y version.
func parseStatusLine(line string) (proto, status string, code, major, minor int, err error) {
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return "", "", 0, 0, 0, badStringError("malformed HTTP response", line)
	}
	status = strings.TrimLeft(status, " ")
	codeStr, _, _ := strings.Cut(status, " ")
	if len(codeStr) != 3 {
		return "", "", 0, 0, 0, badStringError("malformed HTTP status code", codeStr)
	}
	code, err = strconv.Atoi(codeStr)
	if err != nil || code < 0 {
		return "", "", 0, 0, 0, badStringError("malformed HTTP status code", codeStr)
	}
	if major, minor, ok = http.ParseHTTPVersion(proto); !ok {
		return "", "", 0, 0, 0, badStringError("malformed HTTP version", proto)
	}
	return proto, status, code, major, minor, nil
}

// statusLineErr runs parseStatusLine's checks on bytes, for readRawHead's
// early rejection, without converting the line to a string (which would
// allocate) unless the quick shape check fails; parseStatusLine then has the
// final say and builds the error.
func statusLineErr(line []byte) error {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		_, _, _, _, _, err := parseStatusLine(string(line))
		return err
	}
	c := bytes.TrimLeft(line[sp+1:], " ")
	if i := bytes.IndexByte(c, ' '); i >= 0 {
		c = c[:i]
	}
	if len(c) != 3 || !atoi3OK(c) || !httpVersionOK(line[:sp]) {
		_, _, _, _, _, err := parseStatusLine(string(line))
		return err
	}
	return nil
}

// atoi3OK reports whether strconv.Atoi accepts the three bytes c with a
// result >= 0: an optional sign, then digits only ("-00" is 0 and passes).
func atoi3OK(c []byte) bool {
	d := c
	neg := false
	if c[0] == '+' || c[0] == '-' {
		neg = c[0] == '-'
		d = c[1:]
	}
	v := 0
	for _, b := range d {
		if b < '0' || b > '9' {
			return false
		}
		v = v*10 + int(b-'0')
	}
	return !neg || v == 0
}

// httpVersionOK is http.ParseHTTPVersion's acceptance test on bytes.
func httpVersionOK(v []byte) bool {
	return len(v) == len("HTTP/X.Y") && string(v[:5]) == "HTTP/" && v[6] == '.' &&
		'0' <= v[5] && v[5] <= '9' && '0' <= v[7] && v[7] <= '9'
}

// parseHeader parses the header lines of s from pos to the blank line the
// way textproto.Reader.ReadMIMEHeader does: no leading white space on the
// first line, a colon on each field's first line, obs-fold continuation lines
// joined with one space, a key of tchar bytes (a key with spaces before the
// colon is accepted but not canonicalised, as textproto does), value bytes
// limited to VCHAR, SP, HT and obs-text, leading white space dropped from the
// value. keys sizes the map and the values' shared backing array, which is
// strs when that is large enough.
func parseHeader(s string, pos int, keys int, strs []string) (http.Header, error) {
	if keys > len(strs) {
		strs = make([]string, min(keys, 1000))
	}
	var h http.Header
	if keys <= maxPooledFields {
		h, _ = headers.Get().(http.Header)
	}
	if h == nil {
		h = make(http.Header, min(keys, 1000))
	}
	if pos < len(s) && (s[pos] == ' ' || s[pos] == '\t') {
		line, _ := nextLine(s, pos)
		if len(line) > 80 {
			line = line[:80]
		}
		return h, protocolError(fmt.Sprintf("malformed MIME header initial line: %q", line))
	}
	var fold []byte
	for {
		line, next := nextLine(s, pos)
		pos = next
		if line == "" {
			return h, nil
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			return h, protocolError(fmt.Sprintf("malformed MIME header: missing colon: %q", line))
		}
		// line does not start with SP or HT (that would be a continuation,
		// or the initial-line error above), so trimming only shortens its
		// end, after the colon.
		kv := trimSPHT(line)
		if pos < len(s) && (s[pos] == ' ' || s[pos] == '\t') {
			// obs-fold: as readContinuedLineSlice, skip the leading SP/HT of
			// each continuation line, join with one space, trim each part.
			fold = append(fold[:0], kv...)
			for pos < len(s) && (s[pos] == ' ' || s[pos] == '\t') {
				for pos < len(s) && (s[pos] == ' ' || s[pos] == '\t') {
					pos++
				}
				fold = append(fold, ' ')
				var cont string
				cont, pos = nextLine(s, pos)
				fold = append(fold, trimSPHT(cont)...)
			}
			kv = string(fold)
		}
		k, v := kv[:colon], kv[colon+1:]
		key, ok := canonicalKey(k)
		if !ok {
			return h, protocolError(fmt.Sprintf("malformed MIME header line: %q", kv))
		}
		for i := 0; i < len(v); i++ {
			if !validHeaderValueByte(v[i]) {
				return h, protocolError(fmt.Sprintf("malformed MIME header line: %q", kv))
			}
		}
		value := v
		for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
			value = value[1:]
		}
		vv := h[key]
		if vv == nil && len(strs) > 0 {
			vv, strs = strs[:1:1], strs[1:]
			vv[0] = value
			h[key] = vv
		} else {
			h[key] = append(vv, value)
		}
	}
}

// headers are response header maps given back with ReleaseHeader, for
// heads of at most maxPooledFields fields.
var headers sync.Pool

// maxPooledFields bounds the maps headers keeps: a small map (up to eight
// fields) is one allocation of a fixed size, and the commonest answer.
const maxPooledFields = 8

// ReleaseHeader gives h, the header map of a response this transport read
// whose body is rc, back for a later response, emptied. Only a map made
// for a small head (at most maxPooledFields fields) that has not grown
// since is kept; other responses' (a body not this transport's, or
// http.NoBody) are left alone. The caller must be the response's last user:
// nothing may read or keep the map afterwards (the values it held are not
// reused, only the map).
func ReleaseHeader(rc io.ReadCloser, h http.Header) {
	b, ok := rc.(*body)
	if !ok || !b.smallHeader || h == nil || len(h) > maxPooledFields {
		return
	}
	clear(h)
	headers.Put(h)
}

// trimSPHT trims spaces and tabs (textproto's trim, not TrimString).
func trimSPHT(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// validHeaderValueByte is textproto's: VCHAR, SP, HT and obs-text (>= 0x80).
func validHeaderValueByte(c byte) bool {
	return c >= 0x20 && c != 0x7f || c == '\t'
}

// canonicalKey is textproto's canonicalMIMEHeaderKey on a key that is a
// substring of the head: it reports false for an empty key or one with a
// byte that is neither tchar nor space, returns a key with spaces unchanged,
// and otherwise canonicalises it (first letter and letters after '-' upper
// case, the rest lower). A key that already arrives canonical is returned as
// is (a substring, no copy); a common key in another case is interned; only
// uncommon keys in non-canonical case are copied.
func canonicalKey(k string) (string, bool) {
	if k == "" {
		return "", false
	}
	canonical, space := true, false
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !httpguts.IsTokenRune(rune(c)) {
			if c == ' ' {
				space = true
				continue
			}
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if space {
		// Accepted, not canonicalised (go.dev/issue/34540).
		return k, true
	}
	if canonical {
		return k, true
	}
	var scratch [64]byte
	var b []byte
	if len(k) <= len(scratch) {
		b = scratch[:len(k)]
	} else {
		b = make([]byte, len(k))
	}
	upper = true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if c, ok := commonKeys[string(b)]; ok {
		return c, true
	}
	return string(b), true
}

// commonKeys interns the canonical form of header keys backends commonly
// send, so a key arriving in lower case ("content-type", as many HTTP/1.1
// servers behind HTTP/2 frontends write them) costs no allocation. It holds
// textproto's own list plus frequent response headers.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin",
		"Access-Control-Expose-Headers", "Access-Control-Max-Age", "Age", "Allow", "Alt-Svc",
		"Cache-Control", "Cc", "Connection", "Content-Disposition", "Content-Encoding",
		"Content-Id", "Content-Language", "Content-Length", "Content-Location", "Content-Range",
		"Content-Security-Policy", "Content-Transfer-Encoding", "Content-Type", "Cookie",
		"Date", "Dkim-Signature", "Etag", "Expires", "From", "Host", "If-Modified-Since",
		"If-None-Match", "In-Reply-To", "Keep-Alive", "Last-Modified", "Link", "Location",
		"Message-Id", "Mime-Version", "Pragma", "Proxy-Authenticate", "Received",
		"Referrer-Policy", "Retry-After", "Return-Path", "Server", "Server-Timing",
		"Set-Cookie", "Strict-Transport-Security", "Subject", "Timing-Allow-Origin", "To",
		"Trailer", "Transfer-Encoding", "Upgrade", "User-Agent", "Vary", "Via", "Warning",
		"Www-Authenticate", "X-Content-Type-Options", "X-Forwarded-For", "X-Frame-Options",
		"X-Imforwards", "X-Powered-By", "X-Request-Id", "X-Xss-Protection",
	} {
		m[k] = k
	}
	return m
}()

// readTransfer is net/http's readTransfer for a response: it settles
// resp.Close, ContentLength, TransferEncoding, Trailer and the body framing,
// editing resp.Header exactly as net/http does (Transfer-Encoding always
// removed, Content-Length removed under chunked and deduplicated when
// repeated, Connection removed when it says close on HTTP/1.1, Trailer
// removed when chunked).
func readTransfer(resp *http.Response, req *http.Request) (framing, error) {
	h := resp.Header
	method := "GET"
	if req != nil {
		method = req.Method
	}
	closing := shouldClose(resp.ProtoMajor, resp.ProtoMinor, h)
	major, minor := resp.ProtoMajor, resp.ProtoMinor
	if major == 0 && minor == 0 {
		major, minor = 1, 1
	}

	// parseTransferEncoding.
	chunked := false
	if raw, present := h["Transfer-Encoding"]; present {
		delete(h, "Transfer-Encoding")
		if major > 1 || major == 1 && minor >= 1 {
			if len(raw) != 1 {
				return framing{}, fmt.Errorf("too many transfer encodings: %q", raw)
			}
			if !equalFoldASCII(raw[0], "chunked") {
				return framing{}, fmt.Errorf("unsupported transfer encoding: %q", raw[0])
			}
			chunked = true
		}
	}

	// fixLength.
	status := resp.StatusCode
	realLength, err := fixLength(status, method, h, chunked)
	if err != nil {
		return framing{}, err
	}
	if method == "HEAD" {
		n, err := parseContentLength(h["Content-Length"])
		if err != nil {
			return framing{}, err
		}
		resp.ContentLength = n
	} else {
		resp.ContentLength = realLength
	}

	// fixTrailer.
	if vv, ok := h["Trailer"]; ok && chunked {
		delete(h, "Trailer")
		var trailer http.Header
		for _, v := range vv {
			for _, f := range headerElements(v) {
				k := http.CanonicalHeaderKey(f)
				switch k {
				case "Transfer-Encoding", "Trailer", "Content-Length":
					return framing{}, badStringError("bad trailer key", k)
				}
				if trailer == nil {
					trailer = make(http.Header)
				}
				trailer[k] = nil
			}
		}
		resp.Trailer = trailer
	}

	bodyAllowed := bodyAllowedForStatus(status)
	if realLength == -1 && !chunked && bodyAllowed {
		closing = true // unbounded body
	}
	resp.Close = closing
	if chunked {
		resp.TransferEncoding = []string{"chunked"}
	}

	var fr framing
	switch {
	case chunked:
		if method == "HEAD" || !bodyAllowed {
			resp.Body = http.NoBody
		} else {
			fr.mode = bodyChunked
		}
	case realLength == 0:
		resp.Body = http.NoBody
	case realLength > 0:
		fr = framing{mode: bodyLength, n: realLength}
	default:
		if closing {
			fr.mode = bodyEOF
		} else {
			resp.Body = http.NoBody
		}
	}
	return fr, nil
}

// headerElements splits a comma-separated header value into its trimmed,
// non-empty elements (net/http's foreachHeaderElement).
func headerElements(v string) []string {
	v = textproto.TrimString(v)
	if v == "" {
		return nil
	}
	var out []string
	for f := range strings.SplitSeq(v, ",") {
		if f = textproto.TrimString(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// fixLength is net/http's fixLength for a response: the body length from
// status, request method, Content-Length and chunking, or -1 for "until
// close". Differing repeated Content-Length values and unparsable ones are
// errors (response-splitting defence) even where the length is not used.
func fixLength(status int, method string, h http.Header, chunked bool) (int64, error) {
	contentLens := h["Content-Length"]
	if len(contentLens) > 1 {
		first := textproto.TrimString(contentLens[0])
		for _, ct := range contentLens[1:] {
			if first != textproto.TrimString(ct) {
				return 0, fmt.Errorf("http: message cannot contain multiple Content-Length headers; got %q", contentLens)
			}
		}
		h["Content-Length"] = []string{first}
		contentLens = h["Content-Length"]
	}
	var n int64
	if len(contentLens) > 0 {
		var err error
		if n, err = parseContentLength(contentLens); err != nil {
			return -1, err
		}
	}
	if method == "HEAD" || status/100 == 1 || status == 204 || status == 304 {
		return 0, nil
	}
	if chunked {
		delete(h, "Content-Length")
		return -1, nil
	}
	if len(contentLens) > 0 {
		return n, nil
	}
	return -1, nil
}

// parseContentLength is net/http's: the first value, trimmed, a decimal
// that fits in 63 bits; -1 when absent; empty is an error.
func parseContentLength(cl []string) (int64, error) {
	if len(cl) == 0 {
		return -1, nil
	}
	v := textproto.TrimString(cl[0])
	if v == "" {
		return 0, badStringError("invalid empty Content-Length", v)
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, badStringError("bad Content-Length", v)
	}
	return int64(n), nil
}

// bodyAllowedForStatus: 1xx, 204 and 304 responses have no body.
func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == 204, status == 304:
		return false
	}
	return true
}

// shouldClose is net/http's shouldClose for a response (removing a
// "Connection: close" header on HTTP/1.1 and later, not on HTTP/1.0): below
// HTTP/1 always; HTTP/1.0 unless keep-alive without close; otherwise when
// Connection lists close.
func shouldClose(major, minor int, h http.Header) bool {
	if major < 1 {
		return true
	}
	conv := h["Connection"]
	hasClose := valuesContainToken(conv, "close")
	if major == 1 && minor == 0 {
		return hasClose || !valuesContainToken(conv, "keep-alive")
	}
	if hasClose {
		delete(h, "Connection")
	}
	return hasClose
}

// valuesContainToken is httpguts.HeaderValuesContainsToken: token is one of
// the comma-separated, OWS-trimmed elements of a value, ASCII
// case-insensitively (an element with non-ASCII bytes never matches).
func valuesContainToken(values []string, token string) bool {
	for _, v := range values {
		for {
			el := v
			comma := strings.IndexByte(v, ',')
			if comma >= 0 {
				el = v[:comma]
			}
			if tokenEqual(trimSPHT(el), token) {
				return true
			}
			if comma < 0 {
				break
			}
			v = v[comma+1:]
		}
	}
	return false
}

// tokenEqual is httpguts' tokenEqual: same length, ASCII only, equal ignoring
// ASCII case.
func tokenEqual(t1, t2 string) bool {
	if len(t1) != len(t2) {
		return false
	}
	for i := 0; i < len(t1); i++ {
		if t1[i] >= 0x80 || lowerASCII(t1[i]) != lowerASCII(t2[i]) {
			return false
		}
	}
	return true
}

// respBody reads one response body from br according to its framing, with
// net/http's body semantics: a Content-Length body that ends early is
// io.ErrUnexpectedEOF and its last bytes come with io.EOF; a chunked body is
// followed by its trailer, read into resp.Trailer, and a bad trailer is an
// error.
type respBody struct {
	br   *bufio.Reader
	fr   framing
	cr   io.Reader // chunked reader, made on first use
	resp *http.Response
}

var (
	errTrailerEOF  = errors.New("http: unexpected EOF reading trailer")
	errLongTrailer = errors.New("http: suspiciously long trailer after chunked body")
)

// read reads body bytes; io.EOF marks the end of a complete body.
func (b *respBody) read(p []byte) (int, error) {
	switch b.fr.mode {
	case bodyLength:
		if b.fr.n <= 0 {
			return 0, io.EOF
		}
		if int64(len(p)) > b.fr.n {
			p = p[:b.fr.n]
		}
		n, err := b.br.Read(p)
		b.fr.n -= int64(n)
		if err == io.EOF && b.fr.n > 0 {
			err = io.ErrUnexpectedEOF
		}
		if err == nil && n > 0 && b.fr.n == 0 {
			err = io.EOF
		}
		return n, err
	case bodyChunked:
		if b.cr == nil {
			b.cr = httputil.NewChunkedReader(b.br)
		}
		n, err := b.cr.Read(p)
		if err == io.EOF {
			if terr := b.readTrailer(); terr != nil {
				err = terr
			}
		}
		return n, err
	case bodyEOF:
		return b.br.Read(p)
	}
	return 0, io.EOF
}

// readTrailer is net/http's body.readTrailer: the common bare CRLF, or a
// trailer section that must end within the reader's buffer (so its size is
// bounded) parsed by textproto and merged into resp.Trailer.
func (b *respBody) readTrailer() error {
	buf, err := b.br.Peek(2)
	if bytes.Equal(buf, []byte("\r\n")) {
		_, _ = b.br.Discard(2)
		return nil
	}
	if len(buf) < 2 {
		return errTrailerEOF
	}
	if err != nil {
		return err
	}
	if !seeUpcomingDoubleCRLF(b.br) {
		return errLongTrailer
	}
	hdr, err := textproto.NewReader(b.br).ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			return errTrailerEOF
		}
		return err
	}
	if b.resp.Trailer == nil {
		b.resp.Trailer = http.Header(hdr)
		return nil
	}
	for k, v := range hdr {
		b.resp.Trailer[k] = v
	}
	return nil
}

// seeUpcomingDoubleCRLF reports whether CRLFCRLF ends some prefix of what
// br can buffer, peeking one byte more at a time until the buffer is full or
// the input ends; as net/http's.
func seeUpcomingDoubleCRLF(r *bufio.Reader) bool {
	for peekSize := 4; ; peekSize++ {
		buf, err := r.Peek(peekSize)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			break
		}
	}
	return false
}
