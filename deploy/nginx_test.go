package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const nginxConfig = "nginx/nginx.conf"

// directives returns the arguments of every occurrence of a simple nginx
// directive (one that ends with ";", not a block).
func directives(conf, name string) [][]string {
	conf = regexp.MustCompile(`#[^\n]*`).ReplaceAllString(conf, "")
	var out [][]string
	for _, m := range regexp.MustCompile(`(?m)^\s*`+regexp.QuoteMeta(name)+`\s+([^;{}]*);`).FindAllStringSubmatch(conf, -1) {
		out = append(out, strings.Fields(m[1]))
	}
	return out
}

// TestNginxEdge checks the TLS edge's config against the compose stack:
// it proxies to the gateway's service and port, with the certificate where
// compose mounts it, and passes the client address on.
func TestNginxEdge(t *testing.T) {
	t.Parallel()
	conf := string(readFile(t, nginxConfig))
	p := loadCompose(t, "tls")
	e := service(t, p, "edge")
	if src := bind(t, e, "/etc/nginx/nginx.conf"); src != abs(t, nginxConfig) {
		t.Errorf("edge mounts %s as nginx.conf, want %s", src, nginxConfig)
	}
	servers := directives(conf, "server")
	if len(servers) != 1 || len(servers[0]) != 1 {
		t.Fatalf("upstream servers %q, want one", servers)
	}
	host, port := hostPort(t, servers[0][0])
	cfg := parseAltairConfig(t, readFile(t, "compose/altair.yaml"))
	if _, ok := p.Services[host]; host != "altair" || !ok || port != cfg.listenPort(t) {
		t.Errorf("nginx proxies to %s:%d, want altair:%d", host, port, cfg.listenPort(t))
	}
	for _, d := range []string{"ssl_certificate", "ssl_certificate_key"} {
		args := directives(conf, d)
		if len(args) != 1 {
			t.Errorf("%s: %q, want one", d, args)
			continue
		}
		if src := bind(t, e, filepath.Dir(args[0][0])); src != abs(t, "compose/certs") {
			t.Errorf("%s %s is mounted from %s, want compose/certs", d, args[0][0], src)
		}
	}
	headers := map[string]string{}
	for _, h := range directives(conf, "proxy_set_header") {
		if len(h) == 2 {
			headers[h[0]] = h[1]
		}
	}
	if headers["X-Forwarded-For"] != "$proxy_add_x_forwarded_for" {
		t.Errorf("X-Forwarded-For is set to %q, want $proxy_add_x_forwarded_for (the client's address appended)", headers["X-Forwarded-For"])
	}
	if headers["X-Forwarded-Proto"] != "$scheme" {
		t.Errorf("X-Forwarded-Proto is set to %q, want $scheme", headers["X-Forwarded-Proto"])
	}
	listen := directives(conf, "listen")
	if len(listen) == 0 || !strings.Contains(strings.Join(listen[0], " "), "ssl") {
		t.Errorf("listen %q, want TLS", listen)
	}
}

// TestNginxConfigSyntax runs `nginx -t` on the edge's config, with the
// gateway's address and the certificate paths pointed at this machine.
func TestNginxConfigSyntax(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("nginx not found; scripts/test.sh installs it")
			}
			t.Skip("nginx not found: install it (make test does) to check nginx.conf's syntax")
		}
		bin = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	writeSelfSigned(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	conf := string(readFile(t, nginxConfig))
	conf = strings.NewReplacer(
		"altair:9777", "127.0.0.1:9777",
		"/etc/nginx/certs/", dir+"/",
		"/var/run/nginx.pid", filepath.Join(dir, "nginx.pid"),
	).Replace(conf)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-q", "-p", dir, "-c", path, "-e", "stderr").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

func writeSelfSigned(t *testing.T, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}
