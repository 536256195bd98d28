package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/httperr"
	"github.com/altair-gateway/altair/internal/observe"
	"github.com/altair-gateway/altair/internal/pluginapi"
)

// pluginUse is one entry of one route's plugins list in one graph: the
// pluginapi.Config its factory receives, and the accounting around the
// middleware it returned.
type pluginUse struct {
	name, route string
	index       int // position in the route's list, its slot in Record.PluginNext
	node        *yaml.Node
	dir         string
	log         *slog.Logger

	mu      sync.Mutex
	closers []func()

	inFlight atomic.Int64
	requests prometheus.Counter
	errors   prometheus.Counter
	duration prometheus.Observer
}

// pluginConfig is the pluginapi.Config of one use. It is a type of its own
// so that the factory sees only the interface's methods, plus CountError for
// built-in plugins that know their failures (a WebAssembly trap).
type pluginConfig struct{ u *pluginUse }

// Decode decodes the use's config strictly into v.
func (c pluginConfig) Decode(v any) error {
	n := c.u.node
	if n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		// The lines yaml names are those of the re-encoded snippet, not of
		// the file; the problem carries the config's own line.
		return errors.New(yamlLine.ReplaceAllString(err.Error(), ""))
	}
	return nil
}

var yamlLine = regexp.MustCompile(`(yaml: )?(unmarshal errors:\s*)?line \d+: `)

func (c pluginConfig) Route() string        { return c.u.route }
func (c pluginConfig) Logger() *slog.Logger { return c.u.log }
func (c pluginConfig) Dir() string          { return c.u.dir }

// OnClose registers fn to run once the use's requests have finished after
// its graph was replaced, or at shutdown.
func (c pluginConfig) OnClose(fn func()) {
	c.u.mu.Lock()
	c.u.closers = append(c.u.closers, fn)
	c.u.mu.Unlock()
}

// CountError counts a failure the plugin handled itself (a trap answered
// with 500) in plugin_errors_total.
func (c pluginConfig) CountError() {
	if c.u.errors != nil { // nil only while the config is being built
		c.u.errors.Inc()
	}
}

// ErrorCounter is implemented by the Config built-in plugins receive.
type ErrorCounter interface{ CountError() }

var _ pluginapi.Config = pluginConfig{}

// buildPlugins wraps h in the route's plugins, the first listed outermost,
// and returns it with the uses (for their closers) and the steps for
// explain.
func (rt *route) buildPlugins(cfg *config.Config, i int, d pluginDeps, h http.Handler) (http.Handler, []*pluginUse, []string, config.Problems) {
	rc := rt.cfg
	if len(rc.Plugins) == 0 {
		return h, nil, nil, nil
	}
	var problems config.Problems
	uses := make([]*pluginUse, len(rc.Plugins))
	mws := make([]pluginapi.Middleware, len(rc.Plugins))
	labels := pluginLabels(rc.Plugins)
	for j := range rc.Plugins {
		pu := &rc.Plugins[j]
		at := fmt.Sprintf("routes[%d].plugins[%d]", i, j)
		u := &pluginUse{name: labels[j], route: rc.Name, index: j, node: &pu.Config, dir: d.dir,
			log: d.log.With("plugin", labels[j], "route", rc.Name)}
		uses[j] = u
		f, ok := d.registry.Lookup(pu.Name)
		if !ok {
			problems = append(problems, problem(cfg, at+".name", "unknown plugin %q (this binary has: %v)", pu.Name, d.registry.Names()))
			continue
		}
		mw, err := f.New(pluginConfig{u})
		switch {
		case err != nil:
			problems = append(problems, problem(cfg, at+".config", "%s: %v", pu.Name, err))
		case mw == nil:
			problems = append(problems, problem(cfg, at, "plugin %q returned no middleware", pu.Name))
		default:
			mws[j] = mw
		}
	}
	if len(problems) > 0 {
		closeUses(uses)
		return h, nil, nil, problems
	}
	// Series only for a config that builds: a rejected one leaves none.
	for _, u := range uses {
		u.requests, u.errors, u.duration = d.metrics.plugin(rc.Name, u.name)
	}
	steps := make([]string, len(uses))
	for j := len(uses) - 1; j >= 0; j-- {
		h = uses[j].wrap(mws[j], h)
	}
	for j, u := range uses {
		steps[j] = "plugin(" + u.name + ")"
	}
	return h, uses, steps, nil
}

// pluginLabels names each use of a route's plugins list: its label, else
// the plugin's name, with "#N" for the N-th use of a name already taken.
func pluginLabels(uses []config.PluginUse) []string {
	out := make([]string, len(uses))
	taken := make(map[string]bool, len(uses))
	for _, pu := range uses {
		if pu.Label != "" {
			taken[pu.Label] = true
		}
	}
	for j, pu := range uses {
		if pu.Label != "" {
			out[j] = pu.Label
			continue
		}
		l := pu.Name
		for n := 2; taken[l]; n++ {
			l = pu.Name + "#" + strconv.Itoa(n)
		}
		taken[l] = true
		out[j] = l
	}
	return out
}

// pluginDeps is what building plugins needs from the graph.
type pluginDeps struct {
	registry *pluginapi.Registry
	metrics  *metrics // nil: not counted (validate, explain)
	log      *slog.Logger
	dir      string
}

// nextPanic carries a panic raised by the rest of the chain through a
// plugin, so that the plugin's recover passes it on instead of taking it
// for the plugin's own (http.ErrAbortHandler from the proxy, for one).
type nextPanic struct{ v any }

// wrap puts mw around next with its accounting: the plugin's own time (the
// rest of the chain's left out), its requests, and a panic of its own
// answered with 500 and counted as an error.
func (u *pluginUse) wrap(mw pluginapi.Middleware, next http.Handler) http.Handler {
	inner := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.serveNext(next, w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.serve(inner, w, r)
	})
}

func (u *pluginUse) serve(inner http.Handler, w http.ResponseWriter, r *http.Request) {
	u.inFlight.Add(1)
	rec := observe.RecordOf(w)
	if rec != nil {
		rec.PluginNext[u.index] = -1
	}
	start := time.Now()
	defer func() {
		d := time.Since(start)
		if rec != nil && rec.PluginNext[u.index] > 0 {
			d -= time.Duration(rec.PluginNext[u.index])
		}
		u.inFlight.Add(-1)
		u.requests.Inc()
		u.duration.Observe(d.Seconds())
		if v := recover(); v != nil {
			if np, ok := v.(nextPanic); ok {
				panic(np.v)
			}
			u.errors.Inc()
			u.log.Error("plugin panicked; answering 500", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if statusOf(w) != 0 {
				panic(http.ErrAbortHandler) // the response has begun: cut it
			}
			httperr.Write(w, r, http.StatusInternalServerError, httperr.CodePluginFailed)
		}
	}()
	inner.ServeHTTP(w, r)
}

func (u *pluginUse) serveNext(next http.Handler, w http.ResponseWriter, r *http.Request) {
	rec := observe.RecordOf(w)
	start := time.Now()
	defer func() {
		if rec != nil {
			if rec.PluginNext[u.index] < 0 {
				rec.PluginNext[u.index] = 0
			}
			rec.PluginNext[u.index] += int64(time.Since(start))
		}
		if v := recover(); v != nil {
			panic(nextPanic{v})
		}
	}()
	next.ServeHTTP(w, r)
}

// statusOf is the status w (or a writer it wraps) has sent, 0 if none yet;
// 0 too when the gateway's writer cannot be found.
func statusOf(w http.ResponseWriter) int {
	for range 8 {
		switch x := w.(type) {
		case *statusWriter:
			return x.status
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return 0
		}
	}
	return 0
}

// closeUses runs the closers of uses once their requests have finished:
// at once when none is running, else from a goroutine that waits for them.
func closeUses(uses []*pluginUse) {
	for _, u := range uses {
		if u == nil {
			continue
		}
		u.mu.Lock()
		fns := u.closers
		u.closers = nil
		u.mu.Unlock()
		if len(fns) == 0 {
			continue
		}
		run := func() {
			for _, fn := range fns {
				fn()
			}
		}
		if u.inFlight.Load() == 0 {
			run()
			continue
		}
		go func() {
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for range t.C {
				if u.inFlight.Load() == 0 {
					run()
					return
				}
			}
		}()
	}
}

// pluginDir is the directory relative plugin paths are resolved against:
// the config file's, or "" (the working directory) without one.
func pluginDir(cfg *config.Config) string {
	if cfg.Source == "" || cfg.Source == "environment" {
		return ""
	}
	return filepath.Dir(cfg.Source)
}
