package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// writeBoth writes r with net/http's Request.Write and with writeRequest.
func writeBoth(r *http.Request) (std, lean []byte, stdErr, leanErr error) {
	var a, b bytes.Buffer
	wa, wb := bufio.NewWriter(&a), bufio.NewWriter(&b)
	stdErr = r.Write(wa)
	wa.Flush()
	leanErr = writeRequest(wb, r, false)
	wb.Flush()
	return a.Bytes(), b.Bytes(), stdErr, leanErr
}

// headLines splits a request head into its request line, its Host line, and
// the rest sorted (net/http sorts header fields, writeRequest does not).
func headLines(b []byte) (first, host string, rest []string) {
	lines := strings.Split(string(b), "\r\n")
	if len(lines) < 2 {
		return string(b), "", nil
	}
	rest = slices.Clone(lines[2:])
	slices.Sort(rest)
	return lines[0], lines[1], rest
}

func TestWriteRequestMatchesNetHTTP(t *testing.T) {
	t.Parallel()
	req := func(method, rawURL string, edit func(r *http.Request)) *http.Request {
		r, err := http.NewRequest(method, rawURL, nil)
		if err != nil {
			t.Fatalf("NewRequest(%q): %v", rawURL, err)
		}
		if edit != nil {
			edit(r)
		}
		return r
	}
	hdr := func(kv ...string) func(r *http.Request) {
		return func(r *http.Request) {
			for i := 0; i < len(kv); i += 2 {
				r.Header[kv[i]] = append(r.Header[kv[i]], kv[i+1])
			}
		}
	}
	tests := []struct {
		name string
		r    *http.Request
	}{
		{"plain get", req("GET", "http://example.com/", nil)},
		{"head larger than the writer's buffer", req("GET", "http://example.com/big", hdr("X-Big", strings.Repeat("b", 6000), "X-Also", "after"))},
		{"head", req("HEAD", "http://example.com/a/b", nil)},
		{"options star", req("OPTIONS", "http://example.com/*", nil)},
		{"empty path", req("GET", "http://example.com", nil)},
		{"query", req("GET", "http://example.com/p?a=1&b=%20x", nil)},
		{"force query", req("GET", "http://example.com/p?", nil)},
		{"escaped path", req("GET", "http://example.com/a%2Fb/c%20d", nil)},
		{"path needing escape", req("GET", "http://example.com/x", func(r *http.Request) { r.URL.Path = "/a b/ü"; r.URL.RawPath = "" })},
		{"opaque", req("GET", "http://example.com/", func(r *http.Request) { r.URL.Opaque = "/raw/%2F/path" })},
		{"opaque double slash", req("GET", "http://example.com/", func(r *http.Request) { r.URL.Opaque = "//example.com/x" })},
		{"opaque with query", req("GET", "http://example.com/?q=1", func(r *http.Request) { r.URL.Opaque = "/o" })},
		{"ctl in path", req("GET", "http://example.com/", func(r *http.Request) { r.URL.Path = "/a\nb" })},
		{"ctl in query", req("GET", "http://example.com/", func(r *http.Request) { r.URL.RawQuery = "a=\r\nX: y" })},
		{"ctl in opaque", req("GET", "http://example.com/", func(r *http.Request) { r.URL.Opaque = "/a\x7fb" })},
		{"host with port", req("GET", "http://example.com:8080/", nil)},
		{"ipv6 host", req("GET", "http://[::1]:8080/", nil)},
		{"ipv6 zone", req("GET", "http://[fe80::1%25eth0]:8080/", nil)},
		{"ipv6 zone no port", req("GET", "http://[fe80::1%25eth0]/", nil)},
		{"r.Host overrides", req("GET", "http://10.0.0.1/", func(r *http.Request) { r.Host = "virtual.example" })},
		{"r.Host empty uses URL", req("GET", "http://u.example/", func(r *http.Request) { r.Host = "" })},
		{"invalid host sent empty", req("GET", "http://example.com/", func(r *http.Request) { r.Host = "evil.com\r\nX-Injected: 1" })},
		{"host with slash", req("GET", "http://example.com/", func(r *http.Request) { r.Host = "a/b" })},
		{"host with space", req("GET", "http://example.com/", func(r *http.Request) { r.Host = "a b" })},
		{"unicode host", req("GET", "http://example.com/", func(r *http.Request) { r.Host = "bücher.example" })},
		{"bad unicode host", req("GET", "http://example.com/", func(r *http.Request) { r.Host = "b\xffcher.example" })},
		{"no host at all", req("GET", "http://example.com/", func(r *http.Request) { r.Host = ""; r.URL.Host = "" })},
		{"absent user agent", req("GET", "http://example.com/", nil)},
		{"empty user agent", req("GET", "http://example.com/", hdr("User-Agent", ""))},
		{"nil user agent slice", req("GET", "http://example.com/", func(r *http.Request) { r.Header["User-Agent"] = nil })},
		{"custom user agent", req("GET", "http://example.com/", hdr("User-Agent", "  curl/8\r\n"))},
		{"two user agents", req("GET", "http://example.com/", hdr("User-Agent", "a", "User-Agent", "b"))},
		{"lower-case user-agent key", req("GET", "http://example.com/", hdr("user-agent", "x"))},
		{"multi-valued", req("GET", "http://example.com/", hdr("Accept", "text/html", "Accept", "*/*", "X-A", "1"))},
		{"value with crlf injection", req("GET", "http://example.com/", hdr("X-Evil", "a\r\nX-Injected: 1"))},
		{"value with bare lf and cr", req("GET", "http://example.com/", hdr("X-Evil", "a\nb\rc"))},
		{"value surrounded by space", req("GET", "http://example.com/", hdr("X-Pad", " \t v \r\n"))},
		{"empty value", req("GET", "http://example.com/", hdr("X-Empty", ""))},
		{"invalid name space", req("GET", "http://example.com/", hdr("X Bad", "1", "X-Good", "2"))},
		{"invalid name crlf", req("GET", "http://example.com/", hdr("X-Bad\r\nX-Injected", "1"))},
		{"invalid name colon", req("GET", "http://example.com/", hdr("X:Bad", "1"))},
		{"empty name", req("GET", "http://example.com/", hdr("", "1"))},
		{"excluded headers", req("GET", "http://example.com/", hdr("Host", "other", "Content-Length", "5", "Transfer-Encoding", "chunked", "Trailer", "X"))},
		{"non-canonical excluded key", req("GET", "http://example.com/", hdr("content-length", "5"))},
		{"close", req("GET", "http://example.com/", func(r *http.Request) { r.Close = true })},
		{"close with connection close", req("GET", "http://example.com/", func(r *http.Request) { r.Close = true; r.Header.Set("Connection", "Keep-Alive, CLOSE") })},
		{"close with other connection", req("GET", "http://example.com/", func(r *http.Request) { r.Close = true; r.Header.Set("Connection", "closed") })},
		{"connection header only", req("GET", "http://example.com/", hdr("Connection", "close"))},
		{"request trailer ignored", req("GET", "http://example.com/", func(r *http.Request) { r.Trailer = http.Header{"X-T": nil} })},
		{"negative length nil body", req("GET", "http://example.com/", func(r *http.Request) { r.ContentLength = -1; r.Body = nil })},
		{"negative length no body", req("GET", "http://example.com/", func(r *http.Request) { r.ContentLength = -1; r.Body = http.NoBody })},
		{"nobody", req("GET", "http://example.com/", func(r *http.Request) { r.Body = http.NoBody })},
		{"nil header", req("GET", "http://example.com/", func(r *http.Request) { r.Header = nil })},
		{"no method", req("GET", "http://example.com/", func(r *http.Request) { r.Method = "" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			std, lean, stdErr, leanErr := writeBoth(tt.r)
			if (stdErr != nil) != (leanErr != nil) {
				t.Fatalf("Request.Write error %v, writeRequest error %v", stdErr, leanErr)
			}
			if stdErr != nil {
				if len(lean) != 0 {
					t.Fatalf("writeRequest failed (%v) but wrote %q", leanErr, lean)
				}
				return
			}
			f1, h1, r1 := headLines(std)
			f2, h2, r2 := headLines(lean)
			if f1 != f2 || h1 != h2 || !slices.Equal(r1, r2) {
				t.Fatalf("heads differ\nnet/http: %q\nlean:     %q", std, lean)
			}
			p1, e1 := http.ReadRequest(bufio.NewReader(bytes.NewReader(std)))
			p2, e2 := http.ReadRequest(bufio.NewReader(bytes.NewReader(lean)))
			if (e1 != nil) != (e2 != nil) {
				t.Fatalf("parsing back: net/http's %v, lean's %v", e1, e2)
			}
			if e1 != nil {
				return
			}
			if p1.Method != p2.Method || p1.RequestURI != p2.RequestURI || p1.Host != p2.Host ||
				p1.Proto != p2.Proto || p1.Close != p2.Close || !reflect.DeepEqual(p1.Header, p2.Header) {
				t.Fatalf("parsed back differently\nnet/http: %s %s %s host=%q close=%v %v\nlean:     %s %s %s host=%q close=%v %v",
					p1.Method, p1.RequestURI, p1.Proto, p1.Host, p1.Close, p1.Header,
					p2.Method, p2.RequestURI, p2.Proto, p2.Host, p2.Close, p2.Header)
			}
		})
	}
}

// TestWriteRequestInjectionSafe checks the property the comparison above
// implies, directly: whatever a header value holds, the written head has
// exactly the lines asked for.
func TestWriteRequestInjectionSafe(t *testing.T) {
	t.Parallel()
	r, _ := http.NewRequest("GET", "http://example.com/", nil)
	r.Header.Set("X-A", "1\r\nX-Injected: yes\r\n\r\nGET /smuggled HTTP/1.1")
	r.Header["X-B\r\nX-Injected"] = []string{"yes"}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	if err := writeRequest(bw, r, false); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	p, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	if p.Header.Get("X-Injected") != "" || buf.Len() != 0 {
		t.Fatalf("header injection: parsed %v, %d bytes left over", p.Header, buf.Len())
	}
}

// parsed is one side's view of a response stream: up to max1xx+1 responses
// as exchange reads them, each with its body and trailers, then whatever
// input is left over (the next response a pooled connection would see).
type parsed struct {
	Err       bool
	Responses []parsedResponse
	Rest      string
}

type parsedResponse struct {
	Status                 string
	StatusCode             int
	Proto                  string
	ProtoMajor, ProtoMinor int
	Header                 http.Header
	ContentLength          int64
	TransferEncoding       []string
	Close, Uncompressed    bool
	TrailerBefore          http.Header
	NoBody                 bool
	Body                   string
	BodyErr                bool
	TrailerAfter           http.Header
}

// leanBody adapts respBody to an io.ReadCloser for the comparison.
type leanBody struct{ respBody }

func (b *leanBody) Read(p []byte) (int, error) { return b.read(p) }
func (b *leanBody) Close() error               { return nil }

// parseWith reads raw as exchange would (1xx answers then a final one) with
// net/http's ReadResponse (std) or readResponse.
func parseWith(raw []byte, method string, std, oneByte bool) parsed {
	var src io.Reader = bytes.NewReader(raw)
	if oneByte {
		src = iotest.OneByteReader(src) // as a slow network would deliver it
	}
	br := bufio.NewReaderSize(src, 4096)
	req, _ := http.NewRequest(method, "http://example.com/", nil)
	var out parsed
	var scratch []byte
	for range max1xx + 1 {
		var resp *http.Response
		var err error
		if std {
			resp, err = http.ReadResponse(br, req)
		} else {
			var fr framing
			resp, _, fr, err = readResponse(br, req, &scratch)
			if err == nil && fr.mode != bodyNone {
				resp.Body = &leanBody{respBody{br: br, fr: fr, resp: resp}}
			}
		}
		if err != nil {
			out.Err = true
			return out
		}
		if resp.Request != req {
			panic("resp.Request is not the request")
		}
		pr := parsedResponse{
			Status: resp.Status, StatusCode: resp.StatusCode, Proto: resp.Proto,
			ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
			Header: resp.Header.Clone(), ContentLength: resp.ContentLength,
			TransferEncoding: resp.TransferEncoding, Close: resp.Close, Uncompressed: resp.Uncompressed,
			TrailerBefore: resp.Trailer.Clone(), NoBody: resp.Body == http.NoBody,
		}
		b, err := io.ReadAll(resp.Body)
		pr.Body, pr.BodyErr = string(b), err != nil
		pr.TrailerAfter = resp.Trailer.Clone()
		out.Responses = append(out.Responses, pr)
		if err != nil || resp.Close {
			return out
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == 101 {
			break
		}
	}
	rest, _ := io.ReadAll(br)
	out.Rest = string(rest)
	return out
}

// compareParsers fails t when net/http and readResponse disagree on raw.
func compareParsers(t *testing.T, raw []byte, method string) {
	t.Helper()
	for _, oneByte := range []bool{false, true} {
		std := parseWith(raw, method, true, oneByte)
		lean := parseWith(raw, method, false, oneByte)
		if !reflect.DeepEqual(std, lean) {
			t.Fatalf("%s response %q (one byte a read: %v):\nnet/http: %+v\nlean:     %+v", method, raw, oneByte, std, lean)
		}
	}
}

// responseCorpus is the differential tests' and the fuzz target's seed set:
// ordinary responses and the malformed ones a smuggling or splitting attempt
// would use.
var responseCorpus = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\nx-custom-thing: 1\r\n\r\nhelloNEXT",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length:  5 \r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
	"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nNEXT",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, x-other\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\nX-Late: 1\r\n\r\nNEXT",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcde\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nbad trailer\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\nok",
	"HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-Space : yes\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nokNEXT",
	"HTTP/1.1 200 OK\r\nX Two: yes\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-Tab\t: yes\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\n: empty\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-Fold: a\r\n  b\r\n\tc \r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 3\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-Fold: a\r\n   \r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\n Leading: space\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-Ctl: a\x00b\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-Ctl: a\rb\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-Obs: caf\xe9\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-K\xe9y: v\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Trail: v \t \r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nSET-COOKIE: c=3\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nCache-Control: max-age=1\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 99 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 +99 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 -00 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 -01 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 999 Whatever\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 20x OK\r\n\r\n",
	"HTTP/1.1    200    spaced   \r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1\r\n\r\n",
	"HTTP/1.1 200 OK",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
	"",
	"\r\n",
	"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/0.9 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.10 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.x 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"ICY 200 OK\r\n\r\nstream",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nokNEXT",
	"HTTP/1.0 200 OK\r\nConnection: Keep-Alive, close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.0 200 OK\r\n\r\nclose delimited body",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, CLOSE\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 2\r\n\r\nokNEXT",
	"HTTP/1.1 200 OK\r\nConnection: cl\xc3\xb6se\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\n\r\nclose delimited body",
	"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nraw",
	"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\nContent-Length: 100\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: nope\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-A\r\n\r\nPOISON",
}

func TestReadResponseMatchesNetHTTP(t *testing.T) {
	t.Parallel()
	for _, raw := range responseCorpus {
		for _, method := range []string{"GET", "HEAD"} {
			compareParsers(t, []byte(raw), method)
		}
	}
}

// TestReadResponseLongHeads covers heads and lines longer than the reader's
// buffer, where bufio hands lines over in pieces.
func TestReadResponseLongHeads(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("v", 5000)
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nX-Long: " + long + "\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 " + long + "\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nX-Fold: a\r\n " + long + "\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Many: v\r\n", 600) + "Content-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: " + long + "\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Long-" + long + ": v\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nx-long-" + long + ": v\r\nContent-Length: 2\r\n\r\nok",
	} {
		compareParsers(t, []byte(raw), "GET")
	}
	// A CR as the buffer's last byte and its LF in the next fill.
	for pad := 4000; pad < 4100; pad++ {
		raw := "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("p", pad) + "\r\nContent-Length: 2\r\n\r\nok"
		compareParsers(t, []byte(raw), "GET")
	}
}

// FuzzReadResponse compares readResponse with net/http's ReadResponse on
// arbitrary input; `go test` runs the seeds.
func FuzzReadResponse(f *testing.F) {
	for _, raw := range responseCorpus {
		f.Add([]byte(raw), false)
		f.Add([]byte(raw), true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		compareParsers(t, raw, method)
	})
}

// FuzzWriteRequest compares writeRequest with Request.Write for requests
// built from arbitrary host, path, query and header strings.
func FuzzWriteRequest(f *testing.F) {
	f.Add("example.com", "/p", "", "a=1", "X-A", "v", "ua", true, false)
	f.Add("[fe80::1%eth0]:80", "/a b", "", "", "X B", "a\r\nb", "", false, true)
	f.Add("a/b", "", "//h/x", "\n", "", " v ", "x", true, true)
	f.Add("bücher.example:80", "/%zz", "/o", "", "Connection", "close", "", false, true)
	f.Fuzz(func(t *testing.T, host, path, opaque, query, key, value, ua string, setUA, closeConn bool) {
		r := &http.Request{
			Method: "GET",
			URL:    &url.URL{Scheme: "http", Host: "backend:80", Path: path, Opaque: opaque, RawQuery: query},
			Host:   host,
			Header: http.Header{key: {value, value + "2"}},
			Close:  closeConn,
		}
		if setUA {
			r.Header["User-Agent"] = []string{ua}
		}
		std, lean, stdErr, leanErr := writeBoth(r)
		if (stdErr != nil) != (leanErr != nil) {
			t.Fatalf("Request.Write error %v, writeRequest error %v", stdErr, leanErr)
		}
		if stdErr != nil {
			return
		}
		f1, h1, r1 := headLines(std)
		f2, h2, r2 := headLines(lean)
		if f1 != f2 || h1 != h2 || !slices.Equal(r1, r2) {
			t.Fatalf("heads differ\nnet/http: %q\nlean:     %q", std, lean)
		}
	})
}

// TestTransportFramingOverTheWire runs the parser on a real connection:
// chunked bodies with trailers, close-delimited bodies and HEAD answers, and
// checks which connections are reused.
func TestTransportFramingOverTheWire(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	url := rawBackend(t, func(c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch {
			case req.Method == "HEAD":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
			case req.URL.Path == "/chunked":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n")
			case req.URL.Path == "/eof":
				io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nuntil close")
				return
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		}
	})
	tr := newTransport()
	defer tr.CloseIdleConnections()

	req, _ := http.NewRequest("GET", url+"/chunked", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Trailer["X-Sum"]; !ok || resp.ContentLength != -1 || !slices.Equal(resp.TransferEncoding, []string{"chunked"}) {
		t.Fatalf("chunked head: trailer %v, length %d, TE %v", resp.Trailer, resp.ContentLength, resp.TransferEncoding)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "abcde" || resp.Trailer.Get("X-Sum") != "5" {
		t.Fatalf("chunked body %q, %v, trailer %v", b, err, resp.Trailer)
	}
	req, _ = http.NewRequest("HEAD", url+"/", nil)
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body != http.NoBody || resp.ContentLength != 1000 {
		t.Fatalf("HEAD: body %T, length %d; want NoBody and 1000", resp.Body, resp.ContentLength)
	}
	if code, body, _ := roundTrip(t, tr, "GET", url+"/", nil); code != 200 || body != "ok" {
		t.Fatalf("GET after HEAD = %d %q", code, body)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("connections after chunked, HEAD and GET = %d, want 1", n)
	}
	if code, body, _ := roundTrip(t, tr, "GET", url+"/eof", nil); code != 200 || body != "until close" {
		t.Fatalf("close-delimited GET = %d %q", code, body)
	}
	if code, body, _ := roundTrip(t, tr, "GET", url+"/", nil); code != 200 || body != "ok" {
		t.Fatalf("GET after close-delimited = %d %q", code, body)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections = %d, want 2 (a close-delimited body ends its connection)", n)
	}
}

// TestCancelUnblocksBodyRead: cancelling the request while its body is being
// read unblocks the read, and the connection is not pooled.
func TestCancelUnblocksBodyRead(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	release := make(chan struct{})
	defer close(release)
	url := rawBackend(t, func(c net.Conn) {
		n := conns.Add(1)
		br := bufio.NewReader(c)
		if readHead(br) != nil {
			return
		}
		if n == 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!")
			<-release
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := newTransport()
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(make([]byte, 5))
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("body read after cancel returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("body read did not return after the request was cancelled")
	}
	resp.Body.Close()
	if code, body, _ := roundTrip(t, tr, "GET", url, nil); code != 200 || body != "ok" {
		t.Fatalf("GET after cancelled body = %d %q", code, body)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections = %d, want 2 (a cancelled exchange's connection is not reused)", n)
	}
}

// TestWriteErrorSendsNothing: a request net/http refuses to write (a control
// byte in its URL) fails without a byte reaching the backend.
func TestWriteErrorSendsNothing(t *testing.T) {
	t.Parallel()
	got := make(chan int, 1)
	url := rawBackend(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- len(b)
	})
	tr := newTransport()
	req, _ := http.NewRequest("GET", url, nil)
	req.URL.RawQuery = "a=\r\nInjected: 1"
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("RoundTrip with CRLF in the query succeeded")
	} else if errors.Is(err, context.Canceled) {
		t.Fatalf("unexpected error %v", err)
	}
	tr.CloseIdleConnections()
	select {
	case n := <-got:
		if n != 0 {
			t.Fatalf("backend received %d bytes of a refused request", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection of the refused request was not closed")
	}
}

// BenchmarkReadResponse measures the response-head parser alone against
// http.ReadResponse, on a typical backend answer with a 1 KiB body.
func BenchmarkReadResponse(b *testing.B) {
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Mon, 23 Nov 2026 05:00:00 GMT\r\n" +
		"Content-Length: 1024\r\nCache-Control: no-store\r\nX-Request-Id: 4bf92f3577b34da6a3ce929d0e0e4736\r\n\r\n" +
		strings.Repeat("x", 1024))
	req, _ := http.NewRequest("GET", "http://example.com/", nil)
	rd := bytes.NewReader(raw)
	br := bufio.NewReaderSize(rd, 4096)
	var scratch []byte // a connection's, kept between responses
	for _, bc := range []struct {
		name string
		read func() (*http.Response, error)
	}{
		{"lean", func() (*http.Response, error) {
			resp, body, fr, err := readResponse(br, req, &scratch)
			if err == nil && fr.mode != bodyNone {
				body.rb = respBody{br: br, fr: fr, resp: resp}
				resp.Body = &leanBody{body.rb}
			}
			return resp, err
		}},
		{"stdlib", func() (*http.Response, error) { return http.ReadResponse(br, req) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(raw)
				br.Reset(rd)
				resp, err := bc.read()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriteRequest measures the request-head writer alone against
// Request.Write, for a proxied GET with a few headers.
func BenchmarkWriteRequest(b *testing.B) {
	req, _ := http.NewRequest("GET", "http://backend:8080/api/items?page=2", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Request-Id", "4bf92f3577b34da6a3ce929d0e0e4736")
	req.Header["User-Agent"] = []string{""}
	bw := bufio.NewWriter(io.Discard)
	for _, bc := range []struct {
		name  string
		write func() error
	}{
		{"lean", func() error { return writeRequest(bw, req, false) }},
		{"stdlib", func() error { return req.Write(bw) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.write(); err != nil {
					b.Fatal(err)
				}
				bw.Flush()
			}
		})
	}
}

// BenchmarkRoundTripCancellable is BenchmarkRoundTrip with a cancellable
// request context, as requests behind ReverseProxy have, so the per-exchange
// cancellation watcher is included.
func BenchmarkRoundTripCancellable(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, payload) }))
	defer s.Close()
	d := &net.Dialer{}
	tr := &Transport{Dial: d.DialContext, Fallback: &http.Transport{DialContext: d.DialContext}, MaxIdlePerHost: 64}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL, nil)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// TestTraceWriteHooksStillFire: a client trace that watches the request being
// written gets its callbacks (the write goes through Request.Write then).
func TestTraceWriteHooksStillFire(t *testing.T) {
	t.Parallel()
	s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := newTransport()
	defer tr.CloseIdleConnections()
	var wrote, headers atomic.Int64
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteHeaders: func() { headers.Add(1) },
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Add(1) },
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if wrote.Load() != 1 || headers.Load() != 1 {
		t.Fatalf("WroteHeaders called %d times, WroteRequest %d; want 1 each", headers.Load(), wrote.Load())
	}
}

// WriteTo copies a Content-Length body from the read buffer: the whole body
// returns the connection to the pool; a body cut short fails with
// io.ErrUnexpectedEOF, and a failing writer closes the connection, neither
// of which is reused.
func TestBodyWriteTo(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					switch req.URL.Path {
					case "/short":
						_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
						return
					default:
						body := strings.Repeat("x", 20000)
						_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
					}
				}
			}()
		}
	}()
	tr := newTransport()
	base := "http://" + ln.Addr().String()
	get := func(path string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := 0; i < 2; i++ {
		resp := get("/full")
		var sb strings.Builder
		n, err := resp.Body.(io.WriterTo).WriteTo(&sb)
		_ = resp.Body.Close()
		if err != nil || n != 20000 || sb.String() != strings.Repeat("x", 20000) {
			t.Fatalf("WriteTo = %d, %v (%d bytes)", n, err, sb.Len())
		}
	}
	if got := conns.Load(); got != 1 {
		t.Fatalf("%d connections for two whole bodies, want 1 (reused)", got)
	}
	resp := get("/short")
	_, err = resp.Body.(io.WriterTo).WriteTo(io.Discard)
	_ = resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body: %v, want io.ErrUnexpectedEOF", err)
	}
	resp = get("/full")
	_, err = resp.Body.(io.WriterTo).WriteTo(failingWriter{})
	_ = resp.Body.Close()
	if err == nil {
		t.Fatal("WriteTo to a failing writer: no error")
	}
	before := conns.Load()
	resp = get("/full")
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if conns.Load() != before+1 {
		t.Fatal("a connection whose body copy failed was reused")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("client gone") }

// TestReleaseHeader: a header map given back is reused, emptied, by a later
// response of at most maxPooledFields fields, which sees only its own; a
// map made for a larger head, one grown since, or another transport's is
// left alone.
func TestReleaseHeader(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://backend/", nil)
	read := func(head string) (*http.Response, *body) {
		t.Helper()
		var scratch []byte
		resp, b, _, err := readResponse(bufio.NewReader(strings.NewReader(head)), req, &scratch)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	first, fb := read("HTTP/1.1 200 OK\r\nX-First: 1\r\nContent-Length: 0\r\n\r\n")
	ReleaseHeader(fb, first.Header)
	if len(first.Header) != 0 {
		t.Fatalf("a released header still holds %v", first.Header)
	}
	// sync.Pool may drop what it holds (and does, at random, under the
	// race detector): look for reuse over a few rounds.
	reused := false
	for i := 0; i < 50 && !reused; i++ {
		h := first.Header
		second, sb := read("HTTP/1.1 200 OK\r\nX-Second: 2\r\nContent-Length: 0\r\n\r\n")
		if got := fmt.Sprint(second.Header); got != "map[Content-Length:[0] X-Second:[2]]" {
			t.Fatalf("second response's header = %s, want only its own fields", got)
		}
		reused = reflect.ValueOf(second.Header).Pointer() == reflect.ValueOf(h).Pointer()
		ReleaseHeader(sb, second.Header)
		first = second
	}
	if !reused {
		t.Error("a released header map was never reused")
	}
	// A head with more fields than maxPooledFields neither takes nor gives
	// back a pooled map, even once fields are removed.
	var many strings.Builder
	many.WriteString("HTTP/1.1 200 OK\r\n")
	for i := range maxPooledFields + 1 {
		fmt.Fprintf(&many, "X-F%d: v\r\n", i)
	}
	many.WriteString("\r\n")
	big, bb := read(many.String())
	delete(big.Header, "X-F0")
	delete(big.Header, "X-F1")
	ReleaseHeader(bb, big.Header)
	if len(big.Header) != maxPooledFields-1 {
		t.Error("ReleaseHeader emptied a map made for a large head")
	}
	// A small one that grew, and one with a body not this transport's.
	grown, gb := read("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	for i := range maxPooledFields {
		grown.Header.Set(fmt.Sprintf("X-G%d", i), "v")
	}
	ReleaseHeader(gb, grown.Header)
	other := http.Header{"A": {"1"}}
	ReleaseHeader(http.NoBody, other)
	if len(grown.Header) != maxPooledFields+1 || len(other) != 1 {
		t.Error("ReleaseHeader emptied a map that grew past maxPooledFields, or another transport's")
	}
}
