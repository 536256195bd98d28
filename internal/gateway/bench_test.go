package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/observe"
	"github.com/altair-gateway/altair/internal/pluginapi"
	"github.com/altair-gateway/altair/internal/wasmhost"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the gateway and not a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkGatewayProxy measures one proxied request through the whole
// in-process handler path: request id, path cleaning, routing, route handler,
// balancer and reverse proxy to a real loopback backend answering 1 KiB.
func BenchmarkGatewayProxy(b *testing.B) { benchProxy(b, Options{}) }

// BenchmarkGatewayProxyObserved is BenchmarkGatewayProxy with the access log
// on (to a discarding writer) and with tracing: on but sampling nothing
// ("unsampled": what tracing costs a request that is not traced), and
// sampling everything to a loopback OTLP receiver ("sampled").
func BenchmarkGatewayProxyObserved(b *testing.B) {
	b.Run("access-log", func(b *testing.B) {
		benchProxy(b, Options{AccessLog: io.Discard, LogFormat: "json"})
	})
	for _, tc := range []struct {
		name  string
		ratio float64
	}{{"tracing-unsampled", 0}, {"tracing-sampled", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
			}))
			defer sink.Close()
			ratio := tc.ratio
			tr, err := observe.NewTracer(context.Background(), config.Tracing{Enabled: true,
				Endpoint: sink.URL, Protocol: "http/protobuf", ServiceName: "bench", SampleRatio: &ratio},
				"bench", slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = tr.Shutdown(context.Background()) }()
			benchProxy(b, Options{Tracer: tr})
		})
	}
}

func benchProxy(b *testing.B, o Options) { benchProxyRoute(b, o, "") }

// BenchmarkGatewayPlugins is BenchmarkGatewayProxy with one plugin on the
// route that passes every request on untouched: none (the baseline), a
// compiled-in Go plugin, and the http-wasm guest examples/plugins/wasm/empty
// (built here with GOOS=wasip1) run by the built-in wasm plugin.
func BenchmarkGatewayPlugins(b *testing.B) {
	empty := pluginapi.Factory{Name: "empty", New: func(pluginapi.Config) (pluginapi.Middleware, error) {
		return func(next http.Handler) http.Handler { return next }, nil
	}}
	rt := wasmhost.NewRuntime(context.Background())
	defer rt.Close(context.Background()) //nolint:errcheck // benchmark teardown
	reg, err := pluginapi.NewRegistry(empty, wasmhost.Factory(rt))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("none", func(b *testing.B) { benchProxyRoute(b, Options{Plugins: reg}, "") })
	b.Run("go-empty", func(b *testing.B) {
		benchProxyRoute(b, Options{Plugins: reg}, "    plugins: [{name: empty}]\n")
	})
	b.Run("wasm-empty", func(b *testing.B) {
		mod := filepath.Join(b.TempDir(), "empty.wasm")
		build := exec.Command("go", "build", "-buildmode=c-shared", "-o", mod, "../../examples/plugins/wasm/empty")
		build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("build the empty guest: %v\n%s", err, out)
		}
		benchProxyRoute(b, Options{Plugins: reg}, fmt.Sprintf("    plugins: [{name: wasm, config: {path: %q}}]\n", mod))
	})
}

func benchProxyRoute(b *testing.B, o Options, routeExtra string) {
	body := bytes.Repeat([]byte("x"), 1024)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	}))
	defer backend.Close()

	g := New(o)
	defer g.Close()
	if err := g.Apply(load(b, quiet+fmt.Sprintf(`
routes:
  - name: other
    match: { prefix: /other }
    backends: [ { url: "http://127.0.0.1:1" } ]
  - name: bench
    match: { prefix: /api }
    strip_prefix: true
    backends: [ { url: %q } ]
`, backend.URL)+routeExtra)); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/api/items/1", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := req.Clone(req.Context())
		w := &discardWriter{h: make(http.Header)}
		g.ServeHTTP(w, r)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkGatewayNotFound measures the gateway's own path with no upstream
// I/O: request id, cleaning, routing miss and the JSON 404.
func BenchmarkGatewayNotFound(b *testing.B) {
	g := New(Options{})
	defer g.Close()
	if err := g.Apply(load(b, quiet+`
routes:
  - name: a
    match: { prefix: /api }
    backends: [ { url: "http://127.0.0.1:1" } ]
`)); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/missing/path", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := req.Clone(req.Context())
		w := &discardWriter{h: make(http.Header)}
		g.ServeHTTP(w, r)
	}
}

// BenchmarkGatewayServer measures one proxied request as a client sees it
// through Altair's HTTP/1.1 server over loopback: one keep-alive
// connection, a GET for 1 KiB, on the direct lane ("lane") and through the
// handler chain ("chain", the lane switched off). BenchmarkGatewayProxy
// calls the handler in process and so never takes the lane, which is the
// path a plain proxied GET takes in production. The process's allocations
// include the backend's (net/http) and the client's (none per request).
func BenchmarkGatewayServer(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	}))
	defer backend.Close()
	for _, direct := range []bool{true, false} {
		name := "lane"
		if !direct {
			name = "chain"
		}
		b.Run(name, func(b *testing.B) {
			g := New(Options{})
			defer g.Close()
			if err := g.Apply(load(b, quiet+fmt.Sprintf(`
routes:
  - name: bench
    match: { prefix: /api }
    strip_prefix: true
    backends: [ { url: %q } ]
`, backend.URL))); err != nil {
				b.Fatal(err)
			}
			base, answered := laneServer(b, g, direct)
			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /api/items/1 HTTP/1.1\r\nHost: bench\r\n\r\n")
			br := bufio.NewReaderSize(c, 16<<10)
			get := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				n, err := readAnswer(br)
				if err != nil || n != len(body) {
					b.Fatalf("answer: %d body bytes, %v", n, err)
				}
			}
			get()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				get()
			}
			b.StopTimer()
			if direct != (answered.Load() > 0) {
				b.Fatalf("the lane answered %d requests, direct %v", answered.Load(), direct)
			}
		})
	}
}

// readAnswer reads one 200 answer with a Content-Length from br and returns
// its body's length.
func readAnswer(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return 0, fmt.Errorf("status line %q", line)
	}
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return 0, err
			}
		}
	}
	if n < 0 {
		return 0, errors.New("no Content-Length")
	}
	_, err = br.Discard(n)
	return n, err
}
