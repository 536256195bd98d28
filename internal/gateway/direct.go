package gateway

import (
	"net/http"
	"net/netip"
	"sync"

	"github.com/altair-gateway/altair/internal/admin/monitor"
	"github.com/altair-gateway/altair/internal/compress"
	"github.com/altair-gateway/altair/internal/httperr"
	"github.com/altair-gateway/altair/internal/observe"
	"github.com/altair-gateway/altair/internal/router"
	"github.com/altair-gateway/altair/internal/upstream"
)

// The direct lane serves the commonest request — a bodiless GET, HEAD or
// OPTIONS on a route with no middleware of its own but CORS and
// compression — without passing it
// through the handler chain, whose steps would each look at it and let it
// through. It does what the chain does for such a request, in the same
// order: the request id and security headers, the path cleaning, the edge's
// client IP and IP lists, routing, the route's counters, metrics and access
// log line, the headers CORS adds to a request that is no preflight, the
// Vary header compression would add, and the proxy's fast path. A request
// any step would act on differently is declined before anything is written
// or changed, and takes the chain: an edge refusal, a 404, a reserved path
// (health, stats, metrics, monitor, admin), a CORS preflight, a client that
// accepts compression. TestDirectLaneMatchesChain holds the two to the
// same output.
//
// The lane exists for speed: the chain's per-request contexts, request
// copies and wrappers cost about a fifth of a proxied request's CPU.

// ServeDirect answers r on the direct lane when the live graph and r allow
// it, and reports whether it did. It is the HTTP/1 server's Direct hook: w's
// header map is the connection's own, and ctl serves the request's timeout
// and informational answers.
func (g *Gateway) ServeDirect(w http.ResponseWriter, r *http.Request, ctl upstream.Control) bool {
	if g.tracer != nil {
		return false
	}
	gr := g.current.Load()
	var params router.Params
	rt, path, ip, ok := gr.directRoute(r, &params)
	if !ok {
		return false
	}

	// From here on the request is this lane's.
	ensureRequestID(w, r)
	// The access line's, taken now: the proxy step turns r into the
	// outgoing request.
	id := r.Header[httperr.RequestIDHeader]
	host := r.Host // the proxy step may change r.Host (header operations)
	sec := gr.security
	if rt.security != nil {
		sec = rt.security // the chain resets the global set and applies this
	}
	if rh, ok := ctl.(rawHeaderer); ok {
		rh.RawHeader(sec.Lines(w.Header())) // see Lines: what the chain's Apply sets
	} else {
		sec.Apply(w.Header())
	}
	r.URL.Path, r.URL.RawPath = path, ""
	start := g.now()
	c := rt.counters
	c.requests.Add(1)
	c.inFlight.Add(1)
	if rt.cors != nil {
		rt.cors.Simple(w.Header(), r)
	}
	dw := directWriters.Get().(*directWriter)
	dw.ResponseWriter, dw.status, dw.final, dw.bytes, dw.comp = w, 0, false, 0, rt.comp
	dw.rec.Reset()
	dw.rec.ClientIP = ip
	// Deferred, as in serveEntry: a response the proxy aborts mid-body is
	// counted and logged too.
	defer func() {
		d := g.now().Sub(start)
		status := dw.status
		if status == 0 {
			status = 499 // nothing was written: the client went away
		}
		c.inFlight.Add(-1)
		c.observe(status)
		rm := c.metrics
		if rm == nil {
			rm = g.none
		}
		rm.observe(r.Method, status, d)
		if g.logsAccess(gr, status) {
			dw.entry = observe.AccessEntry{
				Time: start, RequestID: id[0],
				Method: r.Method, Host: host, Path: path, Route: rm.route,
				Status: status, Bytes: dw.bytes, Duration: d, Record: &dw.rec,
			}
			g.access.Log(&dw.entry)
			dw.entry = observe.AccessEntry{}
		}
		dw.ResponseWriter, dw.comp = nil, nil
		directWriters.Put(dw)
	}()
	r.URL.Path = rt.upstreamPath(path, &params)
	rt.directProxy.ServeDirect(dw, r, ctl, ip)
	return true
}

// rawHeaderer is the HTTP/1 server's DirectControl.RawHeader: the security
// headers go out as fixed lines rather than header map entries.
type rawHeaderer interface{ RawHeader(lines []byte) }

// directRoute decides whether r takes the direct lane on gr, changing
// nothing: on yes it returns r's route, cleaned path (params holds its
// parameters) and client IP. Tracing, which the gateway has or not, is
// ServeDirect's to check.
func (gr *graph) directRoute(r *http.Request, params *router.Params) (*route, string, netip.Addr, bool) {
	var none netip.Addr
	if !gr.direct || !upstream.DirectEligible(r) || r.TLS != nil {
		return nil, "", none, false
	}
	if gr.maxURI > 0 && len(r.RequestURI) > gr.maxURI {
		return nil, "", none, false
	}
	path := router.CleanPath(r.URL.Path)
	if hasDotParamSegment(path) || gr.reserved(path) {
		return nil, "", none, false
	}
	h := r.Header
	if len(h["Access-Control-Request-Method"]) > 0 {
		return nil, "", none, false
	}
	for _, k := range gr.identityHeaders {
		if _, ok := h[k]; ok {
			return nil, "", none, false
		}
	}
	ip, ok := gr.guard.Admit(r)
	if !ok {
		return nil, "", none, false
	}
	i := gr.router.Match(r, path, params)
	if i < 0 {
		return nil, "", none, false
	}
	rt := gr.routes[i]
	if rt.directProxy == nil || (rt.comp != nil && !rt.comp.Identity(r)) {
		return nil, "", none, false
	}
	return rt, path, ip, true
}

// reserved reports whether the gateway answers path itself, or may: the
// direct lane leaves those paths to the chain.
func (gr *graph) reserved(path string) bool {
	switch path {
	case "/health", "/ready", "/stats":
		return true
	}
	return (gr.metricsPath != "" && path == gr.metricsPath) || monitor.IsPath(path) || isAdminPath(path)
}

// directWriter is the direct lane's ResponseWriter: it records the status
// as statusWriter does and adds the Vary header as compression's writer
// does for a client that accepts no coding.
type directWriter struct {
	http.ResponseWriter
	status int
	final  bool                 // a final (non-1xx) status was written
	bytes  int64                // body bytes written
	comp   *compress.Compressor // the route's; nil: compression off
	rec    observe.Record       // filled in by the lane and the proxy
	entry  observe.AccessEntry
}

// Record implements observe.Recorder.
func (w *directWriter) Record() *observe.Record { return &w.rec }

var directWriters = sync.Pool{New: func() any { return new(directWriter) }}

func (w *directWriter) WriteHeader(code int) {
	if !w.final && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.final = true
		if w.comp != nil {
			w.comp.MarkVary(w.Header(), code)
		}
	}
	if w.status == 0 || (w.status >= 100 && w.status < 200 && code >= 200) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *directWriter) Write(b []byte) (int, error) {
	if !w.final {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// FlushError flushes the response, deciding its status first as Write does.
func (w *directWriter) FlushError() error {
	if !w.final {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *directWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
