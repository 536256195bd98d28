package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/pluginapi"
)

// tagPlugin appends its tag to the request's X-Trail header and the
// response's X-Trail-Back, so the order plugins run in shows; it can also
// panic or hold requests.
type tagConfig struct {
	Tag   string `yaml:"tag"`
	Panic bool   `yaml:"panic"`
}

type pluginProbe struct {
	closed  atomic.Int64
	hold    chan struct{} // non-nil: requests with X-Hold wait for it
	entered chan struct{}
}

func (p *pluginProbe) factory(name string) pluginapi.Factory {
	return pluginapi.Factory{Name: name, New: func(c pluginapi.Config) (pluginapi.Middleware, error) {
		var tc tagConfig
		if err := c.Decode(&tc); err != nil {
			return nil, err
		}
		if tc.Tag == "" {
			return nil, errors.New("tag is required")
		}
		c.OnClose(func() { p.closed.Add(1) })
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.Panic {
					panic("plugin " + tc.Tag + " broke")
				}
				if r.Header.Get("X-Hold") != "" && p.hold != nil {
					p.entered <- struct{}{}
					<-p.hold
				}
				r.Header.Add("X-Trail", tc.Tag)
				w.Header().Add("X-Trail-Back", tc.Tag)
				next.ServeHTTP(w, r)
			})
		}, nil
	}}
}

func pluginGateway(t *testing.T, p *pluginProbe, yaml string) (*Gateway, error) {
	t.Helper()
	reg, err := pluginapi.NewRegistry(p.factory("tag"), p.factory("other"))
	if err != nil {
		t.Fatal(err)
	}
	g := New(Options{Version: "test", Plugins: reg})
	t.Cleanup(g.Close)
	return g, g.Apply(load(t, yaml))
}

// trailBackend answers with the X-Trail the request arrived with.
func trailBackend(t *testing.T, delay time.Duration) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		fmt.Fprint(w, strings.Join(r.Header.Values("X-Trail"), ","))
	}))
	t.Cleanup(s.Close)
	return s
}

func pluginRoute(url, plugins string) string {
	return quiet + fmt.Sprintf("routes:\n  - name: r\n    match: {prefix: /}\n    backends: [{url: %q}]\n    plugins:\n%s", url, plugins)
}

// TestPluginsOrderAndMetrics: the first plugin listed sees the request first
// and the response last; each is counted, and its time leaves the backend's
// out.
func TestPluginsOrderAndMetrics(t *testing.T) {
	be := trailBackend(t, 50*time.Millisecond)
	p := &pluginProbe{}
	g, err := pluginGateway(t, p, pluginRoute(be.URL, "      - {name: tag, config: {tag: a}}\n      - {name: other, config: {tag: b}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := do(g, "GET", "/x")
	if w.Code != 200 || w.Body.String() != "a,b" {
		t.Fatalf("got %d %q, want 200 \"a,b\" (request order)", w.Code, w.Body.String())
	}
	if got := strings.Join(w.Header().Values("X-Trail-Back"), ","); got != "a,b" {
		// Both add before calling next, so the header keeps their order.
		t.Fatalf("X-Trail-Back %q, want a,b", got)
	}
	m := g.metrics
	if n := testutil.ToFloat64(m.pluginRequests.WithLabelValues("r", "tag")); n != 1 {
		t.Errorf("plugin_invocations_total{tag} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.pluginRequests.WithLabelValues("r", "other")); n != 1 {
		t.Errorf("plugin_invocations_total{other} = %v, want 1", n)
	}
	// The backend sleeps 50 ms; the plugins' own time must not include it.
	sum := histogramSum(t, g, "plugin_duration_seconds")
	// Counted with the backend, the two plugins would sum to at least
	// 100 ms; their own time is microseconds, so 50 ms leaves a loaded
	// machine room and still tells the two apart.
	if sum <= 0 || sum >= 0.05 {
		t.Errorf("plugin_duration_seconds sum %v s: want the plugins' own time, well under the backend's 50 ms each", sum)
	}
	ex, err := Explain(load(t, pluginRoute(be.URL, "      - {name: tag, config: {tag: a}}\n      - {name: other, config: {tag: b}}\n")), httptest.NewRequest("GET", "/x", nil), g.plugins)
	if err != nil {
		t.Fatal(err)
	}
	chain := strings.Join(ex.Chain, " ")
	if !strings.Contains(chain, "plugin(tag) plugin(other)") {
		t.Errorf("explain chain %q: want plugin(tag) then plugin(other)", chain)
	}
}

// histogramSum is the sum of every series of the histogram name in g's
// registry.
func histogramSum(t *testing.T, g *Gateway, name string) float64 {
	t.Helper()
	mfs, err := g.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return sum
}

// TestPluginConfigProblems: errors of plugin configs come back as problems
// with their YAML path and line, and keep the running config.
func TestPluginConfigProblems(t *testing.T) {
	be := trailBackend(t, 0)
	tests := []struct {
		name, plugins, path, msg string
		line                     int
	}{
		{"unknown plugin", "      - {name: nope}\n", "routes[0].plugins[0].name", "unknown plugin \"nope\"", 12},
		{"unknown key", "      - name: tag\n        config:\n          tag: a\n          colour: red\n", "routes[0].plugins[0].config", "field colour not found", 13},
		{"factory refuses", "      - {name: tag, config: {}}\n", "routes[0].plugins[0].config", "tag is required", 12},
		{"second entry", "      - {name: tag, config: {tag: a}}\n      - {name: other}\n", "routes[0].plugins[1].config", "tag is required", 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pluginGateway(t, &pluginProbe{}, pluginRoute(be.URL, tt.plugins))
			var ps config.Problems
			if !asProblems(err, &ps) {
				t.Fatalf("Apply error %v, want problems", err)
			}
			for _, p := range ps {
				if p.Path == tt.path && strings.Contains(p.Msg, tt.msg) {
					if p.Line != tt.line {
						t.Errorf("%s: line %d, want %d", p, p.Line, tt.line)
					}
					return
				}
			}
			t.Fatalf("problems %v: want %s with %q", ps, tt.path, tt.msg)
		})
	}
}

// TestPluginPanicAnswers500: a plugin that panics gets its request a 500
// and is counted; the gateway keeps serving.
func TestPluginPanicAnswers500(t *testing.T) {
	be := trailBackend(t, 0)
	g, err := pluginGateway(t, &pluginProbe{}, pluginRoute(be.URL, "      - {name: tag, config: {tag: a, panic: true}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		w := do(g, "GET", "/x")
		if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "plugin_failed") {
			t.Fatalf("got %d %q, want 500 plugin_failed", w.Code, w.Body.String())
		}
	}
	if n := testutil.ToFloat64(g.metrics.pluginErrors.WithLabelValues("r", "tag")); n != 2 {
		t.Errorf("plugin_errors_total = %v, want 2", n)
	}
}

// TestPluginPassesNextPanicOn: a panic raised behind the plugin (the proxy
// aborting a response) is not taken for the plugin's and goes on as it was.
func TestPluginPassesNextPanicOn(t *testing.T) {
	u := &pluginUse{name: "p", route: "r", index: 0}
	u.requests, u.errors, u.duration = (*metrics)(nil).plugin("r", "p")
	passThrough := func(next http.Handler) http.Handler { return next }
	h := u.wrap(passThrough, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler itself", v)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	t.Fatal("no panic came through")
}

// TestPluginClosedAfterReloadWhenIdle: a reload closes the old config's
// plugins only once the requests running through them have finished.
func TestPluginClosedAfterReloadWhenIdle(t *testing.T) {
	be := trailBackend(t, 0)
	p := &pluginProbe{hold: make(chan struct{}), entered: make(chan struct{})}
	yaml := pluginRoute(be.URL, "      - {name: tag, config: {tag: a}}\n")
	g, err := pluginGateway(t, p, yaml)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var held *httptest.ResponseRecorder
	go func() {
		defer wg.Done()
		held = do(g, "GET", "/x", "X-Hold", "1")
	}()
	<-p.entered
	if err := g.Apply(load(t, pluginRoute(be.URL, "      - {name: tag, config: {tag: b}}\n"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := p.closed.Load(); n != 0 {
		t.Fatalf("closed %d plugins while a request was still in one", n)
	}
	if w := do(g, "GET", "/x"); w.Body.String() != "b" {
		t.Fatalf("after the reload %q, want the new config's b", w.Body.String())
	}
	close(p.hold)
	wg.Wait()
	if held.Code != 200 || held.Body.String() != "a" {
		t.Fatalf("held request: %d %q, want 200 a (the old config)", held.Code, held.Body.String())
	}
	deadline := time.Now().Add(2 * time.Second)
	for p.closed.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("old plugin closed %d times after its request ended, want 1", p.closed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPluginLabels(t *testing.T) {
	uses := []config.PluginUse{{Name: "wasm"}, {Name: "wasm", Label: "validator"}, {Name: "wasm"}, {Name: "stamp"}, {Name: "wasm", Label: "wasm#2"}}
	got := pluginLabels(uses)
	want := []string{"wasm", "validator", "wasm#3", "stamp", "wasm#2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("pluginLabels = %v, want %v (labels first, then names numbered past the taken ones)", got, want)
	}
}
