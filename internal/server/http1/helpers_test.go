package http1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ioTimeout bounds every read and write a test makes on a connection.
const ioTimeout = 5 * time.Second

// startServer serves h with an http1.Server on a loopback listener; cfg may
// adjust the server before it starts. The server is closed, and Serve's
// result checked, when the test ends.
func startServer(t testing.TB, h http.Handler, cfg func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h}
	if cfg != nil {
		cfg(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		select {
		case err := <-done:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(ioTimeout):
			t.Errorf("Serve did not return after Close")
		}
	})
	return s, ln.Addr().String()
}

// startStd serves h with net/http's server on a loopback listener.
func startStd(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0), DisableGeneralOptionsHandler: true}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return ln.Addr().String()
}

// client is a raw TCP connection to a server under test.
type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) closeWrite() {
	_ = c.c.(*net.TCPConn).CloseWrite()
}

// wireResp is a response as it came off the wire.
type wireResp struct {
	Head    string // status line and header lines, through the blank line
	Status  int
	Proto   string
	Header  http.Header // as sent, keys canonical
	Keys    []string    // the header keys in the order sent (raw)
	Body    []byte
	Chunked bool
	Trailer http.Header
	Close   bool // the body was delimited by the connection closing
}

// read reads one response (a 1xx one too) and its body, framed as a client
// must frame it: no body for HEAD, 1xx, 204, 304; chunked; Content-Length;
// else until the connection closes.
func (c *client) read(method string) (*wireResp, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	var head strings.Builder
	r := &wireResp{Header: make(http.Header)}
	for first := true; ; first = false {
		line, err := c.br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			return nil, fmt.Errorf("reading head %q: %w", head.String(), err)
		}
		if !strings.HasSuffix(line, "\r\n") {
			return nil, fmt.Errorf("head line without CRLF: %q", line)
		}
		line = strings.TrimSuffix(line, "\r\n")
		if first {
			proto, rest, _ := strings.Cut(line, " ")
			code, _, _ := strings.Cut(rest, " ")
			n, err := strconv.Atoi(code)
			if err != nil {
				return nil, fmt.Errorf("bad status line %q", line)
			}
			r.Proto, r.Status = proto, n
			continue
		}
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, fmt.Errorf("bad header line %q", line)
		}
		r.Keys = append(r.Keys, k)
		r.Header[textproto.CanonicalMIMEHeaderKey(k)] = append(r.Header[textproto.CanonicalMIMEHeaderKey(k)], v)
	}
	r.Head = head.String()
	switch {
	case method == http.MethodHead, r.Status < 200, r.Status == 204, r.Status == 304:
		return r, nil
	case r.Header.Get("Transfer-Encoding") != "":
		if r.Header.Get("Transfer-Encoding") != "chunked" {
			return nil, fmt.Errorf("unexpected Transfer-Encoding %q", r.Header.Get("Transfer-Encoding"))
		}
		r.Chunked = true
		return r, c.readChunked(r)
	case r.Header.Get("Content-Length") != "":
		n, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64)
		if err != nil {
			return nil, err
		}
		r.Body = make([]byte, n)
		if _, err := io.ReadFull(c.br, r.Body); err != nil {
			return nil, fmt.Errorf("reading %d body bytes: %w", n, err)
		}
		return r, nil
	default:
		r.Close = true
		b, err := io.ReadAll(c.br)
		r.Body = b
		return r, err
	}
}

func (c *client) readChunked(r *wireResp) error {
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("chunk size: %w", err)
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(line, "\r\n"), 16, 64)
		if err != nil || !strings.HasSuffix(line, "\r\n") {
			return fmt.Errorf("bad chunk size line %q", line)
		}
		if n == 0 {
			break
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.br, buf); err != nil {
			return err
		}
		if !bytes.HasSuffix(buf, []byte("\r\n")) {
			return fmt.Errorf("chunk not followed by CRLF: %q", buf)
		}
		r.Body = append(r.Body, buf[:n]...)
	}
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("trailer: %w", err)
		}
		if line == "\r\n" {
			return nil
		}
		k, v, ok := strings.Cut(strings.TrimSuffix(line, "\r\n"), ": ")
		if !ok {
			return fmt.Errorf("bad trailer line %q", line)
		}
		if r.Trailer == nil {
			r.Trailer = make(http.Header)
		}
		r.Trailer.Add(k, v)
	}
}

// mustRead reads a final response, failing the test on error.
func (c *client) mustRead(method string) *wireResp {
	c.t.Helper()
	r, err := c.read(method)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// expectEOF checks that the server closes the connection with nothing more
// to read.
func (c *client) expectEOF() {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := io.ReadAll(c.br)
	if err != nil && !isReset(err) {
		c.t.Fatalf("waiting for the server to close: %v (read %q)", err, b)
	}
	if len(b) > 0 {
		c.t.Fatalf("unexpected bytes before close: %q", b)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// summarize writes what a handler saw of a request, deterministically.
func summarize(r *http.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Method=%q\nRequestURI=%q\n", r.Method, r.RequestURI)
	u := r.URL
	fmt.Fprintf(&b, "URL: Scheme=%q Opaque=%q User=%v Host=%q Path=%q RawPath=%q RawQuery=%q ForceQuery=%v Fragment=%q\n",
		u.Scheme, u.Opaque, u.User, u.Host, u.Path, u.RawPath, u.RawQuery, u.ForceQuery, u.Fragment)
	fmt.Fprintf(&b, "Host=%q\nProto=%q %d.%d\n", r.Host, r.Proto, r.ProtoMajor, r.ProtoMinor)
	writeHeader(&b, "Header", r.Header)
	fmt.Fprintf(&b, "ContentLength=%d\nTransferEncoding=%q\nClose=%v\n", r.ContentLength, r.TransferEncoding, r.Close)
	body, err := io.ReadAll(r.Body)
	fmt.Fprintf(&b, "Body=%q BodyErr=%v\n", body, err != nil)
	writeHeader(&b, "Trailer", r.Trailer)
	return b.String()
}

func writeHeader(b *strings.Builder, name string, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(b, "%s(%v):", name, h != nil)
	for _, k := range keys {
		fmt.Fprintf(b, " %q=%q", k, h[k])
	}
	b.WriteString("\n")
}

var summaryHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	s := summarize(r)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, s)
})

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
