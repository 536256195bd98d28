package deploy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// gatewayPort is the gateway's default port (server.listen ":9777",
// GATEWAY_PORT); every file here serves or reaches the gateway on it.
const gatewayPort = 9777

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeYAMLStrict decodes one YAML document into v, refusing unknown keys
// and a second document.
func decodeYAMLStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

// altairConfig is the part of an altair.yaml these tests compare with the
// deployment files. It is not the gateway's config type: `altair validate`
// checks the whole file (cmd/altair/e2e_deploy_test.go).
type altairConfig struct {
	Server struct {
		Listen          string   `yaml:"listen"`
		DrainDelay      string   `yaml:"drain_delay"`
		ShutdownTimeout string   `yaml:"shutdown_timeout"`
		TrustedProxies  []string `yaml:"trusted_proxies"`
	} `yaml:"server"`
	Metrics struct {
		Path string `yaml:"path"`
	} `yaml:"metrics"`
}

func parseAltairConfig(t *testing.T, data []byte) altairConfig {
	t.Helper()
	var c altairConfig
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("altair config: %v", err)
	}
	return c
}

// listenPort is the port of server.listen, with the gateway's defaults.
func (c altairConfig) listenPort(t *testing.T) int {
	t.Helper()
	if c.Server.Listen == "" {
		return gatewayPort
	}
	l := c.Server.Listen
	if !strings.Contains(l, ":") {
		l = ":" + l
	}
	_, p, err := net.SplitHostPort(l)
	if err != nil {
		t.Fatalf("server.listen %q: %v", c.Server.Listen, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("server.listen %q: %v", c.Server.Listen, err)
	}
	return n
}

func (c altairConfig) metricsPath() string {
	if c.Metrics.Path == "" {
		return "/metrics"
	}
	return c.Metrics.Path
}

// durations returns server.drain_delay and server.shutdown_timeout with the
// gateway's defaults (0 and 30s).
func (c altairConfig) durations(t *testing.T) (drain, shutdown time.Duration) {
	t.Helper()
	parse := func(s string, def time.Duration) time.Duration {
		if s == "" {
			return def
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("duration %q: %v", s, err)
		}
		return d
	}
	return parse(c.Server.DrainDelay, 0), parse(c.Server.ShutdownTimeout, 30*time.Second)
}

// honouredEnv is every environment variable the gateway reads: the ones
// docs/configuration.md names, and the standard OpenTelemetry ones the
// tracing exporter takes.
func honouredEnv(t *testing.T) map[string]bool {
	t.Helper()
	doc := readFile(t, "../docs/configuration.md")
	env := map[string]bool{
		"OTEL_EXPORTER_OTLP_ENDPOINT": true,
		"OTEL_EXPORTER_OTLP_PROTOCOL": true,
		"OTEL_SERVICE_NAME":           true,
		"OTEL_TRACES_SAMPLER_ARG":     true,
	}
	for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])`").FindAllSubmatch(doc, -1) {
		env[string(m[1])] = true
	}
	for _, name := range []string{"GATEWAY_PORT", "ADMIN_TOKEN", "LOG_LEVEL", "TRUSTED_PROXIES"} {
		if !env[name] {
			t.Fatalf("docs/configuration.md does not name %s: the list of honoured variables is read from it", name)
		}
	}
	return env
}
