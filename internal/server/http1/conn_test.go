package http1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoHandler answers with the path and the body it read.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	_, _ = fmt.Fprintf(w, "%s %s", r.URL.Path, b)
})

func TestBodyReadFully(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, echoHandler, nil)
	c := dial(t, addr)
	c.send("POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nwo\r\n3\r\nrld\r\n0\r\n\r\n" +
		"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
	for _, want := range []string{"/cl hello", "/chunked world", "/after "} {
		if r := c.mustRead("GET"); string(r.Body) != want {
			t.Fatalf("got %q, want %q", r.Body, want)
		}
	}
}

func TestBodyUnreadSmallKeepsConnection(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.URL.Path)
	}), nil)
	c := dial(t, addr)
	body := strings.Repeat("b", 100<<10)
	c.send("POST /1 HTTP/1.1\r\nHost: t\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	if r := c.mustRead("POST"); string(r.Body) != "/1" || r.Header.Get("Connection") != "" {
		t.Fatalf("first: %q %v", r.Body, r.Header)
	}
	c.send("POST /2 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	if r := c.mustRead("POST"); string(r.Body) != "/2" {
		t.Fatalf("second: %q", r.Body)
	}
	c.send("GET /3 HTTP/1.1\r\nHost: t\r\n\r\n")
	if r := c.mustRead("GET"); string(r.Body) != "/3" {
		t.Fatalf("third: %q", r.Body)
	}
}

func TestBodyUnreadLargeClosesConnection(t *testing.T) {
	t.Parallel()
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			t.Parallel()
			_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "unread")
			}), nil)
			c := dial(t, addr)
			const size = 600 << 10
			head := "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n"
			if chunked {
				head = "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(size, 16) + "\r\n"
			}
			c.send(head)
			go func() { _, _ = c.c.Write(make([]byte, size)) }() // the server may stop reading
			r := c.mustRead("POST")
			if string(r.Body) != "unread" {
				t.Fatalf("body %q", r.Body)
			}
			c.expectEOF()
		})
	}
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/deny" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})
	t.Run("read", func(t *testing.T) {
		t.Parallel()
		_, addr := startServer(t, h, nil)
		c := dial(t, addr)
		c.send("POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		r := c.mustRead("POST")
		if r.Status != 100 || r.Head != "HTTP/1.1 100 Continue\r\n\r\n" {
			t.Fatalf("want 100 Continue, got %q", r.Head)
		}
		c.send("hello")
		r = c.mustRead("POST")
		if r.Status != 200 || string(r.Body) != "hello" {
			t.Fatalf("%d %q", r.Status, r.Body)
		}
		// Reused.
		c.send(get11)
		c.mustRead("GET")
	})
	t.Run("not-read", func(t *testing.T) {
		t.Parallel()
		_, addr := startServer(t, h, nil)
		c := dial(t, addr)
		c.send("POST /deny HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		r := c.mustRead("POST")
		if r.Status != 401 {
			t.Fatalf("got %d, want 401 without 100 Continue\n%s", r.Status, r.Head)
		}
		wantHeader(t, r, "Connection", "close")
		c.expectEOF()
	})
}

func TestBodyReadAfterHandlerReturns(t *testing.T) {
	t.Parallel()
	type result struct {
		n   int
		err error
	}
	release := make(chan struct{})
	res := make(chan result, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/1" {
			body := r.Body
			go func() {
				<-release
				b := make([]byte, 100)
				n, err := body.Read(b)
				res <- result{n, err}
			}()
			_, _ = io.WriteString(w, "one")
			return
		}
		b, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "%s %s", r.URL.Path, b)
	})
	_, addr := startServer(t, h, nil)
	c := dial(t, addr)
	c.send("POST /1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz")
	if r := c.mustRead("POST"); string(r.Body) != "one" {
		t.Fatalf("first %q", r.Body)
	}
	// The second response means the server is done with the first request
	// (as with net/http, the response is flushed before the body is closed,
	// so a read racing the handler's return may still see its own bytes).
	if r := c.mustRead("POST"); string(r.Body) != "/2 xyz" {
		t.Fatalf("second %q", r.Body)
	}
	close(release)
	select {
	case got := <-res:
		if got.n != 0 || got.err == nil {
			t.Errorf("late Read = %d, %v; want 0 and an error", got.n, got.err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("late Read blocked")
	}
	c.send("POST /3 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nijk")
	if r := c.mustRead("POST"); string(r.Body) != "/3 ijk" {
		t.Fatalf("third %q", r.Body)
	}
}

func TestBodyConcurrentReadClose(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(io.Discard, r.Body)
		}()
		go func() {
			defer wg.Done()
			_ = r.Body.Close()
		}()
		wg.Wait()
		_, err := r.Body.Read(make([]byte, 1))
		if err == nil {
			t.Errorf("Read after Close succeeded")
		}
		_, _ = io.WriteString(w, "ok")
	})
	_, addr := startServer(t, h, nil)
	c := dial(t, addr)
	for i := 0; i < 20; i++ {
		c.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("z", 2000))
		if r := c.mustRead("POST"); string(r.Body) != "ok" {
			t.Fatalf("%q", r.Body)
		}
	}
}

func TestPipelining(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, echoHandler, nil)
	c := dial(t, addr)
	var b strings.Builder
	for i := 0; i < 10; i++ {
		if i%3 == 1 {
			fmt.Fprintf(&b, "POST /%d HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n%d", i, i)
		} else {
			fmt.Fprintf(&b, "GET /%d HTTP/1.1\r\nHost: t\r\n\r\n", i)
		}
	}
	c.send(b.String())
	for i := 0; i < 10; i++ {
		want := fmt.Sprintf("/%d ", i)
		if i%3 == 1 {
			want += strconv.Itoa(i)
		}
		if r := c.mustRead("GET"); string(r.Body) != want {
			t.Fatalf("response %d: %q, want %q", i, r.Body, want)
		}
	}
}

// stateRecorder records ConnState transitions per connection.
type stateRecorder struct {
	mu     sync.Mutex
	states map[net.Conn][]http.ConnState
}

func (s *stateRecorder) hook(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.states == nil {
		s.states = make(map[net.Conn][]http.ConnState)
	}
	s.states[c] = append(s.states[c], st)
}

// only returns the states of the single connection seen so far.
func (s *stateRecorder) only() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, sts := range s.states {
		for _, st := range sts {
			out = append(out, st.String())
		}
	}
	return strings.Join(out, ",")
}

func TestConnStateSequence(t *testing.T) {
	t.Parallel()
	var rec stateRecorder
	_, addr := startServer(t, echoHandler, func(s *Server) { s.ConnState = rec.hook })
	c := dial(t, addr)
	c.send(get11)
	c.mustRead("GET")
	c.send(get11)
	c.mustRead("GET")
	_ = c.c.Close()
	want := "new,active,idle,active,idle,closed"
	waitFor(t, "ConnState closed", func() bool { return rec.only() == want })
}

func TestHijack(t *testing.T) {
	t.Parallel()
	var rec stateRecorder
	hijacked := make(chan net.Conn, 1)
	errc := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			errc <- err
			return
		}
		// The pipelined bytes are in the reader.
		buf := make([]byte, brw.Reader.Buffered())
		_, _ = io.ReadFull(brw, buf)
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\nraw:" + string(buf) + "\n")
		err = brw.Flush()
		if _, werr := w.Write([]byte("x")); !errors.Is(werr, http.ErrHijacked) {
			err = fmt.Errorf("Write after Hijack: %v", werr)
		}
		errc <- err
		hijacked <- conn
	})
	s, addr := startServer(t, h, func(s *Server) { s.ConnState = rec.hook })
	c := dial(t, addr)
	c.send("GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nPIPELINED")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	conn := <-hijacked
	defer func() { _ = conn.Close() }()
	line, err := c.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 101 Switching Protocols\r\n" {
		t.Fatalf("%q %v", line, err)
	}
	_, _ = c.br.ReadString('\n')
	line, _ = c.br.ReadString('\n')
	if line != "raw:PIPELINED\n" {
		t.Fatalf("got %q", line)
	}
	waitFor(t, "StateHijacked", func() bool { return rec.only() == "new,active,hijacked" })
	// The server neither writes to nor closes the connection: the handler's
	// owner still talks on it.
	if _, err := conn.Write([]byte("still mine")); err != nil {
		t.Fatal(err)
	}
	_ = c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, len("still mine"))
	if _, err := io.ReadFull(c.br, buf); err != nil || string(buf) != "still mine" {
		t.Fatalf("%q %v", buf, err)
	}
	// Close leaves hijacked connections to their owner.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c.send("ping")
	_ = conn.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(conn, buf[:4]); err != nil || string(buf[:4]) != "ping" {
		t.Fatalf("hijacked conn read %q %v", buf[:4], err)
	}
	_ = conn.Close()
	c.expectEOF()
	if got := rec.only(); got != "new,active,hijacked" {
		t.Errorf("states %s", got)
	}
}

func TestReadHeaderTimeout(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, echoHandler, func(s *Server) { s.ReadHeaderTimeout = 150 * time.Millisecond })
	c := dial(t, addr)
	start := time.Now()
	c.send("GET / HTTP/1.1\r\nHo")
	c.expectEOF()
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
	// A silent connection too.
	c = dial(t, addr)
	c.expectEOF()
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, echoHandler, func(s *Server) {
		s.IdleTimeout = 150 * time.Millisecond
		s.ReadHeaderTimeout = 5 * time.Second
	})
	c := dial(t, addr)
	c.send(get11)
	c.mustRead("GET")
	start := time.Now()
	c.expectEOF()
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Errorf("idle connection closed after %v", d)
	}
}

// A busy connection keeps its idle deadline for a while rather than move it
// for every request (waitDeadline): once it goes quiet it still closes
// about IdleTimeout after its last request, no more than the slack early.
func TestIdleTimeoutBusyConnection(t *testing.T) {
	t.Parallel()
	const idle = 320 * time.Millisecond
	_, addr := startServer(t, echoHandler, func(s *Server) {
		s.IdleTimeout = idle
		s.ReadHeaderTimeout = 5 * time.Second
	})
	c := dial(t, addr)
	var start time.Time
	for range 20 {
		start = time.Now() // the server's next wait begins after this
		c.send(get11)
		c.mustRead("GET")
		time.Sleep(5 * time.Millisecond)
	}
	c.expectEOF()
	if d := time.Since(start); d < idle-deadlineSlack(idle)-10*time.Millisecond || d > 3*time.Second {
		t.Errorf("idle connection closed %v after its last request; want about %v", d, idle)
	}
}

// A request the disconnect watcher read for (it clears the read deadline)
// must not leave the connection without an idle deadline, however soon
// after the last one it set the next wait begins: whether the watcher is
// still reading when the request ends, or has read the first byte of a
// pipelined request and stopped.
func TestIdleTimeoutAfterWatchedRequest(t *testing.T) {
	t.Parallel()
	const idle = time.Second // slack 62.5 ms: more than the requests take
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(3 * watchDelay) // the watcher reads from watchDelay on
		}
		_, _ = io.WriteString(w, "ok")
	})
	_, addr := startServer(t, h, func(s *Server) {
		s.IdleTimeout = idle
		s.ReadHeaderTimeout = 0 // no deadline for a head that comes in pieces, which would hide the case
	})
	c := dial(t, addr)
	c.send(strings.Replace(get11, "GET /", "GET /slow", 1))
	c.mustRead("GET")
	c.send(strings.Replace(get11, "GET /", "GET /slow", 1))
	time.Sleep(watchDelay + 5*time.Millisecond) // the watcher is reading: it takes the next byte
	c.send(get11)
	c.mustRead("GET")
	c.mustRead("GET")
	start := time.Now()
	c.expectEOF()
	if d := time.Since(start); d < idle-deadlineSlack(idle)-10*time.Millisecond || d > 4*time.Second {
		t.Errorf("idle connection closed %v after a watched request; want about %v", d, idle)
	}
}

// A request that runs long enough to be watched must not leave the
// connection's read deadline behind for the next request.
func TestSlowRequestKeepsConnection(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(4 * watchDelay) // outlast the disconnect watcher's delay
		}
		_, _ = io.WriteString(w, r.URL.Path)
	})
	for _, rht := range []time.Duration{0, 5 * time.Second} {
		t.Run(fmt.Sprint(rht), func(t *testing.T) {
			t.Parallel()
			_, addr := startServer(t, h, func(s *Server) { s.ReadHeaderTimeout = rht })
			c := dial(t, addr)
			c.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
			if r := c.mustRead("GET"); string(r.Body) != "/slow" {
				t.Fatalf("%q", r.Body)
			}
			c.send("GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
			r, err := c.read("GET")
			if err != nil {
				t.Fatalf("request after a slow one on the same connection: %v", err)
			}
			if string(r.Body) != "/next" {
				t.Fatalf("%q", r.Body)
			}
		})
	}
}

// Deadlines a handler sets through http.ResponseController end with its
// request, as with net/http.
func TestResponseControllerDeadlinesPerRequest(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		switch r.URL.Path {
		case "/set":
			if err := rc.SetWriteDeadline(time.Now().Add(150 * time.Millisecond)); err != nil {
				t.Errorf("SetWriteDeadline: %v", err)
			}
			if err := rc.SetReadDeadline(time.Now().Add(150 * time.Millisecond)); err != nil {
				t.Errorf("SetReadDeadline: %v", err)
			}
			if err := rc.EnableFullDuplex(); err != nil {
				t.Errorf("EnableFullDuplex: %v", err)
			}
		case "/slow":
			time.Sleep(250 * time.Millisecond) // outlast the first request's deadlines
		}
		_, _ = io.WriteString(w, r.URL.Path)
	})
	_, addr := startServer(t, h, nil)
	c := dial(t, addr)
	c.send("GET /set HTTP/1.1\r\nHost: t\r\n\r\n")
	c.mustRead("GET")
	c.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
	if r, err := c.read("GET"); err != nil || string(r.Body) != "/slow" {
		t.Fatalf("second request: %v", err)
	}
	c.send("GET /third HTTP/1.1\r\nHost: t\r\n\r\n")
	if r, err := c.read("GET"); err != nil || string(r.Body) != "/third" {
		t.Fatalf("third request: %v", err)
	}
}

func TestClientGoneCancelsContext(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	ended := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			ended <- r.Context().Err()
		case <-time.After(10 * time.Second):
			ended <- errors.New("context not cancelled")
		}
	})
	_, addr := startServer(t, h, nil)
	c := dial(t, addr)
	c.send(get11)
	<-started
	_ = c.c.Close()
	wantCancelled(t, ended)
}

// wantCancelled waits for the handler's report that its request context
// ended, which must be context.Canceled within a few seconds.
func wantCancelled(t *testing.T, ended <-chan error) {
	t.Helper()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("request context still live 3s after the client left")
	}
}

func TestHandlerPanic(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			_, _ = io.WriteString(w, "partial")
			panic("boom")
		case "/abort":
			panic(http.ErrAbortHandler)
		}
		_, _ = io.WriteString(w, "ok")
	})
	_, addr := startServer(t, h, nil)
	for _, p := range []string{"/panic", "/abort"} {
		c := dial(t, addr)
		c.send("GET " + p + " HTTP/1.1\r\nHost: t\r\n\r\n")
		c.expectEOF()
		c = dial(t, addr)
		c.send(get11)
		if r := c.mustRead("GET"); string(r.Body) != "ok" {
			t.Fatalf("after %s: %q", p, r.Body)
		}
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			close(entered)
			<-release
		}
		_, _ = io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	idle := dial(t, addr)
	idle.send(get11)
	idle.mustRead("GET")
	busy := dial(t, addr)
	busy.send("GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	idle.expectEOF() // at once, while a request is still running
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(release)
	r := busy.mustRead("GET")
	if string(r.Body) != "done" {
		t.Fatalf("%q", r.Body)
	}
	wantHeader(t, r, "Connection", "close")
	busy.expectEOF()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not return")
	}
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Serve did not return")
	}
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("listener still accepting")
	}
}

func TestShutdownContextEnds(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	s, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}), nil)
	c := dial(t, addr)
	c.send(get11)
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	close(release)
	r := c.mustRead("GET")
	wantHeader(t, r, "Connection", "close")
}

func TestClose(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	s, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			close(entered)
			<-release
		}
	}), nil)
	idle := dial(t, addr)
	idle.send(get11)
	idle.mustRead("GET")
	busy := dial(t, addr)
	busy.send("GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
	<-entered
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	idle.expectEOF()
	busy.expectEOF()
}

// BaseContext's context reaches the request.
func TestBaseContext(t *testing.T) {
	t.Parallel()
	type key struct{}
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := r.Context().Value(key{}).(string)
		_, _ = io.WriteString(w, v)
	}), func(s *Server) {
		s.BaseContext = func(net.Listener) context.Context { return context.WithValue(context.Background(), key{}, "base") }
	})
	c := dial(t, addr)
	c.send(get11)
	if r := c.mustRead("GET"); string(r.Body) != "base" {
		t.Fatalf("%q", r.Body)
	}
}

func TestMaxHeaderBytes(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, echoHandler, func(s *Server) { s.MaxHeaderBytes = 1000 })
	// 1000 bytes plus net/http's 4096 of slack.
	for _, tc := range []struct {
		pad, status int
	}{{100, 200}, {4500, 200}, {6000, 431}, {20000, 431}} {
		c := dial(t, addr)
		c.send("GET / HTTP/1.1\r\nHost: t\r\nX-Pad: " + strings.Repeat("p", tc.pad) + "\r\n\r\n")
		r := c.mustRead("GET")
		if r.Status != tc.status {
			t.Errorf("%d-byte header: status %d, want %d", tc.pad, r.Status, tc.status)
		}
		if tc.status == 431 {
			c.expectEOF()
		}
	}
	// Many lines.
	c := dial(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: t\r\n" + strings.Repeat("X-Pad: 0123456789\r\n", 400) + "\r\n")
	if r := c.mustRead("GET"); r.Status != 431 {
		t.Errorf("8 KB of lines: status %d, want 431", r.Status)
	}
}

// A body read on another goroutine (as a transport sending it upstream does)
// races the handler's response for who writes first: 100 Continue, if sent,
// comes whole and before the response.
func TestExpectContinueConcurrentBodyRead(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 10000)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(io.Discard, r.Body)
		}()
		if r.URL.Path == "/cl" {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		}
		_, _ = io.WriteString(w, big)
		<-done
	})
	_, addr := startServer(t, h, nil)
	for i := 0; i < 20; i++ {
		p := "/"
		if i%2 == 0 {
			p = "/cl"
		}
		c := dial(t, addr)
		// The client sends the body without waiting, as clients do once
		// their wait for 100 Continue times out.
		c.send("POST " + p + " HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc")
		r := c.mustRead("POST")
		if r.Status == 100 {
			r = c.mustRead("POST")
		}
		if r.Status != 200 || string(r.Body) != big {
			t.Fatalf("%s: %d, %d bytes", p, r.Status, len(r.Body))
		}
	}
}

// A request that asks to close ends the connection: a request pipelined
// after it is not served.
func TestPipelinedAfterClose(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, echoHandler, nil)
	c := dial(t, addr)
	c.send("GET /1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
	if r := c.mustRead("GET"); string(r.Body) != "/1 " {
		t.Fatalf("%q", r.Body)
	}
	c.expectEOF()
}

// A write made after the handler returned (from a goroutine it left
// behind) fails and reaches nothing: the connection carries the next
// request's response unharmed.
func TestWriteAfterHandlerReturns(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	res := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/1" {
			go func() {
				<-release
				_, err := io.WriteString(w, "LATE")
				if ferr := http.NewResponseController(w).Flush(); err == nil {
					err = ferr
				}
				res <- err
			}()
			_, _ = io.WriteString(w, "one")
			return
		}
		_, _ = io.WriteString(w, r.URL.Path)
	})
	_, addr := startServer(t, h, nil)
	c := dial(t, addr)
	c.send("GET /1 HTTP/1.1\r\nHost: t\r\n\r\n")
	if r := c.mustRead("GET"); string(r.Body) != "one" {
		t.Fatalf("%q", r.Body)
	}
	close(release)
	if err := <-res; err == nil {
		t.Errorf("a write after the handler returned succeeded")
	}
	c.send("GET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
	if r := c.mustRead("GET"); string(r.Body) != "/2" {
		t.Fatalf("%q", r.Body)
	}
}

// A client that leaves while the handler of a request with a body (read to
// its end) still runs cancels the request's context, as without a body.
func TestClientGoneWithBodyCancelsContext(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	ended := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, err := io.ReadAll(r.Body); err != nil || string(b) != "hi" {
			ended <- fmt.Errorf("body %q, %v", b, err)
			return
		}
		close(started)
		select {
		case <-r.Context().Done():
			ended <- r.Context().Err()
		case <-time.After(10 * time.Second):
			ended <- errors.New("context not cancelled")
		}
	})
	_, addr := startServer(t, h, nil)
	c := dial(t, addr)
	c.send("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
	select {
	case <-started:
	case err := <-ended:
		t.Fatal(err)
	}
	_ = c.c.Close()
	wantCancelled(t, ended)
}

// Shutdown does not close a connection accepted a moment ago that has not
// sent its request yet: the request is served (with Connection: close).
func TestShutdownSparesNewConnection(t *testing.T) {
	t.Parallel()
	accepted := make(chan struct{}, 1)
	srv, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "served")
	}), func(s *Server) {
		s.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				accepted <- struct{}{}
			}
		}
	})
	c := dial(t, addr)
	<-accepted
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	// Shutdown is polling now; the new connection must still be served.
	for deadline := time.Now().Add(ioTimeout); !srv.shuttingDown(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Shutdown did not start")
		}
	}
	c.send(get11)
	r := c.mustRead("GET")
	if string(r.Body) != "served" {
		t.Fatalf("body %q", r.Body)
	}
	wantHeader(t, r, "Connection", "close")
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not return once the request was served")
	}
}

// A keep-alive connection whose next head fills the read buffer and then
// stalls is held to ReadHeaderTimeout, not to the longer IdleTimeout it
// waited under.
func TestReadHeaderTimeoutLongHead(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, echoHandler, func(s *Server) {
		s.ReadHeaderTimeout = 150 * time.Millisecond
		s.IdleTimeout = time.Minute
	})
	c := dial(t, addr)
	c.send(get11)
	c.mustRead("GET")
	start := time.Now()
	c.send("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + strings.Repeat("a", 6000))
	c.expectEOF()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a stalled long head was closed after %v, want about ReadHeaderTimeout", d)
	}
}

// TestBaseContextEndsRequests: when the server's base context ends, the
// context of a request in its handler ends with the same cause, on a plain
// connection and on a hijacked one, and a request that starts afterwards
// begins cancelled.
func TestBaseContextEndsRequests(t *testing.T) {
	t.Parallel()
	base, cancelBase := context.WithCancelCause(context.Background())
	defer cancelBase(nil)
	errStop := errors.New("stopping")
	started := make(chan struct{}, 2)
	ended := make(chan string, 3)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hijack" {
			nc, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			defer nc.Close() //nolint:errcheck // test
		}
		if r.URL.Path == "/late" {
			if r.Context().Err() == nil {
				t.Errorf("a request started after the base context ended has a live context")
			}
			ended <- r.URL.Path
			return
		}
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			if c := context.Cause(r.Context()); !errors.Is(c, errStop) {
				t.Errorf("%s: cause %v, want the base context's", r.URL.Path, c)
			}
			ended <- r.URL.Path
		case <-time.After(ioTimeout):
			t.Errorf("%s: the request's context did not end with the base context", r.URL.Path)
			ended <- "timeout"
		}
	})
	_, addr := startServer(t, h, func(s *Server) {
		s.BaseContext = func(net.Listener) context.Context { return base }
	})
	next := func() string {
		select {
		case p := <-ended:
			return p
		case <-time.After(2 * ioTimeout):
			t.Fatal("no handler ended")
			return ""
		}
	}
	plain, hijacked := dial(t, addr), dial(t, addr)
	plain.send("GET /plain HTTP/1.1\r\nHost: t\r\n\r\n")
	hijacked.send("GET /hijack HTTP/1.1\r\nHost: t\r\n\r\n")
	<-started
	<-started
	cancelBase(errStop)
	got := map[string]bool{next(): true, next(): true}
	if !got["/plain"] || !got["/hijack"] {
		t.Errorf("ended: %v, want /plain and /hijack", got)
	}
	plain.mustRead("GET")
	for range 10 { // the link to the base context races with the request; both orders
		late := dial(t, addr)
		late.send("GET /late HTTP/1.1\r\nHost: t\r\n\r\n")
		if p := next(); p != "/late" {
			t.Fatalf("ended %s, want /late", p)
		}
		late.mustRead("GET")
	}
}

// TestBaseContextDeadline: a base context's deadline shows on the requests'
// contexts.
func TestBaseContextDeadline(t *testing.T) {
	t.Parallel()
	want := time.Now().Add(time.Hour)
	base, cancel := context.WithDeadline(context.Background(), want)
	defer cancel()
	got := make(chan time.Time, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := r.Context().Deadline()
		got <- d
	})
	_, addr := startServer(t, h, func(s *Server) {
		s.BaseContext = func(net.Listener) context.Context { return base }
	})
	c := dial(t, addr)
	c.send(get11)
	c.mustRead("GET")
	if d := <-got; !d.Equal(want) {
		t.Errorf("request deadline = %v, want %v", d, want)
	}
}
