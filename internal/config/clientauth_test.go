package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadClientAuth(t *testing.T) {
	dir := t.TempDir()
	crt, key := writeKeyPair(t, dir, "a.test")
	ca, _ := writeKeyPair(t, dir, "ca.test")
	base := fmt.Sprintf("server:\n  tls:\n    certificates:\n      - {cert_file: %q, key_file: %q}\n", crt, key)
	route := "routes:\n  - {name: r, match: {prefix: /}, backends: [{url: \"http://a:80\"}], require_client_cert: true}\n"
	tests := []struct {
		name, clientAuth string
		want             ClientAuth
	}{
		{"mode defaults to require", fmt.Sprintf("{ca_file: %q}", ca), ClientAuth{CAFile: ca, Mode: ClientAuthRequire}},
		{"request", fmt.Sprintf("{ca_file: %q, mode: request}", ca), ClientAuth{CAFile: ca, Mode: ClientAuthRequest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, base+"    client_auth: "+tt.clientAuth+"\n"+route)
			if got := c.Server.TLS.ClientAuth; got != tt.want {
				t.Errorf("Load().Server.TLS.ClientAuth = %+v, want %+v", got, tt.want)
			}
			if !c.Routes[0].RequireClientCert {
				t.Error("Load().Routes[0].RequireClientCert = false, want true")
			}
		})
	}
	if c := mustLoad(t, base); c.Server.TLS.ClientAuth.Enabled() {
		t.Errorf("Load() without client_auth: ClientAuth = %+v, want none", c.Server.TLS.ClientAuth)
	}
}

func TestLoadClientAuthProblems(t *testing.T) {
	dir := t.TempDir()
	crt, key := writeKeyPair(t, dir, "a.test")
	ca, _ := writeKeyPair(t, dir, "ca.test")
	certs := fmt.Sprintf("server:\n  tls:\n    certificates:\n      - {cert_file: %q, key_file: %q}\n", crt, key)
	route := "routes:\n  - name: r\n    match: {prefix: /}\n    backends: [{url: \"http://a:80\"}]\n    require_client_cert: true\n"
	tests := []struct {
		name, yaml, path, marker, msg string
	}{
		{"without certificates", fmt.Sprintf("server:\n  tls:\n    client_auth:\n      ca_file: %q\n", ca), "server.tls.client_auth", "client_auth:", "needs server.tls.certificates"},
		{"mode", certs + fmt.Sprintf("    client_auth:\n      ca_file: %q\n      mode: optional\n", ca), "server.tls.client_auth.mode", "mode:", `invalid value "optional"`},
		{"ca required", certs + "    client_auth:\n      mode: request\n", "server.tls.client_auth.ca_file", "client_auth:", "is required"},
		{"missing ca", certs + "    client_auth:\n      ca_file: " + filepath.Join(dir, "none.pem") + "\n", "server.tls.client_auth.ca_file", "ca_file:", "no such file"},
		{"ca not a certificate", certs + "    client_auth:\n      ca_file: " + key + "\n", "server.tls.client_auth.ca_file", "ca_file:", "holds no PEM certificate"},
		{"route without client_auth", certs + route, "routes[0].require_client_cert", "require_client_cert:", "needs server.tls.client_auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadText(t, tt.yaml)
			wantLine := lineOf(t, tt.yaml, tt.marker)
			for _, p := range problemsOf(t, err) {
				if p.Path == tt.path && strings.Contains(p.Msg, tt.msg) {
					if p.Line != wantLine {
						t.Errorf("Load(%q): %q line = %d, want %d", tt.yaml, p, p.Line, wantLine)
					}
					return
				}
			}
			t.Errorf("Load(%q) problems:\n%v\nwant one at %q with %q", tt.yaml, err, tt.path, tt.msg)
		})
	}
}
