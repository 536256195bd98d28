package deploy

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const (
	dockerfilePath = "docker/Dockerfile"
	imageConfig    = "/etc/altair/altair.yaml" // where the image's CMD reads its config
	imageBinary    = "/usr/local/bin/altair"
	buildStage     = "build"
)

// dockerfile is deploy/docker/Dockerfile parsed by BuildKit's own parser, as
// `docker build` parses it.
type dockerfile struct {
	stages   []instructions.Stage
	metaArgs map[string]string // ARGs before the first FROM, with their defaults
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readFile(t, dockerfilePath)))
	if err != nil {
		t.Fatalf("parse %s: %v", dockerfilePath, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s: parser warning: %s", dockerfilePath, w.Short)
	}
	// The same build checks as `docker build --check`, as far as they run
	// while parsing instructions.
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		t.Errorf("%s:%d: build check %s: %s", dockerfilePath, line, rule, msg)
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("parse %s: %v", dockerfilePath, err)
	}
	d := dockerfile{stages: stages, metaArgs: map[string]string{}}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			d.metaArgs[kv.Key] = kv.ValueString()
		}
	}
	return d
}

func (d dockerfile) stage(t *testing.T, name string) instructions.Stage {
	t.Helper()
	for _, s := range d.stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("%s has no stage %q", dockerfilePath, name)
	return instructions.Stage{}
}

// commands returns the stage's commands of type T.
func commands[T instructions.Command](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// goDirective is the go line of the gateway's go.mod.
func goDirective(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(readFile(t, "../go.mod"))
	if m == nil {
		t.Fatal("../go.mod has no go directive")
	}
	return string(m[1])
}

func TestDockerfileBuildStage(t *testing.T) {
	t.Parallel()
	d := parseDockerfile(t)
	if len(d.stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(d.stages))
	}
	b := d.stage(t, buildStage)
	base := strings.ReplaceAll(b.BaseName, "${GO_VERSION}", d.metaArgs["GO_VERSION"])
	if want := "golang:" + goDirective(t); base != want && !strings.HasPrefix(base, want+"-") {
		t.Errorf("build stage FROM %s (%s), want the official golang image of go.mod's Go, %s", b.BaseName, base, want)
	}
	var script string
	for _, r := range commands[*instructions.RunCommand](b) {
		script += strings.Join(r.CmdLine, " ") + "\n"
	}
	builds := regexp.MustCompile(`(?:CGO_ENABLED=(\S+)[^\n&]*?)?go build ([^\n&]*)`).FindAllStringSubmatch(script, -1)
	var pkgs []string
	for _, m := range builds {
		if m[1] != "0" {
			t.Errorf("go build %s: not run with CGO_ENABLED=0 (a static binary for distroless)", m[2])
		}
		args := strings.Fields(m[2])
		if !slices.Contains(args, "-trimpath") {
			t.Errorf("go build %s: no -trimpath", m[2])
		}
		pkgs = append(pkgs, args[len(args)-1])
	}
	if !slices.Contains(pkgs, "./cmd/altair") || !slices.Contains(pkgs, "./cmd/demo-upstream") {
		t.Errorf("build stage builds %q, want ./cmd/altair and ./cmd/demo-upstream", pkgs)
	}
	if !strings.Contains(script, `-X main.version=${VERSION}`) {
		t.Errorf("build stage does not set main.version from the VERSION build arg:\n%s", script)
	}
}

func TestDockerfileRuntimeStages(t *testing.T) {
	t.Parallel()
	d := parseDockerfile(t)
	for _, s := range d.stages {
		if s.Name == buildStage {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			if !strings.HasPrefix(s.BaseName, "gcr.io/distroless/static-debian12:") && s.BaseName != "scratch" {
				t.Errorf("FROM %s, want distroless/static or scratch", s.BaseName)
			}
			users := commands[*instructions.UserCommand](s)
			if len(users) == 0 {
				t.Fatal("no USER: the container would run as root")
			}
			uid, _, _ := strings.Cut(users[len(users)-1].User, ":")
			if n, err := strconv.Atoi(uid); err != nil || n == 0 {
				t.Errorf("USER %s, want a numeric non-root UID (Kubernetes' runAsNonRoot checks numbers)", users[len(users)-1].User)
			}
			hcs := commands[*instructions.HealthCheckCommand](s)
			if len(hcs) != 1 {
				t.Fatalf("%d HEALTHCHECKs, want 1", len(hcs))
			}
			test := hcs[0].Health.Test
			if len(test) < 3 || test[0] != "CMD" || test[1] != imageBinary || test[2] != "health" {
				t.Errorf("HEALTHCHECK %q, want exec form running %s health (there is no shell or curl)", test, imageBinary)
			}
			var copied []string
			for _, c := range commands[*instructions.CopyCommand](s) {
				if c.From == buildStage {
					copied = append(copied, c.DestPath)
				}
			}
			if !slices.Contains(copied, imageBinary) {
				t.Errorf("the stage copies %q from the build stage, not %s which its health check runs", copied, imageBinary)
			}
		})
	}
}

func TestDockerfileGatewayImage(t *testing.T) {
	t.Parallel()
	d := parseDockerfile(t)
	final := d.stages[len(d.stages)-1]
	if final.Name != "altair" {
		t.Fatalf("last stage is %q, want altair (the image `docker build` makes without --target)", final.Name)
	}
	ep := commands[*instructions.EntrypointCommand](final)
	cmd := commands[*instructions.CmdCommand](final)
	if len(ep) != 1 || len(cmd) != 1 || ep[0].PrependShell || cmd[0].PrependShell {
		t.Fatal("want one ENTRYPOINT and one CMD, both in exec form")
	}
	run := append(slices.Clone(ep[0].CmdLine), cmd[0].CmdLine...)
	if want := []string{imageBinary, "run", "-c", imageConfig}; !slices.Equal(run, want) {
		t.Errorf("ENTRYPOINT + CMD = %q, want %q", run, want)
	}
	// The health check must ask the port the config listens on.
	test := commands[*instructions.HealthCheckCommand](final)[0].Health.Test
	if i := slices.Index(test, "-c"); i < 0 || i+1 >= len(test) || test[i+1] != imageConfig {
		t.Errorf("HEALTHCHECK %q does not read %s", test, imageConfig)
	}
	var cfgSrc string
	for _, c := range commands[*instructions.CopyCommand](final) {
		if c.From == "" && c.DestPath == imageConfig && len(c.SourcePaths) == 1 {
			cfgSrc = c.SourcePaths[0]
		}
	}
	if cfgSrc == "" {
		t.Fatalf("no COPY of a default config to %s", imageConfig)
	}
	cfg := parseAltairConfig(t, readFile(t, filepath.Join("..", cfgSrc)))
	port := cfg.listenPort(t)
	if port != gatewayPort {
		t.Errorf("%s listens on %d, want %d", cfgSrc, port, gatewayPort)
	}
	var exposed []string
	for _, e := range commands[*instructions.ExposeCommand](final) {
		exposed = append(exposed, e.Ports...)
	}
	if !slices.Contains(exposed, strconv.Itoa(port)) && !slices.Contains(exposed, strconv.Itoa(port)+"/tcp") {
		t.Errorf("EXPOSE %q, want %d", exposed, port)
	}
	if u := commands[*instructions.UserCommand](final); len(u) == 0 || u[len(u)-1].User != "65532:65532" {
		t.Error("the gateway runs as 65532:65532, distroless' nonroot (the Kubernetes manifests' runAsUser)")
	}
}

// TestDockerignoreKeepsBuildInputs checks .dockerignore against the
// Dockerfile: every file a COPY from the context needs is in the context,
// and what must never be sent (git history, local secrets, binaries) is not.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	ignored := func(path string) bool {
		t.Helper()
		m, err := pm.MatchesOrParentMatches(path)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	d := parseDockerfile(t)
	var sources []string
	for _, s := range d.stages {
		for _, c := range commands[*instructions.CopyCommand](s) {
			if c.From == "" {
				sources = append(sources, c.SourcePaths...)
			}
		}
	}
	for _, want := range []string{"go.mod", "go.sum", "cmd", "internal"} {
		if !slices.Contains(sources, want) {
			t.Errorf("no COPY of %s from the context (COPYs: %q)", want, sources)
		}
	}
	for _, src := range sources {
		n := 0
		err := filepath.WalkDir(filepath.Join("..", src), func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel := filepath.ToSlash(strings.TrimPrefix(path, ".."+string(filepath.Separator)))
			if strings.HasSuffix(rel, "_test.go") || strings.Contains(rel, "/testdata/") {
				return nil
			}
			if ignored(rel) {
				t.Errorf("%s is needed by COPY %s but .dockerignore leaves it out", rel, src)
			}
			n++
			return nil
		})
		if err != nil {
			t.Errorf("COPY %s: %v", src, err)
		}
		if n == 0 {
			t.Errorf("COPY %s copies nothing", src)
		}
	}
	for _, p := range []string{".git/config", "deploy/compose/.env", "bin/altair", "dist/altair_linux_amd64", "altair", "gateway.test", "bench/.bin/wrk"} {
		if !ignored(p) {
			t.Errorf("%s would be sent to the Docker daemon: .dockerignore must leave it out", p)
		}
	}
}
