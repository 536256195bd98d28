package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/config"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start serves h on a loopback port and returns the server and its address.
func start(t *testing.T, cfg config.Server, h http.Handler) (*Server, string, <-chan error) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s := New(cfg, h, nil)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	return s, s.Addr().String(), done
}

func defaults() config.Server {
	return config.Server{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second, MaxHeaderBytes: 4096}
}

// TestShutdownDrainsThenClosesUpgraded checks the order of a graceful stop: an
// ordinary request in flight completes, an upgraded connection stays usable
// while it does, and is closed once it has.
func TestShutdownDrainsThenClosesUpgraded(t *testing.T) {
	slowStarted := make(chan struct{})
	releaseSlow := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			// Stands in for the reverse proxy's upgrade handling: it ends
			// when the request context does.
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
			go func() { <-r.Context().Done(); conn.Close() }()
			_, _ = io.Copy(conn, brw)
			return
		}
		close(slowStarted)
		<-releaseSlow
		io.WriteString(w, "slow done")
	})
	s, addr, served := start(t, defaults(), h)

	up, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	fmt.Fprint(up, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(up)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}

	slowResult := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			slowResult <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slowResult <- string(b)
	}()
	<-slowStarted

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdownDone <- s.Shutdown(ctx)
	}()

	// While the ordinary request is still in flight, the upgraded connection
	// keeps working.
	echo := func(msg string) error {
		up.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(up, msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			return err
		}
		if string(got) != msg {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
		return nil
	}
	waitUntil(t, "listener closed", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if err := echo("during drain"); err != nil {
		t.Fatalf("upgraded connection during drain: %v", err)
	}
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned (%v) before the in-flight request finished", err)
	default:
	}

	close(releaseSlow)
	if got := <-slowResult; got != "slow done" {
		t.Fatalf("in-flight request during shutdown = %q, want slow done", got)
	}
	if err := <-shutdownDone; err != nil {
		t.Fatalf("Shutdown = %v, want nil", err)
	}
	// Now the upgraded connection has been closed by the server.
	up.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("upgraded connection still open after Shutdown")
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil after Shutdown", err)
	}
}

func TestHeaderLimits(t *testing.T) {
	cfg := defaults()
	cfg.ReadHeaderTimeout = 200 * time.Millisecond
	s, addr, _ := start(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer s.Shutdown(context.Background())

	t.Run("too large", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 8192))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("8 KiB header with a 4 KiB limit = %d, want 431", resp.StatusCode)
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Start a request and never finish its headers.
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(c)
		if err != nil {
			t.Fatalf("read: %v (want the server to close the connection)", err)
		}
		if waited := time.Since(start); waited > 4*time.Second {
			t.Fatalf("server kept an incomplete request open for %v, want about read_header_timeout", waited)
		}
	})
}

func TestListenAddr(t *testing.T) {
	tests := []struct{ give, want string }{
		{"9777", ":9777"},
		{":9777", ":9777"},
		{"127.0.0.1:80", "127.0.0.1:80"},
		{"[::1]:80", "[::1]:80"},
	}
	for _, tt := range tests {
		if got := ListenAddr(tt.give); got != tt.want {
			t.Errorf("ListenAddr(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
