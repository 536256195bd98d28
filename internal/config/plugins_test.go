package config

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestLoadRoutePlugins(t *testing.T) {
	c := mustLoad(t, `routes:
  - name: r
    match: {prefix: /}
    backends: [{url: "http://127.0.0.1:9001"}]
    plugins:
      - name: stamp
        config: {header: X-Tenant, value: "${TENANT}"}
      - name: wasm
`, "TENANT=acme")
	ps := c.Routes[0].Plugins
	if len(ps) != 2 || ps[0].Name != "stamp" || ps[1].Name != "wasm" {
		t.Fatalf("plugins %+v, want stamp then wasm", ps)
	}
	var got map[string]string
	if err := ps[0].Config.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["value"] != "acme" || got["header"] != "X-Tenant" {
		t.Errorf("stamp config %v: want ${TENANT} expanded", got)
	}
	if ps[1].Config.Kind != 0 {
		t.Errorf("absent config has kind %v, want zero", ps[1].Config.Kind)
	}
	if ps[0].Config.Kind != yaml.MappingNode {
		t.Errorf("config kind %v, want a mapping", ps[0].Config.Kind)
	}
}

func TestLoadRoutePluginsProblems(t *testing.T) {
	route := "routes:\n  - name: r\n    match: {prefix: /}\n    backends: [{url: \"http://127.0.0.1:9001\"}]\n    plugins:\n"
	tests := []struct {
		name, plugins, path, marker, msg string
	}{
		{"name required", "      - config: {a: 1}\n", "routes[0].plugins[0].name", "- config", "is required"},
		{"bad name", "      - name: Stamp!\n", "routes[0].plugins[0].name", "name: Stamp", "lower-case"},
		{"config not a mapping", "      - name: stamp\n        config: [1, 2]\n", "routes[0].plugins[0].config", "config: [", "must be a mapping"},
		{"bad label", "      - {name: stamp, label: \"A B\"}\n", "routes[0].plugins[0].label", "- {name: stamp", "lower-case"},
		{"label twice", "      - {name: stamp, label: x}\n      - {name: wasm, label: x}\n", "routes[0].plugins[1].label", "name: wasm", "used twice"},
		{"too many", strings.Repeat("      - name: p\n", MaxRoutePlugins+1), "routes[0].plugins", "plugins:", "at most 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := route + tt.plugins
			_, err := loadText(t, text)
			want := lineOf(t, text, tt.marker)
			for _, p := range problemsOf(t, err) {
				if p.Path == tt.path && strings.Contains(p.Msg, tt.msg) {
					if p.Line != want {
						t.Errorf("%s: line %d, want %d", p, p.Line, want)
					}
					return
				}
			}
			t.Errorf("problems %v: want %s with %q", err, tt.path, tt.msg)
		})
	}
}
