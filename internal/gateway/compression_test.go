package gateway

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/altair-gateway/altair/internal/config"
)

func jsonBackend(t *testing.T, size int) *httptest.Server {
	t.Helper()
	body := `{"items":[` + strings.Repeat(`{"id":1,"name":"altair"},`, size/25) + `{}]}`
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestCompression(t *testing.T) {
	b := jsonBackend(t, 4096)
	g := newGateway(t, quiet+fmt.Sprintf(`
routes:
  - name: api
    match: { prefix: /api }
    backends: [ { url: %[1]q } ]
  - name: raw
    match: { prefix: /raw }
    compression: { disabled: true }
    backends: [ { url: %[1]q } ]
  - name: gz
    match: { prefix: /gz }
    compression: { encodings: [gzip] }
    backends: [ { url: %[1]q } ]
`, b.URL))

	plain := do(g, "GET", "/api/x")
	if plain.Code != 200 || plain.Header().Get("Content-Encoding") != "" || !strings.Contains(strings.Join(plain.Header().Values("Vary"), ","), "Accept-Encoding") {
		t.Fatalf("no Accept-Encoding: %d %v, want identity with Vary", plain.Code, plain.Header())
	}

	w := do(g, "GET", "/api/x", "Accept-Encoding", "gzip, deflate, br, zstd")
	if w.Header().Get("Content-Encoding") != "zstd" || w.Header().Get("ETag") != `W/"v1"` || w.Header().Get("Content-Length") != "" {
		t.Fatalf("browser: headers %v, want zstd, weak ETag, no Content-Length", w.Header())
	}
	zr, err := zstd.NewReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	zr.Close()
	if err != nil || !bytes.Equal(got, plain.Body.Bytes()) {
		t.Fatalf("zstd body does not decode to the original (%v)", err)
	}
	if w.Body.Len() >= plain.Body.Len()/2 {
		t.Errorf("compressed %d bytes of %d", w.Body.Len(), plain.Body.Len())
	}

	w = do(g, "GET", "/gz/x", "Accept-Encoding", "zstd, gzip;q=0.5")
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("route with encodings [gzip]: %v", w.Header())
	}
	gr, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(gr); !bytes.Equal(got, plain.Body.Bytes()) {
		t.Fatal("gzip body does not decode to the original")
	}

	if w := do(g, "GET", "/raw/x", "Accept-Encoding", "gzip"); w.Header().Get("Content-Encoding") != "" {
		t.Fatalf("route with compression disabled: %v", w.Header())
	}

	var st statsReport
	decode(t, do(g, "GET", "/stats"), &st)
	if !st.Features["compression"] {
		t.Error("stats features: compression false")
	}
}

func TestCompressionConfigProblems(t *testing.T) {
	a := echo(t, "a")
	g := New(Options{})
	t.Cleanup(g.Close)
	err := g.Apply(load(t, quiet+fmt.Sprintf(`
compression:
  encodings: [zstd, lzma]
routes:
  - name: api
    match: { prefix: /api }
    compression:
      levels: { gzip: 42 }
    backends: [ { url: %q } ]
`, a.URL)))
	var ps config.Problems
	if !asProblems(err, &ps) {
		t.Fatalf("Apply = %v, want problems", err)
	}
	paths := map[string]bool{}
	for _, p := range ps {
		paths[p.Path] = true
	}
	if !paths["compression"] || !paths["routes[0].compression"] {
		t.Fatalf("problems %v, want compression and routes[0].compression", ps)
	}

	// ENABLE_COMPRESSION=false turns it off.
	cfg, err := config.Load("", []string{"ENABLE_COMPRESSION=false"})
	if err != nil || !cfg.Compression.Disabled {
		t.Fatalf("ENABLE_COMPRESSION=false: %v, disabled=%v", err, cfg.Compression.Disabled)
	}
	if _, err := config.Load("", []string{"ENABLE_COMPRESSION=maybe"}); err == nil || !strings.Contains(err.Error(), "ENABLE_COMPRESSION") {
		t.Fatalf("ENABLE_COMPRESSION=maybe: %v, want a problem naming it", err)
	}
}

func decode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %q: %v", w.Body.String(), err)
	}
}
