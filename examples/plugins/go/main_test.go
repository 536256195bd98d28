package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCustomBinary builds this example, a custom altair with the "stamp"
// plugin compiled in, and runs it in front of a backend: the plugin's
// request header reaches the backend, its response header the client, a
// request without the required header gets 400, and `validate` reports a
// bad plugin config with its path and line.
func TestCustomBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "altair-custom")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tenant=%s path=%s", r.Header.Get("X-Tenant"), r.URL.Path)
	}))
	defer be.Close()

	dir := t.TempDir()
	cfg := fmt.Sprintf(`server:
  listen: "127.0.0.1:0"
edge:
  rate_limit: {disabled: true}
  ddos: {disabled: true}
routes:
  - name: api
    match: {prefix: /api/}
    strip_prefix: true
    backends: [{url: %q}]
    plugins:
      - name: stamp
        config: {header: X-Tenant, value: acme, response_header: X-Served-By, response_value: custom, require: X-Api-Version}
`, be.URL)
	path := filepath.Join(dir, "altair.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{path, "altair.yaml"} { // the test's config and the example's
		if out, err := exec.Command(bin, "validate", "-c", c).CombinedOutput(); err != nil {
			t.Fatalf("validate -c %s: %v\n%s", c, err, out)
		}
	}
	out, _ := exec.Command(bin, "explain", "-c", path, "GET", "http://x/api/a").CombinedOutput()
	if !strings.Contains(string(out), "plugin(stamp)") {
		t.Errorf("explain does not show the plugin:\n%s", out)
	}

	cmd := exec.Command(bin, "run", "-c", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "ALTAIR_DASHBOARD=off"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "altair started" {
				if a, ok := rec["addr"].(string); ok {
					_, port, _ := net.SplitHostPort(a)
					addr <- "127.0.0.1:" + port
				}
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(20 * time.Second):
		t.Fatal("the custom binary did not start")
	}

	get := func(hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", base+"/api/hello", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("X-Api-Version", "1", "X-Tenant", "forged")
	if resp.StatusCode != 200 || body != "tenant=acme path=/hello" {
		t.Fatalf("got %d %q, want 200 with the plugin's tenant (the client's replaced)", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Served-By") != "custom" {
		t.Errorf("X-Served-By %q, want custom", resp.Header.Get("X-Served-By"))
	}
	if resp, body := get(); resp.StatusCode != 400 || !strings.Contains(body, "missing_header") {
		t.Fatalf("without X-Api-Version: %d %q, want 400 missing_header", resp.StatusCode, body)
	}

	bad := strings.Replace(cfg, "require: X-Api-Version}", "require: X-Api-Version, colour: red}", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "validate", "-c", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "routes[0].plugins[0].config") || !strings.Contains(string(out), "colour") {
		t.Fatalf("validate of a bad plugin config: %v\n%s\nwant exit 1 naming routes[0].plugins[0].config and the key", err, out)
	}
}
