package http1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/interrupt"
)

const get11 = "GET / HTTP/1.1\r\nHost: t\r\n\r\n"

// serveOne starts a server with h, sends req and reads one final response.
func serveOne(t *testing.T, h http.HandlerFunc, req, method string) (*client, *wireResp) {
	t.Helper()
	_, addr := startServer(t, h, nil)
	c := dial(t, addr)
	c.send(req)
	return c, c.mustRead(method)
}

func wantHeader(t *testing.T, r *wireResp, k, v string) {
	t.Helper()
	if got := r.Header.Values(k); len(got) != 1 || got[0] != v {
		t.Errorf("%s = %q, want [%q]\n%s", k, got, v, r.Head)
	}
}

func wantNoHeader(t *testing.T, r *wireResp, k string) {
	t.Helper()
	if got, ok := r.Header[k]; ok {
		t.Errorf("unexpected %s: %q\n%s", k, got, r.Head)
	}
}

func TestResponseSmallBodyContentLength(t *testing.T) {
	t.Parallel()
	c, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
		_, _ = io.WriteString(w, " world")
	}, get11, "GET")
	if r.Status != 200 || r.Proto != "HTTP/1.1" || string(r.Body) != "hello world" {
		t.Fatalf("got %d %s %q", r.Status, r.Proto, r.Body)
	}
	wantHeader(t, r, "Content-Length", "11")
	wantNoHeader(t, r, "Transfer-Encoding")
	wantNoHeader(t, r, "Connection")
	wantHeader(t, r, "Content-Type", "text/plain; charset=utf-8")
	if r.Header.Get("Date") == "" {
		t.Errorf("no Date\n%s", r.Head)
	}
	// The connection stays open for a second request.
	c.send(get11)
	if r2 := c.mustRead("GET"); string(r2.Body) != "hello world" {
		t.Errorf("second response %q", r2.Body)
	}
}

func TestResponseLargeBodyChunked(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 400) // 6400 bytes
	h := func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(big[:100])
		_, _ = w.Write(big[100:])
	}
	c, r := serveOne(t, h, get11, "GET")
	if !r.Chunked || !bytes.Equal(r.Body, big) {
		t.Fatalf("chunked=%v body %d bytes\n%s", r.Chunked, len(r.Body), r.Head)
	}
	wantNoHeader(t, r, "Content-Length")
	c.send(get11)
	if r2 := c.mustRead("GET"); !bytes.Equal(r2.Body, big) {
		t.Errorf("second response: %d bytes", len(r2.Body))
	}

	// HTTP/1.0: delimited by the close.
	c, r = serveOne(t, h, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET")
	if r.Proto != "HTTP/1.0" || r.Chunked || !r.Close || !bytes.Equal(r.Body, big) {
		t.Fatalf("HTTP/1.0: proto %s chunked=%v close=%v %d bytes\n%s", r.Proto, r.Chunked, r.Close, len(r.Body), r.Head)
	}
	wantHeader(t, r, "Connection", "close")
	wantNoHeader(t, r, "Content-Length")
	wantNoHeader(t, r, "Transfer-Encoding")
	_ = c
}

func TestResponseFlushChunked(t *testing.T) {
	t.Parallel()
	_, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "b")
	}, get11, "GET")
	if !r.Chunked || string(r.Body) != "ab" {
		t.Fatalf("chunked=%v body %q\n%s", r.Chunked, r.Body, r.Head)
	}
	// Flush through http.ResponseController with nothing written.
	_, r = serveOne(t, func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
	}, get11, "GET")
	if !r.Chunked || len(r.Body) != 0 {
		t.Fatalf("chunked=%v body %q\n%s", r.Chunked, r.Body, r.Head)
	}
}

func TestResponseHandlerContentLength(t *testing.T) {
	t.Parallel()
	t.Run("exact", func(t *testing.T) {
		t.Parallel()
		big := strings.Repeat("x", 10000)
		c, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10000")
			_, _ = io.WriteString(w, big)
		}, get11, "GET")
		if r.Chunked || string(r.Body) != big {
			t.Fatalf("chunked=%v len %d\n%s", r.Chunked, len(r.Body), r.Head)
		}
		wantHeader(t, r, "Content-Length", "10000")
		c.send(get11)
		c.mustRead("GET")
	})
	t.Run("more", func(t *testing.T) {
		t.Parallel()
		errc := make(chan error, 1)
		c, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			_, _ = io.WriteString(w, "abc")
			_, err := io.WriteString(w, "d")
			errc <- err
		}, get11, "GET")
		if err := <-errc; !errors.Is(err, http.ErrContentLength) {
			t.Errorf("writing past Content-Length: %v, want http.ErrContentLength", err)
		}
		if string(r.Body) != "abc" {
			t.Errorf("body %q", r.Body)
		}
		// Nothing of the extra byte may reach the wire.
		c.send(get11)
		if r2, err := c.read("GET"); err == nil && r2.Status != 200 {
			t.Errorf("after the response: status %d", r2.Status)
		}
	})
	t.Run("less", func(t *testing.T) {
		t.Parallel()
		c, r := func() (*client, *wireResp) {
			_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "10")
				_, _ = io.WriteString(w, "abc")
			}), nil)
			c := dial(t, addr)
			c.send(get11)
			r, err := c.read("HEAD") // just the head
			if err != nil {
				t.Fatal(err)
			}
			return c, r
		}()
		wantHeader(t, r, "Content-Length", "10")
		// Three bytes, then the server closes.
		b, err := io.ReadAll(c.br)
		if string(b) != "abc" || (err != nil && !isReset(err)) {
			t.Fatalf("body %q, %v; want \"abc\" then close", b, err)
		}
	})
	t.Run("sniffed", func(t *testing.T) {
		t.Parallel()
		// net/http sniffs the first write even when the handler set a
		// Content-Length.
		_, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "13")
			_, _ = io.WriteString(w, "<html></html>")
		}, get11, "GET")
		wantHeader(t, r, "Content-Type", "text/html; charset=utf-8")
		wantHeader(t, r, "Content-Length", "13")
	})
}

func TestResponseHEAD(t *testing.T) {
	t.Parallel()
	h := func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cl":
			w.Header().Set("Content-Length", "42")
		case "/written":
			_, _ = io.WriteString(w, "hello")
		case "/big":
			_, _ = w.Write(make([]byte, 10000))
		}
	}
	_, addr := startServer(t, http.HandlerFunc(h), nil)
	c := dial(t, addr)
	for path, cl := range map[string]string{"/cl": "42", "/written": "5", "/none": "", "/big": "10000"} {
		c.send("HEAD " + path + " HTTP/1.1\r\nHost: t\r\n\r\n")
		r := c.mustRead("HEAD")
		if r.Status != 200 {
			t.Fatalf("%s: status %d", path, r.Status)
		}
		if cl == "" {
			wantNoHeader(t, r, "Content-Length")
		} else {
			wantHeader(t, r, "Content-Length", cl)
		}
		wantNoHeader(t, r, "Transfer-Encoding")
	}
	// No body bytes were sent: the next response starts right away.
	c.send("GET /written HTTP/1.1\r\nHost: t\r\n\r\n")
	if r := c.mustRead("GET"); string(r.Body) != "hello" {
		t.Fatalf("GET after HEADs: %q", r.Body)
	}
}

func TestResponseNoBodyStatuses(t *testing.T) {
	t.Parallel()
	for _, code := range []int{204, 304} {
		errc := make(chan error, 1)
		c, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", "5")
			w.Header().Set("Transfer-Encoding", "chunked")
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(code)
			_, err := io.WriteString(w, "hello")
			errc <- err
		}, get11, "GET")
		if err := <-errc; !errors.Is(err, http.ErrBodyNotAllowed) {
			t.Errorf("%d: Write: %v, want http.ErrBodyNotAllowed", code, err)
		}
		if r.Status != code {
			t.Fatalf("status %d, want %d", r.Status, code)
		}
		wantNoHeader(t, r, "Content-Length")
		wantNoHeader(t, r, "Transfer-Encoding")
		wantHeader(t, r, "Etag", `"x"`)
		if code == 304 {
			wantNoHeader(t, r, "Content-Type")
		} else {
			wantHeader(t, r, "Content-Type", "text/html")
		}
		// No body on the wire: the next response follows at once.
		c.send(get11)
		if r2 := c.mustRead("GET"); r2.Status != code {
			t.Fatalf("second: %d", r2.Status)
		}
	}
}

func TestResponseInformational(t *testing.T) {
	t.Parallel()
	c, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Link", "</final>")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "done")
	}, get11, "GET")
	if r.Status != 103 {
		t.Fatalf("first response %d, want 103\n%s", r.Status, r.Head)
	}
	if r.Head != "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" {
		t.Errorf("103 head %q", r.Head)
	}
	r = c.mustRead("GET")
	if r.Status != 200 || string(r.Body) != "done" {
		t.Fatalf("final %d %q", r.Status, r.Body)
	}
	wantHeader(t, r, "Link", "</final>")
}

func TestResponseWriteHeaderTwiceAndLateHeaders(t *testing.T) {
	t.Parallel()
	_, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Before", "1")
		w.WriteHeader(http.StatusCreated)
		w.WriteHeader(http.StatusTeapot)
		w.Header().Set("X-After", "1")
		w.Header().Set("X-Before", "changed")
		w.Header().Del("Date")
		_, _ = io.WriteString(w, "x")
	}, get11, "GET")
	if r.Status != 201 {
		t.Fatalf("status %d, want 201", r.Status)
	}
	wantHeader(t, r, "X-Before", "1")
	wantNoHeader(t, r, "X-After")
	if r.Header.Get("Date") == "" {
		t.Errorf("Date missing")
	}
}

func TestResponseContentTypeSniffing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		set  func(h http.Header)
		body string
		want []string // nil: no Content-Type
	}{
		{"unset-html", func(http.Header) {}, "<!DOCTYPE html><p>x", []string{"text/html; charset=utf-8"}},
		{"unset-binary", func(http.Header) {}, "\x00\x01\x02", []string{"application/octet-stream"}},
		{"unset-empty-body", func(http.Header) {}, "", nil},
		{"set", func(h http.Header) { h.Set("Content-Type", "application/x-custom") }, "<html>", []string{"application/x-custom"}},
		{"set-nil", func(h http.Header) { h["Content-Type"] = nil }, "<html>", nil},
		{"content-encoding", func(h http.Header) { h.Set("Content-Encoding", "gzip") }, "<html>", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
				tc.set(w.Header())
				_, _ = io.WriteString(w, tc.body)
			}, get11, "GET")
			got := r.Header.Values("Content-Type")
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("Content-Type %q, want %q\n%s", got, tc.want, r.Head)
			}
		})
	}
}

func TestResponseHeaderSanitising(t *testing.T) {
	t.Parallel()
	_, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Bad Name"] = []string{"1"}
		h["Bad:Colon"] = []string{"1"}
		h["X-Nul\x00"] = []string{"1"}
		h[""] = []string{"1"}
		h.Set("X-Inject", "a\r\nInjected: yes\r\n\r\nbody")
		h.Set("X-Lf", "a\nSet-Cookie: evil=1")
		h.Set("X-Space", "  padded  ")
		h.Set("X-Ok", "fine")
		_, _ = io.WriteString(w, "ok")
	}, get11, "GET")
	for _, k := range r.Keys {
		switch k {
		case "Bad Name", "Bad:Colon", "X-Nul\x00", "", "Injected", "Set-Cookie":
			t.Errorf("header %q was sent\n%q", k, r.Head)
		}
	}
	wantHeader(t, r, "X-Inject", "a  Injected: yes    body")
	wantHeader(t, r, "X-Lf", "a Set-Cookie: evil=1")
	wantHeader(t, r, "X-Space", "padded")
	wantHeader(t, r, "X-Ok", "fine")
	if string(r.Body) != "ok" {
		t.Errorf("body %q", r.Body)
	}
}

func TestResponseTrailers(t *testing.T) {
	t.Parallel()
	t.Run("declared", func(t *testing.T) {
		t.Parallel()
		_, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum, x-count")
			_, _ = io.WriteString(w, "data")
			w.Header().Set("X-Sum", "42")
			w.Header().Set("X-Count", "1")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		}, get11, "GET")
		if !r.Chunked || string(r.Body) != "data" {
			t.Fatalf("chunked=%v body %q\n%s", r.Chunked, r.Body, r.Head)
		}
		wantHeader(t, r, "Trailer", "X-Sum, x-count")
		want := http.Header{"X-Sum": {"42"}, "X-Count": {"1"}, "X-Late": {"late"}}
		if !equalHeader(r.Trailer, want) {
			t.Errorf("trailers %v, want %v", r.Trailer, want)
		}
	})
	t.Run("prefix-only", func(t *testing.T) {
		t.Parallel()
		// As with net/http, a TrailerPrefix key set before the head is
		// written makes the response chunked so that the trailer is sent.
		_, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(http.TrailerPrefix+"X-Sum", "")
			_, _ = io.WriteString(w, "data")
			w.Header().Set(http.TrailerPrefix+"X-Sum", "7")
		}, get11, "GET")
		if !r.Chunked || string(r.Body) != "data" {
			t.Fatalf("chunked=%v body %q\n%s", r.Chunked, r.Body, r.Head)
		}
		if got := r.Trailer.Get("X-Sum"); got != "7" {
			t.Errorf("trailer X-Sum %q, want 7 (trailers %v)", got, r.Trailer)
		}
	})
}

func TestResponseTrailersNotAllowed(t *testing.T) {
	t.Parallel()
	// Fields that may not be trailers (RFC 9110 §6.5.1) are not sent as
	// declared trailers, as with net/http.
	_, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Host, Authorization, Content-Length, X-Ok")
		_, _ = io.WriteString(w, "data")
		w.Header().Set("Host", "evil")
		w.Header().Set("Authorization", "late")
		w.Header().Set("X-Ok", "1")
	}, get11, "GET")
	if !r.Chunked {
		t.Fatalf("not chunked\n%s", r.Head)
	}
	if want := (http.Header{"X-Ok": {"1"}}); !equalHeader(r.Trailer, want) {
		t.Errorf("trailers %v, want %v", r.Trailer, want)
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\x00") != strings.Join(b[k], "\x00") {
			return false
		}
	}
	return true
}

func TestResponseConnectionHeader(t *testing.T) {
	t.Parallel()
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		_, _ = io.WriteString(w, "ok")
	}
	t.Run("request-close", func(t *testing.T) {
		t.Parallel()
		c, r := serveOne(t, h, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "GET")
		wantHeader(t, r, "Connection", "close")
		c.expectEOF()
	})
	t.Run("handler-close", func(t *testing.T) {
		t.Parallel()
		c, r := serveOne(t, h, "GET /close HTTP/1.1\r\nHost: t\r\n\r\n", "GET")
		wantHeader(t, r, "Connection", "close")
		c.expectEOF()
	})
	t.Run("http10", func(t *testing.T) {
		t.Parallel()
		c, r := serveOne(t, h, "GET / HTTP/1.0\r\n\r\n", "GET")
		if r.Proto != "HTTP/1.0" || string(r.Body) != "ok" {
			t.Fatalf("%s %q", r.Proto, r.Body)
		}
		c.expectEOF()
	})
	t.Run("http10-keep-alive", func(t *testing.T) {
		t.Parallel()
		c, r := serveOne(t, h, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET")
		wantHeader(t, r, "Connection", "keep-alive")
		wantHeader(t, r, "Content-Length", "2")
		c.send("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
		r = c.mustRead("GET")
		wantHeader(t, r, "Connection", "keep-alive")
		c.send("GET / HTTP/1.0\r\n\r\n")
		if r = c.mustRead("GET"); string(r.Body) != "ok" {
			t.Fatalf("%q", r.Body)
		}
		c.expectEOF()
	})
	t.Run("http11-minor2", func(t *testing.T) {
		t.Parallel()
		c, r := serveOne(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(make([]byte, 5000))
		}, "GET / HTTP/1.2\r\nHost: t\r\n\r\n", "GET")
		if r.Proto != "HTTP/1.1" || !r.Chunked {
			t.Fatalf("HTTP/1.2 request: %s chunked=%v\n%s", r.Proto, r.Chunked, r.Head)
		}
		c.send(get11)
		c.mustRead("GET")
	})
}

// Trailers with names that are not valid field names are not sent (as
// net/http's Header.Write drops them), whichever way they were declared.
func TestInvalidTrailerNamesDropped(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Ok, Bad Name")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Ok", "1")
		w.Header()["Bad Name"] = []string{"2"}
		w.Header()[http.TrailerPrefix+"Also Bad"] = []string{"3"}
		w.Header()[http.TrailerPrefix+"X-Late"] = []string{"4"}
	})
	_, addr := startServer(t, h, nil)
	c := dial(t, addr)
	c.send(get11)
	r := c.mustRead("GET")
	if !r.Chunked || r.Trailer.Get("X-Ok") != "1" || r.Trailer.Get("X-Late") != "4" {
		t.Errorf("valid trailers missing: chunked %v, trailer %v", r.Chunked, r.Trailer)
	}
	if len(r.Trailer) != 2 {
		t.Errorf("trailer %v: a field with an invalid name was sent", r.Trailer)
	}
}

// TestResponseHeaderMapReuse: the next request on a connection starts with
// an empty header map of its own, so a goroutine the first handler left
// behind, writing to the first's map, puts nothing in the second response.
func TestResponseHeaderMapReuse(t *testing.T) {
	t.Parallel()
	late := make(chan struct{})
	lateDone := make(chan struct{})
	n := 0
	h := func(w http.ResponseWriter, r *http.Request) {
		n++
		if n == 1 {
			w.Header().Set("X-First", "1")
			go func() {
				<-late
				w.Header().Set("X-Late", "leaked")
				close(lateDone)
			}()
			return
		}
		if len(w.Header()) != 0 {
			t.Errorf("second request's header map starts with %v", w.Header())
		}
		close(late)
		<-lateDone
		w.Header().Set("X-Second", "2")
	}
	_, addr := startServer(t, http.HandlerFunc(h), nil)
	c := dial(t, addr)
	c.send(get11)
	first := c.mustRead("GET")
	wantHeader(t, first, "X-First", "1")
	c.send(get11)
	second := c.mustRead("GET")
	wantHeader(t, second, "X-Second", "2")
	wantNoHeader(t, second, "X-First")
	wantNoHeader(t, second, "X-Late")
}

// TestDirectHook: Server.Direct is offered bodiless requests first; what
// it answers does not reach Handler, which gets a header map of its own for
// what it declines; the connection's map starts empty for every request
// Direct answers.
func TestDirectHook(t *testing.T) {
	t.Parallel()
	// Written by the server's goroutine, read here: the socket is no
	// synchronisation the race detector knows of.
	var mu sync.Mutex
	var handled, offered int
	var seen []string
	ended := make(chan struct{}, 8)
	h := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		handled++
		mu.Unlock()
		// A declined request's context is not the connection's to watch:
		// this runs through context.AfterFunc when the server ends it.
		interrupt.AfterFunc(r.Context(), func() { ended <- struct{}{} })
		if len(w.Header()) != 0 {
			t.Errorf("handler's header map starts with %v", w.Header())
		}
		w.Header().Set("X-By", "handler")
	}
	direct := func(w http.ResponseWriter, r *http.Request, ctl DirectControl) bool {
		mu.Lock()
		offered++
		if r.URL.Path == "/decline" {
			mu.Unlock()
			return false
		}
		seen = append(seen, fmt.Sprint(len(w.Header())))
		mu.Unlock()
		if r.Context().Err() != nil {
			t.Errorf("request context ended early: %v", r.Context().Err())
		}
		w.Header().Set("X-By", "direct")
		w.Header().Set("X-Path", r.URL.Path)
		return true
	}
	_, addr := startServer(t, http.HandlerFunc(h), func(s *Server) { s.Direct = direct })
	c := dial(t, addr)
	for _, p := range []string{"/a", "/decline", "/b"} {
		c.send("GET " + p + " HTTP/1.1\r\nHost: x\r\n\r\n")
		resp := c.mustRead("GET")
		want := "direct"
		if p == "/decline" {
			want = "handler"
		} else {
			wantHeader(t, resp, "X-Path", p)
		}
		wantHeader(t, resp, "X-By", want)
	}
	c.send("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	wantHeader(t, c.mustRead("POST"), "X-By", "handler")
	for range 2 {
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("a handler's interrupt.AfterFunc did not run when its request ended")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if offered != 3 || handled != 2 {
		t.Errorf("Direct offered %d requests, handler ran %d times; want 3 and 2", offered, handled)
	}
	if fmt.Sprint(seen) != "[0 0]" {
		t.Errorf("Direct's header map sizes at start: %v, want [0 0]", seen)
	}
}

// TestDirectControl: the timeout ends the request's context with its cause
// and runs what interrupt.AfterFunc registered under it, never before it is
// due, whatever the timer left pending by an earlier request; a stopped
// timeout does nothing, and a later request on the connection is not
// touched by an earlier one's timer. Contexts derived from the request's are left to
// context.AfterFunc.
func TestDirectControl(t *testing.T) {
	t.Parallel()
	cause := errors.New("route timeout")
	results := make(chan string, 8)
	direct := func(w http.ResponseWriter, r *http.Request, ctl DirectControl) bool {
		ctx := r.Context()
		switch r.URL.Path {
		case "/fire":
			ran := make(chan struct{})
			stop := interrupt.AfterFunc(ctx, func() { close(ran) })
			tm := ctl.Timeout(20*time.Millisecond, cause)
			select {
			case <-ran:
			case <-time.After(5 * time.Second):
				results <- "interrupt did not run"
				return true
			}
			results <- fmt.Sprintf("cause=%v stopTimer=%v stopInterrupt=%v", context.Cause(ctx), tm.Stop(), stop())
		case "/stop":
			ran := false
			stop := interrupt.AfterFunc(ctx, func() { ran = true })
			tm := ctl.Timeout(time.Hour, cause)
			results <- fmt.Sprintf("stopTimer=%v stopInterrupt=%v err=%v ran=%v", tm.Stop(), stop(), ctx.Err(), ran)
		case "/short":
			// A timeout stopped just before it is due: its late run must
			// not reach the next request.
			ctl.Timeout(time.Millisecond, cause).Stop()
			results <- "short"
		case "/after":
			time.Sleep(20 * time.Millisecond)
			results <- fmt.Sprintf("err=%v", ctx.Err())
		case "/rearm", "/sooner":
			// The timer stays pending from an earlier request (due in a
			// millisecond after /short, in an hour after /stop): a later
			// deadline is re-armed for when it finds this one not yet
			// due, an earlier one resets the timer.
			ran := make(chan struct{})
			interrupt.AfterFunc(ctx, func() { close(ran) })
			start := time.Now()
			tm := ctl.Timeout(60*time.Millisecond, cause)
			select {
			case <-ran:
			case <-time.After(5 * time.Second):
				results <- "timeout did not fire"
				return true
			}
			early := time.Since(start) < 60*time.Millisecond
			results <- fmt.Sprintf("cause=%v early=%v stopTimer=%v", context.Cause(ctx), early, tm.Stop())
		case "/informational":
			hook := func(int, textproto.MIMEHeader) error { return nil }
			ctl.On1xx(hook)
			d, cancel := context.WithCancel(ctx)
			defer cancel()
			results <- fmt.Sprintf("own=%v derived=%v detached=%v", interrupt.Informational(ctx) != nil,
				interrupt.Informational(d) != nil, interrupt.Informational(context.WithoutCancel(ctx)) != nil)
		case "/derived":
			d, cancel := context.WithCancel(ctx)
			ran := make(chan struct{})
			interrupt.AfterFunc(d, func() { close(ran) })
			cancel()
			select {
			case <-ran:
				results <- "derived ran"
			case <-time.After(5 * time.Second):
				results <- "derived did not run"
			}
		}
		return true
	}
	_, addr := startServer(t, http.NotFoundHandler(), func(s *Server) { s.Direct = direct })
	c := dial(t, addr)
	for _, tc := range []struct{ path, want string }{
		{"/fire", "cause=route timeout stopTimer=false stopInterrupt=false"},
		{"/stop", "stopTimer=true stopInterrupt=true err=<nil> ran=false"},
		{"/sooner", "cause=route timeout early=false stopTimer=false"},
		{"/short", "short"},
		{"/after", "err=<nil>"},
		{"/short", "short"},
		{"/rearm", "cause=route timeout early=false stopTimer=false"},
		{"/stop", "stopTimer=true stopInterrupt=true err=<nil> ran=false"},
		{"/derived", "derived ran"},
		{"/informational", "own=true derived=false detached=false"},
	} {
		c.send("GET " + tc.path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		c.mustRead("GET")
		if got := <-results; got != tc.want {
			t.Errorf("%s: %s, want %s", tc.path, got, tc.want)
		}
	}
}

// TestDirectSpares: a request Direct answered leaves its header map, values
// and URL to the connection's next request, emptied; a request a handler
// got keeps its own, whatever the connection serves after it.
func TestDirectSpares(t *testing.T) {
	t.Parallel()
	type seen struct {
		header string
		url    string
		hdrPtr uintptr
	}
	got := make(chan seen, 8)
	kept := make(chan *http.Request, 1)
	direct := func(w http.ResponseWriter, r *http.Request, ctl DirectControl) bool {
		if r.URL.Path == "/decline" {
			return false
		}
		got <- seen{fmt.Sprint(r.Header), r.URL.String(), reflect.ValueOf(r.Header).Pointer()}
		// As the lane does: the request becomes the upstream one.
		r.Header.Set("X-Added", "1")
		r.URL.Path, r.URL.Host, r.URL.Scheme = "/changed", "backend", "http"
		return true
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { kept <- r })
	_, addr := startServer(t, h, func(s *Server) { s.Direct = direct })
	c := dial(t, addr)
	send := func(target, field string) {
		c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n" + field + "\r\n\r\n")
		c.mustRead("GET")
	}
	send("/a?q=1", "X-One: 1")
	a := <-got
	send("/b", "X-Two: 2")
	b := <-got
	if b.header != "map[X-Two:[2]]" || b.url != "/b" {
		t.Errorf("second request saw header %s, URL %s; want only its own", b.header, b.url)
	}
	if a.hdrPtr != b.hdrPtr {
		t.Error("the second request's header map is not the first's, emptied")
	}
	// A head of more fields than a connection keeps gets its own map and
	// leaves the spare one for the next request.
	send("/big", strings.Repeat("A: x\r\n", maxSpareFields)+"X-Big: 1")
	if big := <-got; big.hdrPtr == a.hdrPtr {
		t.Error("a head larger than maxSpareFields took the spare header map")
	}
	send("/small", "X-Small: 1")
	if small := <-got; small.hdrPtr != a.hdrPtr || small.header != "map[X-Small:[1]]" {
		t.Errorf("after a large head: header %s, spare reused %v; want the spare map with only X-Small", small.header, small.hdrPtr == a.hdrPtr)
	}
	send("/decline", "X-Three: 3")
	r := <-kept
	send("/c", "X-Four: 4")
	cc := <-got
	if cc.hdrPtr == reflect.ValueOf(r.Header).Pointer() {
		t.Error("a request after a declined one reuses the handler's header map")
	}
	if fmt.Sprint(r.Header) != "map[X-Three:[3]]" || r.URL.String() != "/decline" {
		t.Errorf("the handler's request changed after it: header %v, URL %s", r.Header, r.URL)
	}
	if cc.header != "map[X-Four:[4]]" || cc.url != "/c" {
		t.Errorf("request after the declined one saw header %s, URL %s", cc.header, cc.url)
	}
}

// TestDirectRawHeader: the lines Direct gives RawHeader open every head of
// its response, informational ones too, before the map's fields; they end
// with the request.
func TestDirectRawHeader(t *testing.T) {
	t.Parallel()
	direct := func(w http.ResponseWriter, r *http.Request, ctl DirectControl) bool {
		switch r.URL.Path {
		case "/decline":
			return false
		case "/raw":
			ctl.RawHeader([]byte("X-Raw: 1\r\nX-Dup: first\r\n"))
			w.Header()["X-Dup"] = []string{"second"}
			w.WriteHeader(http.StatusEarlyHints)
		}
		w.Header().Set("X-By", "direct")
		return true
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	_, addr := startServer(t, h, func(s *Server) { s.Direct = direct })
	c := dial(t, addr)
	c.send("GET /raw HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []int{http.StatusEarlyHints, http.StatusOK} {
		resp := c.mustRead("GET")
		if resp.Status != want {
			t.Fatalf("status %d, want %d", resp.Status, want)
		}
		if !strings.HasPrefix(strings.SplitN(resp.Head, "\r\n", 2)[1], "X-Raw: 1\r\nX-Dup: first\r\n") {
			t.Errorf("%d: head does not open with the raw lines:\n%s", want, resp.Head)
		}
		if got := resp.Header["X-Dup"]; len(got) != 2 || got[0] != "first" || got[1] != "second" {
			t.Errorf("%d: X-Dup = %q, want the raw line's value before the map's", want, got)
		}
	}
	for _, p := range []string{"/plain", "/decline"} {
		c.send("GET " + p + " HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp := c.mustRead("GET"); resp.Header.Get("X-Raw") != "" {
			t.Errorf("%s: the previous request's raw lines were written:\n%s", p, resp.Head)
		}
	}
}

// TestDirectLaneContext: requests Direct answers share the connection's
// lane context while nothing ends it, and get a new one after something
// did (here the timeout); a request Direct declines gets a context of its
// own, which ends with it, and so does one with a body.
func TestDirectLaneContext(t *testing.T) {
	t.Parallel()
	type seen struct {
		ctx context.Context
		err error
	}
	got := make(chan seen, 8)
	handlerCtx := make(chan context.Context, 2)
	direct := func(w http.ResponseWriter, r *http.Request, ctl DirectControl) bool {
		ctx := r.Context()
		switch r.URL.Path {
		case "/decline":
			return false
		case "/timeout":
			ran := make(chan struct{})
			stop := interrupt.AfterFunc(ctx, func() { close(ran) })
			ctl.Timeout(time.Millisecond, errors.New("timed out"))
			select {
			case <-ran:
			case <-time.After(5 * time.Second):
			}
			stop()
		}
		got <- seen{ctx, ctx.Err()}
		return true
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handlerCtx <- r.Context() })
	_, addr := startServer(t, h, func(s *Server) { s.Direct = direct })
	c := dial(t, addr)
	get := func(p string) {
		c.send("GET " + p + " HTTP/1.1\r\nHost: x\r\n\r\n")
		c.mustRead("GET")
	}
	get("/a")
	a := <-got
	get("/b")
	b := <-got
	if a.ctx != b.ctx || a.err != nil || b.err != nil || b.ctx.Err() != nil {
		t.Errorf("answered requests: same context %v, errs %v %v; want one live context", a.ctx == b.ctx, a.err, b.err)
	}
	get("/decline")
	d := <-handlerCtx
	if d == a.ctx {
		t.Error("a declined request's handler got the lane context")
	}
	waitFor(t, "the declined request's context to end", func() bool { return d.Err() != nil })
	c.send("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	c.mustRead("POST")
	if p := <-handlerCtx; p == a.ctx {
		t.Error("a request with a body got the lane context")
	} else {
		waitFor(t, "the body request's context to end", func() bool { return p.Err() != nil })
	}
	if a.ctx.Err() != nil {
		t.Fatalf("the lane context ended with another request: %v", a.ctx.Err())
	}
	get("/timeout")
	to := <-got
	if to.ctx != a.ctx || to.err == nil {
		t.Fatalf("timed-out request: same context %v, err %v; want the lane context, ended", to.ctx == a.ctx, to.err)
	}
	get("/after")
	after := <-got
	if after.ctx == a.ctx || after.err != nil {
		t.Errorf("after the timeout: same context %v, err %v; want a new, live one", after.ctx == a.ctx, after.err)
	}
	// The connection's end ends its lane context.
	_ = c.c.Close()
	waitFor(t, "the lane context to end with its connection", func() bool { return after.ctx.Err() != nil })
}
