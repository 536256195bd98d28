package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/altair-gateway/altair/internal/admin"
	"github.com/altair-gateway/altair/internal/admin/monitor"
	"github.com/altair-gateway/altair/internal/auth"
	"github.com/altair-gateway/altair/internal/cache"
	"github.com/altair-gateway/altair/internal/compress"
	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/edge"
	"github.com/altair-gateway/altair/internal/middleware"
	"github.com/altair-gateway/altair/internal/observe"
	"github.com/altair-gateway/altair/internal/pluginapi"
	"github.com/altair-gateway/altair/internal/router"
	"github.com/altair-gateway/altair/internal/stats"
	"github.com/altair-gateway/altair/internal/upstream"
)

// graph is one immutable handler graph built from one config.
type graph struct {
	cfg    *config.Config
	router *router.Router
	routes []*route
	pools  []*upstream.Pool
	byName map[string]*upstream.Pool

	security    *middleware.SecurityHeaders
	maxURI      int
	front       http.Handler // URI limit → serve; set by Gateway.withFront
	entry       http.Handler // edge guard → dispatch
	admin       http.Handler // edge guard → admin API
	adminOnMain bool
	// metricsPath is metrics.path when the gateway serves metrics; requests
	// to it go to metricsMain on the main listener (nil: routed like any
	// other) and to metricsAdmin on the admin listener (nil: 404).
	metricsPath  string
	metricsMain  http.Handler
	metricsAdmin http.Handler
	// monitorMain and monitorAdmin serve the monitor's paths on the main
	// and the admin listener (nil: not there; on the main listener the
	// paths are then routed like any other).
	monitorMain  http.Handler
	monitorAdmin http.Handler
	auth         *auth.Authenticator
	edgeStats    func() stats.Edge
	// accessLog and accessSample are log.access: whether requests are
	// logged, and the share of non-5xx requests that are.
	accessLog    bool
	accessSample float64
	// compressor is the default compression policy (nil: off).
	compressor *compress.Compressor
	// cache is the response cache (nil: no route caches); ownCache is set
	// when the graph made it itself and closes it.
	cache, ownCache *cache.Cache
	// identityHeaders are the headers the gateway itself sets from verified
	// credentials (jwt.claim_headers, forward-auth copy_headers). A client's
	// own copies are removed on every route, not only on routes with auth,
	// so no backend can be told who the caller is by the caller.
	identityHeaders []string
	// guard is the edge guard of entry; direct is set when it is Plain, so
	// that the direct lane may do its checks itself (see ServeDirect).
	guard  *edge.Guard
	direct bool
}

func emptyGraph() *graph {
	rt, _ := router.New(nil)
	gr := &graph{cfg: &config.Config{}, router: rt, byName: map[string]*upstream.Pool{},
		security: middleware.NewSecurityHeaders(config.SecurityHeaders{Disabled: true}),
		admin:    admin.New(admin.Options{}), edgeStats: func() stats.Edge { return stats.Edge{} }}
	gr.entry = http.HandlerFunc(gr.dispatch)
	return gr
}

type buildDeps struct {
	log      slog.Handler
	registry *upstream.Registry
	now      func() time.Time
	counters func(route string) *routeCounters
	lists    *edge.Lists
	blocker  *edge.Blocker
	limiter  *edge.LocalLimiter
	shared   *edge.SharedLimiter  // nil: no Redis; the routes use limiter
	inFlight *edge.InFlightCounts // nil: counts of the graph's own
	metrics  *metrics             // nil: nothing counted or served (validate, explain)
	tracer   *observe.Tracer      // nil: tracing off
	// cache is the response cache for the routes that cache; nil with a
	// config that caches (validate, explain) makes one for this graph.
	cache   *cache.Cache
	monitor *monitor.Monitor // nil: no monitor page (validate, explain)
	// plugins are the plugins routes can list; nil: none.
	plugins *pluginapi.Registry
	// adminOnMain: the admin API is served on the main listener (admin.listen
	// was empty at start; the listener layout does not change on reload).
	adminOnMain bool
}

// build turns a validated config into a graph. Nothing is started: health
// checks begin with start, once the graph is about to go live.
func build(cfg *config.Config, d buildDeps) (*graph, error) {
	var problems config.Problems
	logger := slog.New(d.log)

	resolver, err := edge.NewResolver(cfg.Server.TrustedProxies)
	if err != nil {
		problems = append(problems, problem(cfg, "server.trusted_proxies", "%v", err))
		resolver, _ = edge.NewResolver(nil)
	}
	trusted := func(r *http.Request) bool {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return false
		}
		a, err := netip.ParseAddr(host)
		return err == nil && resolver.Trusted(a.Unmap())
	}

	g := &graph{cfg: cfg, byName: make(map[string]*upstream.Pool, len(cfg.Upstreams))}
	g.security = middleware.NewSecurityHeaders(cfg.SecurityHeaders)
	g.maxURI = cfg.Server.MaxURIBytes
	g.accessLog, g.accessSample = !cfg.Log.Access.Disabled, cfg.Log.Access.SampleRate()
	g.cache = d.cache
	if g.cache == nil && cacheWanted(cfg) {
		c, err := newCache(cfg, nil, logger, d.now, nil)
		if err != nil {
			problems = append(problems, problem(cfg, "cache", "%v", err))
		} else {
			g.cache, g.ownCache = c, c
		}
	}
	if !cfg.Compression.Disabled {
		c, err := compress.New(compressOptions(cfg.Compression))
		if err != nil {
			problems = append(problems, problem(cfg, "compression", "%v", err))
		}
		g.compressor = c
	}

	authn, err := auth.New(cfg.Auth, auth.Options{Logger: observe.Subsystem(logger, observe.SubsystemAuth), Now: d.now})
	if err != nil {
		problems = append(problems, authProblems(cfg, "auth", err)...)
	}
	g.auth = authn
	g.identityHeaders = identityHeaders(cfg)
	var poolMetrics upstream.Metrics
	if d.metrics != nil {
		poolMetrics = backendMetrics{d.metrics}
	}
	names := make([]string, 0, len(cfg.Upstreams))
	for name := range cfg.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, err := upstream.NewPool(upstream.Options{
			Name:           name,
			Config:         *cfg.Upstreams[name],
			Registry:       d.registry,
			Logger:         observe.Subsystem(logger, observe.SubsystemProxy),
			Now:            d.now,
			TrustForwarded: trusted,
			Metrics:        poolMetrics,
		})
		if err != nil {
			problems = append(problems, problem(cfg, "upstreams."+name, "%v", err))
			continue
		}
		g.pools = append(g.pools, p)
		g.byName[name] = p
	}

	specs := make([]router.Spec, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		m := rc.Match
		specs[i] = router.Spec{Hosts: m.Hosts, Methods: m.Methods, Prefix: m.Prefix, Path: m.Path, Headers: m.Headers, Query: m.Query}
	}
	rtr, err := router.New(specs)
	if err != nil {
		var errs router.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				path := fmt.Sprintf("routes[%d].match", e.Index)
				if e.Field != "" {
					path += "." + e.Field
				}
				problems = append(problems, problem(cfg, path, "%s", e.Msg))
			}
		} else {
			problems = append(problems, problem(cfg, "routes", "%v", err))
		}
	}
	g.router = rtr

	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		pool := g.byName[rc.Upstream]
		if pool == nil {
			problems = append(problems, problem(cfg, fmt.Sprintf("routes[%d].upstream", i), "unknown upstream %q", rc.Upstream))
			continue
		}
		rt, err := newRoute(rc, pool, d.counters(rc.Name))
		if err != nil {
			problems = append(problems, problem(cfg, fmt.Sprintf("routes[%d].rewrite", i), "%v", err))
			continue
		}
		var limiter edge.Limiter = d.limiter
		if d.shared != nil {
			limiter = d.shared
		}
		if d.metrics != nil {
			limiter = countingLimiter{Limiter: limiter, refused: d.metrics.rateLimited.WithLabelValues(rc.Name)}
			rt.onRetry = d.metrics.retries.WithLabelValues(rc.Name).Inc
		}
		rt.tracer = d.tracer
		rt.compressor = g.compressor
		rt.cache = g.cache
		rt.plugins = pluginDeps{registry: d.plugins, metrics: d.metrics, dir: pluginDir(cfg),
			log: observe.Subsystem(logger, observe.SubsystemPlugin)}
		if authn != nil {
			problems = append(problems, rt.buildChain(cfg, i, authn, limiter)...)
		}
		g.routes = append(g.routes, rt)
	}

	var blocker *edge.Blocker
	if !cfg.Edge.DDoS.Disabled {
		blocker = d.blocker
	}
	guard := edge.NewGuard(edge.GuardOptions{
		Resolver: resolver,
		Lists:    d.lists,
		Blocker:  blocker,
		Limits:   cfg.Edge.Connections,
		Counts:   d.inFlight,
		Logger:   observe.Subsystem(logger, observe.SubsystemDDoS),
	})
	g.entry = guard.Wrap(http.HandlerFunc(g.dispatch))
	g.guard, g.direct = guard, guard.Plain() && !cfg.Server.DirectLane.Disabled
	var purger admin.Purger
	if g.cache != nil {
		purger = cachePurger{g.cache}
	}
	adminAPI := admin.New(admin.Options{Token: cfg.Admin.Token, Lists: d.lists, Blocker: blocker,
		Cache: purger, Logger: observe.Subsystem(logger, observe.SubsystemAdmin)})
	// The admin API is behind the edge checks like everything else: denied
	// and blocked clients cannot even try tokens. Operators' addresses go on
	// the allow list (it comes first), or the API on admin.listen.
	g.admin = guard.Wrap(adminAPI)
	g.adminOnMain = d.adminOnMain
	if mc := cfg.Metrics; d.metrics != nil && !mc.Disabled {
		h := d.metrics.handler
		g.metricsPath = mc.Path
		switch {
		case !mc.OnAdmin:
			g.metricsMain = h
		case d.adminOnMain:
			// Behind the edge checks like the admin API: blocked clients
			// cannot try tokens.
			g.metricsMain = guard.Wrap(adminAPI.Protect(h))
		default:
			g.metricsAdmin = guard.Wrap(adminAPI.Protect(h))
		}
	}
	if mc := cfg.Monitor; d.monitor != nil && !mc.Disabled {
		// The page and its assets hold no data: served to anyone, so a
		// browser can load the page and ask for the token. With on_admin
		// the JSON needs the admin token, behind the edge checks.
		var protect func(http.Handler) http.Handler
		if mc.OnAdmin {
			protect = func(h http.Handler) http.Handler { return guard.Wrap(adminAPI.Protect(h)) }
		}
		h := d.monitor.Handler(protect)
		if mc.OnAdmin && !d.adminOnMain {
			g.monitorAdmin = h
		} else {
			g.monitorMain = h
		}
	}
	lists, limiter := d.lists, d.limiter
	g.edgeStats = func() stats.Edge {
		st := stats.Edge{
			AllowEntries:  len(lists.Entries(edge.Allow)),
			DenyEntries:   len(lists.Entries(edge.Deny)),
			RateLimitKeys: limiter.Len(),
			AdminAPI:      adminAPI.Enabled(),
		}
		if blocker != nil {
			st.BlockedIPs = len(blocker.Blocked())
			st.BlocksTotal = blocker.BlocksTotal()
		}
		return st
	}

	if len(problems) > 0 {
		g.close()
		return nil, problems
	}
	return g, nil
}

// start begins the graph's background work (active health checks, JWKS
// refresh).
func (g *graph) start(ctx context.Context) {
	for _, p := range g.pools {
		p.Start(ctx)
	}
	if g.auth != nil {
		g.auth.Start(ctx)
	}
}

// close stops the graph's background work. Requests still running on the graph
// finish normally: they hold their own references.
func (g *graph) close() {
	for _, p := range g.pools {
		p.Close()
	}
	for _, rt := range g.routes {
		closeUses(rt.pluginUses)
	}
	if g.ownCache != nil {
		_ = g.ownCache.Close()
	}
	if g.auth != nil {
		g.auth.Close()
	}
}

// identityHeaders lists, canonical and without duplicates, every header the
// gateway sets from verified credentials. Credential headers themselves are
// not in it (a forward-auth service may exchange the Authorization header; the
// client's must still reach the auth step).
func identityHeaders(cfg *config.Config) []string {
	credentials := []string{"Authorization", "Cookie", "Host", http.CanonicalHeaderKey(cfg.Auth.APIKeys.Header)}
	var out []string
	add := func(h string) {
		h = http.CanonicalHeaderKey(h)
		if h != "" && !slices.Contains(out, h) && !slices.Contains(credentials, h) {
			out = append(out, h)
		}
	}
	for _, h := range cfg.Auth.JWT.ClaimHeaders {
		add(h)
	}
	// Always, not only with server.tls.client_auth: a listener without
	// client certificates must not let a client claim one either.
	add(headerClientCertSubject)
	add(headerClientCertFingerprint)
	for _, rc := range cfg.Routes {
		for _, h := range rc.Auth.Forward.CopyHeaders {
			add(h)
		}
	}
	slices.Sort(out)
	return out
}

// authProblems maps the auth package's field errors to config problems under
// prefix ("auth" or "routes[i]").
func authProblems(cfg *config.Config, prefix string, err error) config.Problems {
	var errs auth.Errors
	if !errors.As(err, &errs) {
		return config.Problems{problem(cfg, prefix, "%v", err)}
	}
	var out config.Problems
	for _, e := range errs {
		path := prefix
		if e.Field != "" {
			path += "." + e.Field
		}
		out = append(out, problem(cfg, path, "%s", e.Msg))
	}
	return out
}
