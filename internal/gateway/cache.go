package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/altair-gateway/altair/internal/cache"
	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/observe"
	"github.com/altair-gateway/altair/internal/router"
)

// cacheSettings are the parts of the cache section that need a new Cache
// (and so an empty store) when they change; TTLs and on/off are per route
// handler and change with every reload.
type cacheSettings struct {
	maxBody, maxMemory              int64
	keepStale, coalesce, revalidate time.Duration
	store                           string
}

// cacheSettingsOf returns c's settings, with the store it resolves to when
// the process has Redis or not.
func cacheSettingsOf(c config.Cache, redis bool) cacheSettings {
	return cacheSettings{c.MaxBodyBytes, c.MaxMemoryBytes, c.KeepStale, c.CoalesceTimeout, c.RevalidateTimeout, c.StoreWith(redis)}
}

// cacheWanted reports whether any route caches.
func cacheWanted(cfg *config.Config) bool {
	if cfg.Cache.Enabled {
		return true
	}
	for i := range cfg.Routes {
		if e := cfg.Routes[i].Cache.Enabled; e != nil && *e {
			return true
		}
	}
	return false
}

// newCache builds a Cache for cfg's settings; m may be nil (validate,
// explain). shared is the process's Redis tier, nil without Redis: the
// cache is then in memory whatever cache.store says.
func newCache(cfg *config.Config, m *metrics, log *slog.Logger, now func() time.Time, shared *cache.Shared) (*cache.Cache, error) {
	o := cache.Options{
		MaxBodyBytes:      cfg.Cache.MaxBodyBytes,
		MaxMemoryBytes:    cfg.Cache.MaxMemoryBytes,
		KeepStale:         cfg.Cache.KeepStale,
		CoalesceTimeout:   cfg.Cache.CoalesceTimeout,
		RevalidateTimeout: cfg.Cache.RevalidateTimeout,
		DefaultTTL:        cfg.Cache.FreshnessTTL(),
		Logger:            log,
		Now:               now,
	}
	if m != nil {
		o.Metrics = cacheMetrics{m}
	}
	switch store := cfg.Cache.StoreWith(shared != nil); {
	case store == config.CacheStoreMemory:
	case shared == nil:
		if m != nil {
			log.Warn("cache.store needs Redis, which is set up only at start: the cache stays in memory until a restart", "store", store)
		}
	default:
		o.Shared, o.SharedOnly = shared, store == config.CacheStoreRedis
	}
	return cache.New(o)
}

// cacheFor returns the Cache the graph for cfg uses: the live one when its
// settings have not changed, else a new one (nil when no route caches).
// Called with g.mu held.
func (g *Gateway) cacheFor(cfg *config.Config) (*cache.Cache, error) {
	if !cacheWanted(cfg) {
		return nil, nil
	}
	set := cacheSettingsOf(cfg.Cache, g.sharedCache != nil)
	if g.cache != nil && g.cacheSet == set {
		return g.cache, nil
	}
	return newCache(cfg, g.metrics, observe.Subsystem(g.root, observe.SubsystemCache), g.now, g.sharedCache)
}

// routeCache wraps h, the route's proxy step, in the route's cache handler
// when the graph has a cache. A route that does not cache still gets one,
// disabled: its unsafe requests invalidate what other routes cached for the
// same URLs. It reports whether the route caches (and so needs its
// credentials captured before auth).
func (rt *route) routeCache(cfg *config.Config, h http.Handler, steps *[]string) (http.Handler, bool) {
	if rt.cache == nil {
		return h, false
	}
	rc := rt.cfg.Cache
	on := cfg.Cache.Enabled
	if rc.Enabled != nil {
		on = *rc.Enabled
	}
	ttl := cfg.Cache.FreshnessTTL()
	if rc.TTL != nil {
		ttl = *rc.TTL
	}
	h = rt.cache.Handler(cache.RouteOptions{Name: rt.name, TTL: &ttl, Disabled: !on}, h)
	if on {
		*steps = append(*steps, fmt.Sprintf("cache(ttl %v)", ttl))
	} else {
		*steps = append(*steps, "cache(off: invalidates only)")
	}
	return h, on
}

// cacheMetrics implements cache.Metrics over Prometheus.
type cacheMetrics struct{ m *metrics }

func (c cacheMetrics) Route(name string) cache.RouteMetrics {
	r := &cacheRoute{hits: c.m.cacheHits, misses: c.m.cacheMisses}
	for res := cache.Bypass; res <= cache.Revalidated; res++ {
		r.byResult[res] = c.m.cacheRequests.WithLabelValues(name, res.Label())
	}
	return r
}

func (c cacheMetrics) StoreError(op string) { c.m.cacheStoreErrors.WithLabelValues(op).Inc() }

type cacheRoute struct {
	byResult     [cache.Revalidated + 1]prometheus.Counter
	hits, misses prometheus.Counter
}

func (r *cacheRoute) Count(res cache.Result) {
	if int(res) < len(r.byResult) {
		r.byResult[res].Inc()
	}
	switch res {
	case cache.Hit, cache.Stale, cache.Revalidated:
		r.hits.Inc()
	case cache.Miss:
		r.misses.Inc()
	}
}

// cachePurger adapts the Cache to the admin API.
type cachePurger struct{ c *cache.Cache }

func (p cachePurger) PurgeURL(ctx context.Context, host, path, rawQuery string) (int, error) {
	return p.c.Purge(ctx, cache.Key(host, router.CleanPath(path), rawQuery))
}

func (p cachePurger) PurgePrefix(ctx context.Context, host, prefix string) (int, error) {
	return p.c.PurgePrefix(ctx, host, router.CleanPath(prefix))
}
