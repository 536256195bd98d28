package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestE2EShutdownClosesWebSocketsLast checks the order of a graceful stop with
// a real WebSocket: while an ordinary request is still in flight the
// WebSocket keeps echoing; once that request has finished it is closed, and
// the gateway exits cleanly.
func TestE2EShutdownClosesWebSocketsLast(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}, 1), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		fmt.Fprint(w, "done")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	b := httptest.NewServer(mux)
	t.Cleanup(b.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	p := startAltair(t, routeCfg("both", b.URL))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/ws", nil)
	if err != nil {
		t.Fatalf("Dial = %v", err)
	}
	defer ws.CloseNow()
	echo := func(msg string) error {
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			return err
		}
		_, got, err := ws.Read(ctx)
		if err == nil && string(got) != msg {
			err = fmt.Errorf("echo %q, want %q", got, msg)
		}
		return err
	}
	if err := echo("before"); err != nil {
		t.Fatalf("echo before shutdown: %v", err)
	}

	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(p.url("/slow"))
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the ordinary request did not reach the backend")
	}
	p.signal(syscall.SIGTERM)
	waitFor(t, 5*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if err := echo("during the drain"); err != nil {
		t.Fatalf("echo while an ordinary request drains: %v, want the WebSocket still open", err)
	}

	close(release)
	if r := <-slow; r != "200 done" {
		t.Errorf("in-flight request during SIGTERM = %q, want 200 done", r)
	}
	if _, _, err := ws.Read(ctx); err == nil || strings.Contains(err.Error(), "deadline") {
		t.Errorf("WebSocket after the drain: Read = %v, want closed by the gateway", err)
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		t.Fatal("altair did not exit after SIGTERM")
	}
	if p.exitErr != nil {
		t.Fatalf("altair exit after SIGTERM: %v, want status 0", p.exitErr)
	}
}
