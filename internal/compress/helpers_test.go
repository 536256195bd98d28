package compress

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func mustNew(t testing.TB, o Options) *Compressor {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v) error = %v", o, err)
	}
	return c
}

// decoder returns a reader of r's decoded bytes for Content-Encoding ce ("":
// r itself) and a function that releases it.
func decoder(t testing.TB, ce string, r io.Reader) (io.Reader, func()) {
	t.Helper()
	switch ce {
	case "":
		return r, func() {}
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("gzip.NewReader: %v", err)
		}
		return zr, func() { _ = zr.Close() }
	case "br":
		return brotli.NewReader(r), func() {}
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatalf("zstd.NewReader: %v", err)
		}
		return zr, zr.Close
	}
	t.Fatalf("unexpected Content-Encoding %q", ce)
	return nil, nil
}

// decode decodes a whole body.
func decode(t testing.TB, ce string, body []byte) []byte {
	t.Helper()
	r, done := decoder(t, ce, bytes.NewReader(body))
	defer done()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s body of %d bytes: %v", ce, len(body), err)
	}
	return out
}

// serve runs r through c.Wrap(h) in-process.
func serve(c *Compressor, h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	c.Wrap(h).ServeHTTP(w, r)
	return w
}

// readAll reads and closes a response body.
func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// newServer serves h on a loopback listener; the server and the client's
// idle connections are closed when the test ends.
func newServer(t testing.TB, h http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	s := httptest.NewServer(h)
	// DisableCompression: the client must not ask for gzip itself or
	// decode the body behind the test's back.
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		s.Close()
	})
	return s, &http.Client{Transport: tr}
}

// testJSON returns about n bytes of API-like JSON: an array of user records
// with ids, names, e-mail addresses, timestamps and flags, seeded so every
// run sees the same bytes.
func testJSON(n int) []byte {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	first := []string{"ada", "grace", "alan", "edsger", "barbara", "ken", "dennis", "margaret", "linus", "radia"}
	last := []string{"lovelace", "hopper", "turing", "dijkstra", "liskov", "thompson", "ritchie", "hamilton", "torvalds", "perlman"}
	roles := []string{"admin", "editor", "viewer", "billing", "support"}
	var b strings.Builder
	b.WriteString(`{"data":[`)
	for i := 0; b.Len() < n-60; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		f, l := first[rng.IntN(len(first))], last[rng.IntN(len(last))]
		fmt.Fprintf(&b, `{"id":%d,"uuid":"%08x-%04x-%04x","name":"%s %s","email":"%s.%s@example.com","role":"%s","active":%t,"score":%.2f,"created_at":"2025-%02d-%02dT%02d:%02d:%02dZ"}`,
			100000+rng.IntN(900000), rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<16), f, l, f, l, roles[rng.IntN(len(roles))], rng.IntN(2) == 1, rng.Float64()*100,
			1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60))
	}
	fmt.Fprintf(&b, `],"page":1,"total":%d}`, rng.IntN(10000))
	return []byte(b.String())
}
