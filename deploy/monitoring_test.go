package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const (
	prometheusConfig = "prometheus/prometheus.yml"
	alertRules       = "prometheus/alerts.yml"
	dashboardsDir    = "grafana/dashboards"
)

var promQL = parser.NewParser(parser.Options{})

// metricNames returns the metric names an expression selects.
func metricNames(expr parser.Expr) []string {
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// documentedMetrics are the metric names docs/configuration.md lists; go_*
// and process_* stand for the runtime collectors. Whether the gateway really
// exports each one is checked against a running gateway in
// cmd/altair/e2e_deploy_test.go.
func documentedMetrics(t *testing.T) func(string) bool {
	t.Helper()
	names := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_:][a-z0-9_:]*)` \\| (counter|gauge|histogram)").FindAllSubmatch(readFile(t, "../docs/configuration.md"), -1) {
		names[string(m[1])] = true
	}
	if !names["http_requests_total"] {
		t.Fatal("docs/configuration.md's metric table not found")
	}
	return func(name string) bool {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && names[b] {
				base = b
			}
		}
		// up is Prometheus' own, per target.
		return names[base] || name == "up" || strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
	}
}

func TestPrometheusConfig(t *testing.T) {
	t.Parallel()
	var cfg struct {
		Global struct {
			ScrapeInterval     string `yaml:"scrape_interval"`
			EvaluationInterval string `yaml:"evaluation_interval"`
		} `yaml:"global"`
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := decodeYAMLStrict(readFile(t, prometheusConfig), &cfg); err != nil {
		t.Fatalf("%s: %v", prometheusConfig, err)
	}
	p := loadCompose(t)
	prom := service(t, p, "prometheus")
	if src := bind(t, prom, "/etc/prometheus/prometheus.yml"); src != abs(t, prometheusConfig) {
		t.Errorf("prometheus mounts %s as its config, want %s", src, prometheusConfig)
	}
	for _, f := range cfg.RuleFiles {
		if src := bind(t, prom, f); src != abs(t, alertRules) {
			t.Errorf("rule file %s is %s, want %s", f, src, alertRules)
		}
	}
	if len(cfg.RuleFiles) != 1 {
		t.Errorf("rule_files = %q, want the alert rules", cfg.RuleFiles)
	}
	gw := parseAltairConfig(t, readFile(t, "compose/altair.yaml"))
	want := fmt.Sprintf("altair:%d", gw.listenPort(t))
	found := false
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "altair" {
			continue
		}
		found = true
		if sc.MetricsPath != gw.metricsPath() {
			t.Errorf("job altair scrapes %s, want %s", sc.MetricsPath, gw.metricsPath())
		}
		if len(sc.StaticConfigs) != 1 || !slices.Equal(sc.StaticConfigs[0].Targets, []string{want}) {
			t.Errorf("job altair targets %+v, want %s", sc.StaticConfigs, want)
		}
	}
	if !found {
		t.Error("no scrape job named altair (the alert rules select job=\"altair\")")
	}
}

func TestAlertRules(t *testing.T) {
	t.Parallel()
	groups, errs := rulefmt.ParseFile(alertRules, false, model.UTF8Validation, promQL, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("%v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	documented := documentedMetrics(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("rule %q is not an alert", r.Record)
				continue
			}
			alerts = append(alerts, r.Alert)
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want a summary and a description", r.Alert)
			}
			expr, err := promQL.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
				continue
			}
			for _, name := range metricNames(expr) {
				if !documented(name) {
					t.Errorf("%s uses %s, which docs/configuration.md does not list", r.Alert, name)
				}
			}
		}
	}
	for _, want := range []string{"AltairHigh5xxRate", "AltairBackendDown", "AltairConfigReloadFailed", "AltairCircuitBreakerTrips"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// dashboard is the part of a Grafana dashboard these files use, decoded with
// unknown fields refused, so a misspelt key is caught here rather than
// ignored by Grafana.
type dashboard struct {
	UID           string          `json:"uid"`
	Title         string          `json:"title"`
	Description   string          `json:"description"`
	Tags          []string        `json:"tags"`
	Timezone      string          `json:"timezone"`
	Editable      bool            `json:"editable"`
	GraphTooltip  int             `json:"graphTooltip"`
	Refresh       string          `json:"refresh"`
	SchemaVersion int             `json:"schemaVersion"`
	Version       int             `json:"version"`
	Time          json.RawMessage `json:"time"`
	Timepicker    json.RawMessage `json:"timepicker"`
	Links         json.RawMessage `json:"links"`
	Annotations   struct {
		List []struct {
			BuiltIn     int            `json:"builtIn"`
			Datasource  datasourceRef  `json:"datasource"`
			Enable      bool           `json:"enable"`
			Hide        bool           `json:"hide"`
			IconColor   string         `json:"iconColor"`
			Name        string         `json:"name"`
			Type        string         `json:"type"`
			Expr        string         `json:"expr"`
			Step        string         `json:"step"`
			TitleFormat string         `json:"titleFormat"`
			TextFormat  string         `json:"textFormat"`
			Target      map[string]any `json:"target"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Label      string          `json:"label"`
			Type       string          `json:"type"`
			Datasource *datasourceRef  `json:"datasource"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Current    json.RawMessage `json:"current"`
			Hide       int             `json:"hide"`
			Refresh    int             `json:"refresh"`
			Regex      string          `json:"regex"`
			Sort       int             `json:"sort"`
			IncludeAll bool            `json:"includeAll"`
			AllValue   string          `json:"allValue"`
			Multi      bool            `json:"multi"`
			Options    json.RawMessage `json:"options"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	ID          int             `json:"id"`
	Datasource  *datasourceRef  `json:"datasource"`
	GridPos     gridPos         `json:"gridPos"`
	Collapsed   bool            `json:"collapsed"`
	Panels      []panel         `json:"panels"`
	FieldConfig json.RawMessage `json:"fieldConfig"`
	Options     json.RawMessage `json:"options"`
	Targets     []struct {
		Datasource   *datasourceRef `json:"datasource"`
		Expr         string         `json:"expr"`
		LegendFormat string         `json:"legendFormat"`
		RefID        string         `json:"refId"`
		Range        bool           `json:"range"`
		Instant      bool           `json:"instant"`
	} `json:"targets"`
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

func dashboardFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("grafana", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no dashboards under grafana/")
	}
	return files
}

// grafanaVar matches a dashboard variable in a query: $name or ${name}.
var grafanaVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// expandVars replaces dashboard variables as Grafana would before sending a
// query: the interval ones with a duration, the others (used in label
// matchers' regexes) with a value. An undefined variable is reported.
func expandVars(t *testing.T, where, q string, defined map[string]bool) string {
	t.Helper()
	return grafanaVar.ReplaceAllStringFunc(q, func(m string) string {
		name := grafanaVar.FindStringSubmatch(m)[1]
		switch name {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		}
		if !defined[name] {
			t.Errorf("%s: variable $%s is not defined in templating", where, name)
		}
		return ".*"
	})
}

func TestDashboards(t *testing.T) {
	t.Parallel()
	documented := documentedMetrics(t)
	for _, file := range dashboardFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			dec := json.NewDecoder(bytes.NewReader(readFile(t, file)))
			dec.DisallowUnknownFields()
			var d dashboard
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if d.UID == "" || d.Title == "" {
				t.Error("dashboard without uid or title: provisioning needs a stable uid")
			}
			defined := map[string]bool{}
			var exprs []string
			checkExpr := func(where, q string) {
				expr, err := promQL.ParseExpr(expandVars(t, where, q, defined))
				if err != nil {
					t.Errorf("%s: %q: %v", where, q, err)
					return
				}
				exprs = append(exprs, q)
				for _, name := range metricNames(expr) {
					if !documented(name) {
						t.Errorf("%s uses %s, which docs/configuration.md does not list", where, name)
					}
				}
			}
			for _, v := range d.Templating.List {
				defined[v.Name] = true
			}
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				var q struct{ Query string }
				if err := json.Unmarshal(v.Query, &q); err != nil {
					t.Fatalf("variable %s: query: %v", v.Name, err)
				}
				// label_values(selector, label): the selector is PromQL.
				m := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`).FindStringSubmatch(q.Query)
				if m == nil {
					t.Errorf("variable %s: query %q, want label_values(selector, label)", v.Name, q.Query)
					continue
				}
				checkExpr("variable "+v.Name, m[1])
				if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
					t.Errorf("variable %s: data source %+v, want the datasource variable", v.Name, v.Datasource)
				}
			}
			if !defined["datasource"] {
				t.Error("no datasource variable: the dashboard would be tied to one data source uid")
			}
			for _, a := range d.Annotations.List {
				if a.Expr != "" {
					checkExpr("annotation "+a.Name, a.Expr)
				}
			}

			ids := map[int]bool{}
			var occupied [][24]bool
			var panels []panel
			for _, p := range d.Panels {
				panels = append(panels, p)
				panels = append(panels, p.Panels...)
			}
			for _, p := range panels {
				where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
				if ids[p.ID] || p.ID == 0 {
					t.Errorf("%s: id missing or not unique", where)
				}
				ids[p.ID] = true
				g := p.GridPos
				if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
					t.Errorf("%s: gridPos %+v out of the 24-column grid", where, g)
					continue
				}
				overlap := false
				for y := g.Y; y < g.Y+g.H; y++ {
					for len(occupied) <= y {
						occupied = append(occupied, [24]bool{})
					}
					for x := g.X; x < g.X+g.W; x++ {
						overlap = overlap || occupied[y][x]
						occupied[y][x] = true
					}
				}
				if overlap {
					t.Errorf("%s: gridPos %+v overlaps another panel", where, g)
				}
				if p.Type == "row" {
					continue
				}
				if !slices.Contains([]string{"timeseries", "stat", "state-timeline", "gauge", "table", "bargauge"}, p.Type) {
					t.Errorf("%s: panel type %q", where, p.Type)
				}
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
					t.Errorf("%s: want the datasource variable and at least one query", where)
				}
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					if refs[tg.RefID] || tg.RefID == "" {
						t.Errorf("%s: refId %q missing or repeated", where, tg.RefID)
					}
					refs[tg.RefID] = true
					checkExpr(where, tg.Expr)
				}
			}
			for _, want := range []string{"http_requests_total", "http_request_duration_seconds_bucket", "backend_health_status",
				"circuit_breaker_trips_total", "upstream_request_duration_seconds_bucket", "upstream_errors_total",
				"upstream_retries_total", "rate_limited_total", "blocked_ips_total", "config_reloads_total",
				"cache_hits_total", "active_connections", "go_goroutines"} {
				if !slices.ContainsFunc(exprs, func(e string) bool { return regexp.MustCompile(`\b` + want + `\b`).MatchString(e) }) {
					t.Errorf("no panel shows %s", want)
				}
			}
		})
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	g := service(t, p, "grafana")
	if src := bind(t, g, "/etc/grafana/provisioning"); src != abs(t, "grafana/provisioning") {
		t.Errorf("grafana provisioning from %s, want grafana/provisioning", src)
	}

	var providers struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name                  string `yaml:"name"`
			Folder                string `yaml:"folder"`
			Type                  string `yaml:"type"`
			DisableDeletion       bool   `yaml:"disableDeletion"`
			AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
			UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path                      string `yaml:"path"`
				FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := decodeYAMLStrict(readFile(t, "grafana/provisioning/dashboards/dashboards.yml"), &providers); err != nil {
		t.Fatalf("dashboards.yml: %v", err)
	}
	if providers.APIVersion != 1 || len(providers.Providers) != 1 || providers.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers = %+v, want one file provider (apiVersion 1)", providers)
	}
	if src := bind(t, g, providers.Providers[0].Options.Path); src != abs(t, dashboardsDir) {
		t.Errorf("the provider reads %s, which compose mounts from %s, want %s", providers.Providers[0].Options.Path, src, dashboardsDir)
	}

	var sources struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name      string         `yaml:"name"`
			UID       string         `yaml:"uid"`
			Type      string         `yaml:"type"`
			Access    string         `yaml:"access"`
			URL       string         `yaml:"url"`
			IsDefault bool           `yaml:"isDefault"`
			Editable  bool           `yaml:"editable"`
			JSONData  map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := decodeYAMLStrict(readFile(t, "grafana/provisioning/datasources/datasources.yml"), &sources); err != nil {
		t.Fatalf("datasources.yml: %v", err)
	}
	want := map[string]string{"prometheus": "prometheus:9090", "jaeger": "jaeger:16686"}
	for _, ds := range sources.Datasources {
		host, port := hostPort(t, ds.URL)
		s := service(t, p, host)
		if want[ds.Type] != fmt.Sprintf("%s:%d", host, port) {
			t.Errorf("data source %s (%s) at %s, want %s", ds.Name, ds.Type, ds.URL, want[ds.Type])
		}
		if !strings.Contains(s.Image, ds.Type) {
			t.Errorf("data source %s points at service %s running %s", ds.Name, host, s.Image)
		}
		delete(want, ds.Type)
	}
	if len(want) > 0 {
		t.Errorf("no data source of type %v", want)
	}
}
