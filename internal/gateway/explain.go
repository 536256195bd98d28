package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/pluginapi"
	"github.com/altair-gateway/altair/internal/router"
	"github.com/altair-gateway/altair/internal/upstream"
)

// Explanation says how the gateway would handle one request, without sending
// anything anywhere: the route it matches, the middleware chain, the path the
// backend would see and the pool that would serve it.
type Explanation struct {
	Method       string               `json:"method"`
	URL          string               `json:"url"`
	CleanPath    string               `json:"clean_path"`
	Builtin      string               `json:"builtin,omitempty"`
	Matched      bool                 `json:"matched"`
	Route        string               `json:"route,omitempty"`
	RouteIndex   int                  `json:"route_index"`
	Line         int                  `json:"line,omitempty"`
	Conditions   string               `json:"conditions,omitempty"`
	Params       map[string]string    `json:"params,omitempty"`
	UpstreamPath string               `json:"upstream_path,omitempty"`
	Chain        []string             `json:"chain,omitempty"`
	RequireAuth  bool                 `json:"require_auth"`
	DirectLane   bool                 `json:"direct_lane"`
	Timeout      string               `json:"timeout,omitempty"`
	Upstream     *upstream.PoolStatus `json:"upstream,omitempty"`
}

// Explain builds cfg's graph without starting it and reports how r would be
// handled; plugins are those the binary has (nil: none).
func Explain(cfg *config.Config, r *http.Request, plugins *pluginapi.Registry) (*Explanation, error) {
	gr, err := build(cfg, detachedDeps(plugins))
	if err != nil {
		return nil, err
	}
	defer gr.close()

	path := router.CleanPath(r.URL.Path)
	ex := &Explanation{Method: r.Method, URL: r.URL.String(), CleanPath: path, RouteIndex: -1}
	switch path {
	case "/health", "/ready", "/stats":
		ex.Builtin = path
		ex.Chain = []string{"request-id", "builtin(" + path + ")"}
		return ex, nil
	}
	var params router.Params
	// The lane runs on the HTTP/1.1 server, which serves a cleartext
	// listener without h2c.
	if !cfg.Tracing.Enabled && !cfg.Server.TLS.Enabled() && !cfg.Server.H2C {
		if r.RequestURI == "" {
			r.RequestURI = r.URL.RequestURI() // as the client would send it
		}
		_, _, _, ex.DirectLane = gr.directRoute(r, &params)
		params.Reset()
	}
	r.URL.Path = path
	i := gr.router.Match(r, path, &params)
	if i < 0 {
		ex.Chain = []string{"request-id", "path-clean", "route-match", "404 route_not_found"}
		return ex, nil
	}
	rt := gr.routes[i]
	ex.Matched = true
	ex.Route = rt.name
	ex.RouteIndex = i
	ex.Line = cfg.Line(fmt.Sprintf("routes[%d]", i))
	ex.Conditions = gr.router.Describe(i)
	if params.Len() > 0 {
		ex.Params = make(map[string]string, params.Len())
		for j := 0; j < params.Len(); j++ {
			ex.Params[params.Name(j)] = params.Value(j)
		}
	}
	ex.UpstreamPath = rt.upstreamPath(path, &params)
	ex.Chain = rt.describe()
	ex.RequireAuth = rt.cfg.RequireAuth
	if rt.timeout > 0 {
		ex.Timeout = rt.timeout.String()
	}
	st := rt.pool.Status()
	ex.Upstream = &st
	return ex, nil
}

// WriteText prints the explanation for a terminal.
func (ex *Explanation) WriteText(w io.Writer) {
	p := func(k, v string) { fmt.Fprintf(w, "%-14s %s\n", k+":", v) }
	p("request", ex.Method+" "+ex.URL)
	p("clean path", ex.CleanPath)
	if ex.Builtin != "" {
		p("answered by", "the gateway itself ("+ex.Builtin+")")
		return
	}
	if !ex.Matched {
		p("route", "none: the gateway answers 404 route_not_found")
		return
	}
	route := ex.Route + fmt.Sprintf(" (routes[%d]", ex.RouteIndex)
	if ex.Line > 0 {
		route += fmt.Sprintf(", line %d", ex.Line)
	}
	p("route", route+")")
	p("conditions", ex.Conditions)
	if len(ex.Params) > 0 {
		var parts []string
		for k, v := range ex.Params {
			parts = append(parts, k+"="+v)
		}
		p("params", strings.Join(parts, " "))
	}
	p("upstream path", ex.UpstreamPath)
	p("require auth", fmt.Sprint(ex.RequireAuth))
	lane := "no: the chain below serves it"
	if ex.DirectLane {
		lane = "yes: the chain's steps are done without the chain (same answer)"
	}
	p("direct lane", lane)
	if ex.Timeout != "" {
		p("timeout", ex.Timeout)
	}
	p("chain", strings.Join(ex.Chain, " → "))
	if u := ex.Upstream; u != nil {
		p("upstream", fmt.Sprintf("%s (%s, %d backends)", u.Name, u.Algorithm, u.Total))
		for _, b := range u.Backends {
			fmt.Fprintf(w, "%-14s - %s weight=%d\n", "", b.URL, b.Weight)
		}
	}
}
