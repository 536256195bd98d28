package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestE2ERequestFramingRefused sends, over raw connections to the real
// binary, requests whose framing a proxy must not guess at (the shapes of
// request smuggling): each gets 400 (or 501, 505), the connection is closed,
// and nothing of it — in particular not the request hidden in its body —
// reaches the backend. Pipelined well-formed requests are served in order,
// and the gateway keeps serving after every refusal.
func TestE2ERequestFramingRefused(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	}))
	t.Cleanup(be.Close)
	p := startAltair(t, baseCfg+fmt.Sprintf(`
routes:
  - name: all
    match:
      prefix: /
    backends:
      - url: %s
`, be.URL))

	hidden := "GET /hidden HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name   string
		raw    string
		status int
	}{
		{"Content-Length and Transfer-Encoding", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden, 400},
		{"Transfer-Encoding and Content-Length", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + hidden, 400},
		{"two different Content-Lengths", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd" + hidden, 400},
		{"Transfer-Encoding on HTTP/1.0", "POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden, 400},
		{"obs-fold", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n" + hidden, 400},
		{"space before the colon", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\nabcd" + hidden, 400},
		{"unknown transfer coding", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + hidden, 501},
		{"chunked not last", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + hidden, 501},
		{"bad chunk size", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + hidden, 400},
		{"missing Host", "GET /a HTTP/1.1\r\n\r\n" + hidden, 400},
		{"two Hosts", "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n" + hidden, 400},
		{"HTTP/2 preface on HTTP/1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + hidden, 505},
	}
	for _, tt := range tests {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, tt.raw); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			c.Close()
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		// The chunked body is read by the handler only after the backend has
		// been picked; a refused head never gets that far.
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %d %q, want %d", tt.name, resp.StatusCode, body, tt.status)
		}
		if rest, _ := io.ReadAll(br); len(rest) != 0 {
			t.Errorf("%s: a second answer followed the refusal: %q", tt.name, rest)
		}
		c.Close()
	}
	// Well-formed pipelined requests: both served, in order.
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"ok /one", "ok /two"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if string(b) != want {
			t.Fatalf("pipelined: %q, want %q", b, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		if strings.Contains(s, "/hidden") || strings.HasPrefix(s, "POST /a") || strings.HasPrefix(s, "GET /a") {
			t.Errorf("the backend got %q from a refused request", s)
		}
	}
	if len(seen) != 2 || seen[0] != "POST /one abc" || seen[1] != "GET /two " {
		t.Errorf("backend saw %q, want the two pipelined requests", seen)
	}
}
