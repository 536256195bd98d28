package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	guestsOnce sync.Once
	guestsDir  string
	guestsErr  error
)

// guest is the path of examples/plugins/wasm/NAME built for wasip1 (once
// per test binary, with the Go toolchain itself).
func guest(t *testing.T, name string) string {
	t.Helper()
	guestsOnce.Do(func() {
		guestsDir, guestsErr = os.MkdirTemp("", "altair-guests-")
		if guestsErr != nil {
			return
		}
		for _, g := range []string{"headers", "validator", "rewriter", "trap", "empty"} {
			cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(guestsDir, g+".wasm"), "../../examples/plugins/wasm/"+g)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if out, err := cmd.CombinedOutput(); err != nil {
				guestsErr = fmt.Errorf("build guest %s: %v\n%s", g, err, out)
				return
			}
		}
	})
	if guestsErr != nil {
		t.Fatal(guestsErr)
	}
	return filepath.Join(guestsDir, name+".wasm")
}

// copyFile copies src to dst through a rename, as a deploy would.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".tmp", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		t.Fatal(err)
	}
}

// TestE2EWasmPlugins runs the binary with the three example WebAssembly
// plugins configured on routes (a header injector, a request-body
// validator, a response rewriter) and a trapping one, then swaps a .wasm
// file and reloads.
func TestE2EWasmPlugins(t *testing.T) {
	t.Parallel()
	be := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello world from %s %s hello=%s body=%s", r.Method, r.URL.Path, r.Header.Get("X-Hello"), b)
	})
	edge := filepath.Join(t.TempDir(), "edge.wasm")
	copyFile(t, guest(t, "headers"), edge)
	cfg := header("", "") + fmt.Sprintf(`routes:
  - name: headers
    match: {prefix: /h/}
    backends: [{url: %[1]q}]
    plugins:
      - name: wasm
        config:
          path: %[5]q
          guest_config: {request_headers: {X-Hello: world}, response_headers: {X-Plugin: headers}}
  - name: validate
    match: {prefix: /v/}
    backends: [{url: %[1]q}]
    plugins:
      - name: wasm
        label: validator
        config: {path: %[2]q, guest_config: {required: [name]}}
  - name: rewrite
    match: {prefix: /r/}
    backends: [{url: %[1]q}]
    plugins:
      - name: wasm
        config: {path: %[3]q, guest_config: {from: world, to: WebAssembly}}
  - name: trap
    match: {prefix: /t/}
    backends: [{url: %[1]q}]
    plugins:
      - name: wasm
        config: {path: %[4]q, timeout: 200ms}
`, be.URL, guest(t, "validator"), guest(t, "rewriter"), guest(t, "trap"), edge)
	p := startAltair(t, cfg)

	call := func(method, path, body string, hdr ...string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, p.url(path), strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	if code, body, h := call("GET", "/h/x", ""); code != 200 || !strings.Contains(body, "hello=world") || h.Get("X-Plugin") != "headers" {
		t.Fatalf("headers plugin: %d %q X-Plugin=%q", code, body, h.Get("X-Plugin"))
	}
	if code, body, _ := call("POST", "/v/x", `{"name":"a"}`); code != 200 || !strings.Contains(body, `body={"name":"a"}`) {
		t.Fatalf("validator, good body: %d %q; want 200 with the body passed on", code, body)
	}
	if code, body, _ := call("POST", "/v/x", `{"other":1}`); code != 400 {
		t.Fatalf("validator, missing field: %d %q; want 400", code, body)
	}
	if code, body, h := call("GET", "/r/x", ""); code != 200 || !strings.Contains(body, "hello WebAssembly from") || h.Get("Content-Length") != fmt.Sprint(len(body)) {
		t.Fatalf("rewriter: %d %q Content-Length %q", code, body, h.Get("Content-Length"))
	}
	for _, how := range []string{"panic", "loop"} {
		if code, body, _ := call("GET", "/t/x", "", "X-Trap", how); code != 500 {
			t.Fatalf("trap %s: %d %q; want 500", how, code, body)
		}
	}
	if code, _, _ := call("GET", "/t/x", ""); code != 200 {
		t.Fatalf("the trap plugin after its failures: %d; want 200", code)
	}
	_, metrics, _ := call("GET", "/metrics", "")
	for _, want := range []string{
		`plugin_errors_total{plugin="wasm",route="trap"} 2`,
		`plugin_invocations_total{plugin="wasm",route="headers"} 1`,
		`plugin_duration_seconds_count{plugin="wasm",route="rewrite"} 1`,
		`plugin_invocations_total{plugin="validator",route="validate"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A new module under the same path (one that does nothing): a reload
	// loads it.
	copyFile(t, guest(t, "empty"), edge)
	p.signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the reloaded module", func() bool {
		_, body, h := call("GET", "/h/x", "")
		return h.Get("X-Plugin") == "" && strings.Contains(body, "hello=") && !strings.Contains(body, "hello=world")
	})
}
