package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EHealthCommand runs `altair health` against a running gateway, by URL
// and by the config's listen address, and against nothing.
func TestE2EHealthCommand(t *testing.T) {
	t.Parallel()
	p := startAltair(t, baseCfg)

	out, err := runAltair("health", "-url", p.url("/health"))
	if err != nil || !strings.Contains(out, "200 ok") {
		t.Fatalf("altair health -url = %v, %q; want exit 0 and '200 ok'", err, out)
	}
	out, err = runAltair("health", "-ready", "-url", p.url("/ready"))
	if err != nil || !strings.Contains(out, "200 ready") {
		t.Fatalf("altair health -ready = %v, %q; want exit 0 and '200 ready'", err, out)
	}

	// Without -url the address comes from the config: GATEWAY_PORT here, as
	// the container image's HEALTHCHECK uses it.
	_, port, _ := strings.Cut(p.addr, ":")
	cmd := exec.Command(altairBin, "health", "-ready")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"GATEWAY_PORT=" + port}
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "127.0.0.1:"+port+"/ready: 200") {
		t.Fatalf("altair health with GATEWAY_PORT = %v, %q", err, b)
	}

	// A config file's listen address is used the same way.
	cfg := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(cfg, []byte("server:\n  listen: \""+p.addr+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runAltair("health", "-q", "-c", cfg); err != nil || out != "" {
		t.Fatalf("altair health -q -c = %v, %q; want exit 0 and no output", err, out)
	}

	// Nothing listening: exit 1.
	out, err = runAltair("health", "-timeout", "2s", "-url", deadURL(t)+"/health")
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("altair health against a closed port = %v, %q; want exit 1", err, out)
	}
}

// TestE2EHealthCommandOverTLS: with TLS on and no redirect listener,
// `altair health -c` asks the listener over https on loopback; an explicit
// https -url verifies the certificate unless -insecure.
func TestE2EHealthCommandOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	crt, key, _ := writeTLSCert(t, dir, "gw.test", 1)
	tlsCfg := fmt.Sprintf("  tls:\n    certificates:\n      - {cert_file: %q, key_file: %q}\n", crt, key)
	p := launchAltair(t, header(tlsCfg, ""))

	cfg := filepath.Join(t.TempDir(), "a.yaml")
	writeFile(t, cfg, fmt.Sprintf("server:\n  listen: %q\n%s", p.addr, tlsCfg))
	waitFor(t, 10*time.Second, "health over https", func() bool {
		out, err := runAltair("health", "-c", cfg)
		return err == nil && strings.Contains(out, "https://"+p.addr+"/health: 200")
	})
	out, err := runAltair("health", "-timeout", "2s", "-url", "https://"+p.addr+"/health")
	if err == nil {
		t.Fatalf("health -url https with a self-signed certificate = ok, %q; want a verification failure", out)
	}
	if out, err := runAltair("health", "-insecure", "-url", "https://"+p.addr+"/ready"); err != nil || !strings.Contains(out, "200 ready") {
		t.Fatalf("health -insecure -url https = %v, %q", err, out)
	}
}
