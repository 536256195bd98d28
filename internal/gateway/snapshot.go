package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/altair-gateway/altair/internal/upstream"
)

// Snapshot is the gateway's state at one moment, for operator views (/stats,
// the monitor page, the terminal dashboard). Counters are totals since start;
// a viewer derives rates from two snapshots.
type Snapshot struct {
	// Time is when the snapshot was taken.
	Time time.Time
	// Version is the running build's version.
	Version string
	// Uptime is the time since the gateway started.
	Uptime time.Duration
	// Algorithm is the default load-balancing algorithm.
	Algorithm string
	// Ready is false while starting and while draining.
	Ready bool
	// Connections counts open client connections on the main listener.
	Connections int64
	// Requests counts requests that matched a route.
	Requests uint64
	// InFlight counts routed requests being served.
	InFlight int64
	// Responses counts routed responses by class, indexed as ClassNames.
	Responses [6]uint64
	// Routes has one entry per route of the live config, in config order.
	Routes []RouteSnapshot
	// Upstreams has one entry per pool, with its backends' health and
	// breaker states.
	Upstreams []upstream.PoolStatus
	// Edge summarises the edge guard.
	Edge EdgeStats
	// Reloads counts config applies.
	Reloads ReloadStats
	// Latency is the distribution of request durations, all routes and
	// unmatched requests together. Empty unless asked for.
	Latency Histogram
}

// RouteSnapshot is one route's counters.
type RouteSnapshot struct {
	Name        string
	Upstream    string
	RequireAuth bool
	Requests    uint64
	InFlight    int64
	Responses   [6]uint64
}

// EdgeStats summarises the edge guard's state.
type EdgeStats struct {
	AllowEntries  int    `json:"allow_entries"`
	DenyEntries   int    `json:"deny_entries"`
	BlockedIPs    int    `json:"blocked_ips"`
	BlocksTotal   uint64 `json:"blocks_total"`
	RateLimitKeys int    `json:"rate_limit_keys"`
	AdminAPI      bool   `json:"admin_api"`
}

// ReloadStats counts config applies.
type ReloadStats struct {
	Success   uint64 `json:"success"`
	Failure   uint64 `json:"failure"`
	LastError string `json:"last_error,omitempty"`
}

// Histogram is a cumulative histogram: Counts[i] requests took at most
// Bounds[i] seconds; Count is the total (the +Inf bucket).
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64 // seconds
}

// Snapshot returns the gateway's state now. With latency, it also sums the
// request-duration histograms of every route (a walk over the metric series:
// fine once a second, not per request).
func (g *Gateway) Snapshot(latency bool) Snapshot {
	return g.snapshot(g.current.Load(), latency)
}

func (g *Gateway) snapshot(gr *graph, latency bool) Snapshot {
	s := Snapshot{
		Time:        g.now(),
		Version:     g.version,
		Uptime:      g.now().Sub(g.started),
		Algorithm:   gr.cfg.Defaults.LoadBalancing,
		Ready:       g.ready.Load() && !g.draining.Load(),
		Connections: g.connections.Load(),
		Routes:      make([]RouteSnapshot, 0, len(gr.routes)),
		Upstreams:   make([]upstream.PoolStatus, 0, len(gr.pools)),
		Edge:        gr.edgeStats(),
		Reloads:     ReloadStats{Success: g.reloadsOK.Load(), Failure: g.reloadsBad.Load()},
	}
	if e := g.lastError.Load(); e != nil {
		s.Reloads.LastError = *e
	}
	for _, rt := range gr.routes {
		c := rt.counters
		rs := RouteSnapshot{Name: rt.name, Upstream: rt.pool.Name(), RequireAuth: rt.cfg.RequireAuth,
			Requests: c.requests.Load(), InFlight: c.inFlight.Load()}
		for i := range c.classes {
			rs.Responses[i] = c.classes[i].Load()
			s.Responses[i] += rs.Responses[i]
		}
		s.Requests += rs.Requests
		s.InFlight += rs.InFlight
		s.Routes = append(s.Routes, rs)
	}
	for _, p := range gr.pools {
		s.Upstreams = append(s.Upstreams, p.Status())
	}
	if latency {
		s.Latency = sumHistograms(g.metrics.duration)
	}
	return s
}

// sumHistograms adds up every child of a histogram vector.
func sumHistograms(vec *prometheus.HistogramVec) Histogram {
	h := Histogram{Bounds: durationBuckets, Counts: make([]uint64, len(durationBuckets))}
	ch := make(chan prometheus.Metric, 64)
	go func() {
		vec.Collect(ch)
		close(ch)
	}()
	var m dto.Metric
	for pm := range ch {
		m.Reset()
		if pm.Write(&m) != nil || m.Histogram == nil {
			continue
		}
		h.Count += m.Histogram.GetSampleCount()
		h.Sum += m.Histogram.GetSampleSum()
		for i, b := range m.Histogram.GetBucket() {
			if i < len(h.Counts) {
				h.Counts[i] += b.GetCumulativeCount()
			}
		}
	}
	return h
}

// Quantile estimates the q-quantile (0 < q < 1) of the observations between
// an earlier histogram prev (zero value: since start) and h, interpolating
// linearly inside a bucket as Prometheus's histogram_quantile does. It
// returns 0 when there were none, and the highest bound when the quantile
// falls in the +Inf bucket.
func (h Histogram) Quantile(prev Histogram, q float64) float64 {
	total := h.Count - prev.Count
	if total == 0 || len(h.Bounds) == 0 {
		return 0
	}
	at := func(x Histogram, i int) uint64 {
		if i < len(x.Counts) {
			return x.Counts[i]
		}
		return 0
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for i, ub := range h.Bounds {
		n := at(h, i) - at(prev, i)
		if float64(n) >= rank {
			inBucket := n - below
			if inBucket == 0 {
				return ub
			}
			return lower + (ub-lower)*(rank-float64(below))/float64(inBucket)
		}
		lower, below = ub, n
	}
	return h.Bounds[len(h.Bounds)-1]
}
