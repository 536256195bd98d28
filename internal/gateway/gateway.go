// Package gateway builds Altair's request-handling graph from a validated config,
// swaps it atomically on reload, and owns the lifecycle of everything in it.
//
// It is the one package that knows every request-path package (router, upstream,
// ...) and wires them together; they do not know each other.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/altair-gateway/altair/internal/admin/monitor"
	"github.com/altair-gateway/altair/internal/cache"
	"github.com/altair-gateway/altair/internal/cluster"
	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/edge"
	"github.com/altair-gateway/altair/internal/httperr"
	"github.com/altair-gateway/altair/internal/middleware"
	"github.com/altair-gateway/altair/internal/observe"
	"github.com/altair-gateway/altair/internal/pluginapi"
	"github.com/altair-gateway/altair/internal/router"
	"github.com/altair-gateway/altair/internal/upstream"
)

// Options configure a Gateway.
type Options struct {
	// Logger is the root logger; subsystem loggers are derived from it.
	Logger *slog.Logger
	// Version is reported on /health and /stats.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AdminListen is admin.listen as it was at start: "" serves the admin API
	// on the main listener. Listeners are not moved by a reload.
	AdminListen string
	// AccessLog receives access-log lines (log.access) in LogFormat; nil
	// turns the access log off whatever the config says.
	AccessLog io.Writer
	// LogFormat is log.format as it was at start: json or text.
	LogFormat string
	// Tracer makes request and upstream spans; nil: tracing off.
	Tracer *observe.Tracer
	// Plugins are the plugins routes can list (built-in and compiled in);
	// nil: none.
	Plugins *pluginapi.Registry
	// Cluster is the Redis that replicas share rate limits, DDoS counts and
	// blocks, run-time list entries and (cache.store) the response cache
	// through; nil: everything local. New registers with it, so Start it
	// after New; close it after Close.
	Cluster *cluster.Client
}

// Gateway is the live http.Handler of the gateway. Its graph is replaced as a
// whole by Apply; requests in flight finish on the graph they started on.
type Gateway struct {
	root     *slog.Logger // the logger subsystem loggers derive from
	log      *slog.Logger
	version  string
	now      func() time.Time
	started  time.Time
	registry *upstream.Registry
	plugins  *pluginapi.Registry

	adminListen string

	// Edge state lives as long as the process: run-time list changes, blocks
	// and rate-limit buckets survive reloads.
	lists    *edge.Lists
	blocker  *edge.Blocker
	limiter  *edge.LocalLimiter
	inFlight *edge.InFlightCounts
	bg       sync.WaitGroup
	// cluster is Options.Cluster (nil: no Redis); shared is the limiter
	// whose buckets live there, falling back to limiter.
	cluster *cluster.Client
	shared  *edge.SharedLimiter

	current  atomic.Pointer[graph]
	ready    atomic.Bool
	draining atomic.Bool

	// ctx bounds every goroutine the graphs start (health checks).
	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex // serialises Apply and Close
	counters   map[string]*routeCounters
	reloadsOK  atomic.Uint64
	reloadsBad atomic.Uint64
	lastError  atomic.Pointer[string]
	closed     bool

	// metrics live as long as the process: one registry, its vectors created
	// once; none counts requests that matched no route.
	metrics *metrics
	none    *requestMetrics
	// connections mirrors active_connections for Snapshot.
	connections atomic.Int64
	// cache is the response cache of the live graph (nil: no route caches)
	// and the settings it was made with; it is kept across reloads that do
	// not change them.
	cache    *cache.Cache
	cacheSet cacheSettings
	// sharedCache is the Redis tier the caches it makes share with the
	// other replicas (nil: no Redis); made once, as it registers with
	// cluster.
	sharedCache *cache.Shared
	// access writes access-log lines; nil when Options.AccessLog was nil.
	access *observe.AccessLog
	tracer *observe.Tracer // nil: tracing off
	// monitor serves /monitor and /api/system-metrics; its recent samples
	// outlive reloads, so rates do not restart with a new config.
	monitor *monitor.Monitor
}

// New returns a Gateway with an empty graph: every request gets a 404 until
// Apply installs a config.
func New(o Options) *Gateway {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{
		root:        o.Logger,
		log:         observe.Subsystem(o.Logger, observe.SubsystemGateway),
		version:     o.Version,
		now:         o.Now,
		started:     o.Now(),
		registry:    upstream.NewRegistry(),
		plugins:     o.Plugins,
		adminListen: o.AdminListen,
		ctx:         ctx,
		cancel:      cancel,
		counters:    make(map[string]*routeCounters),
		lists:       edge.NewLists(),
		blocker:     edge.NewBlocker(o.Now),
		limiter:     edge.NewLocalLimiter(o.Now),
		inFlight:    edge.NewInFlightCounts(),
		tracer:      o.Tracer,
		cluster:     o.Cluster,
	}
	if o.AccessLog != nil {
		g.access = observe.NewAccessLog(o.AccessLog, o.LogFormat)
	}
	g.metrics = newMetrics(g)
	g.none = g.metrics.route(routeNone)
	g.monitor = monitor.New(monitor.Options{Source: g.Snapshot, Now: o.Now})
	g.bg.Go(func() { g.blocker.Run(ctx) })
	g.bg.Go(func() { g.limiter.Run(ctx) })
	if cl := o.Cluster; cl != nil {
		clog := observe.Subsystem(o.Logger, observe.SubsystemCluster)
		g.shared = edge.NewSharedLimiter(cl, g.limiter)
		edge.NewListSync(cl, g.lists, clog)
		g.sharedCache = cache.NewShared(cl, observe.Subsystem(o.Logger, observe.SubsystemCache))
		blocks := edge.NewBlockSync(cl, g.blocker, clog)
		g.bg.Go(func() { blocks.Run(ctx) })
	}
	g.current.Store(g.withFront(emptyGraph()))
	return g
}

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("gateway closed")

// Apply builds a new graph from cfg beside the live one, starts its health
// checks and swaps it in. If the build fails, the live graph keeps serving, the
// failure is counted and logged, and the problems are returned.
func (g *Gateway) Apply(cfg *config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	rc, err := g.cacheFor(cfg)
	if err != nil {
		ps := config.Problems{problem(cfg, "cache", "%v", err)}
		g.recordFailure(ps)
		return ps
	}
	// dropCache closes a Cache made for this Apply that does not go live.
	dropCache := func() {
		if rc != nil && rc != g.cache {
			_ = rc.Close()
		}
	}
	ng, err := build(cfg, buildDeps{
		cache:    rc,
		log:      g.root.Handler(),
		registry: g.registry,
		now:      g.now,
		counters: g.counterFor,
		lists:    g.lists,
		blocker:  g.blocker,
		limiter:  g.limiter,
		shared:   g.shared,
		inFlight: g.inFlight,
		metrics:  g.metrics,
		tracer:   g.tracer,
		monitor:  g.monitor,
		plugins:  g.plugins,

		adminOnMain: g.adminListen == "",
	})
	if err != nil {
		dropCache()
		g.recordFailure(err)
		return err
	}
	if cfg.Admin.Listen != g.adminListen {
		g.log.Warn("admin.listen changed; the admin API stays where it was until restart", "running", g.adminListen, "configured", cfg.Admin.Listen)
	}
	// Config-sourced list entries and DDoS thresholds change with the config;
	// run-time entries, counters and blocks stay.
	if err := g.lists.SetConfig(cfg.Edge.Allow, cfg.Edge.Deny); err != nil {
		ng.close()
		dropCache()
		g.recordFailure(err)
		return err
	}
	g.blocker.SetConfig(cfg.Edge.DDoS)
	g.withFront(ng)
	ng.start(g.ctx)
	old := g.current.Swap(ng)
	g.registry.Retain(ng.pools)
	g.pruneCounters(ng)
	g.metrics.retainBackends(ng.pools)
	old.close()
	if g.cache != rc {
		// Requests still running on the old graph finish against the old
		// Cache; Close only stops its background revalidations.
		if g.cache != nil {
			_ = g.cache.Close()
		}
		g.cache, g.cacheSet = rc, cacheSettingsOf(cfg.Cache, g.sharedCache != nil)
	}
	g.reloadsOK.Add(1)
	g.metrics.reload(true)
	g.lastError.Store(nil)
	if len(ng.routes) == 0 {
		g.log.Warn("no routes configured: every proxied request gets 404 until routes are added", "source", cfg.Source)
	}
	g.log.Info("config applied", "source", cfg.Source, "routes", len(ng.routes), "upstreams", len(ng.pools))
	return nil
}

// RecordReloadFailure counts a reload that failed before a config could be
// built (for example, the new file did not parse), so /stats shows it.
func (g *Gateway) RecordReloadFailure(err error) {
	g.recordFailure(err)
}

func (g *Gateway) recordFailure(err error) {
	g.reloadsBad.Add(1)
	g.metrics.reload(false)
	msg := err.Error()
	g.lastError.Store(&msg)
	g.log.Error("config rejected, keeping the running config", "error", msg)
}

// SetReady marks the gateway ready (listeners up, config loaded) for /ready.
func (g *Gateway) SetReady(ready bool) { g.ready.Store(ready) }

// SetDraining makes /ready answer 503 while the server drains on shutdown.
func (g *Gateway) SetDraining() { g.draining.Store(true) }

// Close stops every health check and background goroutine of the live graph. It
// does not cut requests in flight.
func (g *Gateway) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.closed = true
	g.cancel()
	g.current.Load().close()
	g.bg.Wait()
	if g.cache != nil {
		_ = g.cache.Close()
	}
	if g.access != nil {
		g.access.Close()
	}
}

// ServeHTTP handles one client request on the graph that is live when it starts.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ensureRequestID(w, r)
	gr := g.current.Load()
	// Security headers first, so every answer carries them, errors included.
	gr.security.Apply(w.Header())
	gr.front.ServeHTTP(w, r)
}

// withFront gives gr its entry point: the URI length limit, then serve.
func (g *Gateway) withFront(gr *graph) *graph {
	gr.front = middleware.URILimit(gr.maxURI)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, gr)
	}))
	return gr
}

// serve handles a request on graph gr after the URI check.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, gr *graph) {
	path := router.CleanPath(r.URL.Path)
	if hasDotParamSegment(path) {
		httperr.Write(w, r, http.StatusBadRequest, httperr.CodeBadRequest)
		return
	}
	if gr.monitorMain != nil && monitor.IsPath(path) {
		r.URL.Path, r.URL.RawPath = path, ""
		gr.monitorMain.ServeHTTP(w, r)
		return
	}
	switch path {
	case "/health":
		g.serveHealth(w, r, gr)
		return
	case "/ready":
		g.serveReady(w, r)
		return
	case "/stats":
		g.serveStats(w, r, gr)
		return
	case gr.metricsPath:
		if gr.metricsMain != nil {
			gr.metricsMain.ServeHTTP(w, r)
			return
		}
	}
	// From here on the cleaned path is the request's path: what the edge, auth
	// and routing see, and (after strip/rewrite) what the backend gets.
	r.URL.Path, r.URL.RawPath = path, ""
	if isAdminPath(path) && gr.adminOnMain {
		gr.admin.ServeHTTP(w, r)
		return
	}
	g.serveEntry(w, r, gr)
}

// serveEntry passes a request through the edge guard and routing, and counts
// it under the route that answered it (dispatch names it on the statusWriter),
// or "none".
func (g *Gateway) serveEntry(w http.ResponseWriter, r *http.Request, gr *graph) {
	sw := statusWriters.Get().(*statusWriter)
	sw.ResponseWriter, sw.status, sw.metrics, sw.bytes = w, 0, nil, 0
	sw.rec.Reset()
	start := g.now()
	path := r.URL.Path // cleaned (serve); the chain may change r.URL's afterwards
	var span trace.Span
	if g.tracer != nil {
		r, span = g.tracer.StartRequest(r)
	}
	// Deferred, so a response the proxy aborts mid-body (it panics with
	// http.ErrAbortHandler) is counted too.
	defer func() {
		d := g.now().Sub(start)
		status, rm := sw.status, sw.metrics
		if status == 0 {
			status = 499 // the handler wrote nothing: the client went away
		}
		if rm == nil {
			rm = g.none
		}
		rm.observe(r.Method, status, d)
		if span != nil {
			g.tracer.EndRequest(span, rm.route, status, &sw.rec)
		}
		if g.logsAccess(gr, status) {
			sw.entry = observe.AccessEntry{
				Time: start, RequestID: r.Header.Get(httperr.RequestIDHeader),
				Method: r.Method, Host: r.Host, Path: path, Route: rm.route,
				Status: status, Bytes: sw.bytes, Duration: d, Record: &sw.rec,
			}
			g.access.Log(&sw.entry)
			sw.entry = observe.AccessEntry{}
		}
		sw.ResponseWriter, sw.metrics = nil, nil
		statusWriters.Put(sw)
	}()
	gr.entry.ServeHTTP(sw, r)
}

// logsAccess reports whether a request that ended with status gets an
// access line on graph gr: every 5xx, the sampled share of the rest.
func (g *Gateway) logsAccess(gr *graph, status int) bool {
	return g.access != nil && gr.accessLog && (status >= 500 || gr.accessSample >= 1 || rand.Float64() < gr.accessSample)
}

// AdminHandler serves the admin API on its own listener (admin.listen). It
// follows reloads like the main handler.
func (g *Gateway) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ensureRequestID(w, r)
		gr := g.current.Load()
		gr.security.Apply(w.Header())
		r.URL.Path, r.URL.RawPath = router.CleanPath(r.URL.Path), ""
		if gr.metricsAdmin != nil && r.URL.Path == gr.metricsPath {
			gr.metricsAdmin.ServeHTTP(w, r)
			return
		}
		if gr.monitorAdmin != nil && monitor.IsPath(r.URL.Path) {
			gr.monitorAdmin.ServeHTTP(w, r)
			return
		}
		if !isAdminPath(r.URL.Path) {
			httperr.Write(w, r, http.StatusNotFound, httperr.CodeNotFound)
			return
		}
		gr.admin.ServeHTTP(w, r)
	})
}

// hasDotParamSegment reports a segment such as "..;x" or ".;x". Servlet
// containers and some frameworks strip ";params" and then treat the segment as
// a dot-segment, so "/public/..;/private" would reach /private behind a route
// (and auth decision) made for /public. Nothing legitimate needs them.
func hasDotParamSegment(p string) bool {
	return strings.Contains(p, "/..;") || strings.Contains(p, "/.;")
}

func isAdminPath(p string) bool { return p == "/admin" || strings.HasPrefix(p, "/admin/") }

// dispatch routes a request that passed the edge guard.
func (gr *graph) dispatch(w http.ResponseWriter, r *http.Request) {
	for _, h := range gr.identityHeaders {
		delete(r.Header, h)
	}
	setClientCertHeaders(r)
	var params router.Params
	var i int
	if acrm := r.Header.Get("Access-Control-Request-Method"); acrm != "" && middleware.IsPreflight(r) {
		// A CORS preflight asks about the method the browser will send:
		// match the route that method would reach, so its CORS policy
		// answers (before any auth — browsers send no credentials on a
		// preflight).
		method := r.Method
		r.Method = acrm
		i = gr.router.Match(r, r.URL.Path, &params)
		r.Method = method
		if i >= 0 && !gr.routes[i].answersPreflight {
			// That route has CORS off: the preflight is an ordinary OPTIONS
			// request and must match a route that takes OPTIONS.
			params.Reset()
			i = gr.router.Match(r, r.URL.Path, &params)
		}
	} else {
		i = gr.router.Match(r, r.URL.Path, &params)
	}
	if i < 0 {
		httperr.Write(w, r, http.StatusNotFound, httperr.CodeNotFound)
		return
	}
	gr.routes[i].serve(w, r, &params)
}

// counterFor returns the counters of a route name, creating them; counters
// survive reloads for routes that remain.
func (g *Gateway) counterFor(name string) *routeCounters {
	c, ok := g.counters[name]
	if !ok {
		c = &routeCounters{metrics: g.metrics.route(name)}
		g.counters[name] = c
	}
	return c
}

func (g *Gateway) pruneCounters(gr *graph) {
	live := make(map[string]bool, len(gr.routes))
	for _, rt := range gr.routes {
		live[rt.name] = true
	}
	for name, c := range g.counters {
		if !live[name] {
			delete(g.counters, name)
			if c.metrics != nil {
				c.metrics.dead.Store(true)
			}
			g.metrics.forget(name)
		}
	}
}

// Check builds the graph for cfg without starting anything, so every problem
// a running gateway would hit at Apply is reported up front (altair validate).
// plugins are those the binary has (nil: none).
func Check(cfg *config.Config, plugins *pluginapi.Registry) error {
	if ps := redisProblems(cfg); len(ps) > 0 {
		return ps
	}
	gr, err := build(cfg, detachedDeps(plugins))
	if err != nil {
		return err
	}
	gr.close()
	return nil
}

// detachedDeps build a graph that will not serve (validate, explain): fresh
// state, no logging.
func detachedDeps(plugins *pluginapi.Registry) buildDeps {
	return buildDeps{
		plugins:  plugins,
		log:      slog.DiscardHandler,
		registry: upstream.NewRegistry(),
		now:      time.Now,
		counters: func(string) *routeCounters { return &routeCounters{} },
		lists:    edge.NewLists(),
		blocker:  edge.NewBlocker(time.Now),
		limiter:  edge.NewLocalLimiter(time.Now),

		adminOnMain: true,
	}
}

func problem(cfg *config.Config, path, format string, args ...any) config.Problem {
	return config.Problem{Path: path, Line: cfg.Line(path), Msg: fmt.Sprintf(format, args...)}
}

// ConnLimiter returns the connection caps (total and per IP, allow-listed
// peers exempt from the per-IP cap) for the main listeners, TCP and QUIC
// alike; nil when there are none. The caps are read at start; changing them
// needs a restart.
func (g *Gateway) ConnLimiter(limits config.ConnectionLimits) *edge.ConnLimiter {
	return edge.NewConnLimiter(limits, g.lists)
}
