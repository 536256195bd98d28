package gateway

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestInsecureSkipVerifyWarnsAtEveryApply checks that a backend with
// insecure_skip_verify is reached although its certificate is not trusted,
// and that the gateway says so at start and again at every reload.
func TestInsecureSkipVerifyWarnsAtEveryApply(t *testing.T) {
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "tls backend")
	}))
	be.Config.ErrorLog = log.New(io.Discard, "", 0)
	be.StartTLS() // a certificate from httptest's own CA, which nothing trusts
	t.Cleanup(be.Close)

	var out syncBuf
	g := New(Options{Version: "test", Logger: slog.New(slog.NewTextHandler(&out, nil))})
	t.Cleanup(g.Close)
	warnings := func() int {
		out.mu.Lock()
		defer out.mu.Unlock()
		n := 0
		for l := range strings.Lines(out.b.String()) {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "insecure_skip_verify") && strings.Contains(l, "backend="+be.URL) {
				n++
			}
		}
		return n
	}
	yaml := quiet + fmt.Sprintf(`
upstreams:
  tls:
    backends:
      - url: %q
        insecure_skip_verify: true
routes:
  - name: r
    upstream: tls
`, be.URL)
	for i := 1; i <= 2; i++ {
		if err := g.Apply(load(t, yaml)); err != nil {
			t.Fatalf("Apply #%d: %v", i, err)
		}
		if n := warnings(); n != i {
			t.Errorf("after Apply #%d: %d insecure_skip_verify warnings naming %s, want %d", i, n, be.URL, i)
		}
		if w := do(g, "GET", "/x"); w.Code != http.StatusOK || w.Body.String() != "tls backend" {
			t.Errorf("after Apply #%d: GET /x = %d %q, want 200 from the unverified backend", i, w.Code, w.Body.String())
		}
	}
}
