package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/altair-gateway/altair/internal/pluginapi"
	"strings"
	"time"
)

// The allowed values of enumerated fields. They are functions, not package
// variables, so that no caller can change them for everyone.
func logLevels() []string  { return []string{"debug", "info", "warn", "error"} }
func logFormats() []string { return []string{"json", "text"} }

// LogSubsystems names the subsystems whose level log.levels can set.
func LogSubsystems() []string {
	return []string{"gateway", "router", "proxy", "circuit", "config", "admin", "auth", "ddos", "tracer", "cache", "cluster", "plugin"}
}
func algorithms() []string { return []string{"round-robin", "least-conn", "ip-hash", "weighted"} }
func checkTypes() []string { return []string{"http", "tcp", "grpc"} }

// Upstream protocols (transport.protocol).
const (
	ProtocolHTTP1 = "http1"
	ProtocolH2    = "h2"
	ProtocolH2C   = "h2c"
)

func protocols() []string { return []string{ProtocolHTTP1, ProtocolH2, ProtocolH2C} }

// Validate reports every problem in c at once, as Problems, each with its YAML
// path and, for a config from Load, its line; nil when c is valid. A zero field
// is valid (it means "use the default"), so Validate may run before or after
// ApplyDefaults. It does not change c.
func (c *Config) Validate() error {
	return c.validate(nil).err()
}

// routeSource says where a route came from, to name its problems: a file route
// has base "routes[2]"; an environment route has the variable's name as base
// and remaps the sub-paths it knows to the variables that set them.
type routeSource struct {
	base  string
	remap map[string]string // sub-path ("backends[0].url") → path; nil for file routes
}

// path returns the path of the field at sub ("" for the route itself).
func (s routeSource) path(sub string) string {
	if p, ok := s.remap[sub]; ok {
		return p
	}
	if sub == "" {
		return s.base
	}
	return s.base + "." + sub
}

func routePath(i int) string { return "routes[" + strconv.Itoa(i) + "]" }

// validator collects problems; paths get their lines from the config.
type validator struct {
	c  *Config
	ps Problems
}

func (v *validator) add(path, format string, args ...any) {
	v.ps = append(v.ps, Problem{Path: path, Line: v.c.Line(path), Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) check(path string, err error) {
	if err != nil {
		v.add(path, "%s", err.Error())
	}
}

func (v *validator) duration(path string, d time.Duration) {
	if d < 0 {
		v.add(path, "must not be negative")
	}
}

func (v *validator) count(path string, n int64) {
	if n < 0 {
		v.add(path, "must not be negative")
	}
}

// validate checks c; srcs says where each route came from (nil: the file).
func (c *Config) validate(srcs []routeSource) Problems {
	v := &validator{c: c}

	s := &c.Server
	if s.Listen != "" {
		v.check("server.listen", checkListen(listenAddr(s.Listen)))
	}
	v.duration("server.read_header_timeout", s.ReadHeaderTimeout)
	v.duration("server.idle_timeout", s.IdleTimeout)
	v.count("server.max_header_bytes", int64(s.MaxHeaderBytes))
	v.duration("server.shutdown_timeout", s.ShutdownTimeout)
	v.duration("server.drain_delay", s.DrainDelay)
	for i, p := range s.TrustedProxies {
		v.check(fmt.Sprintf("server.trusted_proxies[%d]", i), checkCIDR(p))
	}
	v.serverTLS(s)
	if c.Log.Level != "" {
		v.check("log.level", checkOneOf(c.Log.Level, logLevels()))
	}
	if c.Log.Format != "" {
		v.check("log.format", checkOneOf(c.Log.Format, logFormats()))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Log.Levels)) {
		if err := checkOneOf(name, LogSubsystems()); err != nil {
			v.add("log.levels."+name, "unknown subsystem %q: want one of %s", name, strings.Join(LogSubsystems(), ", "))
			continue
		}
		v.check("log.levels."+name, checkOneOf(strings.ToLower(c.Log.Levels[name]), logLevels()))
	}
	if r := c.Log.Access.Sample; r != nil && !(*r >= 0 && *r <= 1) {
		v.add("log.access.sample", "must be between 0 and 1, got %v", *r)
	}
	v.tracing(&c.Tracing)
	v.cache(c)
	v.redis()
	v.count("server.max_uri_bytes", int64(s.MaxURIBytes))
	v.count("server.max_body_bytes", s.MaxBodyBytes)
	v.security()
	v.metrics()
	v.monitor()

	v.duration("defaults.timeout", c.Defaults.Timeout)
	defaults := settingsProblems(&c.Defaults.UpstreamSettings)
	for _, p := range defaults {
		v.add("defaults."+p.sub, "%s", p.msg)
	}

	for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) {
		u := c.Upstreams[name]
		base := "upstreams." + name
		if !validName(name) {
			v.add(base, "upstream name %q must match [a-z0-9][a-z0-9_.-]*", name)
		}
		if u == nil || len(u.Backends) == 0 {
			v.add(base+".backends", "upstream has no backends")
		}
		if u == nil {
			continue
		}
		v.backends(func(sub string) string { return base + "." + sub }, u.Backends)
		v.protocol(func(sub string) string { return base + "." + sub }, u.Transport.Protocol, u.Backends)
		for _, p := range settingsProblems(&u.UpstreamSettings) {
			path := base + "." + p.sub
			// A bad default inherited by every upstream is reported once, under
			// defaults, unless the upstream also wrote the value itself.
			if _, own := c.lines[path]; !own && slices.Contains(defaults, p) {
				continue
			}
			v.add(path, "%s", p.msg)
		}
	}

	names := make(map[string]string) // route name → path of its first route
	matches := make(map[string]int)  // match key → index of its first route
	for i := range c.Routes {
		src := routeSource{base: routePath(i)}
		if i < len(srcs) {
			src = srcs[i]
		}
		v.route(i, src, names, matches, srcs)
	}
	return v.ps
}

// backends checks a pool's members; path maps "backends[0].url" to a full path.
func (v *validator) backends(path func(string) string, bs []Backend) {
	for k, b := range bs {
		at := "backends[" + strconv.Itoa(k) + "]"
		v.check(path(at+".url"), checkBackendURL(b.URL))
		if b.Weight < 0 {
			v.add(path(at+".weight"), "must not be negative")
		}
		if b.InsecureSkipVerify {
			if u, err := url.Parse(b.URL); err == nil && u.Scheme != "https" {
				v.add(path(at+".insecure_skip_verify"), "applies to https backends only")
			}
		}
	}
}

// protocol checks that a pool's backends fit its transport.protocol: h2
// needs https backends, h2c http ones.
func (v *validator) protocol(path func(string) string, protocol string, bs []Backend) {
	want := ""
	switch protocol {
	case ProtocolH2:
		want = "https"
	case ProtocolH2C:
		want = "http"
	default:
		return
	}
	for k, b := range bs {
		u, err := url.Parse(b.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Scheme == want {
			continue // a bad URL is reported by backends
		}
		v.add(path("backends["+strconv.Itoa(k)+"].url"), "transport.protocol %s needs %s backends", protocol, want)
	}
}

func (v *validator) route(i int, src routeSource, names map[string]string, matches map[string]int, srcs []routeSource) {
	c := v.c
	r := &c.Routes[i]
	P := src.path

	switch {
	case r.Name == "":
		v.add(P("name"), "name is required")
	case !validName(r.Name):
		v.add(P("name"), "name %q must match [a-z0-9][a-z0-9_.-]*", r.Name)
	case r.Name == "none":
		v.add(P("name"), "name \"none\" is reserved: metrics use it for requests that match no route")
	default:
		if first, dup := names[r.Name]; dup {
			v.add(P("name"), "name %q is already used by %s", r.Name, first)
		} else {
			names[r.Name] = P("")
		}
	}

	if len(r.Plugins) > MaxRoutePlugins {
		v.add(P("plugins"), "has %d plugins; at most %d", len(r.Plugins), MaxRoutePlugins)
	}
	labels := make(map[string]bool, len(r.Plugins))
	for j, pu := range r.Plugins {
		at := P("plugins[" + strconv.Itoa(j) + "]")
		if pu.Label != "" {
			if !pluginapi.ValidName(pu.Label) {
				v.add(at+".label", "%q: want lower-case letters, digits, '-', '_' or '.'", pu.Label)
			} else if labels[pu.Label] {
				v.add(at+".label", "%q is used twice on this route", pu.Label)
			}
			labels[pu.Label] = true
		}
		switch {
		case pu.Name == "":
			v.add(at+".name", "is required")
		case !pluginapi.ValidName(pu.Name):
			v.add(at+".name", "%q: want lower-case letters, digits, '-', '_' or '.'", pu.Name)
		}
		if k := pu.Config.Kind; k != 0 && k != yaml.MappingNode && !(k == yaml.ScalarNode && pu.Config.Tag == "!!null") {
			v.add(at+".config", "must be a mapping")
		}
	}
	if r.RequireClientCert && !c.Server.TLS.ClientAuth.Enabled() {
		v.add(P("require_client_cert"), "needs server.tls.client_auth: the listener must ask for client certificates")
	}

	switch {
	case r.Upstream != "" && len(r.Backends) > 0:
		v.add(P("upstream"), "upstream and backends are mutually exclusive")
	case r.Upstream == "" && len(r.Backends) == 0:
		v.add(P(""), "route needs an upstream or backends")
	case r.Upstream != "":
		if _, ok := c.Upstreams[r.Upstream]; !ok {
			v.add(P("upstream"), "unknown upstream %q", r.Upstream)
		}
	case r.Name != "":
		if _, ok := c.Upstreams[r.Name]; ok {
			v.add(P("name"), "upstream %q already exists; inline backends form an upstream named after the route, so rename the route or use upstream: %s", r.Name, r.Name)
		}
	}
	v.backends(P, r.Backends)
	v.protocol(P, c.Defaults.Transport.Protocol, r.Backends)
	v.duration(P("timeout"), r.Timeout)
	v.count(P("websocket.max_connections"), int64(r.WebSocket.MaxConnections))
	v.duration(P("websocket.idle_timeout"), r.WebSocket.Idle())
	v.routeSecurity(P, r)

	params, pathOK := v.match(P, &r.Match)
	if r.StripPrefix && r.Match.Prefix == "" {
		v.add(P("strip_prefix"), "strip_prefix requires match.prefix")
	}
	if r.Rewrite != "" {
		switch {
		case r.StripPrefix:
			v.add(P("rewrite"), "rewrite and strip_prefix are mutually exclusive; write {suffix} in the rewrite to drop the prefix")
		case pathOK:
			v.check(P("rewrite"), checkRewrite(r.Rewrite, params, r.Match.Prefix != ""))
		}
	}
	v.headerOps(P("request_headers"), &r.RequestHeaders)
	v.headerOps(P("response_headers"), &r.ResponseHeaders)

	key := matchKey(&r.Match)
	if j, dup := matches[key]; dup {
		other := routePath(j)
		if j < len(srcs) {
			other = srcs[j].path("")
		}
		v.add(P("match"), "routes %q (%s) and %q have the same match; requests could not tell them apart", c.Routes[j].Name, other, r.Name)
	} else {
		matches[key] = i
	}
}

// match checks a route's match and returns its path parameters; ok is false
// when the path template is invalid (so the rewrite cannot be checked).
func (v *validator) match(P func(string) string, m *Match) (params []string, ok bool) {
	for k, h := range m.Hosts {
		v.check(P(fmt.Sprintf("match.hosts[%d]", k)), checkHost(h))
	}
	for k, meth := range m.Methods {
		if !validToken(meth) {
			v.add(P(fmt.Sprintf("match.methods[%d]", k)), "invalid method %q", meth)
		}
	}
	ok = true
	if m.Prefix != "" && m.Path != "" {
		v.add(P("match.path"), "match.prefix and match.path are mutually exclusive")
	}
	if m.Prefix != "" {
		if err := checkURLPath(m.Prefix); err != nil {
			v.check(P("match.prefix"), err)
		} else if strings.ContainsAny(m.Prefix, "{}") {
			v.add(P("match.prefix"), "prefix must not contain { or }; use match.path for parameters")
		}
	}
	if m.Path != "" {
		var err error
		if err = checkURLPath(m.Path); err == nil {
			params, err = pathParams(m.Path)
		}
		if err != nil {
			v.check(P("match.path"), err)
			ok = false
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
		path := P("match.headers." + name)
		if !validToken(name) {
			v.add(path, "invalid header name %q", name)
		} else if !validHeaderValue(m.Headers[name]) {
			v.add(path, "header value must not contain control characters")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.Query)) {
		if name == "" {
			v.add(P("match.query"), "query parameter name must not be empty")
		}
	}
	return params, ok
}

func (v *validator) headerOps(base string, ops *HeaderOps) {
	for _, set := range []struct {
		key string
		m   map[string]string
	}{{"set", ops.Set}, {"add", ops.Add}} {
		for _, name := range slices.Sorted(maps.Keys(set.m)) {
			path := base + "." + set.key + "." + name
			if !validToken(name) {
				v.add(path, "invalid header name %q", name)
			} else if !validHeaderValue(set.m[name]) {
				v.add(path, "header value must not contain control characters")
			}
		}
	}
	for k, name := range ops.Remove {
		if !validToken(name) {
			v.add(fmt.Sprintf("%s.remove[%d]", base, k), "invalid header name %q", name)
		}
	}
}

// relProblem is a problem at a path relative to an UpstreamSettings.
type relProblem struct{ sub, msg string }

// settingsProblems checks one UpstreamSettings (of the defaults or of an
// upstream); zero values are valid.
func settingsProblems(s *UpstreamSettings) []relProblem {
	var ps []relProblem
	add := func(sub, msg string) { ps = append(ps, relProblem{sub, msg}) }
	nonNeg := func(sub string, n int64) {
		if n < 0 {
			add(sub, "must not be negative")
		}
	}
	share := func(sub string, f float64) {
		if !(f >= 0 && f <= 1) { // also catches NaN
			add(sub, fmt.Sprintf("must be between 0 and 1, got %v", f))
		}
	}

	if s.LoadBalancing != "" {
		if err := checkOneOf(s.LoadBalancing, algorithms()); err != nil {
			add("load_balancing", err.Error())
		}
	}
	share("panic_threshold", s.PanicThreshold)

	h := &s.HealthCheck
	if h.Type != "" {
		if err := checkOneOf(h.Type, checkTypes()); err != nil {
			add("health_check.type", err.Error())
		}
	}
	switch {
	case h.Path != "":
		if err := checkURLPath(h.Path); err != nil {
			add("health_check.path", err.Error())
		}
	case h.Type == "http" && !h.Disabled:
		add("health_check.path", "an http health check needs a path, such as /healthz")
	}
	if h.Type == "grpc" && !h.Disabled && s.Transport.Protocol != ProtocolH2 && s.Transport.Protocol != ProtocolH2C {
		add("health_check.type", "a grpc health check needs transport.protocol h2 or h2c")
	}
	if h.ExpectedStatus != 0 && !validStatus(h.ExpectedStatus) {
		add("health_check.expected_status", fmt.Sprintf("must be a status between 100 and 599, got %d", h.ExpectedStatus))
	}
	nonNeg("health_check.interval", int64(h.Interval))
	nonNeg("health_check.timeout", int64(h.Timeout))
	if h.Interval > 0 && h.Timeout > h.Interval {
		add("health_check.timeout", fmt.Sprintf("must not exceed health_check.interval (%v)", h.Interval))
	}
	nonNeg("health_check.rise", int64(h.Rise))
	nonNeg("health_check.fall", int64(h.Fall))

	p := &s.PassiveHealth
	nonNeg("passive_health.consecutive_failures", int64(p.ConsecutiveFailures))
	nonNeg("passive_health.ejection_time", int64(p.EjectionTime))
	share("passive_health.max_ejected_share", p.MaxEjectedShare)

	b := &s.CircuitBreaker
	nonNeg("circuit_breaker.max_failures", int64(b.MaxFailures))
	nonNeg("circuit_breaker.timeout", int64(b.Timeout))
	nonNeg("circuit_breaker.min_requests", int64(b.MinRequests))

	r := &s.Retry
	nonNeg("retry.attempts", int64(r.Attempts))
	nonNeg("retry.backoff", int64(r.Backoff))
	nonNeg("retry.max_backoff", int64(r.MaxBackoff))
	nonNeg("retry.per_try_timeout", int64(r.PerTryTimeout))
	share("retry.budget", r.Budget)
	nonNeg("retry.max_body_bytes", r.MaxBodyBytes)
	for k, st := range r.OnStatus {
		if !validStatus(st) {
			add(fmt.Sprintf("retry.on_status[%d]", k), fmt.Sprintf("must be a status between 100 and 599, got %d", st))
		}
	}

	t := &s.Transport
	nonNeg("transport.max_idle_conns", int64(t.MaxIdleConns))
	nonNeg("transport.idle_conn_timeout", int64(t.IdleConnTimeout))
	nonNeg("transport.dial_timeout", int64(t.DialTimeout))
	if t.Protocol != "" {
		if err := checkOneOf(t.Protocol, protocols()); err != nil {
			add("transport.protocol", err.Error())
		}
	}
	for _, p := range upstreamTLSProblems(&t.TLS) {
		add("transport.tls"+p.sub, p.msg)
	}
	return ps
}

func validStatus(n int) bool { return n >= 100 && n <= 599 }

func checkOneOf(v string, allowed []string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	return fmt.Errorf("invalid value %q: want one of %s", v, strings.Join(quoted, ", "))
}

// checkListen accepts host:port with an empty host, an IP or a host name, and a
// numeric port.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid listen address %q: want host:port, such as :9777", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("invalid port %q in listen address: want 0 to 65535", port)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && !validHostname(strings.ToLower(host)) {
			return fmt.Errorf("invalid host %q in listen address", host)
		}
	}
	return nil
}

// checkCIDR accepts a CIDR such as 10.0.0.0/8 or a single IP.
func checkCIDR(s string) error {
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	return fmt.Errorf("invalid CIDR or IP %q", s)
}

// checkBackendURL accepts an absolute http or https URL with a host and
// optionally a path. Its messages never repeat the URL, which could hold a
// password.
func checkBackendURL(s string) error {
	if s == "" {
		return errors.New("url is required")
	}
	if err := checkServiceURL(s); err != nil {
		return err
	}
	// A backend URL is a base the request's path and query are put on: a
	// query of its own would be ambiguous.
	u, _ := url.Parse(s) // checkServiceURL parsed it already
	if u.RawQuery != "" || u.ForceQuery {
		return errors.New("url must not have a query")
	}
	return nil
}

// checkURLPath accepts an absolute URL path without query or fragment.
func checkURLPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q must start with /", p)
	case strings.ContainsAny(p, "?#"):
		return fmt.Errorf("path %q must not contain ? or #", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("path %q must not contain spaces or control characters", p)
	}
	return nil
}

// pathParams checks a path template such as /users/{id}/files/{rest...} and
// returns its parameter names.
func pathParams(p string) ([]string, error) {
	segs := strings.Split(p[1:], "/")
	var names []string
	for i, seg := range segs {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		inner, ok := strings.CutPrefix(seg, "{")
		if ok {
			inner, ok = strings.CutSuffix(inner, "}")
		}
		if !ok || strings.ContainsAny(inner, "{}") {
			return nil, fmt.Errorf("segment %q: a parameter must be a whole segment, such as /users/{id}", seg)
		}
		name, rest := strings.CutSuffix(inner, "...")
		switch {
		case rest && i != len(segs)-1:
			return nil, fmt.Errorf("{%s} must be the last segment", inner)
		case !validIdent(name):
			return nil, fmt.Errorf("parameter name %q must be an identifier", name)
		case name == "path" || name == "suffix":
			return nil, fmt.Errorf("parameter name %q is reserved", name)
		case slices.Contains(names, name):
			return nil, fmt.Errorf("duplicate parameter name %q", name)
		}
		names = append(names, name)
	}
	return names, nil
}

// checkRewrite checks that a rewrite template refers only to {path}, {suffix}
// (on a prefix route) and the route's path parameters.
func checkRewrite(tpl string, params []string, prefixRoute bool) error {
	if !strings.HasPrefix(tpl, "/") && !strings.HasPrefix(tpl, "{path}") && !strings.HasPrefix(tpl, "{suffix}") {
		return errors.New("rewrite must start with /, {path} or {suffix}")
	}
	for s := tpl; ; {
		i := strings.IndexAny(s, "{}")
		if i < 0 {
			return nil
		}
		if s[i] == '}' {
			return errors.New("unmatched } in rewrite")
		}
		s = s[i+1:]
		end := strings.IndexAny(s, "{}")
		if end < 0 || s[end] == '{' {
			return errors.New("unterminated { in rewrite")
		}
		name := s[:end]
		s = s[end+1:]
		switch {
		case name == "path":
		case name == "suffix":
			if !prefixRoute {
				return errors.New("{suffix} needs match.prefix")
			}
		case !slices.Contains(params, name):
			return fmt.Errorf("rewrite refers to {%s}, which is not a parameter of match.path", name)
		}
	}
}

// checkHost accepts a host name or a wildcard such as *.example.com.
func checkHost(h string) error {
	name := strings.ToLower(h)
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name = rest
	}
	if !validHostname(name) {
		return fmt.Errorf("invalid host %q: want a name such as api.example.com or a wildcard such as *.example.com", h)
	}
	return nil
}

// validHostname reports whether s (lower case) is a DNS name: dot-separated
// labels of letters, digits and inner hyphens.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validName reports whether s is a route or upstream name:
// [a-z0-9][a-z0-9_.-]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '_' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// validIdent reports whether s is an identifier: a letter or _ followed by
// letters, digits and _.
func validIdent(s string) bool {
	return validEnvName(s)
}

// validToken reports whether s is an HTTP token (RFC 9110, section 5.6.2), the
// syntax of methods and header names.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters other than tab, so that a
// configured value can never split a header.
func validHeaderValue(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f })
}

// matchKey identifies what a Match selects, ignoring order and case where HTTP
// does, so that two routes that would take the same requests are found.
func matchKey(m *Match) string {
	lower := func(ss []string, f func(string) string) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = f(s)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	pairs := func(m map[string]string, f func(string) string) []string {
		out := make([]string, 0, len(m))
		for k, v := range m {
			out = append(out, f(k)+"="+v)
		}
		slices.Sort(out)
		return out
	}
	same := func(s string) string { return s }
	return strings.Join([]string{
		strings.Join(lower(m.Hosts, strings.ToLower), ","),
		strings.Join(lower(m.Methods, strings.ToUpper), ","),
		"prefix=" + m.Prefix,
		"path=" + m.Path,
		strings.Join(pairs(m.Headers, strings.ToLower), "\x01"),
		strings.Join(pairs(m.Query, same), "\x01"),
	}, "\x00")
}

// reservedPaths are answered by the gateway itself, before routing.
func reservedPaths() []string { return []string{"/health", "/ready", "/stats"} }

// metrics checks the metrics section.
func (v *validator) metrics() {
	m := &v.c.Metrics
	if m.Disabled {
		return
	}
	switch {
	case m.Path == "": // unset: the default applies
	case !strings.HasPrefix(m.Path, "/"):
		v.add("metrics.path", "must start with \"/\"")
	case m.Path != path.Clean(m.Path):
		v.add("metrics.path", "must be a clean path (no \"//\", \".\" or \"..\" segments, no trailing slash), such as %q", path.Clean(m.Path))
	case slices.Contains(reservedPaths(), m.Path):
		v.add("metrics.path", "%s is reserved by the gateway", m.Path)
	case m.Path == "/admin" || strings.HasPrefix(m.Path, "/admin/"):
		v.add("metrics.path", "must not be under /admin")
	case !v.c.Monitor.Disabled && isMonitorPath(m.Path):
		v.add("metrics.path", "%s is the monitor's (set monitor.disabled to free it)", m.Path)
	}
	if m.OnAdmin && v.c.Admin.Token == "" {
		v.add("metrics.on_admin", "needs admin.token (ADMIN_TOKEN): the metrics would be served to no one")
	}
}

func (v *validator) tracing(t *Tracing) {
	if t.Protocol != "" {
		v.check("tracing.protocol", checkOneOf(t.Protocol, otlpProtocols()))
	}
	if t.Endpoint != "" {
		v.check("tracing.endpoint", checkOTLPURL(t.Endpoint))
	}
	if t.TracesEndpoint != "" {
		v.check("tracing.traces_endpoint", checkOTLPURL(t.TracesEndpoint))
	}
	if r := t.SampleRatio; r != nil && !(*r >= 0 && *r <= 1) {
		v.add("tracing.sample_ratio", "must be between 0 and 1, got %v", *r)
	}
}

func otlpProtocols() []string { return []string{"http/protobuf", "grpc"} }

// checkOTLPURL accepts an http or https URL with a host.
func checkOTLPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid OTLP endpoint %q: want an http:// or https:// URL with a host", s)
	}
	return nil
}

// isMonitorPath reports the paths the monitor answers when it is on: the
// page, its assets and its JSON.
func isMonitorPath(p string) bool {
	return p == "/monitor" || strings.HasPrefix(p, "/monitor/") || p == "/api/system-metrics"
}

// monitor checks the monitor section.
func (v *validator) monitor() {
	m := &v.c.Monitor
	if !m.Disabled && m.OnAdmin && v.c.Admin.Token == "" {
		v.add("monitor.on_admin", "needs admin.token (ADMIN_TOKEN): the monitor's data would be served to no one")
	}
}

func (v *validator) cache(c *Config) {
	k := &c.Cache
	if k.TTL != nil {
		v.duration("cache.ttl", *k.TTL)
	}
	v.count("cache.max_body_bytes", k.MaxBodyBytes)
	v.count("cache.max_memory_bytes", k.MaxMemoryBytes)
	if k.MaxMemoryBytes > 0 && k.MaxBodyBytes > k.MaxMemoryBytes {
		v.add("cache.max_body_bytes", "must not exceed cache.max_memory_bytes (%d)", k.MaxMemoryBytes)
	}
	v.duration("cache.keep_stale", k.KeepStale)
	v.duration("cache.coalesce_timeout", k.CoalesceTimeout)
	v.duration("cache.revalidate_timeout", k.RevalidateTimeout)
	if k.Store != "" {
		if err := checkOneOf(k.Store, cacheStores()); err != nil {
			v.check("cache.store", err)
		} else if k.Store != CacheStoreMemory && !c.Redis.Enabled() {
			v.add("cache.store", "%q needs redis.addrs (REDIS_ADDR)", k.Store)
		}
	}
	for i := range c.Routes {
		if t := c.Routes[i].Cache.TTL; t != nil {
			v.duration(fmt.Sprintf("routes[%d].cache.ttl", i), *t)
		}
	}
}
