package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestE2EAccessLog: the binary writes one JSON access line per proxied
// request to its log output, with the fields operators filter on.
func TestE2EAccessLog(t *testing.T) {
	t.Parallel()
	b := backend(t, "b")
	p := startAltair(t, routeCfg("web", b.URL))
	code, _, _ := get(t, p.url("/hello?token=secret"))
	if code != 200 {
		t.Fatalf("GET /hello = %d", code)
	}
	var line map[string]any
	waitFor(t, 5*time.Second, "an access line", func() bool {
		for _, l := range strings.Split(p.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "access" && m["path"] == "/hello" {
				line = m
				return true
			}
		}
		return false
	})
	for k, v := range map[string]any{"route": "web", "backend": b.URL, "status": 200.0, "method": "GET",
		"client_ip": "127.0.0.1", "subsystem": "access", "retries": 0.0} {
		if line[k] != v {
			t.Errorf("%s = %#v, want %#v", k, line[k], v)
		}
	}
	for _, k := range []string{"time", "request_id", "host", "bytes", "duration_ms"} {
		if _, ok := line[k]; !ok {
			t.Errorf("access line lacks %s: %v", k, line)
		}
	}
	if strings.Contains(p.logs.String(), "token=secret") {
		t.Error("the query string reached the log")
	}
}
