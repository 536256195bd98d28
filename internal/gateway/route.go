package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/altair-gateway/altair/internal/auth"
	"github.com/altair-gateway/altair/internal/cache"
	"github.com/altair-gateway/altair/internal/compress"
	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/edge"
	"github.com/altair-gateway/altair/internal/identity"
	"github.com/altair-gateway/altair/internal/middleware"
	"github.com/altair-gateway/altair/internal/observe"
	"github.com/altair-gateway/altair/internal/router"
	"github.com/altair-gateway/altair/internal/upstream"
)

// route is one configured route, compiled: everything a request needs is
// precomputed here so serving it parses nothing.
type route struct {
	name     string
	cfg      *config.Route
	pool     *upstream.Pool
	handler  http.Handler                // the pool's proxy for this route
	chain    http.Handler                // CORS → auth → rate limit → body limit → plugins → cache → proxy step
	steps    []string                    // names of the chain's steps, for explain
	security *middleware.SecurityHeaders // nil: the global set applies unchanged
	rewrite  *template                   // nil: no rewrite
	// answersPreflight: the route's CORS policy answers preflights itself.
	answersPreflight bool
	stripPrefix      string // "" or the prefix to strip
	timeout          time.Duration
	counters         *routeCounters
	onRetry          func() // nil: retries not counted
	tracer           *observe.Tracer
	compressor       *compress.Compressor // the graph's default; set before buildChain
	cache            *cache.Cache         // the graph's; nil when no route caches
	plugins          pluginDeps           // set before buildChain
	// directProxy is the proxy step of a route whose chain does nothing to
	// a request the direct lane takes (nil: the lane declines the route);
	// comp is the route's compressor (nil: off), which adds Vary there.
	directProxy upstream.Direct
	comp        *compress.Compressor
	cors        *middleware.CORS // nil: CORS off on the route
	pluginUses  []*pluginUse     // the route's plugins, for their closers
}

// routeCounters are a route's request counters; they survive reloads for routes
// that keep their name.
type routeCounters struct {
	requests atomic.Uint64
	inFlight atomic.Int64
	upgrades atomic.Int64     // upgrade requests being served, open connections included
	classes  [6]atomic.Uint64 // index status/100; 0 holds anything out of range
	metrics  *requestMetrics  // nil when the graph does not serve (validate, explain)
}

func (c *routeCounters) observe(status int) {
	i := status / 100
	if i < 1 || i > 5 {
		i = 0
	}
	c.classes[i].Add(1)
}

func newRoute(rc *config.Route, pool *upstream.Pool, counters *routeCounters) (*route, error) {
	rt := &route{name: rc.Name, cfg: rc, pool: pool, timeout: rc.Timeout, counters: counters}
	if rc.Rewrite != "" {
		t, err := compileTemplate(rc.Rewrite, rc.Match.Prefix != "")
		if err != nil {
			return nil, err
		}
		rt.rewrite = t
	} else if rc.StripPrefix && rc.Match.Prefix != "" && rc.Match.Prefix != "/" {
		rt.stripPrefix = strings.TrimSuffix(rc.Match.Prefix, "/")
	}
	return rt, nil
}

// buildChain compiles the route's middleware: the order is fixed and
// documented (docs/configuration.md, "Request processing order").
func (rt *route) buildChain(cfg *config.Config, i int, authn *auth.Authenticator, limiter edge.Limiter) config.Problems {
	rc := rt.cfg
	var problems config.Problems
	at := func(field string) string { return fmt.Sprintf("routes[%d].%s", i, field) }

	sec := cfg.SecurityHeaders
	if rc.SecurityHeaders != (config.SecurityHeaders{}) {
		sec = middleware.MergeSecurityHeaders(cfg.SecurityHeaders, rc.SecurityHeaders)
		rt.security = middleware.NewSecurityHeaders(sec)
	}
	mods := []func(*http.Response) error{middleware.NewSecurityHeaders(sec).ModifyResponse}

	var cors *middleware.CORS
	if cc := middleware.MergeCORS(cfg.CORS, rc.CORS); !cc.Disabled {
		c, err := middleware.NewCORS(cc)
		if err != nil {
			problems = append(problems, problem(cfg, at("cors"), "%v", err))
		} else {
			cors = c
			mods = append(mods, c.ModifyResponse)
		}
	}
	if m := responseHeaderOps(rc.ResponseHeaders); m != nil {
		mods = append(mods, m)
	}
	rt.handler = rt.pool.Handler(upstream.RouteOptions{
		Route:          rc.Name,
		Timeout:        rc.Timeout,
		RewriteRequest: requestHeaderOps(rc.RequestHeaders),
		ModifyResponse: chainModify(mods),
		OnRetry:        rt.onRetry,
		Tracer:         rt.tracer,
	})

	// Built from the inside out; steps lists them outside in.
	var h http.Handler = http.HandlerFunc(rt.proxy)
	var steps []string
	h, caches := rt.routeCache(cfg, h, &steps)
	h, uses, psteps, perr := rt.buildPlugins(cfg, i, rt.plugins, h)
	problems = append(problems, perr...)
	rt.pluginUses = uses
	for j := len(psteps) - 1; j >= 0; j-- {
		steps = append(steps, psteps[j])
	}
	if rc.MaxBodyBytes > 0 {
		h = middleware.BodyLimit(rc.MaxBodyBytes)(h)
		steps = append(steps, fmt.Sprintf("body-limit(%d)", rc.MaxBodyBytes))
	}
	if comp, err := routeCompressor(cfg, rc, rt.compressor); err != nil {
		problems = append(problems, problem(cfg, at("compression"), "%v", err))
	} else if comp != nil {
		rt.comp = comp
		h = comp.Wrap(h)
		steps = append(steps, "compress("+strings.Join(comp.Encodings(), ",")+")")
	}
	rl := mergeRateLimit(cfg.Edge.RateLimit, rc.RateLimit)
	limit := func(h http.Handler) http.Handler {
		ns := "global|"
		if rc.RateLimit != (config.RateLimit{}) {
			ns = "route:" + rc.Name + "|"
		}
		steps = append(steps, fmt.Sprintf("rate-limit(%g/s burst %d by %s)", rl.RequestsPerSecond, rl.Burst, rl.Key))
		return edge.RateLimit(limiter, ns, rl.RequestsPerSecond, rl.Burst, rateKey(rl.Key))(h)
	}
	// An identity key needs the caller authenticated first; an IP key
	// throttles before auth, so credential guessing is throttled too.
	identityKey := rl.Key != "ip" && rl.Key != ""
	if !rl.Disabled && identityKey {
		h = limit(h)
	}
	if rc.RequireAuth {
		if caches && rc.Auth.Forward.URL != "" {
			// A forward-auth service may know the caller by fields the
			// credentials partition does not cover: narrow it by what the
			// service said (copy_headers) and store only shareable answers.
			h = forwardedIdentity(rc.Auth.Forward.CopyHeaders, h)
		}
		mw, err := authn.Middleware(rc.Auth, rc.Name)
		if err != nil {
			problems = append(problems, authProblems(cfg, fmt.Sprintf("routes[%d]", i), err)...)
		} else {
			h = mw(h)
			methods := rc.Auth.Methods
			if len(methods) == 0 {
				methods = authn.Methods()
				if rc.Auth.Forward.URL != "" {
					methods = append(methods, "forward")
				}
			}
			steps = append(steps, "auth("+strings.Join(methods, ",")+")")
		}
	}
	if caches && cfg.Server.TLS.ClientAuth.Enabled() {
		h = clientCertPartition(h)
	}
	if caches {
		// Auth removes the credentials it checked; the cache keys its
		// entries by them, so they are read before.
		h = cache.CaptureCredentials(cfg.Auth.APIKeys.Header)(h)
		steps = append(steps, "cache-credentials")
	}
	if !rl.Disabled && !identityKey {
		h = limit(h)
	}
	if rc.RequireClientCert {
		h = requireClientCert(h)
		steps = append(steps, "client-cert")
	}
	if cors != nil {
		h = cors.Wrap(h)
		rt.answersPreflight = true
		steps = append(steps, "cors")
	}
	if d, ok := rt.handler.(upstream.Direct); ok && rt.pool.Lean() && !rc.RequireAuth && !caches &&
		len(psteps) == 0 && rl.Disabled && !rc.RequireClientCert {
		// A Lean pool: see upstream.ServeDirect. Left in the chain: CORS
		// (the lane takes no preflight, and adds
		// what CORS adds to other requests), compression (the lane takes
		// only requests it passes, and adds its Vary) and the body limit
		// (nothing to limit on a bodiless request).
		rt.directProxy, rt.cors = d, cors
	}
	slices.Reverse(steps)
	rt.steps = steps
	rt.chain = h
	return problems
}

// forwardedIdentity narrows the cache's credentials partition of a request
// that forward auth allowed (cache.WithForwardedIdentity); it runs after
// the auth step.
func forwardedIdentity(copyHeaders []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := identity.PrincipalFrom(r.Context()); p != nil && p.Method == auth.MethodForward {
			r = r.WithContext(cache.WithForwardedIdentity(r.Context(), r.Header, copyHeaders))
		}
		next.ServeHTTP(w, r)
	})
}

func chainModify(mods []func(*http.Response) error) func(*http.Response) error {
	return func(resp *http.Response) error {
		for _, m := range mods {
			if err := m(resp); err != nil {
				return err
			}
		}
		return nil
	}
}

// mergeRateLimit applies a route's rate-limit override field by field.
func mergeRateLimit(base, over config.RateLimit) config.RateLimit {
	out := base
	if over.Disabled {
		out.Disabled = true
	}
	if over.RequestsPerSecond > 0 || over.Burst > 0 || over.Key != "" {
		out.Disabled = over.Disabled
	}
	if over.RequestsPerSecond > 0 {
		out.RequestsPerSecond = over.RequestsPerSecond
	}
	if over.Burst > 0 {
		out.Burst = over.Burst
	}
	if over.Key != "" {
		out.Key = over.Key
	}
	return out
}

// rateKey returns how a request's rate-limit bucket is named. A request
// without the configured identity falls back to its IP.
func rateKey(key string) func(*http.Request) string {
	ip := func(r *http.Request) string {
		if a, ok := identity.ClientIP(r.Context()); ok {
			return "ip:" + edge.Bucket(a).String() // IPv6: per /64
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		return "ip:" + host
	}
	switch {
	case key == "api_key", key == "jwt_sub":
		method := "api_key"
		if key == "jwt_sub" {
			method = "jwt"
		}
		return func(r *http.Request) string {
			// A principal without a name (a token without sub) must not share
			// one bucket with every other such caller.
			if p := identity.PrincipalFrom(r.Context()); p != nil && p.Method == method && p.Name != "" {
				return method + ":" + p.Name
			}
			return ip(r)
		}
	case strings.HasPrefix(key, "header:"):
		name := http.CanonicalHeaderKey(strings.TrimPrefix(key, "header:"))
		return func(r *http.Request) string {
			if v := r.Header.Get(name); v != "" {
				return "h:" + v
			}
			return ip(r)
		}
	}
	return ip
}

// upstreamPathKey carries the forwarded path through the middleware chain
// for routes whose rewrite uses path parameters.
type upstreamPathKey struct{}

// upstreamPath is the path forwarded to the backend for a request whose cleaned
// path is path.
func (rt *route) upstreamPath(path string, params *router.Params) string {
	switch {
	case rt.rewrite != nil:
		return rt.rewrite.expand(path, rt.suffix(path), params)
	case rt.stripPrefix != "":
		return rt.suffix(path)
	}
	return path
}

// suffix is the part of path after the route's prefix, always starting with "/".
func (rt *route) suffix(path string) string {
	p := rt.cfg.Match.Prefix
	if p == "" || p == "/" {
		return path
	}
	p = strings.TrimSuffix(p, "/")
	s := path[min(len(p), len(path)):]
	if s == "" {
		return "/"
	}
	return s
}

func (rt *route) serve(w http.ResponseWriter, r *http.Request, params *router.Params) {
	c := rt.counters
	c.requests.Add(1)
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)

	if rt.security != nil {
		middleware.ResetSecurityHeaders(w.Header())
		rt.security.Apply(w.Header())
	}
	if rt.rewrite != nil && rt.rewrite.usesParams {
		// Parameters exist only here; the proxy step runs after the chain.
		r = r.WithContext(context.WithValue(r.Context(), upstreamPathKey{}, rt.upstreamPath(r.URL.Path, params)))
	}

	// Gateway.serveEntry has already wrapped w: name the route on it, so the
	// request is counted under this route.
	sw, outer := w.(*statusWriter)
	if outer {
		sw.metrics = c.metrics
	} else {
		sw = statusWriters.Get().(*statusWriter)
		sw.ResponseWriter, sw.status = w, 0
	}
	defer func() { // deferred: an aborted response is counted too
		status := sw.status
		if !outer {
			sw.ResponseWriter = nil
			statusWriters.Put(sw)
		}
		if status == 0 {
			status = 499 // the handler wrote nothing: the client went away
		}
		c.observe(status)
	}()
	rt.chain.ServeHTTP(sw, r)
}

// proxy is the chain's last step: the path the backend sees, then the pool.
func (rt *route) proxy(w http.ResponseWriter, r *http.Request) {
	up, ok := r.Context().Value(upstreamPathKey{}).(string)
	if !ok {
		up = rt.upstreamPath(r.URL.Path, &router.Params{})
	}
	r.URL.Path, r.URL.RawPath = up, ""
	if isUpgrade(r) {
		rt.proxyUpgrade(w, r)
		return
	}
	rt.handler.ServeHTTP(w, r)
}

// describe lists, in order, what a request on this route passes through; used
// by `altair explain`.
func (rt *route) describe() []string {
	out := []string{"request-id", "security-headers", "path-clean", "edge-guard", "route-match"}
	out = append(out, rt.steps...)
	switch {
	case rt.rewrite != nil:
		out = append(out, "rewrite("+rt.cfg.Rewrite+")")
	case rt.stripPrefix != "":
		out = append(out, "strip-prefix("+rt.stripPrefix+")")
	}
	if h := rt.cfg.RequestHeaders; len(h.Set)+len(h.Add)+len(h.Remove) > 0 {
		out = append(out, "request-headers")
	}
	if h := rt.cfg.ResponseHeaders; len(h.Set)+len(h.Add)+len(h.Remove) > 0 {
		out = append(out, "response-headers")
	}
	if rt.timeout > 0 {
		out = append(out, "timeout("+rt.timeout.String()+")")
	}
	out = append(out, "proxy(upstream="+rt.pool.Name()+")")
	return out
}

// statusWriter records the status a handler answered with. It implements
// Unwrap so http.ResponseController reaches the real writer for Flush and
// Hijack (SSE and WebSocket keep working).
type statusWriter struct {
	http.ResponseWriter
	status  int
	bytes   int64           // body bytes written
	metrics *requestMetrics // the matched route's, set by route.serve
	rec     observe.Record  // filled in by the edge, auth and the proxy
	entry   observe.AccessEntry
}

// Record implements observe.Recorder.
func (w *statusWriter) Record() *observe.Record { return &w.rec }

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 || (w.status >= 100 && w.status < 200 && code >= 200) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush lets ReverseProxy flush streaming responses without a type switch.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush() //nolint:errcheck // nothing to do when flushing fails
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack records a protocol switch: the reverse proxy hijacks the client
// connection to hand over a 101 answer and never calls WriteHeader.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// requestHeaderOps compiles a route's request header changes. A "Host" entry
// changes the Host the backend sees.
func requestHeaderOps(ops config.HeaderOps) func(*http.Request) {
	if len(ops.Set)+len(ops.Add)+len(ops.Remove) == 0 {
		return nil
	}
	apply := headerOps(ops)
	host, setHost := "", false
	for k, v := range ops.Set {
		if http.CanonicalHeaderKey(k) == "Host" {
			host, setHost = v, true
		}
	}
	return func(out *http.Request) {
		apply(out.Header)
		if setHost {
			out.Host = host
			out.Header.Del("Host")
		}
	}
}

func responseHeaderOps(ops config.HeaderOps) func(*http.Response) error {
	if len(ops.Set)+len(ops.Add)+len(ops.Remove) == 0 {
		return nil
	}
	apply := headerOps(ops)
	return func(resp *http.Response) error {
		apply(resp.Header)
		return nil
	}
}

type kv struct{ k, v string }

func headerOps(ops config.HeaderOps) func(http.Header) {
	remove := make([]string, len(ops.Remove))
	for i, k := range ops.Remove {
		remove[i] = http.CanonicalHeaderKey(k)
	}
	set := canonicalPairs(ops.Set)
	add := canonicalPairs(ops.Add)
	return func(h http.Header) {
		for _, k := range remove {
			delete(h, k)
		}
		for _, p := range set {
			h[p.k] = []string{p.v}
		}
		for _, p := range add {
			h[p.k] = append(h[p.k], p.v)
		}
	}
}

func canonicalPairs(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{http.CanonicalHeaderKey(k), v})
	}
	return out
}

// template is a compiled rewrite template such as "/v2/users/{id}{suffix}".
type template struct {
	parts      []tmplPart
	usesParams bool // any part other than {path} and {suffix}
}

type tmplPart struct {
	lit   string
	param string // "" for a literal
}

func compileTemplate(s string, isPrefix bool) (*template, error) {
	t := &template{}
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			t.parts = append(t.parts, tmplPart{lit: s})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed { in rewrite template")
		}
		name := s[i+1 : i+j]
		if name == "" {
			return nil, fmt.Errorf("empty {} in rewrite template")
		}
		if name == "suffix" && !isPrefix {
			return nil, fmt.Errorf("{suffix} needs a prefix match")
		}
		t.parts = append(t.parts, tmplPart{param: name})
		if name != "path" && name != "suffix" {
			t.usesParams = true
		}
		s = s[i+j+1:]
	}
	return t, nil
}

func (t *template) expand(path, suffix string, params *router.Params) string {
	var b strings.Builder
	b.Grow(len(path) + 16)
	for _, p := range t.parts {
		switch p.param {
		case "":
			b.WriteString(p.lit)
		case "path":
			b.WriteString(path)
		case "suffix":
			b.WriteString(suffix)
		default:
			b.WriteString(params.Get(p.param))
		}
	}
	// CleanPath merges the "//" a join such as "/v2/{suffix}" produces and keeps
	// a parameter from climbing out of the template.
	return router.CleanPath(b.String())
}
