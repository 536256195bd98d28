package http1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

// refParseURI is what net/http's readRequest does with a request target.
func refParseURI(method, uri string) (*url.URL, error) {
	raw := uri
	justAuthority := method == http.MethodConnect && !strings.HasPrefix(uri, "/")
	if justAuthority {
		raw = "http://" + uri
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return nil, err
	}
	if justAuthority {
		u.Scheme = ""
	}
	return u, nil
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"/", "/a/b?c=d", "/?", "/??", "/a?b?c", "*", "/a%2Fb", "/a%zz", "/a b", "/a#f", "/a?b#f",
		"http://h/p?q", "https://u:p@h:1/p", "//h/p", "/a!*'()", "/$&+,:;=@", "/\xff", "/a?\x01",
		"/a\x7f", "example.com:443", "[::1]:443", "h:", "/a;b", "/%", "/a?%zz", "/~user/.",
	} {
		f.Add(false, s)
		f.Add(true, s)
	}
	f.Fuzz(func(t *testing.T, connect bool, uri string) {
		if uri == "" || strings.ContainsAny(uri, " \r\n") {
			return // cannot be a request target on the request line
		}
		method := http.MethodGet
		if connect {
			method = http.MethodConnect
		}
		got, err := parseURI(method, uri, nil)
		want, werr := refParseURI(method, uri)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%s %q: parseURI error %v, net/http error %v", method, uri, err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %q:\nparseURI %#v\nnet/http %#v", method, uri, got, want)
		}
	})
}

func FuzzCanonicalKey(f *testing.F) {
	for _, s := range []string{"host", "HOST", "content-length", "x-foo-bar", "X-FOO-BAR", "a", "-a-", "a--b",
		"x_y", "Sec-WebSocket-Key", "sec-websocket-key", "te", "TE", "www-authenticate", "x-" + strings.Repeat("ab", 40),
		"Content-Type", "cOnTeNt-TyPe", "1a", "a.b", "!#$%&'*+-.^_`|~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if !httpguts.ValidHeaderFieldName(k) {
			return
		}
		if got, want := canonicalKey(k), textproto.CanonicalMIMEHeaderKey(k); got != want {
			t.Fatalf("canonicalKey(%q) = %q, want %q", k, got, want)
		}
	})
}

// FuzzParseHead checks that every head parseHead accepts is one
// http.ReadRequest accepts too, and that both read it the same way.
func FuzzParseHead(f *testing.F) {
	for _, tc := range conformanceCases {
		if len(tc.req) < 10000 {
			f.Add([]byte(tc.req))
		}
	}
	// Found by fuzzing: an empty Trailer declaration.
	f.Add([]byte("0 * HTTP/1.1\nHost:\nTrAnsfer-EnCoding:Chunked\nTrAiler:\n\n"))
	f.Add([]byte("0 * HTTP/1.1\nHost:\nTrAnsfer-EnCoding:Chunked\nTrAiler:0A 0\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for len(data) > 0 && (data[0] == '\r' || data[0] == '\n') {
			data = data[1:] // readHead skips these
		}
		end := headEnd(data, 0)
		if end == 0 {
			return
		}
		raw := data[:end]
		var got http.Request
		var h head
		if err := parseHead(raw, &got, &h, nil); err != nil {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("http1 accepted a head net/http refuses (%v):\n%q", err, raw)
		}
		delete(want.Header, "Host")
		if len(want.Header) == 0 {
			want.Header = http.Header{}
		}
		type view struct {
			Method, RequestURI, Proto, Host string
			Major, Minor                    int
			URL                             *url.URL
			Header                          http.Header
			ContentLength                   int64
			TE                              []string
			Close                           bool
			Trailer                         http.Header
		}
		g := view{got.Method, got.RequestURI, got.Proto, got.Host, got.ProtoMajor, got.ProtoMinor, got.URL, got.Header, got.ContentLength, got.TransferEncoding, got.Close, got.Trailer}
		w := view{want.Method, want.RequestURI, want.Proto, want.Host, want.ProtoMajor, want.ProtoMinor, want.URL, want.Header, want.ContentLength, want.TransferEncoding, want.Close, want.Trailer}
		if len(g.TE) == 0 {
			g.TE = nil
		}
		if len(w.TE) == 0 {
			w.TE = nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("head %q read differently:\nhttp1    %+v\nnet/http %+v", raw, g, w)
		}
	})
}

// errorLog counts the error records a server logs (a recovered panic in
// the server's own code is one).
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelError }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	l.msgs = append(l.msgs, b.String())
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }
func (l *errorLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}

// FuzzServerConn writes arbitrary bytes to a live connection: the server
// must answer and close without a panic, and keep serving new connections.
func FuzzServerConn(f *testing.F) {
	for _, tc := range conformanceCases {
		if len(tc.req) < 10000 {
			f.Add([]byte(tc.req))
		}
	}
	f.Add([]byte(get11 + get11 + "POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /hijack HTTP/1.1\r\nHost: t\r\n\r\nraw"))

	var log errorLog
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hijack" {
			c, brw, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_, _ = brw.WriteString("hijacked")
				_ = brw.Flush()
				_ = c.Close()
			}
			return
		}
		_, _ = io.WriteString(w, summarize(r))
	})
	_, addr := startServer(f, h, func(s *Server) {
		s.ReadHeaderTimeout = 2 * time.Second
		s.Log = slog.New(&log)
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		_, _ = c.Write(data) // the server may close first
		_ = c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Fatalf("server did not finish the connection: %v\ninput %q", err, data)
		}
		if msgs := log.get(); len(msgs) > 0 {
			t.Fatalf("server logged errors for input %q:\n%s", data, strings.Join(msgs, "\n"))
		}
		// A normal request on a new connection is still answered.
		c2 := dial(t, addr)
		c2.send(get11)
		if r := c2.mustRead("GET"); r.Status != 200 {
			t.Fatalf("after input %q: status %d", data, r.Status)
		}
	})
}
