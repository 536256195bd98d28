package http1

import (
	"io"
	"strings"
	"testing"
)

// diffKind says how http1's answer to a request must relate to net/http's.
type diffKind int

const (
	// same: same status; for a request that reached the handler, the same
	// summary of what the handler saw.
	same diffKind = iota
	// stricter: http1 refuses what net/http repairs (obs-fold, TE+CL, TE on
	// HTTP/1.0); status holds http1's answer.
	stricter
	// declaredTrailers: the same but for the Trailer line: http1 keeps only
	// the trailers the request declared; trailer holds its Trailer line.
	declaredTrailers
)

type conformanceCase struct {
	name    string
	req     string
	kind    diffKind
	status  int    // stricter: http1's status
	trailer string // declaredTrailers: http1's Trailer summary line
}

const hh = "Host: example.com\r\n"

var conformanceCases = []conformanceCase{
	// Request lines and targets.
	{name: "get", req: "GET / HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "get-query", req: "GET /a/b?x=1&y=2 HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "post-cl", req: "POST /submit HTTP/1.1\r\n" + hh + "Content-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"},
	{name: "put-empty-cl", req: "PUT /x HTTP/1.1\r\n" + hh + "Content-Length: 0\r\n\r\n"},
	{name: "absolute-form", req: "GET http://other.example:8080/p/q?r=1 HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "absolute-form-no-host", req: "GET http://other.example/p HTTP/1.1\r\n\r\n"},
	{name: "absolute-form-https-user", req: "GET https://u:p@h.example/ HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "connect-authority", req: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"},
	{name: "connect-no-host", req: "CONNECT example.com:443 HTTP/1.1\r\n\r\n"},
	{name: "connect-path", req: "CONNECT /_goRPC_ HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "connect-bad-authority", req: "CONNECT exa mple HTTP/1.1\r\n\r\n"},
	{name: "options-star", req: "OPTIONS * HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "get-star", req: "GET * HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "escaped-slash", req: "GET /a%2Fb/c HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "escaped-space", req: "GET /a%20b HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "escaped-lower", req: "GET /a%2fb%7e HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "invalid-escape", req: "GET /a%zzb HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "truncated-escape", req: "GET /a%2 HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "sub-delims", req: "GET /a!*'()b HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "plain-delims", req: "GET /$&+,:;=@-_.~/x HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "double-slash", req: "GET //evil.example/x HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "dot-segments", req: "GET /a/../b/./c HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "query-with-question", req: "GET /p?a=1?b=2 HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "empty-query", req: "GET /? HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "only-questions", req: "GET /?? HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "query-escapes", req: "GET /p?q=%zz&r=%20+x HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "query-brackets", req: "GET /p?a[]=1&b={x}|\"^` HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "fragment", req: "GET /p#frag HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "query-fragment", req: "GET /p?q=1#frag HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "non-ascii-path", req: "GET /caf\xc3\xa9/\xff HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "non-ascii-query", req: "GET /p?q=\xc3\xa9 HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "ctl-in-path", req: "GET /a\x01b HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "tab-in-path", req: "GET /a\tb HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "del-in-path", req: "GET /a\x7fb HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "ctl-in-query", req: "GET /a?b\x01 HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "del-in-query", req: "GET /a?b\x7f HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "relative-target", req: "GET a/b HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "scheme-only", req: "GET http: HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "ipv6-absolute", req: "GET http://[::1]:80/x HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "double-space", req: "GET  / HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "trailing-space", req: "GET / HTTP/1.1 \r\n" + hh + "\r\n"},
	{name: "no-version", req: "GET /\r\n" + hh + "\r\n"},
	{name: "lower-method", req: "get / HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "custom-method", req: "PURGE /x HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "token-method", req: "M-SEARCH! /x HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "invalid-method", req: "G(T / HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "invalid-method-utf8", req: "G\xc3\xa9T / HTTP/1.1\r\n" + hh + "\r\n"},

	// Versions.
	{name: "http10", req: "GET / HTTP/1.0\r\n\r\n"},
	{name: "http10-host", req: "GET / HTTP/1.0\r\n" + hh + "\r\n"},
	{name: "http10-keepalive", req: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
	{name: "http12", req: "GET / HTTP/1.2\r\n" + hh + "\r\n"},
	{name: "http19-no-host", req: "GET / HTTP/1.9\r\n\r\n"},
	// HTTP/2 is not served here (package comment): no prior-knowledge h2c.
	{name: "pri-preface", req: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", kind: stricter, status: 505},
	{name: "http20", req: "GET / HTTP/2.0\r\n" + hh + "\r\n"},
	{name: "http09", req: "GET / HTTP/0.9\r\n" + hh + "\r\n"},
	{name: "http30", req: "GET / HTTP/3.0\r\n" + hh + "\r\n"},
	{name: "lower-http", req: "GET / http/1.1\r\n" + hh + "\r\n"},
	{name: "garbage-version", req: "GET / HTTP/x.y\r\n" + hh + "\r\n"},
	{name: "long-version", req: "GET / HTTP/1.10\r\n" + hh + "\r\n"},
	{name: "short-version", req: "GET / HTTP/1\r\n" + hh + "\r\n"},
	{name: "no-http", req: "GET / FOO/1.1\r\n" + hh + "\r\n"},

	// Header names and values.
	{name: "lower-names", req: "GET / HTTP/1.1\r\nhost: example.com\r\nx-foo-bar: 1\r\ncontent-type: a/b\r\n\r\n"},
	{name: "mixed-names", req: "GET / HTTP/1.1\r\nHOST: example.com\r\nX-FOO-bar: 1\r\nuser-AGENT: t\r\n\r\n"},
	{name: "odd-token-names", req: "GET / HTTP/1.1\r\n" + hh + "x_y.z~1: a\r\n!#$%&'*+-.^_`|~: b\r\n\r\n"},
	{name: "duplicate-headers", req: "GET / HTTP/1.1\r\n" + hh + "X-A: 1\r\nx-a: 2\r\nX-B: 3\r\nX-A: 4\r\n\r\n"},
	{name: "value-whitespace", req: "GET / HTTP/1.1\r\n" + hh + "X-A:   spaced  \r\nX-B:\t\ttabbed\t \r\nX-C:nospace\r\nX-D:\r\nX-E: in  side\t x\r\n\r\n"},
	{name: "value-utf8", req: "GET / HTTP/1.1\r\n" + hh + "X-A: caf\xc3\xa9 \xff\r\n\r\n"},
	{name: "space-before-colon", req: "GET / HTTP/1.1\r\n" + hh + "X-A : 1\r\n\r\n"},
	{name: "tab-before-colon", req: "GET / HTTP/1.1\r\n" + hh + "X-A\t: 1\r\n\r\n"},
	{name: "empty-name", req: "GET / HTTP/1.1\r\n" + hh + ": 1\r\n\r\n"},
	{name: "no-colon", req: "GET / HTTP/1.1\r\n" + hh + "X-A 1\r\n\r\n"},
	{name: "nontoken-name", req: "GET / HTTP/1.1\r\n" + hh + "X(A): 1\r\n\r\n"},
	{name: "utf8-name", req: "GET / HTTP/1.1\r\n" + hh + "X-\xc3\xa9: 1\r\n\r\n"},
	{name: "nul-value", req: "GET / HTTP/1.1\r\n" + hh + "X-A: a\x00b\r\n\r\n"},
	{name: "cr-value", req: "GET / HTTP/1.1\r\n" + hh + "X-A: a\rb\r\n\r\n"},
	{name: "leading-cr-value", req: "GET / HTTP/1.1\r\n" + hh + "X-A: \rb\r\n\r\n"},
	{name: "trailing-cr-value", req: "GET / HTTP/1.1\r\n" + hh + "X-A: b\r\r\n\r\n"},
	{name: "del-value", req: "GET / HTTP/1.1\r\n" + hh + "X-A: a\x7fb\r\n\r\n"},
	{name: "ctl-value", req: "GET / HTTP/1.1\r\n" + hh + "X-A: a\x1bb\r\n\r\n"},
	{name: "obs-fold", req: "GET / HTTP/1.1\r\n" + hh + "X-A: a\r\n  b\r\n\r\n", kind: stricter, status: 400},
	{name: "obs-fold-tab", req: "GET / HTTP/1.1\r\n" + hh + "X-A: a\r\n\tb\r\n\r\n", kind: stricter, status: 400},
	{name: "fold-first-line", req: "GET / HTTP/1.1\r\n " + hh + "\r\n"},
	{name: "pragma-no-cache", req: "GET / HTTP/1.1\r\n" + hh + "Pragma: no-cache\r\n\r\n"},
	{name: "connection-close", req: "GET / HTTP/1.1\r\n" + hh + "Connection: close\r\n\r\n"},
	{name: "connection-tokens", req: "GET / HTTP/1.1\r\n" + hh + "Connection: Upgrade, CLOSE\r\nUpgrade: x\r\n\r\n"},
	{name: "expect-continue-no-body", req: "GET / HTTP/1.1\r\n" + hh + "Expect: 100-continue\r\n\r\n"},
	{name: "expect-continue-body", req: "POST / HTTP/1.1\r\n" + hh + "Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"},
	{name: "expect-other", req: "GET / HTTP/1.1\r\n" + hh + "Expect: 200-ok\r\n\r\n"},

	// Host.
	{name: "missing-host", req: "GET / HTTP/1.1\r\n\r\n"},
	{name: "empty-host", req: "GET / HTTP/1.1\r\nHost:\r\n\r\n"},
	{name: "two-hosts", req: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	{name: "two-equal-hosts", req: "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"},
	{name: "invalid-host", req: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
	{name: "invalid-host-slash", req: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"},
	{name: "host-port", req: "GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n"},
	{name: "host-ipv6", req: "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"},
	{name: "host-userinfo", req: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"},

	// Content-Length.
	{name: "cl-dup-equal", req: "POST / HTTP/1.1\r\n" + hh + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
	{name: "cl-dup-different", req: "POST / HTTP/1.1\r\n" + hh + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
	{name: "cl-plus", req: "POST / HTTP/1.1\r\n" + hh + "Content-Length: +3\r\n\r\nabc"},
	{name: "cl-leading-space", req: "POST / HTTP/1.1\r\n" + hh + "Content-Length:  3\r\n\r\nabc"},
	{name: "cl-minus", req: "POST / HTTP/1.1\r\n" + hh + "Content-Length: -1\r\n\r\nabc"},
	{name: "cl-huge", req: "POST / HTTP/1.1\r\n" + hh + "Content-Length: 99999999999999999999\r\n\r\nabc"},
	{name: "cl-hex", req: "POST / HTTP/1.1\r\n" + hh + "Content-Length: 0x3\r\n\r\nabc"},
	{name: "cl-empty", req: "POST / HTTP/1.1\r\n" + hh + "Content-Length:\r\n\r\nabc"},
	{name: "cl-comma-list", req: "POST / HTTP/1.1\r\n" + hh + "Content-Length: 3, 3\r\n\r\nabc"},
	{name: "cl-short-body", req: "POST / HTTP/1.1\r\n" + hh + "Content-Length: 10\r\n\r\nabc"},
	{name: "cl-on-get", req: "GET / HTTP/1.1\r\n" + hh + "Content-Length: 3\r\n\r\nabc"},
	{name: "cl-http10", req: "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"},

	// Chunked.
	{name: "chunked", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"},
	{name: "chunked-upper", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{name: "chunked-ext", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\n\r\n3;name=val;x\r\nabc\r\n0;y=\"z\"\r\n\r\n"},
	{name: "chunked-hex-upper", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"},
	{name: "chunked-bad-size", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
	{name: "chunked-size-overflow", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc\r\n0\r\n\r\n"},
	{name: "chunked-missing-crlf", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n"},
	{name: "chunked-no-final-crlf", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"},
	{name: "chunked-truncated", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\n\r\n3\r\nab"},
	{name: "chunked-trailer-declared", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\nTrailer: X-Sum, x-other\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\nX-Other: a\r\nx-other: b\r\n\r\n"},
	{name: "chunked-trailer-declared-unsent", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{name: "chunked-trailer-undeclared", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nAuthorization: late\r\n\r\n",
		kind: declaredTrailers, trailer: "Trailer(false):\n"},
	{name: "chunked-trailer-mixed", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Evil: 2\r\n\r\n",
		kind: declaredTrailers, trailer: "Trailer(true): \"X-Sum\"=[\"1\"]\n"},
	{name: "chunked-trailer-forbidden-decl", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{name: "trailer-header-not-chunked", req: "POST / HTTP/1.1\r\n" + hh + "Trailer: X-Sum\r\nContent-Length: 1\r\n\r\na"},
	{name: "chunked-bad-trailer", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nno colon\r\n\r\n"},
	{name: "chunked-bare-lf", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n"},

	// Transfer-Encoding variants.
	{name: "te-gzip-chunked", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{name: "te-identity", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: identity\r\n\r\n"},
	{name: "te-two-headers", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{name: "te-chunked-space", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding:  chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{name: "te-http10", req: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", kind: stricter, status: 400},
	{name: "te-cl", req: "POST / HTTP/1.1\r\n" + hh + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", kind: stricter, status: 400},
	{name: "cl-te", req: "POST / HTTP/1.1\r\n" + hh + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", kind: stricter, status: 400},

	// Line endings and framing of the head.
	{name: "bare-lf", req: "GET /lf HTTP/1.1\n" + "Host: example.com\nX-A: 1\n\n"},
	{name: "mixed-endings", req: "GET /lf HTTP/1.1\r\nHost: example.com\nX-A: 1\r\n\n"},
	{name: "bare-lf-body", req: "POST /lf HTTP/1.1\nHost: example.com\nContent-Length: 2\n\nhi"},
	{name: "bare-cr", req: "GET / HTTP/1.1\r" + hh + "\r\n"},
	{name: "long-head-ok", req: "GET / HTTP/1.1\r\n" + hh + strings.Repeat("X-Pad: "+strings.Repeat("p", 100)+"\r\n", 60) + "\r\n"},
	{name: "long-line-ok", req: "GET / HTTP/1.1\r\n" + hh + "Cookie: " + strings.Repeat("c", 6000) + "\r\n\r\n"},
	{name: "long-uri-ok", req: "GET /" + strings.Repeat("u", 8000) + " HTTP/1.1\r\n" + hh + "\r\n"},
	{name: "long-line-head-too-large", req: "GET / HTTP/1.1\r\n" + hh + "Cookie: " + strings.Repeat("c", 1<<20+5000) + "\r\n\r\n"},
	{name: "long-line-split-crlf", req: "GET / HTTP/1.1\r\n" + hh + "X-Long: " + strings.Repeat("c", 4096-len("GET / HTTP/1.1\r\n"+hh+"X-Long: ")) + "\r\nX-After: 1\r\n\r\n"},
	{name: "head-too-large", req: "GET / HTTP/1.1\r\n" + hh + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 1200) + "\r\n"},
}

// TestConformance sends each request to an http1.Server and to net/http's
// server with the same handler and compares the answers.
func TestConformance(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, summaryHandler, nil)
	stdAddr := startStd(t, summaryHandler)
	for _, tc := range conformanceCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, gotStatus := exchange(t, addr, tc.req)
			want, wantStatus := exchange(t, stdAddr, tc.req)
			switch tc.kind {
			case same:
			case stricter:
				if gotStatus != tc.status {
					t.Fatalf("http1 status %d, want %d (net/http: %d)\n%s", gotStatus, tc.status, wantStatus, trunc(got))
				}
				if gotStatus == wantStatus {
					t.Errorf("expected a stricter answer than net/http's %d", wantStatus)
				}
				return
			case declaredTrailers:
				if !strings.Contains(got, "\n"+tc.trailer) {
					t.Errorf("http1 trailers: want %q in\n%s", tc.trailer, trunc(got))
				}
				got, want = dropLine(got, "Trailer("), dropLine(want, "Trailer(")
			}
			if gotStatus != wantStatus {
				t.Fatalf("status: http1 %d, net/http %d\nhttp1:\n%s\nnet/http:\n%s", gotStatus, wantStatus, trunc(got), trunc(want))
			}
			if gotStatus == 200 && got != want {
				t.Errorf("handler saw different requests\nhttp1:\n%s\nnet/http:\n%s", trunc(got), trunc(want))
			}
		})
	}
}

// exchange sends req on a new connection, half-closes it, and returns the
// first response's body and status (0 when the server answered nothing).
func exchange(t *testing.T, addr, req string) (string, int) {
	c := dial(t, addr)
	_, _ = io.WriteString(c.c, req) // a server may close before reading all of a refused request
	c.closeWrite()
	r, err := c.read("GET")
	if err != nil {
		return err.Error(), 0
	}
	return string(r.Body), r.Status
}

func dropLine(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// trunc shortens each line of s for failure messages.
func trunc(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if len(l) > 300 {
			lines[i] = l[:300] + "..."
		}
	}
	return strings.Join(lines, "\n")
}
