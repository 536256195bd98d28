package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// accessLines closes g (flushing its access log) and returns the parsed lines.
func accessLines(t *testing.T, g *Gateway, out *syncBuf) []map[string]any {
	t.Helper()
	g.Close()
	out.mu.Lock()
	defer out.mu.Unlock()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access line is not JSON: %v: %s", err, l)
		}
		lines = append(lines, m)
	}
	return lines
}

func newLoggingGateway(t *testing.T, yaml string) (*Gateway, *syncBuf) {
	t.Helper()
	out := &syncBuf{}
	g := New(Options{Version: "test", AccessLog: out, LogFormat: "json"})
	t.Cleanup(g.Close)
	if err := g.Apply(load(t, yaml)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return g, out
}

func TestAccessLog(t *testing.T) {
	a := echo(t, "a")
	dead := deadURL(t)
	g, out := newLoggingGateway(t, quiet+fmt.Sprintf(`
auth:
  api_keys:
    keys: [ { name: billing, key: "0123456789abcdef0123" } ]
routes:
  - name: open
    match: { prefix: /open }
    backends: [ { url: %[1]q } ]
  - name: keyed
    match: { prefix: /keyed }
    require_auth: true
    backends: [ { url: %[1]q } ]
  - name: flaky
    match: { prefix: /flaky }
    upstream: flaky
upstreams:
  flaky:
    load_balancing: round-robin
    retry: { attempts: 2 }
    backends: [ { url: %[2]q }, { url: %[1]q } ]
`, a.URL, dead))
	if w := do(g, "GET", "/open/x?secret=1", "Host", "api.test", "X-Request-Id", "rid-1"); w.Code != 200 {
		t.Fatalf("GET /open/x = %d", w.Code)
	}
	if w := do(g, "GET", "/keyed/y", "X-API-Key", "0123456789abcdef0123"); w.Code != 200 {
		t.Fatalf("GET /keyed/y = %d", w.Code)
	}
	do(g, "GET", "/keyed/y") // 401
	do(g, "GET", "/nowhere") // 404, no route
	for range 4 {            // the dead backend is tried first at least once
		do(g, "GET", "/flaky/z")
	}
	do(g, "GET", "/health") // reserved paths are not logged

	lines := accessLines(t, g, out)
	if len(lines) != 8 {
		t.Fatalf("%d access lines, want 8:\n%v", len(lines), lines)
	}
	first := lines[0]
	for k, v := range map[string]any{
		"msg": "access", "subsystem": "access", "request_id": "rid-1", "method": "GET",
		"host": "api.test", "path": "/open/x", "route": "open", "backend": a.URL,
		"status": 200.0, "retries": 0.0, "client_ip": "192.0.2.1",
	} {
		if first[k] != v {
			t.Errorf("open line %s = %#v, want %#v", k, first[k], v)
		}
	}
	if n, _ := first["bytes"].(float64); n != float64(len("a GET /open/x?secret=1")) {
		t.Errorf("bytes = %v, want the body length", first["bytes"])
	}
	if _, ok := first["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms missing: %v", first)
	}
	if lines[1]["user"] != "billing" || lines[1]["route"] != "keyed" {
		t.Errorf("keyed line = %v, want user billing", lines[1])
	}
	if lines[2]["status"] != 401.0 || lines[2]["user"] != nil || lines[2]["backend"] != nil {
		t.Errorf("refused line = %v, want 401 without user or backend", lines[2])
	}
	if lines[3]["route"] != "none" || lines[3]["status"] != 404.0 {
		t.Errorf("unmatched line = %v, want route none, 404", lines[3])
	}
	retried := false
	for _, l := range lines[4:] {
		if l["route"] != "flaky" || l["status"] != 200.0 || l["backend"] != a.URL {
			t.Errorf("flaky line = %v, want 200 from the live backend", l)
		}
		if l["retries"] == 1.0 {
			retried = true
		}
	}
	if !retried {
		t.Errorf("no flaky line shows a retry: %v", lines[4:])
	}
}

func TestAccessLogSampleAndDisable(t *testing.T) {
	a := echo(t, "a")
	fail := echoStatus(t, http.StatusBadGateway)
	g, out := newLoggingGateway(t, quiet+fmt.Sprintf(`
log:
  access: { sample: 0 }
routes:
  - name: ok
    match: { prefix: /ok }
    backends: [ { url: %q } ]
  - name: bad
    match: { prefix: /bad }
    backends: [ { url: %q } ]
`, a.URL, fail.URL))
	for range 20 {
		do(g, "GET", "/ok")
	}
	do(g, "GET", "/bad")
	lines := accessLines(t, g, out)
	if len(lines) != 1 || lines[0]["route"] != "bad" || lines[0]["status"] != 502.0 {
		t.Fatalf("sample 0: lines = %v, want only the 5xx", lines)
	}

	g, out = newLoggingGateway(t, quiet+fmt.Sprintf(`
log:
  access: { disabled: true }
routes:
  - name: bad
    match: { prefix: / }
    backends: [ { url: %q } ]
`, fail.URL))
	do(g, "GET", "/")
	if lines := accessLines(t, g, out); len(lines) != 0 {
		t.Fatalf("disabled: lines = %v, want none", lines)
	}
}

func echoStatus(t *testing.T, code int) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
	}))
	t.Cleanup(s.Close)
	return s
}
