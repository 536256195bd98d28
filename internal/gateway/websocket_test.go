package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsEcho is a WebSocket backend that echoes every message, re-sent in 4 KiB
// fragments. accepted counts the upgrades it saw.
func wsEcho(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var accepted atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		accepted.Add(1)
		defer c.CloseNow()
		c.SetReadLimit(4 << 20)
		ctx := r.Context()
		buf := make([]byte, 4096)
		for {
			typ, rd, err := c.Reader(ctx)
			if err != nil {
				return
			}
			wr, err := c.Writer(ctx, typ)
			if err != nil {
				return
			}
			if _, err := io.CopyBuffer(wr, rd, buf); err != nil {
				return
			}
			if err := wr.Close(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s, &accepted
}

// wsGateway serves a gateway with one route "ws" on /ws towards backend.
func wsGateway(t *testing.T, backend, websocketCfg string) (*Gateway, string) {
	t.Helper()
	g := newGateway(t, fmt.Sprintf(`
edge:
  rate_limit: { disabled: true }
  ddos: { disabled: true }
routes:
  - name: ws
    match: { prefix: /ws }
    websocket: %s
    backends: [ { url: %q } ]
`, websocketCfg, backend))
	front := httptest.NewServer(g)
	t.Cleanup(front.Close)
	return g, "ws" + strings.TrimPrefix(front.URL, "http") + "/ws"
}

func wsDial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("Dial(%s) = %v", url, err)
	}
	c.SetReadLimit(4 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func TestWebSocketEchoLargeAndFragmented(t *testing.T) {
	backend, _ := wsEcho(t)
	_, url := wsGateway(t, backend.URL, "{}")
	c := wsDial(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	tests := []struct {
		name       string
		typ        websocket.MessageType
		msg        []byte
		fragmentOf int // 0: one frame
	}{
		{"small text", websocket.MessageText, []byte("hello"), 0},
		{"1 MiB in one frame", websocket.MessageBinary, big, 0},
		{"1 MiB in 1000-byte fragments", websocket.MessageBinary, big, 1000},
		{"text in 7-byte fragments", websocket.MessageText, []byte(strings.Repeat("fragmented text ", 100)), 7},
	}
	for _, tt := range tests { // one connection, in order
		if tt.fragmentOf == 0 {
			if err := c.Write(ctx, tt.typ, tt.msg); err != nil {
				t.Fatalf("%s: Write = %v", tt.name, err)
			}
		} else {
			w, err := c.Writer(ctx, tt.typ)
			if err != nil {
				t.Fatalf("%s: Writer = %v", tt.name, err)
			}
			for p := tt.msg; len(p) > 0; {
				n := min(tt.fragmentOf, len(p))
				if _, err := w.Write(p[:n]); err != nil {
					t.Fatalf("%s: fragment Write = %v", tt.name, err)
				}
				p = p[n:]
			}
			if err := w.Close(); err != nil {
				t.Fatalf("%s: Close message = %v", tt.name, err)
			}
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("%s: Read = %v", tt.name, err)
		}
		if typ != tt.typ || !bytes.Equal(got, tt.msg) {
			t.Errorf("%s: echo = %v %d bytes, want %v %d bytes (equal %v)", tt.name, typ, len(got), tt.typ, len(tt.msg), bytes.Equal(got, tt.msg))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestWebSocketMaxConnections(t *testing.T) {
	backend, accepted := wsEcho(t)
	g, url := wsGateway(t, backend.URL, "{ max_connections: 2 }")
	a := wsDial(t, url)
	wsDial(t, url)
	poll(t, g, "websocket_connections 2", func(s map[string]float64) bool {
		return s[`websocket_connections{route="ws"}`] == 2
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("third Dial succeeded, want 503")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third Dial = %v %v, want 503", resp, err)
	}
	var body struct{ Error string }
	if b, _ := io.ReadAll(resp.Body); json.Unmarshal(b, &body) != nil || body.Error != "websocket_limit" {
		t.Errorf("third Dial body = %q, want error websocket_limit", b)
	}
	if n := accepted.Load(); n != 2 {
		t.Errorf("backend accepted %d upgrades, want 2: a refused one must not reach it", n)
	}

	// Closing one frees its slot.
	if err := a.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("Close = %v", err)
	}
	poll(t, g, "websocket_connections 1", func(s map[string]float64) bool {
		return s[`websocket_connections{route="ws"}`] == 1
	})
	d := wsDial(t, url)
	if err := d.Write(ctx, websocket.MessageText, []byte("again")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := d.Read(ctx); err != nil || string(got) != "again" {
		t.Errorf("echo on the freed slot = %q, %v, want again", got, err)
	}
}

func TestWebSocketIdleTimeout(t *testing.T) {
	backend, _ := wsEcho(t)
	g, url := wsGateway(t, backend.URL, "{ idle_timeout: 300ms }")
	idle := wsDial(t, url)
	active := wsDial(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	idleErr := make(chan error, 1)
	start := time.Now()
	go func() {
		_, _, err := idle.Read(ctx) // nothing is sent: it waits until closed
		idleErr <- err
	}()
	// The active connection talks every 50ms for three idle timeouts.
	for time.Since(start) < 900*time.Millisecond {
		if err := active.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
			t.Fatalf("active Write = %v", err)
		}
		if _, got, err := active.Read(ctx); err != nil || string(got) != "ping" {
			t.Fatalf("active Read = %q, %v, want ping", got, err)
		}
		time.Sleep(50 * time.Millisecond) // the traffic's pace, not a wait for an outcome
	}
	select {
	case err := <-idleErr:
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("idle Read = %v, want the connection closed", err)
		}
	case <-ctx.Done():
		t.Fatal("idle connection still open")
	}
	poll(t, g, "websocket_connections 1", func(s map[string]float64) bool {
		return s[`websocket_connections{route="ws"}`] == 1
	})
	if err := active.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("active Close = %v", err)
	}
	poll(t, g, "websocket_connections 0", func(s map[string]float64) bool {
		return s[`websocket_connections{route="ws"}`] == 0
	})
}

// TestSSEEventByEvent checks that server-sent events pass the whole chain,
// compression on, one at a time: the backend sends the next event only
// after the client has read the previous one.
func TestSSEEventByEvent(t *testing.T) {
	next := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "id: %d\ndata: event %d %s\n\n", i, i, strings.Repeat("x", 2000))
			http.NewResponseController(w).Flush() //nolint:errcheck // the test reads what arrives
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(backend.Close)
	g := newGateway(t, fmt.Sprintf(`
edge:
  rate_limit: { disabled: true }
  ddos: { disabled: true }
compression: { encodings: [gzip] }
routes:
  - name: events
    match: { prefix: /events }
    backends: [ { url: %q } ]
`, backend.URL))
	front := httptest.NewServer(g)
	t.Cleanup(front.Close)

	req, _ := http.NewRequest("GET", front.URL+"/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	defer client.CloseIdleConnections()
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("Content-Encoding = %q, want none for SSE", ce)
	}
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		var event []string
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("event %d: read = %v", i, err)
			}
			if line == "\n" {
				break
			}
			event = append(event, strings.TrimSuffix(line, "\n"))
		}
		if want := fmt.Sprintf("data: event %d ", i); len(event) != 2 || !strings.HasPrefix(event[1], want) {
			t.Fatalf("event %d = %.60q, want id and %q…", i, event, want)
		}
		next <- struct{}{} // the backend is still running: this event came alone
	}
}
