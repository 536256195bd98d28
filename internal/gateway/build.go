package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/observe"
	"github.com/altair-gateway/altair/internal/router"
	"github.com/altair-gateway/altair/internal/upstream"
)

// graph is one immutable handler graph built from one config.
type graph struct {
	cfg    *config.Config
	router *router.Router
	routes []*route
	pools  []*upstream.Pool
	byName map[string]*upstream.Pool
}

func emptyGraph() *graph {
	rt, _ := router.New(nil)
	return &graph{cfg: &config.Config{}, router: rt, byName: map[string]*upstream.Pool{}}
}

type buildDeps struct {
	log      slog.Handler
	registry *upstream.Registry
	now      func() time.Time
	counters func(route string) *routeCounters
}

// build turns a validated config into a graph. Nothing is started: health
// checks begin with start, once the graph is about to go live.
func build(cfg *config.Config, d buildDeps) (*graph, error) {
	var problems config.Problems
	logger := slog.New(d.log)

	trusted, perr := parseTrusted(cfg)
	problems = append(problems, perr...)

	g := &graph{cfg: cfg, byName: make(map[string]*upstream.Pool, len(cfg.Upstreams))}
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
		g.routes = append(g.routes, rt)
	}

	if len(problems) > 0 {
		g.close()
		return nil, problems
	}
	return g, nil
}

// start begins the graph's background work (active health checks).
func (g *graph) start(ctx context.Context) {
	for _, p := range g.pools {
		p.Start(ctx)
	}
}

// close stops the graph's background work. Requests still running on the graph
// finish normally: they hold their own references.
func (g *graph) close() {
	for _, p := range g.pools {
		p.Close()
	}
}

// parseTrusted compiles server.trusted_proxies into the predicate the proxy uses
// to decide whether a peer's X-Forwarded-* headers are believed.
func parseTrusted(cfg *config.Config) (func(*http.Request) bool, config.Problems) {
	var problems config.Problems
	var prefixes []netip.Prefix
	for i, s := range cfg.Server.TrustedProxies {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			prefixes = append(prefixes, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			prefixes = append(prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		problems = append(problems, problem(cfg, fmt.Sprintf("server.trusted_proxies[%d]", i), "not an IP address or CIDR: %q", s))
	}
	if len(prefixes) == 0 {
		return nil, problems
	}
	return func(r *http.Request) bool {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return false
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, p := range prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}, problems
}
