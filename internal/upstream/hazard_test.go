package upstream

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A ModifyResponse that panics must not leave the attempt's body open: it
// holds the backend's in-flight count (least-conn would shun the backend
// for good) and its upstream connection.
func TestModifyResponsePanicFreesBackend(t *testing.T) {
	t.Parallel()
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 100)))
	})
	for _, noFast := range []bool{false, true} {
		p := newTestPool(t, testUpstream(be.URL))
		h := p.Handler(RouteOptions{Route: "r", ModifyResponse: func(*http.Response) error {
			panic(http.ErrAbortHandler) // the server recovers it quietly
		}})
		h.(*routeHandler).noFast = noFast
		front, client := newFront(t, h)
		if resp, err := client.Get(front + "/x"); err == nil {
			resp.Body.Close()
			t.Errorf("noFast=%v: got %d, want the connection cut by the panic", noFast, resp.StatusCode)
		}
		waitFor(t, "the backend's in-flight count to return to 0", 5*time.Second, func() bool {
			return p.Status().Backends[0].InFlight == 0
		})
	}
}

// A backend answering a request that asked for no upgrade with 101 gets a
// 502 at once: the switched connection is closed, not read until the
// backend sends something or hangs up.
func TestUnaskedSwitchDoesNotWait(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		<-release // keep the switched connection open and silent
	})
	defer close(release)
	// A GET goes through the lean h1 transport, a POST with a body through
	// net/http's, whose 101 body is the connection itself.
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		for _, noFast := range []bool{false, true} {
			name := fmt.Sprintf("%s, noFast=%v", method, noFast)
			p := newTestPool(t, testUpstream(be.URL))
			h := p.Handler(RouteOptions{Route: "r", Timeout: time.Minute})
			h.(*routeHandler).noFast = noFast
			front, client := newFront(t, h)
			client.Timeout = 10 * time.Second
			req, _ := http.NewRequest(method, front+"/x", strings.NewReader("body"))
			if method == http.MethodGet {
				req.Body, req.ContentLength = nil, 0
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v (the proxy waited on the switched connection)", name, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("%s: status %d, want 502", name, resp.StatusCode)
			}
			waitFor(t, name+": the backend's in-flight count to return to 0", 5*time.Second, func() bool {
				return p.Status().Backends[0].InFlight == 0
			})
		}
	}
}
