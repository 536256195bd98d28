package gateway

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/altair-gateway/altair/internal/upstream"
)

// healthReport is the body of GET /health.
type healthReport struct {
	Status    string                `json:"status"` // "ok" or "degraded"
	Version   string                `json:"version"`
	Uptime    float64               `json:"uptime_seconds"`
	Routes    []routeHealth         `json:"routes"`
	Upstreams []upstream.PoolStatus `json:"upstreams"`
	Warnings  []string              `json:"warnings,omitempty"`
}

type routeHealth struct {
	Name     string `json:"name"`
	Upstream string `json:"upstream"`
	Healthy  int    `json:"healthy_backends"`
	Total    int    `json:"total_backends"`
	Status   string `json:"status"`
}

// serveHealth is the liveness answer: 200 whenever the process serves, with the
// health of every route and backend in the body.
func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request, gr *graph) {
	rep := healthReport{Status: "ok", Version: g.version, Uptime: g.uptime(), Routes: []routeHealth{}}
	pools := make(map[string]upstream.PoolStatus, len(gr.pools))
	for _, p := range gr.pools {
		st := p.Status()
		pools[st.Name] = st
		rep.Upstreams = append(rep.Upstreams, st)
	}
	for _, rt := range gr.routes {
		st := pools[rt.pool.Name()]
		h := routeHealth{Name: rt.name, Upstream: st.Name, Healthy: st.Healthy, Total: st.Total, Status: "ok"}
		switch {
		case st.Healthy == 0:
			h.Status = "down"
			rep.Status = "degraded"
		case st.Healthy < st.Total:
			h.Status = "degraded"
			rep.Status = "degraded"
		}
		rep.Routes = append(rep.Routes, h)
	}
	if rep.Upstreams == nil {
		rep.Upstreams = []upstream.PoolStatus{}
	}
	if len(gr.routes) == 0 {
		rep.Warnings = append(rep.Warnings, "no routes configured")
	}
	writeJSON(w, r, http.StatusOK, rep)
}

// serveReady is the readiness answer: 200 once a config is live and the
// listener is up, 503 before that and while draining.
func (g *Gateway) serveReady(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		writeJSON(w, r, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	if !g.ready.Load() {
		writeJSON(w, r, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
}

// statsReport is the body of GET /stats.
type statsReport struct {
	Version    string                `json:"version"`
	Uptime     float64               `json:"uptime_seconds"`
	Algorithm  string                `json:"load_balancing"`
	RouteCount int                   `json:"route_count"`
	Requests   uint64                `json:"requests_total"`
	InFlight   int64                 `json:"in_flight"`
	Responses  map[string]uint64     `json:"responses"`
	Routes     []routeStats          `json:"routes"`
	Upstreams  []upstream.PoolStatus `json:"upstreams"`
	Edge       edgeStats             `json:"edge"`
	Reloads    reloadStats           `json:"config_reloads"`
}

// edgeStats summarises the edge guard's state.
type edgeStats struct {
	AllowEntries  int    `json:"allow_entries"`
	DenyEntries   int    `json:"deny_entries"`
	BlockedIPs    int    `json:"blocked_ips"`
	BlocksTotal   uint64 `json:"blocks_total"`
	RateLimitKeys int    `json:"rate_limit_keys"`
	AdminAPI      bool   `json:"admin_api"`
}

type routeStats struct {
	Name        string            `json:"name"`
	Upstream    string            `json:"upstream"`
	RequireAuth bool              `json:"require_auth"`
	Requests    uint64            `json:"requests"`
	InFlight    int64             `json:"in_flight"`
	Responses   map[string]uint64 `json:"responses"`
}

type reloadStats struct {
	Success   uint64 `json:"success"`
	Failure   uint64 `json:"failure"`
	LastError string `json:"last_error,omitempty"`
}

var classNames = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (g *Gateway) serveStats(w http.ResponseWriter, r *http.Request, gr *graph) {
	rep := statsReport{
		Version:    g.version,
		Uptime:     g.uptime(),
		Algorithm:  gr.cfg.Defaults.LoadBalancing,
		RouteCount: len(gr.routes),
		Responses:  map[string]uint64{},
		Routes:     []routeStats{},
		Upstreams:  []upstream.PoolStatus{},
		Reloads:    reloadStats{Success: g.reloadsOK.Load(), Failure: g.reloadsBad.Load()},
		Edge:       gr.edgeStats(),
	}
	if e := g.lastError.Load(); e != nil {
		rep.Reloads.LastError = *e
	}
	for _, rt := range gr.routes {
		c := rt.counters
		rs := routeStats{Name: rt.name, Upstream: rt.pool.Name(), RequireAuth: rt.cfg.RequireAuth,
			Requests: c.requests.Load(), InFlight: c.inFlight.Load(), Responses: map[string]uint64{}}
		for i := range c.classes {
			if n := c.classes[i].Load(); n > 0 {
				rs.Responses[classNames[i]] = n
				rep.Responses[classNames[i]] += n
			}
		}
		rep.Requests += rs.Requests
		rep.InFlight += rs.InFlight
		rep.Routes = append(rep.Routes, rs)
	}
	for _, p := range gr.pools {
		rep.Upstreams = append(rep.Upstreams, p.Status())
	}
	writeJSON(w, r, http.StatusOK, rep)
}

func (g *Gateway) uptime() float64 {
	return float64(g.now().Sub(g.started).Round(time.Millisecond)) / float64(time.Second)
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "encode", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(b, '\n'))
	}
}
