package main

// The deployment files under deploy/ against the real gateway: every metric
// the Grafana dashboards and the Prometheus alert rules query is one a running
// gateway exports (with the labels they select on), and every altair.yaml
// there passes `altair validate` with the environment it is deployed with.
// The deploy/ module's own tests check the files' syntax and how they fit
// together.

import (
	"github.com/altair-gateway/altair/internal/cluster/redistest"

	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// deployRoot is the repository root, seen from this package's directory.
const deployRoot = "../.."

// deployFamily is one metric family of a scrape: its type and every label
// name its samples carry.
type deployFamily struct {
	typ    string
	labels map[string]bool
}

// parseExposition reads the Prometheus text format: the families from their
// # TYPE lines, the label names from the samples.
func parseExposition(t *testing.T, text string) map[string]*deployFamily {
	t.Helper()
	fams := map[string]*deployFamily{}
	for _, line := range strings.Split(text, "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			fams[name] = &deployFamily{typ: typ, labels: map[string]bool{}}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			t.Fatalf("exposition line %q", line)
		}
		name := line[:end]
		fam := fams[name]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && fam == nil && fams[base] != nil {
				fam = fams[base]
			}
		}
		if fam == nil {
			t.Fatalf("sample %q belongs to no # TYPE family", line)
		}
		if line[end] != '{' {
			continue
		}
		labels, err := parseLabelNames(line[end:])
		if err != nil {
			t.Fatalf("exposition line %q: %v", line, err)
		}
		for _, l := range labels {
			fam.labels[l] = true
		}
	}
	return fams
}

// parseLabelNames returns the label names of `{a="x",b="y\"z"}`.
func parseLabelNames(s string) ([]string, error) {
	var names []string
	i := 1
	for i < len(s) && s[i] != '}' {
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 || i+eq+1 >= len(s) || s[i+eq+1] != '"' {
			return nil, fmt.Errorf("no label value at %d", i)
		}
		names = append(names, strings.TrimSpace(s[i:i+eq]))
		j, err := skipQuoted(s, i+eq+1)
		if err != nil {
			return nil, err
		}
		i = j
		if i < len(s) && s[i] == ',' {
			i++
		}
	}
	if i >= len(s) {
		return nil, fmt.Errorf("unterminated label set")
	}
	return names, nil
}

// skipQuoted returns the index after the quoted string (", ' or `) at s[i].
func skipQuoted(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at %d", i)
}

// promSelector is one vector selector of a PromQL expression.
type promSelector struct {
	name   string   // "" for a selector without a metric name
	labels []string // label names of its matchers
}

// promKeywords are PromQL words that are neither metric nor function names.
var promKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true, "by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "bool": true, "and": true, "or": true, "unless": true,
	"offset": true, "atan2": true, "inf": true, "nan": true,
}

// promGrouping are the keywords followed by a parenthesised list of labels.
var promGrouping = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

func isPromIdentStart(c byte) bool {
	return c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isPromIdent(c byte) bool { return isPromIdentStart(c) || ('0' <= c && c <= '9') }

// promSelectors finds the vector selectors of a PromQL expression (which may
// hold Grafana variables such as $__rate_interval or $route): identifiers
// that are not keywords, function names, label names in matchers or grouping
// lists, durations or strings.
func promSelectors(expr string) ([]promSelector, error) {
	var sels []promSelector
	s := expr
	i := 0
	skipSpace := func(j int) int {
		for j < len(s) && strings.IndexByte(" \t\r\n", s[j]) >= 0 {
			j++
		}
		return j
	}
	for i < len(s) {
		c := s[i]
		switch {
		case strings.IndexByte(" \t\r\n", c) >= 0:
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j, err := skipQuoted(s, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '$': // Grafana variable: $name or ${name}
			i++
			if i < len(s) && s[i] == '{' {
				for i < len(s) && s[i] != '}' {
					i++
				}
				i++
			}
			for i < len(s) && isPromIdent(s[i]) {
				i++
			}
		case c == '[': // range or subquery: durations only
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unclosed [ at %d", i)
			}
			i += j + 1
		case c == '{':
			labels, j, err := promMatchers(s, i)
			if err != nil {
				return nil, err
			}
			sels = append(sels, promSelector{labels: labels})
			i = j
		case '0' <= c && c <= '9' || c == '.':
			for i < len(s) && (isPromIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isPromIdentStart(c):
			j := i
			for j < len(s) && isPromIdent(s[j]) {
				j++
			}
			word := s[i:j]
			j = skipSpace(j)
			switch {
			case promGrouping[word] && j < len(s) && s[j] == '(':
				k := strings.IndexByte(s[j:], ')')
				if k < 0 {
					return nil, fmt.Errorf("unclosed %s( at %d", word, j)
				}
				i = j + k + 1
				continue
			case promKeywords[word]:
			case j < len(s) && s[j] == '(': // a function
			default:
				sel := promSelector{name: word}
				if j < len(s) && s[j] == '{' {
					labels, k, err := promMatchers(s, j)
					if err != nil {
						return nil, err
					}
					sel.labels, j = labels, k
				}
				sels = append(sels, sel)
			}
			i = j
		default:
			i++
		}
	}
	return sels, nil
}

// promMatchers reads the label matchers `{a="x", b=~"y"}` at s[i] and returns
// their label names and the index after the closing brace.
func promMatchers(s string, i int) ([]string, int, error) {
	var names []string
	i++
	for {
		for i < len(s) && strings.IndexByte(" \t\r\n,", s[i]) >= 0 {
			i++
		}
		if i >= len(s) {
			return nil, 0, fmt.Errorf("unclosed {")
		}
		if s[i] == '}' {
			return names, i + 1, nil
		}
		j := i
		for j < len(s) && isPromIdent(s[j]) {
			j++
		}
		if j == i {
			return nil, 0, fmt.Errorf("no label name at %d in %q", i, s)
		}
		names = append(names, s[i:j])
		for j < len(s) && strings.IndexByte(" \t=!~", s[j]) >= 0 {
			j++
		}
		if j >= len(s) || (s[j] != '"' && s[j] != '\'' && s[j] != '`') {
			return nil, 0, fmt.Errorf("no label value at %d in %q", j, s)
		}
		k, err := skipQuoted(s, j)
		if err != nil {
			return nil, 0, err
		}
		i = k
	}
}

// checkSelectors reports every selector of expr that asks for a metric the
// scrape does not have, or for a label the metric does not carry. job and
// instance are the labels Prometheus adds; up is its own metric per target.
func checkSelectors(expr string, fams map[string]*deployFamily) []string {
	sels, err := promSelectors(expr)
	if err != nil {
		return []string{fmt.Sprintf("%q: %v", expr, err)}
	}
	var problems []string
	for _, sel := range sels {
		if sel.name == "" {
			problems = append(problems, fmt.Sprintf("%q: a selector without a metric name cannot be checked", expr))
			continue
		}
		labels := map[string]bool{"job": true, "instance": true, "__name__": true}
		fam := fams[sel.name]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(sel.name, suffix); ok && fam == nil {
				if f := fams[base]; f != nil && (f.typ == "histogram" || (f.typ == "summary" && suffix != "_bucket")) {
					fam = f
				}
			}
		}
		switch {
		case fam != nil:
			for l := range fam.labels {
				labels[l] = true
			}
		case sel.name == "up":
		default:
			problems = append(problems, fmt.Sprintf("%q uses %s, which the gateway does not export", expr, sel.name))
			continue
		}
		for _, l := range sel.labels {
			if !labels[l] {
				problems = append(problems, fmt.Sprintf("%q selects %s on label %q, which it does not have", expr, sel.name, l))
			}
		}
	}
	return problems
}

func TestDeployPromSelectors(t *testing.T) {
	t.Parallel()
	fams := map[string]*deployFamily{
		"http_requests_total":           {typ: "counter", labels: map[string]bool{"method": true, "route": true, "status": true}},
		"http_request_duration_seconds": {typ: "histogram", labels: map[string]bool{"method": true, "route": true, "le": true}},
		"active_connections":            {typ: "gauge", labels: map[string]bool{}},
	}
	tests := []struct {
		name string
		expr string
		want int // problems
	}{
		{"counter", `sum by (route) (rate(http_requests_total{route=~"$route", status=~"5.."}[$__rate_interval]))`, 0},
		{"histogram bucket", `histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket[5m])))`, 0},
		{"histogram count", `rate(http_request_duration_seconds_count{instance=~"$instance"}[5m]) > 1`, 0},
		{"binary ops and keywords", `sum(rate(http_requests_total[5m] offset 1h)) / on (instance) group_left() max without (job) (active_connections) > bool 0 and up == 0`, 0},
		{"strings hold no names", `label_replace(active_connections, "dst", "$1 not_a_metric", "src", "(.*)")`, 0},
		{"misspelt metric", `rate(http_request_total[5m])`, 1},
		{"suffix of a counter", `http_requests_total_count`, 1},
		{"unknown label", `http_requests_total{status_code="500"}`, 1},
		{"label of another metric", `active_connections{route="a"}`, 1},
		{"bare selector", `{__name__="active_connections"}`, 1},
		{"unterminated string", `http_requests_total{route="a}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := checkSelectors(tt.expr, fams); len(got) != tt.want {
				t.Errorf("checkSelectors(%q) = %q, want %d problem(s)", tt.expr, got, tt.want)
			}
		})
	}
}

// deployQueries returns every PromQL expression of the Grafana dashboards
// under deploy/grafana and of the alert rules, by file.
func deployQueries(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	var walk func(file string, v any)
	walk = func(file string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" && s != "" {
					out[file] = append(out[file], s)
				}
				// A templating variable's query: label_values(selector, label).
				if s, ok := x.(string); ok && k == "query" {
					if m := labelValues.FindStringSubmatch(s); m != nil {
						out[file] = append(out[file], m[1])
					}
				}
				walk(file, x)
			}
		case []any:
			for _, x := range v {
				walk(file, x)
			}
		}
	}
	err := filepath.WalkDir(filepath.Join(deployRoot, "deploy/grafana"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		walk(path, v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(deployRoot, "deploy/prometheus/alerts.yml")
	b, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out[rulesPath] = append(out[rulesPath], r.Expr)
		}
	}
	return out
}

// TestE2EDeployMetricsAreExported scrapes a gateway that has served a
// success, a 404 and a 502, and checks every query of the dashboards and
// alert rules against what it exports.
func TestE2EDeployMetricsAreExported(t *testing.T) {
	t.Parallel()
	live := backend(t, "live")
	// With Redis and a caching route, so the Redis and cache series the
	// dashboard charts exist.
	srv := redistest.Start(t)
	p := startAltair(t, baseCfg+fmt.Sprintf(`
upstreams:
  pool:
    health_check:
      path: /
      interval: 1s
    backends:
      - url: %s
routes:
  - name: app
    match:
      prefix: /app
    upstream: pool
  - name: broken
    match:
      prefix: /broken
    backends:
      - url: %s
  - name: cached
    match:
      prefix: /cached
    cache: { enabled: true }
    upstream: pool
`, live.URL, deadURL(t)), "REDIS_ADDR="+srv.Addr)
	for path, want := range map[string]int{"/app/x": 200, "/nowhere": 404, "/broken": 502, "/cached/x": 200} {
		if code, body, _ := get(t, p.url(path)); code != want {
			t.Fatalf("GET %s = %d %q, want %d", path, code, body, want)
		}
	}
	code, text, h := get(t, p.url("/metrics"))
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s", code, h.Get("Content-Type"))
	}
	fams := parseExposition(t, text)
	// The scrape holds what the traffic made: otherwise a missing family
	// below would say more about this test than about the files.
	for _, want := range []string{`route="app",status="200"`, `route="none",status="404"`, `route="broken",status="502"`,
		`redis_up 1`, `cache_requests_total{result="miss",route="cached"}`} {
		if !strings.Contains(text, want) {
			t.Fatalf("/metrics has no http_requests_total sample with %s:\n%s", want, text)
		}
	}

	queries := deployQueries(t)
	if len(queries) < 2 {
		t.Fatalf("queries found in %d files, want the dashboard and the alert rules", len(queries))
	}
	for file, exprs := range queries {
		if len(exprs) < 5 {
			t.Errorf("%s: found %d queries, want more: is the file read right?", file, len(exprs))
		}
		for _, e := range exprs {
			for _, p := range checkSelectors(e, fams) {
				t.Errorf("%s: %s", file, p)
			}
		}
	}
}

// deployConfigs returns every altair config under deploy/ and examples/ (files
// named altair.yaml, and ConfigMap entries named so), each with the
// environment it runs with there.
func deployConfigs(t *testing.T) map[string][]string {
	t.Helper()
	configs := map[string][]string{}
	for _, dir := range []string{"deploy", "examples"} {
		err := filepath.WalkDir(filepath.Join(deployRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && path == filepath.Join(deployRoot, "examples/plugins/go") {
				// Needs the custom binary built there, whose test validates it.
				return filepath.SkipDir
			}
			if err == nil && !d.IsDir() && d.Name() == "altair.yaml" {
				configs[path] = nil
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// The compose stack: the altair service's environment, with the
	// variables .env.example gives, else their defaults.
	composeDir := filepath.Join(deployRoot, "deploy/compose")
	dotenv := map[string]string{}
	if b, err := os.ReadFile(filepath.Join(composeDir, ".env.example")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				dotenv[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	b, err := os.ReadFile(filepath.Join(composeDir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	interp := regexp.MustCompile(`\$\{(\w+)(?::?-([^}]*))?\}`)
	var env []string
	for k, v := range compose.Services["altair"].Environment {
		v = interp.ReplaceAllStringFunc(v, func(m string) string {
			sm := interp.FindStringSubmatch(m)
			if x := dotenv[sm[1]]; x != "" {
				return x
			}
			return sm[2]
		})
		env = append(env, k+"="+v)
	}
	if len(env) == 0 {
		t.Fatal("docker-compose.yml: the altair service has no environment")
	}
	configs[filepath.Join(composeDir, "altair.yaml")] = env

	// Kubernetes: the ConfigMap's file, with the Deployment's literal values.
	k8sDir := filepath.Join(deployRoot, "deploy/kubernetes")
	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Name string `yaml:"name"`
						Env  []struct {
							Name  string `yaml:"name"`
							Value string `yaml:"value"`
						} `yaml:"env"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if b, err = os.ReadFile(filepath.Join(k8sDir, "deployment.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &dep); err != nil {
		t.Fatalf("deployment.yaml: %v", err)
	}
	var k8sEnv []string
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Value != "" {
				k8sEnv = append(k8sEnv, e.Name+"="+e.Value)
			}
		}
	}
	var cm struct {
		Kind string            `yaml:"kind"`
		Data map[string]string `yaml:"data"`
	}
	if b, err = os.ReadFile(filepath.Join(k8sDir, "configmap.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cm); err != nil || cm.Kind != "ConfigMap" || cm.Data["altair.yaml"] == "" {
		t.Fatalf("configmap.yaml: %v, want a ConfigMap with altair.yaml", err)
	}
	path := filepath.Join(t.TempDir(), "configmap-altair.yaml")
	if err := os.WriteFile(path, []byte(cm.Data["altair.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	configs[path] = k8sEnv
	return configs
}

// TestE2EDeployConfigsValidate runs `altair validate` on every config that
// deploy/ and examples/ ship.
func TestE2EDeployConfigsValidate(t *testing.T) {
	t.Parallel()
	configs := deployConfigs(t)
	if len(configs) < 4 {
		t.Fatalf("found %d configs, want at least examples/, the image's, compose's and the ConfigMap's", len(configs))
	}
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range configs {
			if !yield(p) {
				return
			}
		}
	})
	for _, path := range paths {
		cmd := exec.Command(altairBin, "validate", "-c", path)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, configs[path]...)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), ": ok (") {
			t.Errorf("altair validate -c %s with %q = %v:\n%s", path, configs[path], err, out)
		}
	}
}
