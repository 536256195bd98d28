package config

import (
	"strings"
	"testing"
)

func TestLoadUpstreamProtocol(t *testing.T) {
	yaml := "defaults:\n  transport:\n    protocol: h2c\nupstreams:\n  plain:\n    backends: [{url: \"http://a:8080\"}]\n" +
		"  tls:\n    transport:\n      protocol: h2\n    health_check: {type: grpc, service: altair.Echo}\n    backends: [{url: \"https://b:8443\"}]\n"
	c, err := loadText(t, yaml)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Upstreams["tls"].HealthCheck; got.Type != "grpc" || got.Service != "altair.Echo" {
		t.Errorf("Load().Upstreams[tls].HealthCheck = %+v, want type grpc, service altair.Echo", got)
	}
	for name, want := range map[string]string{"plain": ProtocolH2C, "tls": ProtocolH2} {
		if got := c.Upstreams[name].Transport.Protocol; got != want {
			t.Errorf("Load().Upstreams[%q].Transport.Protocol = %q, want %q", name, got, want)
		}
	}
}

func TestLoadUpstreamProtocolProblems(t *testing.T) {
	tests := []struct {
		name, yaml, path, marker, msg string
	}{
		{"unknown", "upstreams:\n  api:\n    transport:\n      protocol: h3\n    backends: [{url: \"http://a:8080\"}]\n",
			"upstreams.api.transport.protocol", "protocol:", `invalid value "h3"`},
		{"h2 on http", "upstreams:\n  api:\n    transport:\n      protocol: h2\n    backends:\n      - url: http://a:8080\n",
			"upstreams.api.backends[0].url", "url:", "transport.protocol h2 needs https backends"},
		{"h2c on https", "upstreams:\n  api:\n    transport:\n      protocol: h2c\n    backends:\n      - url: https://a:8443\n",
			"upstreams.api.backends[0].url", "url:", "transport.protocol h2c needs http backends"},
		{"grpc health check over http1", "upstreams:\n  api:\n    health_check:\n      type: grpc\n    backends: [{url: \"http://a:8080\"}]\n",
			"upstreams.api.health_check.type", "type:", "needs transport.protocol h2 or h2c"},
		{"default h2c on a route's https backend", "defaults:\n  transport:\n    protocol: h2c\nroutes:\n  - name: r\n    match: {prefix: /}\n    backends:\n      - url: https://a:8443\n",
			"routes[0].backends[0].url", "url:", "needs http backends"},
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
