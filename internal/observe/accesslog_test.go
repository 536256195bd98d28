package observe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func entry() *AccessEntry {
	return &AccessEntry{
		Time:      time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC),
		RequestID: "req-1", Method: "GET", Host: "api.example.com", Path: "/v1/users",
		Route: "users", Status: 502, Bytes: 1234, Duration: 15*time.Millisecond + 250*time.Microsecond,
		Record: &Record{ClientIP: netip.MustParseAddr("203.0.113.7"), User: "alice",
			Backend: "http://10.0.0.1:8080", Attempts: 3, Cache: "MISS"},
	}
}

func TestAccessLogJSON(t *testing.T) {
	var out lockedBuffer
	a := NewAccessLog(&out, "json")
	a.Log(entry())
	a.Close()
	var got map[string]any
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	want := map[string]any{
		"time": "2026-11-23T10:00:00.123456789Z", "level": "INFO", "msg": "access", "subsystem": "access",
		"request_id": "req-1", "client_ip": "203.0.113.7", "method": "GET", "host": "api.example.com",
		"path": "/v1/users", "route": "users", "backend": "http://10.0.0.1:8080", "status": 502.0,
		"bytes": 1234.0, "duration_ms": 15.25, "retries": 2.0, "cache": "MISS", "user": "alice",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys, want %d: %v", len(got), len(want), got)
	}
}

func TestAccessLogOmitsUnknowns(t *testing.T) {
	var out lockedBuffer
	a := NewAccessLog(&out, "json")
	e := entry()
	e.Record = &Record{}
	a.Log(e)
	e.Record = nil
	a.Log(e)
	a.Close()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("not JSON: %v: %s", err, line)
		}
		for _, k := range []string{"client_ip", "backend", "cache", "user"} {
			if _, ok := got[k]; ok {
				t.Errorf("%s present without a value: %s", k, line)
			}
		}
		if got["retries"] != 0.0 {
			t.Errorf("retries = %v, want 0", got["retries"])
		}
	}
}

// TestAccessLogEscaping: whatever a client puts in the host or path, each
// entry is one line of valid JSON that decodes back to the same text
// (invalid UTF-8 as U+FFFD).
func TestAccessLogEscaping(t *testing.T) {
	for _, s := range []string{
		"plain", `quo"te`, `back\slash`, "new\nline", "cr\rtab\t", "\x00\x01\x1f\x7f",
		"<script>&", "\u2028\u2029", "héllo wörld ✓", "bad\xffutf8\xc3", "",
	} {
		var out lockedBuffer
		a := NewAccessLog(&out, "json")
		e := entry()
		e.Path, e.Host = s, s
		a.Log(e)
		a.Close()
		line := out.String()
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
			t.Errorf("%q: not one line: %q", s, line)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Errorf("%q: not JSON: %v: %s", s, err, line)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if !utf8.ValidString(s) {
			want = string([]rune(s)) // each bad byte becomes one U+FFFD
		}
		if got["path"] != want {
			t.Errorf("%q: path decoded as %q, want %q", s, got["path"], want)
		}
		if strings.ContainsAny(line, "<>&") {
			t.Errorf("%q: HTML characters not escaped: %s", s, line)
		}
	}
}

func TestAccessLogText(t *testing.T) {
	var out lockedBuffer
	a := NewAccessLog(&out, "text")
	e := entry()
	e.Path = "/a b"
	a.Log(e)
	a.Close()
	line := out.String()
	for _, want := range []string{
		"time=2026-11-23T10:00:00.123456789Z ", " msg=access ", " subsystem=access ", " request_id=req-1 ",
		" client_ip=203.0.113.7 ", ` path="/a b" `, " route=users ", " status=502 ", " bytes=1234 ",
		" duration_ms=15.250 ", " retries=2 ", " cache=MISS ", " user=alice\n",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("text line lacks %q: %s", want, line)
		}
	}
}

// TestAccessLogBuffersAndFlushes: lines wait in the buffer (no write per
// line), reach the output within the flush interval, and are never split
// across writes.
func TestAccessLogBuffersAndFlushes(t *testing.T) {
	var out lockedBuffer
	a := NewAccessLog(&out, "json")
	defer a.Close()
	for range 100 {
		a.Log(entry())
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "\n") < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 100 lines flushed", strings.Count(out.String(), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	out.mu.Lock()
	writes := out.writes
	out.mu.Unlock()
	if writes >= 100 {
		t.Errorf("%d writes for 100 lines: not buffered", writes)
	}

	// More than the buffer holds: every write ends on a line boundary.
	var big lockedBuffer
	chunks := &chunkRecorder{w: &big}
	b := NewAccessLog(chunks, "json")
	e := entry()
	e.Path = "/" + strings.Repeat("x", 700)
	for range 300 {
		b.Log(e)
	}
	b.Close()
	if n := strings.Count(big.String(), "\n"); n != 300 {
		t.Fatalf("%d lines, want 300", n)
	}
	if chunks.split {
		t.Error("a write ended in the middle of a line")
	}
}

type chunkRecorder struct {
	w     *lockedBuffer
	split bool
}

func (c *chunkRecorder) Write(p []byte) (int, error) {
	if len(p) > 0 && p[len(p)-1] != '\n' {
		c.split = true
	}
	return c.w.Write(p)
}

func BenchmarkAccessLogJSON(b *testing.B) {
	a := NewAccessLog(discard{}, "json")
	defer a.Close()
	e := entry()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.Log(e)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// blockingWriter blocks every Write until released.
type blockingWriter struct {
	release chan struct{}
	lines   lockedBuffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	return b.lines.Write(p)
}

// TestAccessLogSlowOutputNeverBlocksRequests: with the output stuck, Log
// keeps returning (lines beyond the buffers are dropped and counted), and
// once the output moves again every line kept is written, whole and in order.
func TestAccessLogSlowOutputNeverBlocksRequests(t *testing.T) {
	out := &blockingWriter{release: make(chan struct{})}
	a := NewAccessLog(out, "json")
	e := entry()
	e.Path = "/" + strings.Repeat("p", 400)
	done := make(chan struct{})
	n := 2000 // ~1 MB of lines: far more than the buffers hold
	go func() {
		defer close(done)
		for i := range n {
			e.RequestID = fmt.Sprintf("r%05d", i)
			a.Log(e)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Log blocked on a stuck output")
	}
	if a.Dropped() == 0 {
		t.Fatal("nothing dropped although the output was stuck")
	}
	close(out.release)
	a.Close()
	lines := strings.Split(strings.TrimSpace(out.lines.String()), "\n")
	if uint64(len(lines))+a.Dropped() != uint64(n) {
		t.Fatalf("%d written + %d dropped != %d logged", len(lines), a.Dropped(), n)
	}
	prev := ""
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("broken line: %v", err)
		}
		id := m["request_id"].(string)
		if id <= prev {
			t.Fatalf("out of order: %s after %s", id, prev)
		}
		prev = id
	}
}
