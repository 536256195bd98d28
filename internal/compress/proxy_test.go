package compress

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSSE streams server-sent events through a real server; the handler
// sends each event only after the client has read the one before, so the
// test passes only if every event is flushed through the encoder at once.
func TestSSE(t *testing.T) {
	t.Parallel()
	sse := []string{"text/event-stream"}
	tests := []struct {
		name   string
		ae     string
		types  []string
		wantCE string
	}{
		{"default: not encoded, still flushed", "gzip, br, zstd", nil, ""},
		{"opted in, gzip", "gzip", sse, "gzip"},
		{"opted in, br", "br", sse, "br"},
		{"opted in, zstd", "zstd", sse, "zstd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustNew(t, Options{Types: tt.types})
			acks := make(chan struct{})
			const events = 5
			s, client := newServer(t, c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Cache-Control", "no-cache")
				w.WriteHeader(http.StatusOK)
				rc := http.NewResponseController(w)
				if err := rc.Flush(); err != nil {
					t.Errorf("Flush() error = %v", err)
					return
				}
				for i := range events {
					fmt.Fprintf(w, "id: %d\ndata: {\"n\":%d,\"message\":\"hello from the stream\"}\n\n", i, i)
					if err := rc.Flush(); err != nil {
						t.Errorf("Flush() error = %v", err)
						return
					}
					select {
					case <-acks:
					case <-r.Context().Done():
						return
					}
				}
			})))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
			req.Header.Set("Accept-Encoding", tt.ae)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Encoding"); got != tt.wantCE {
				t.Fatalf("Content-Encoding = %q, want %q", got, tt.wantCE)
			}
			dec, done := decoder(t, tt.wantCE, resp.Body)
			defer done()
			br := bufio.NewReader(dec)
			for i := range events {
				var ev strings.Builder
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("event %d: %v after %q (not flushed?)", i, err, ev.String())
					}
					if line == "\n" {
						break
					}
					ev.WriteString(line)
				}
				if want := fmt.Sprintf("id: %d\n", i); !strings.HasPrefix(ev.String(), want) {
					t.Fatalf("event %d = %q, want it to start with %q", i, ev.String(), want)
				}
				acks <- struct{}{}
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Errorf("after the last event: %q, %v, want a clean end", rest, err)
			}
		})
	}
}

// backend is an origin server for the proxy tests.
func backend(t *testing.T) *url.URL {
	t.Helper()
	body := testJSON(32 << 10)
	mux := http.NewServeMux()
	mux.HandleFunc("/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Header().Set("Etag", `"j1"`)
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i < len(body); i += 8 << 10 {
			_, _ = w.Write(body[i:min(i+8<<10, len(body))])
			http.NewResponseController(w).Flush() //nolint:errcheck // a test origin
		}
	})
	mux.HandleFunc("/small", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body[:200])
	})
	mux.HandleFunc("/png", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/trailer", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = w.Write(body)
		w.Header().Set("X-Checksum", "abc123")
	})
	mux.HandleFunc("/early-hints", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	// /abort declares more than it sends, then drops the connection: the
	// proxy panics with http.ErrAbortHandler mid-body.
	mux.HandleFunc("/abort", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(2*len(body)))
		_, _ = w.Write(body)
		http.NewResponseController(w).Flush() //nolint:errcheck // a test origin
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	// /upgrade switches to a line echo protocol.
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("backend Hijack() error = %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\nContent-Type: text/plain\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString(line)
		_ = brw.Flush()
	})
	s, _ := newServer(t, mux)
	u, _ := url.Parse(s.URL)
	return u
}

// newProxy is the gateway's shape: c.Wrap around an httputil.ReverseProxy.
func newProxy(t *testing.T, c *Compressor, target *url.URL) (*httptest.Server, *http.Client) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	return newServer(t, c.Wrap(rp))
}

func TestThroughReverseProxy(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	var dropped atomic.Int32
	c.testRelease = func(_ coding, ok bool) {
		if !ok {
			dropped.Add(1)
		}
	}
	front, client := newProxy(t, c, backend(t))
	body := testJSON(32 << 10)
	tests := []struct {
		path     string
		ae       string
		wantCE   string
		wantBody []byte
	}{
		{"/json", "zstd", "zstd", body},
		{"/json", "gzip, br", "gzip", body},
		{"/json", "", "", body},
		{"/chunked", "br", "br", body},
		{"/chunked", "", "", body},
		{"/small", "gzip", "", body[:200]},
		{"/png", "gzip", "", body},
		{"/trailer", "gzip", "gzip", body},
		{"/early-hints", "zstd", "zstd", body},
	}
	for _, tt := range tests {
		t.Run(tt.path+"/"+tt.ae, func(t *testing.T) {
			var got1xx []int
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
				got1xx = append(got1xx, code)
				return nil
			}}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, front.URL+tt.path, nil)
			if tt.ae != "" {
				req.Header.Set("Accept-Encoding", tt.ae)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := readAll(resp)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header.Get("Content-Encoding"); got != tt.wantCE {
				t.Fatalf("Content-Encoding = %q, want %q", got, tt.wantCE)
			}
			if got := decode(t, tt.wantCE, raw); !bytes.Equal(got, tt.wantBody) {
				t.Errorf("decoded body: %d bytes, want %d", len(got), len(tt.wantBody))
			}
			if tt.path == "/json" && tt.wantCE != "" && resp.Header.Get("Etag") != `W/"j1"` {
				t.Errorf("ETag = %q, want %q", resp.Header.Get("Etag"), `W/"j1"`)
			}
			if tt.path == "/trailer" && resp.Trailer.Get("X-Checksum") != "abc123" {
				t.Errorf("trailer X-Checksum = %q, want %q", resp.Trailer.Get("X-Checksum"), "abc123")
			}
			if tt.path == "/early-hints" && (len(got1xx) != 1 || got1xx[0] != http.StatusEarlyHints) {
				t.Errorf("1xx responses = %v, want [103]", got1xx)
			}
		})
	}

	t.Run("abort mid-body", func(t *testing.T) {
		before := dropped.Load()
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/abort", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		// A fresh connection: on a reused one that broke before any byte of
		// the answer, the Transport would retry the GET.
		tr := &http.Transport{DisableCompression: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			_, err = readAll(resp)
		}
		if err == nil {
			t.Error("client read an aborted response without an error")
		}
		if d := dropped.Load() - before; d != 1 {
			t.Errorf("encoders dropped = %d, want 1", d)
		}
	})

	t.Run("upgrade", func(t *testing.T) {
		conn, err := net.Dial("tcp", front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\nAccept-Encoding: gzip\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("status %d, Content-Encoding %q, want 101 and none", resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
		fmt.Fprintf(conn, "ping over the upgraded connection\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "ping over the upgraded connection\n" {
			t.Errorf("echo = %q, %v, want the line back", line, err)
		}
	})
}

// TestTrailerNotHeld: a handler that declares a trailer sets its value after
// the body, so a short body must not hold the header back until then (the
// value would go out as a header field).
func TestTrailerNotHeld(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	s, client := newServer(t, c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = w.Write([]byte(`{"short":true}`))
		w.Header().Set("X-Checksum", "abc123")
	})))
	req, _ := http.NewRequest(http.MethodGet, s.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := readAll(resp)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("X-Checksum"); got != "" {
		t.Errorf("X-Checksum sent as a header field (%q)", got)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Errorf("trailer X-Checksum = %q, want %q", got, "abc123")
	}
	if got := decode(t, resp.Header.Get("Content-Encoding"), raw); string(got) != `{"short":true}` {
		t.Errorf("body = %q", got)
	}
}
