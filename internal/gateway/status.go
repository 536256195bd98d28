package gateway

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/altair-gateway/altair/internal/stats"
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
	Edge       stats.Edge            `json:"edge"`
	Reloads    stats.Reloads         `json:"config_reloads"`
	Features   map[string]bool       `json:"features"`
}

type routeStats struct {
	Name        string            `json:"name"`
	Upstream    string            `json:"upstream"`
	RequireAuth bool              `json:"require_auth"`
	Requests    uint64            `json:"requests"`
	InFlight    int64             `json:"in_flight"`
	Responses   map[string]uint64 `json:"responses"`
}

func classMap(c [6]uint64) map[string]uint64 {
	m := map[string]uint64{}
	for i, n := range c {
		if n > 0 {
			m[stats.ClassNames[i]] = n
		}
	}
	return m
}

func (g *Gateway) serveStats(w http.ResponseWriter, r *http.Request, gr *graph) {
	s := g.snapshot(gr, false)
	rep := statsReport{
		Version:    s.Version,
		Uptime:     s.Uptime.Seconds(),
		Algorithm:  s.Algorithm,
		RouteCount: len(s.Routes),
		Requests:   s.Requests,
		InFlight:   s.InFlight,
		Responses:  classMap(s.Responses),
		Routes:     make([]routeStats, 0, len(s.Routes)),
		Upstreams:  s.Upstreams,
		Edge:       s.Edge,
		Reloads:    s.Reloads,
		Features:   g.features(gr),
	}
	for _, rs := range s.Routes {
		rep.Routes = append(rep.Routes, routeStats{Name: rs.Name, Upstream: rs.Upstream,
			RequireAuth: rs.RequireAuth, Requests: rs.Requests, InFlight: rs.InFlight,
			Responses: classMap(rs.Responses)})
	}
	writeJSON(w, r, http.StatusOK, rep)
}

// features says which optional parts of the gateway are on in the live
// config (the flags of /stats).
func (g *Gateway) features(gr *graph) map[string]bool {
	c := gr.cfg
	jwt := c.Auth.JWT.Secret != "" || len(c.Auth.JWT.Keys) > 0 || c.Auth.JWT.JWKSURL != ""
	return map[string]bool{
		"rate_limit":       !c.Edge.RateLimit.Disabled,
		"ddos_protection":  !c.Edge.DDoS.Disabled,
		"security_headers": !c.SecurityHeaders.Disabled,
		"cors":             !c.CORS.Disabled,
		"jwt":              jwt,
		"api_keys":         len(c.Auth.APIKeys.Keys) > 0 || c.Auth.APIKeys.File != "",
		"admin_api":        c.Admin.Token != "",
		"metrics":          !c.Metrics.Disabled,
		"monitor":          !c.Monitor.Disabled,
		"access_log":       g.access != nil && gr.accessLog,
		"tracing":          g.tracer != nil,
		"compression":      gr.compressor != nil,
		"caching":          cacheWanted(c),
		"redis":            g.cluster != nil,
	}
}

func (g *Gateway) uptime() float64 {
	return g.now().Sub(g.started).Round(time.Millisecond).Seconds()
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
