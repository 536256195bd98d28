package http1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
)

// BenchmarkServer compares this server with net/http's on the same handler
// (a 1 KiB answer) over loopback keep-alive connections: ns/op and the
// server's allocations per request (the client side allocates nothing per
// request).
func BenchmarkServer(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", "1024")
		_, _ = w.Write(body)
	})
	b.Run("http1", func(b *testing.B) {
		ln := listen(b)
		s := &Server{Handler: h}
		go func() { _ = s.Serve(ln) }()
		b.Cleanup(func() { _ = s.Close() })
		benchClient(b, ln.Addr().String())
	})
	b.Run("net-http", func(b *testing.B) {
		ln := listen(b)
		s := &http.Server{Handler: h}
		go func() { _ = s.Serve(ln) }()
		b.Cleanup(func() { _ = s.Close() })
		benchClient(b, ln.Addr().String())
	})
}

func listen(b *testing.B) net.Listener {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

// benchClient sends b.N GETs on one keep-alive connection, reading each
// answer (head, then Content-Length bytes) before the next.
func benchClient(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /bytes/1024?x=1 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\nX-Request-Id: 0123456789abcdef\r\n\r\n")
	br := bufio.NewReaderSize(c, 8192)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) <= 2 {
				break
			}
			if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
				n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
		}
		if n < 0 {
			b.Fatal("no Content-Length")
		}
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			b.Fatal(err)
		}
	}
}
