package gateway

import (
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/altair-gateway/altair/internal/edge"
	"github.com/altair-gateway/altair/internal/upstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routeNone is the route label of requests that matched no route (404s and
// requests the edge refused before routing).
const routeNone = "none"

// methods are the method label values; anything else is "OTHER".
var methods = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace, "OTHER",
}

// methodIndex maps a request method to its index in methods, without
// allocating.
func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodConnect:
		return 6
	case http.MethodOptions:
		return 7
	case http.MethodTrace:
		return 8
	}
	return len(methods) - 1
}

// metrics are the gateway's Prometheus metrics: one registry per Gateway,
// created in New and kept across reloads; every vector is created once.
type metrics struct {
	reg *prometheus.Registry

	requests         *prometheus.CounterVec   // method, route, status
	duration         *prometheus.HistogramVec // method, route
	connections      prometheus.Gauge
	breakerTrips     *prometheus.CounterVec   // backend
	upstreamTime     *prometheus.HistogramVec // backend
	upstreamErrors   *prometheus.CounterVec   // backend, kind
	retries          *prometheus.CounterVec   // route
	rateLimited      *prometheus.CounterVec   // route
	reloads          *prometheus.CounterVec   // result
	cacheHits        prometheus.Counter
	cacheMisses      prometheus.Counter
	cacheRequests    *prometheus.CounterVec   // route, result
	cacheStoreErrors *prometheus.CounterVec   // op
	websockets       *prometheus.GaugeVec     // route
	pluginRequests   *prometheus.CounterVec   // route, plugin
	pluginErrors     *prometheus.CounterVec   // route, plugin
	pluginDuration   *prometheus.HistogramVec // route, plugin
	handler          http.Handler             // promhttp over reg
	discard          prometheus.Counter       // unregistered, for routes a reload removed

	backendsMu sync.Mutex
	backends   map[string]bool // backend labels with series
}

// durationBuckets suit a gateway: from a cached or local answer (1ms) to a
// slow backend (10s).
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "Client requests by method, route (\"none\" when unmatched) and status code.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to answer a client request, until the handler returned (body streamed).",
			Buckets: durationBuckets,
		}, []string{"method", "route"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "active_connections",
			Help: "Open client connections on the main listener (upgraded connections leave the count when hijacked).",
		}),
		breakerTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circuit_breaker_trips_total",
			Help: "Times a backend's circuit breaker opened.",
		}, []string{"backend"}),
		upstreamTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "upstream_request_duration_seconds",
			Help:    "Time of one upstream attempt until its response headers or its failure.",
			Buckets: durationBuckets,
		}, []string{"backend"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upstream_errors_total",
			Help: "Failed upstream attempts by backend and kind (timeout, connect, reset, other, status_5xx).",
		}, []string{"backend", "kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upstream_retries_total",
			Help: "Retry attempts by route.",
		}, []string{"route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rate_limited_total",
			Help: "Requests refused with 429 rate_limited by a route's rate limit.",
		}, []string{"route"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "config_reloads_total",
			Help: "Config applies by result (success, failure).",
		}, []string{"result"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cache_hits_total",
			Help: "Responses served from the cache: fresh, stale, or after a 304 revalidation.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cache_misses_total",
			Help: "Cacheable requests fetched from the origin.",
		}),
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cache_requests_total",
			Help: "Requests on caching routes by result (hit, stale, revalidated, miss, bypass).",
		}, []string{"route", "result"}),
		cacheStoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cache_store_errors_total",
			Help: "Failed cache store operations by op (get, set, delete).",
		}, []string{"op"}),
		websockets: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "websocket_connections",
			Help: "Open upgraded (WebSocket) connections by route.",
		}, []string{"route"}),
		pluginRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plugin_invocations_total",
			Help: "Requests that passed through a plugin, by route and plugin.",
		}, []string{"route", "plugin"}),
		pluginErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plugin_errors_total",
			Help: "Plugin failures answered with 500: a panic, a WebAssembly trap, a guest over its deadline.",
		}, []string{"route", "plugin"}),
		pluginDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plugin_duration_seconds",
			Help:    "Time spent in a plugin per request, the rest of the chain (the backend included) left out.",
			Buckets: pluginBuckets,
		}, []string{"route", "plugin"}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "altair_build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": g.version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	blocker := g.blocker
	m.reg.MustRegister(
		m.requests, m.duration, m.connections, m.breakerTrips, m.upstreamTime,
		m.upstreamErrors, m.retries, m.rateLimited, m.reloads, m.cacheHits, buildInfo,
		m.cacheMisses, m.cacheRequests, m.cacheStoreErrors, m.websockets,
		m.pluginRequests, m.pluginErrors, m.pluginDuration,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "blocked_ips_total",
			Help: "Client IPs blocked by DDoS protection since start.",
		}, func() float64 { return float64(blocker.BlocksTotal()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "access_log_dropped_total",
			Help: "Access-log lines dropped because the log output fell behind.",
		}, func() float64 {
			if g.access == nil {
				return 0
			}
			return float64(g.access.Dropped())
		}),
		healthCollector{g},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if g.cluster != nil {
		m.reg.MustRegister(redisCollector{g.cluster})
	}
	// Both results exist from the start, so a failure rate can be computed
	// before the first failure.
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	for _, op := range []string{"get", "set", "delete"} {
		m.cacheStoreErrors.WithLabelValues(op)
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	m.discard = prometheus.NewCounter(prometheus.CounterOpts{Name: "discarded"})
	m.backends = make(map[string]bool)
	return m
}

// retainBackends drops the series of backends no pool of the live graph uses
// any more, so backend churn over reloads (changing pod addresses) does not
// grow the series without bound. Requests still running on old pools write
// to children they hold, which no longer export.
func (m *metrics) retainBackends(pools []*upstream.Pool) {
	live := make(map[string]bool)
	for _, p := range pools {
		for _, b := range p.Status().Backends {
			live[b.URL] = true
		}
	}
	m.backendsMu.Lock()
	defer m.backendsMu.Unlock()
	for b := range m.backends {
		if live[b] {
			continue
		}
		l := prometheus.Labels{"backend": b}
		m.breakerTrips.DeletePartialMatch(l)
		m.upstreamTime.DeletePartialMatch(l)
		m.upstreamErrors.DeletePartialMatch(l)
		delete(m.backends, b)
	}
}

// reload counts one config apply.
func (m *metrics) reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
	} else {
		m.reloads.WithLabelValues("failure").Inc()
	}
}

// forget drops the series of a route that the config no longer has.
func (m *metrics) forget(route string) {
	l := prometheus.Labels{"route": route}
	m.requests.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.retries.DeletePartialMatch(l)
	m.rateLimited.DeletePartialMatch(l)
	m.cacheRequests.DeletePartialMatch(l)
	m.websockets.DeletePartialMatch(l)
	m.pluginRequests.DeletePartialMatch(l)
	m.pluginErrors.DeletePartialMatch(l)
	m.pluginDuration.DeletePartialMatch(l)
}

// pluginBuckets suit a middleware's own time: from a Go plugin's
// microseconds to a slow WebAssembly guest's tens of milliseconds.
var pluginBuckets = []float64{.000005, .00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1}

// plugin returns the counters and the duration observer of one plugin on one
// route; unregistered ones when m is nil (validate, explain).
func (m *metrics) plugin(route, name string) (requests, errors prometheus.Counter, duration prometheus.Observer) {
	if m == nil {
		return discardCounter, discardCounter, discardObserver
	}
	return m.pluginRequests.WithLabelValues(route, name), m.pluginErrors.WithLabelValues(route, name),
		m.pluginDuration.WithLabelValues(route, name)
}

var (
	discardCounter  = prometheus.NewCounter(prometheus.CounterOpts{Name: "discarded"})
	discardObserver = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "discarded"})
)

// route returns the request metrics of one route name, with the duration
// observers resolved now so the request path resolves nothing.
func (m *metrics) route(name string) *requestMetrics {
	rm := &requestMetrics{vec: m.requests, route: name, discard: m.discard, websockets: m.websockets.WithLabelValues(name)}
	for i, meth := range methods {
		rm.durations[i] = m.duration.WithLabelValues(meth, name)
	}
	empty := map[uint32]prometheus.Counter{}
	rm.byCode.Store(&empty)
	return rm
}

// ConnState is the main server's http.Server.ConnState hook: it keeps
// active_connections at the number of open client connections. A hijacked
// (upgraded) connection leaves the count, since the server no longer sees it
// close.
func (g *Gateway) ConnState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		g.connections.Add(1)
		g.metrics.connections.Inc()
	case http.StateClosed, http.StateHijacked:
		g.connections.Add(-1)
		g.metrics.connections.Dec()
	}
}

// requestMetrics are one route's http_requests_total and
// http_request_duration_seconds children. The counter per (method, status)
// is created on first use and kept in a copy-on-write map, so the request
// path does one lock-free map lookup and allocates nothing.
type requestMetrics struct {
	vec       *prometheus.CounterVec
	route     string
	durations [len(methods)]prometheus.Observer
	mu        sync.Mutex // serialises additions to byCode
	byCode    atomic.Pointer[map[uint32]prometheus.Counter]
	// dead is set when a reload removed the route: a request still running
	// on the old graph must not create a series nobody will delete.
	dead    atomic.Bool
	discard prometheus.Counter // unregistered; counts for dead routes
	// websockets is the route's websocket_connections gauge.
	websockets prometheus.Gauge
}

func (rm *requestMetrics) observe(method string, status int, d time.Duration) {
	mi := methodIndex(method)
	rm.durations[mi].Observe(d.Seconds())
	switch {
	case status < 100 || status > 999:
		status = 0
	case http.StatusText(status) == "":
		// A backend can answer any code; unknown ones share one series so
		// the label stays bounded.
		status = 1
	}
	key := uint32(mi)<<16 | uint32(status)
	c, ok := (*rm.byCode.Load())[key]
	if !ok {
		c = rm.add(key, mi, status)
	}
	c.Inc()
}

func (rm *requestMetrics) add(key uint32, mi, status int) prometheus.Counter {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	old := *rm.byCode.Load()
	if c, ok := old[key]; ok {
		return c
	}
	if rm.dead.Load() {
		return rm.discard
	}
	code := "000"
	switch status {
	case 0:
	case 1:
		code = "other"
	default:
		code = strconv.Itoa(status)
	}
	c := rm.vec.WithLabelValues(methods[mi], rm.route, code)
	next := make(map[uint32]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[key] = c
	rm.byCode.Store(&next)
	return c
}

// backendMetrics implements upstream.Metrics over the gateway's vectors.
type backendMetrics struct{ m *metrics }

// Backend resolves one backend's children once, when its pool is built.
func (b backendMetrics) Backend(_, backend string) upstream.BackendMetrics {
	b.m.backendsMu.Lock()
	b.m.backends[backend] = true
	b.m.backendsMu.Unlock()
	bm := &backendSink{
		trips:    b.m.breakerTrips.WithLabelValues(backend),
		duration: b.m.upstreamTime.WithLabelValues(backend),
		errors:   make(map[upstream.ErrorKind]prometheus.Counter),
	}
	for _, k := range upstream.ErrorKinds() {
		bm.errors[k] = b.m.upstreamErrors.WithLabelValues(backend, string(k))
	}
	return bm
}

type backendSink struct {
	trips    prometheus.Counter
	duration prometheus.Observer
	errors   map[upstream.ErrorKind]prometheus.Counter // read-only after build
}

func (s *backendSink) Attempt(d time.Duration, kind upstream.ErrorKind) {
	s.duration.Observe(d.Seconds())
	if kind != upstream.KindNone {
		if c := s.errors[kind]; c != nil {
			c.Inc()
		}
	}
}

func (s *backendSink) BreakerOpened() { s.trips.Inc() }

// countingLimiter counts the requests its Limiter refuses (each one a 429
// rate_limited answer).
type countingLimiter struct {
	edge.Limiter
	refused prometheus.Counter
}

func (l countingLimiter) Allow(key string, rps float64, burst int) edge.Decision {
	d := l.Limiter.Allow(key, rps, burst)
	if !d.Allowed {
		l.refused.Inc()
	}
	return d
}

// healthCollector exports backend_health_status from the live graph's pools
// at scrape time: no cost on the request path, never stale.
type healthCollector struct{ g *Gateway }

var healthDesc = prometheus.NewDesc("backend_health_status",
	"1 when the backend is healthy (active checks pass and passive health has not ejected it), else 0.",
	[]string{"route", "backend"}, nil)

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- healthDesc }

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	gr := c.g.current.Load()
	status := make(map[string]upstream.PoolStatus, len(gr.pools))
	for _, p := range gr.pools {
		status[p.Name()] = p.Status()
	}
	// The same (route, backend) can appear twice (a URL listed twice, or two
	// URLs that differ only in a redacted password): one sample each, the
	// worst, or the scrape fails.
	type key struct{ route, backend string }
	seen := make(map[key]float64)
	var order []key
	for _, rt := range gr.routes {
		for _, b := range status[rt.pool.Name()].Backends {
			v := 0.0
			if b.Healthy && !b.Ejected {
				v = 1
			}
			k := key{rt.name, b.URL}
			if old, ok := seen[k]; ok {
				seen[k] = min(old, v)
				continue
			}
			seen[k] = v
			order = append(order, k)
		}
	}
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(healthDesc, prometheus.GaugeValue, seen[k], k.route, k.backend)
	}
}
