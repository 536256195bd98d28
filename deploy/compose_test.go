package deploy

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"go.yaml.in/yaml/v3"
)

const (
	composeFile = "compose/docker-compose.yml"
	envExample  = "compose/.env.example"
)

// loadCompose loads the compose file as `docker compose` does, with
// .env.example as its .env: schema-validated (an unknown key is an error),
// interpolated, with paths resolved. Services of profiles other than the
// given ones are left out, as `docker compose up` does.
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory("compose"),
		cli.WithEnvFiles(envExample),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("compose has no service %q", name)
	}
	return s
}

func abs(t *testing.T, path string) string {
	t.Helper()
	a, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// bind returns the host path mounted at target in s.
func bind(t *testing.T, s types.ServiceConfig, target string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Target == target {
			if v.Type != types.VolumeTypeBind {
				t.Fatalf("%s: %s is a %s volume, want a bind mount", s.Name, target, v.Type)
			}
			return v.Source
		}
	}
	t.Fatalf("%s mounts nothing at %s", s.Name, target)
	return ""
}

func env(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// hostPort splits a host:port or a URL's host and port.
func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return h, n
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	want := []string{"altair", "demo-1", "demo-2", "grafana", "jaeger", "prometheus", "redis"}
	p := loadCompose(t)
	if got := slices.Sorted(func(yield func(string) bool) {
		for name := range p.Services {
			if !yield(name) {
				return
			}
		}
	}); !slices.Equal(got, want) {
		t.Errorf("services without a profile = %q, want %q", got, want)
	}
	if _, ok := p.DisabledServices["edge"]; !ok {
		t.Error("the nginx edge is not behind a profile")
	}
	p = loadCompose(t, "tls")
	if !slices.Contains(service(t, p, "edge").Profiles, "tls") {
		t.Error("edge is not in profile tls")
	}
	for name, s := range p.Services {
		ref := s.Image
		if i := strings.LastIndex(ref, "/"); i >= 0 {
			ref = ref[i+1:]
		}
		_, tag, ok := strings.Cut(ref, ":")
		if !ok || tag == "" || tag == "latest" {
			t.Errorf("%s: image %q is not pinned to a tag", name, s.Image)
		}
	}
}

func TestComposeGateway(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, "tls")
	d := parseDockerfile(t)
	a := service(t, p, "altair")

	// Built from the repository with deploy/docker/Dockerfile.
	stageNames := map[string]instructions.Stage{}
	for _, s := range d.stages {
		stageNames[s.Name] = s
	}
	for _, name := range []string{"altair", "demo-1", "demo-2"} {
		s := service(t, p, name)
		if s.Build == nil {
			t.Errorf("%s is not built from the repository", name)
			continue
		}
		if s.Build.Context != abs(t, "..") || s.Build.Dockerfile != "deploy/"+dockerfilePath {
			t.Errorf("%s builds %s in %s, want deploy/%s in the repository root", name, s.Build.Dockerfile, s.Build.Context, dockerfilePath)
		}
		if _, ok := stageNames[s.Build.Target]; !ok {
			t.Errorf("%s builds target %q, which is no stage of %s", name, s.Build.Target, dockerfilePath)
		}
	}
	if a.Build.Target != "altair" {
		t.Errorf("altair builds target %q, want altair", a.Build.Target)
	}

	// Its config is compose/altair.yaml, where the image's CMD reads it.
	src := bind(t, a, imageConfig)
	if src != abs(t, "compose/altair.yaml") {
		t.Errorf("altair mounts %s at %s, want compose/altair.yaml", src, imageConfig)
	}
	cfg := parseAltairConfig(t, readFile(t, src))
	port := cfg.listenPort(t)
	if port != gatewayPort {
		t.Errorf("compose/altair.yaml listens on %d, want the default %d", port, gatewayPort)
	}
	if len(a.Ports) != 1 || a.Ports[0].Target != uint32(port) || a.Ports[0].Published != strconv.Itoa(gatewayPort) {
		t.Errorf("altair ports = %+v, want %d published as %d", a.Ports, port, gatewayPort)
	}

	// Only variables the gateway reads.
	honoured := honouredEnv(t)
	for name := range a.Environment {
		if !honoured[name] {
			t.Errorf("altair environment %s is not a variable the gateway reads", name)
		}
	}
	// Traces go to Jaeger's OTLP receiver.
	host, otlpPort := hostPort(t, env(a, "OTEL_EXPORTER_OTLP_ENDPOINT"))
	j := service(t, p, "jaeger")
	if host != "jaeger" || !strings.HasPrefix(j.Image, "jaegertracing/") {
		t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT host %q, want the jaeger service", host)
	}
	wantPort := map[string]int{"grpc": 4317, "http/protobuf": 4318}[env(a, "OTEL_EXPORTER_OTLP_PROTOCOL")]
	if otlpPort != wantPort {
		t.Errorf("OTLP endpoint port %d with protocol %q, want %d", otlpPort, env(a, "OTEL_EXPORTER_OTLP_PROTOCOL"), wantPort)
	}
	if env(a, "OTEL_SERVICE_NAME") == "" {
		t.Error("OTEL_SERVICE_NAME is not set")
	}
	// Redis.
	host, rp := hostPort(t, env(a, "REDIS_ADDR"))
	if r := service(t, p, host); !strings.HasPrefix(r.Image, "redis:") || rp != 6379 {
		t.Errorf("REDIS_ADDR = %s, want the redis service on 6379", env(a, "REDIS_ADDR"))
	}
	// The edge, and nothing else, is trusted to set X-Forwarded-For.
	e := service(t, p, "edge")
	var edgeIP string
	for _, n := range e.Networks {
		if n != nil && n.Ipv4Address != "" {
			edgeIP = n.Ipv4Address
		}
	}
	if edgeIP == "" || env(a, "TRUSTED_PROXIES") != edgeIP {
		t.Errorf("TRUSTED_PROXIES = %q, want exactly the edge's fixed address %q", env(a, "TRUSTED_PROXIES"), edgeIP)
	}
	inSubnet := false
	for _, n := range p.Networks {
		for _, pool := range n.Ipam.Config {
			if pfx, err := netip.ParsePrefix(pool.Subnet); err == nil && pfx.Contains(netip.MustParseAddr(edgeIP)) {
				inSubnet = true
			}
		}
	}
	if !inSubnet {
		t.Errorf("edge address %s is in no subnet of the compose networks", edgeIP)
	}
	// Compose stops the container after stop_grace_period: it must cover the
	// drain.
	drain, shutdown := cfg.durations(t)
	if a.StopGracePeriod == nil || int64(*a.StopGracePeriod) < int64(drain+shutdown) {
		t.Errorf("altair stop_grace_period %v, want at least drain_delay + shutdown_timeout = %v", a.StopGracePeriod, drain+shutdown)
	}
}

// TestComposeBackends checks that compose/altair.yaml's backends are the
// demo services, on the port each listens on, and that every service
// depended on as healthy has a health check.
func TestComposeBackends(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, "tls")
	var cfg struct {
		Upstreams map[string]struct {
			Backends []struct {
				URL string `yaml:"url"`
			} `yaml:"backends"`
		} `yaml:"upstreams"`
	}
	if err := yaml.Unmarshal(readFile(t, "compose/altair.yaml"), &cfg); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, u := range cfg.Upstreams {
		for _, b := range u.Backends {
			n++
			host, port := hostPort(t, b.URL)
			s := service(t, p, host)
			if i := slices.Index(s.Command, "-listen"); i < 0 || i+1 >= len(s.Command) || s.Command[i+1] != ":"+strconv.Itoa(port) {
				t.Errorf("backend %s: service %s runs %q, not listening on %d", b.URL, host, s.Command, port)
			}
		}
	}
	if n < 2 {
		t.Errorf("compose/altair.yaml has %d backends, want the two demo services", n)
	}

	d := parseDockerfile(t)
	for name, s := range p.Services {
		for dep, c := range s.DependsOn {
			if c.Condition != types.ServiceConditionHealthy {
				continue
			}
			ds := service(t, p, dep)
			if ds.HealthCheck != nil && !ds.HealthCheck.Disable {
				continue
			}
			if ds.Build != nil && len(commands[*instructions.HealthCheckCommand](d.stage(t, ds.Build.Target))) == 1 {
				continue
			}
			t.Errorf("%s waits for %s to be healthy, but %s has no health check", name, dep, dep)
		}
	}
}

// TestComposeEnvExample checks .env.example against the compose file: each
// key is used by it, each variable it uses is in the example, and a key named
// like a gateway variable reaches the gateway under that name (a GATEWAY_PORT
// in .env that only compose saw would do nothing).
func TestComposeEnvExample(t *testing.T) {
	t.Parallel()
	keys := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, envExample)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`).MatchString(k) {
			t.Errorf("%s: line %q is not KEY=value", envExample, line)
			continue
		}
		if keys[k] {
			t.Errorf("%s: %s twice", envExample, k)
		}
		keys[k] = true
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)`).FindAllSubmatch(readFile(t, composeFile), -1) {
		used[string(m[1])] = true
	}
	for k := range used {
		if !keys[k] {
			t.Errorf("%s uses ${%s}, which %s does not list", composeFile, k, envExample)
		}
	}
	honoured := honouredEnv(t)
	a := service(t, loadCompose(t), "altair")
	for k := range keys {
		if !used[k] {
			t.Errorf("%s: %s is used nowhere in %s", envExample, k, composeFile)
		}
		if honoured[k] && a.Environment[k] == nil {
			t.Errorf("%s: %s is a gateway variable, but the altair service does not pass it on", envExample, k)
		}
	}
	if !keys["ADMIN_TOKEN"] {
		t.Errorf("%s has no ADMIN_TOKEN", envExample)
	}
}
