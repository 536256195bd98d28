package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/altair-gateway/altair/internal/stats"
	"github.com/altair-gateway/altair/internal/upstream"
)

// Snapshot returns the gateway's state now. With latency, it also sums the
// request-duration histograms of every route (a walk over the metric series:
// fine once a second, not per request).
func (g *Gateway) Snapshot(latency bool) stats.Snapshot {
	return g.snapshot(g.current.Load(), latency)
}

func (g *Gateway) snapshot(gr *graph, latency bool) stats.Snapshot {
	s := stats.Snapshot{
		Time:        g.now(),
		Version:     g.version,
		Uptime:      g.now().Sub(g.started),
		Algorithm:   gr.cfg.Defaults.LoadBalancing,
		Ready:       g.ready.Load() && !g.draining.Load(),
		Connections: g.connections.Load(),
		Routes:      make([]stats.Route, 0, len(gr.routes)),
		Upstreams:   make([]upstream.PoolStatus, 0, len(gr.pools)),
		Edge:        gr.edgeStats(),
		Reloads:     stats.Reloads{Success: g.reloadsOK.Load(), Failure: g.reloadsBad.Load()},
	}
	if e := g.lastError.Load(); e != nil {
		s.Reloads.LastError = *e
	}
	s.Edge.Shared = g.cluster != nil && g.cluster.Up()
	for _, rt := range gr.routes {
		c := rt.counters
		rs := stats.Route{Name: rt.name, Upstream: rt.pool.Name(), RequireAuth: rt.cfg.RequireAuth,
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
func sumHistograms(vec *prometheus.HistogramVec) stats.Histogram {
	h := stats.Histogram{Bounds: durationBuckets, Counts: make([]uint64, len(durationBuckets))}
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
