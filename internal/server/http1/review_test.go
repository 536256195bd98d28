package http1

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A connection does not keep, while it idles, a head buffer grown by one
// large response head (a backend's big Set-Cookie or CSP, or headers a
// handler reflects from the request), as it does not for a large request
// head.
func TestReviewLargeResponseHeadNotKeptWhileIdle(t *testing.T) {
	t.Parallel()
	caps := make(chan int, 4)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("v", 256<<10))
		_, _ = w.Write([]byte("ok"))
	})
	_, addr := startServer(t, h, func(s *Server) {
		s.ConnState = func(nc net.Conn, st http.ConnState) {
			if st != http.StateIdle {
				return
			}
			// Called on the connection's own goroutine: its buffers are
			// not in use.
			s.mu.Lock()
			for c := range s.conns {
				if c.nc == nc {
					caps <- cap(c.head)
				}
			}
			s.mu.Unlock()
		}
	})
	cl := dial(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := cl.mustRead("GET"); r.Status != 200 || len(r.Header.Get("X-Big")) != 256<<10 {
		t.Fatalf("status %d, X-Big of %d bytes", r.Status, len(r.Header.Get("X-Big")))
	}
	select {
	case n := <-caps:
		if n > maxKeptHead {
			t.Errorf("an idle connection keeps a %d-byte head buffer, want at most %d", n, maxKeptHead)
		}
	case <-time.After(ioTimeout):
		t.Fatal("no idle state after the response")
	}
}

// An informational answer (103 Early Hints, as ReverseProxy forwards from a
// backend on the transport's goroutine) and the automatic 100 Continue of a
// body read on another goroutine both write the connection's buffer: they
// must not do so at the same time (under -race this test reports it).
func TestReviewInformationalAndContinueDoNotRace(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 8)
			_, _ = r.Body.Read(buf)
		}()
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		<-done
		w.Header().Del("Link")
		_, _ = w.Write([]byte("ok"))
	})
	_, addr := startServer(t, h, nil)
	cl := dial(t, addr)
	cl.send("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
	for i := 0; i < 4; i++ {
		r := cl.mustRead("POST")
		if r.Status >= 200 {
			if string(r.Body) != "ok" {
				t.Fatalf("body %q", r.Body)
			}
			return
		}
	}
	t.Fatal("no final response")
}
