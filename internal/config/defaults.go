package config

import (
	"slices"
	"strings"
	"time"
)

// Built-in defaults. They are constants so that no caller can change them for
// everyone else; ApplyDefaults is the one place that uses them.
const (
	defaultListen            = ":9777"
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultMaxHeaderBytes    = 65536
	defaultShutdownTimeout   = 30 * time.Second
	defaultLogLevel          = "info"
	defaultLogFormat         = "json"
	defaultMetricsPath       = "/metrics"
	defaultRouteTimeout      = 30 * time.Second

	defaultLoadBalancing  = "least-conn"
	defaultPanicThreshold = 0.5

	defaultHealthInterval = 10 * time.Second
	defaultHealthTimeout  = 2 * time.Second
	defaultHealthRise     = 2
	defaultHealthFall     = 3

	defaultConsecutiveFailures = 5
	defaultEjectionTime        = 30 * time.Second
	defaultMaxEjectedShare     = 0.5

	defaultBreakerMaxFailures = 5
	defaultBreakerTimeout     = 30 * time.Second

	defaultRetryAttempts     = 3
	defaultRetryBackoff      = 100 * time.Millisecond
	defaultRetryMaxBackoff   = time.Second
	defaultRetryBudget       = 0.2
	defaultRetryMaxBodyBytes = 65536

	defaultMaxIdleConns    = 100
	defaultIdleConnTimeout = 90 * time.Second
	defaultDialTimeout     = 5 * time.Second

	defaultWeight = 1

	defaultMaxURIBytes     = 8192
	defaultMaxBodyBytes    = 10 << 20
	defaultTLSMinVersion   = "1.2"
	defaultACMECacheDir    = "acme-cache"
	defaultACMERenewBefore = 30 * 24 * time.Hour

	defaultDDoSThreshold     = 1000
	defaultBlockDuration     = 10 * time.Minute
	defaultRequestsPerSecond = 100
	defaultBurst             = 200
	defaultRateLimitKey      = "ip"

	defaultContentTypeOptions      = "nosniff"
	defaultFrameOptions            = "DENY"
	defaultStrictTransportSecurity = "max-age=31536000; includeSubDomains"
	defaultContentSecurityPolicy   = "default-src 'none'; frame-ancestors 'none'"
	defaultReferrerPolicy          = "no-referrer"

	defaultCORSMaxAge = 10 * time.Minute

	defaultJWKSRefresh        = 10 * time.Minute
	defaultLeeway             = 30 * time.Second
	defaultAPIKeyHeader       = "X-API-Key"
	defaultForwardAuthTimeout = 5 * time.Second
)

// defaultRetryStatuses returns a fresh slice each time so that no two upstreams
// share (and could mutate) the same backing array.
func defaultRetryStatuses() []int { return []int{502, 503, 504} }

// The list and map defaults below are functions for the same reason: every
// config gets its own copy.
func defaultCORSOrigins() []string { return []string{"*"} }
func defaultCORSMethods() []string {
	return []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
}
func defaultCORSHeaders() []string {
	return []string{"Authorization", "Content-Type", "X-API-Key", "X-Request-ID"}
}
func defaultCORSExposedHeaders() []string { return []string{"X-Request-ID"} }
func defaultPublicPaths() []string {
	return []string{"/health", "/metrics", "/login", "/register", "/api/v1/public"}
}
func defaultSecretAlgorithms() []string      { return []string{"HS256", "HS384", "HS512"} }
func defaultClaimHeaders() map[string]string { return map[string]string{"sub": "X-User-ID"} }

// Default returns a config holding only the built-in defaults: no upstreams and
// no routes, which is a valid configuration (the gateway answers 404 to
// everything).
func Default() *Config {
	c := &Config{}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills every zero field. Each upstream first inherits, field by
// field, what the operator wrote in c.Defaults, and only then are the built-in
// defaults applied to c.Defaults and to every upstream. That order matters for
// derived defaults: an upstream that inherits nothing but sets its own
// health_check.path gets an http check even though c.Defaults, having no path,
// gets a tcp one.
//
// Because zero means "unset", a boolean that c.Defaults sets to true (such as
// health_check.disabled) cannot be set back to false on one upstream.
//
// A list or map left out (nil) gets the default; one written empty, such as
// on_status: [], cors.allowed_origins: [] or auth.public_paths: [], stays
// empty.
//
// A route's overrides of the global policies (rate_limit, cors,
// security_headers) are left as written, zero fields included: zero means
// "inherit", and the gateway merges each route's override over the global
// policy field by field. Filling them here would freeze the global values into
// every route and hide which fields the route really overrides. A route's
// max_body_bytes and timeout have no such merge and are filled here from
// server.max_body_bytes and defaults.timeout.
//
// ApplyDefaults is idempotent. It does not validate: a negative weight or an
// unknown balancing algorithm stays as written for Validate to report.
func (c *Config) ApplyDefaults() {
	s := &c.Server
	setString(&s.Listen, defaultListen)
	setDuration(&s.ReadHeaderTimeout, defaultReadHeaderTimeout)
	setDuration(&s.IdleTimeout, defaultIdleTimeout)
	setInt(&s.MaxHeaderBytes, defaultMaxHeaderBytes)
	setDuration(&s.ShutdownTimeout, defaultShutdownTimeout)
	setInt(&s.MaxURIBytes, defaultMaxURIBytes)
	setInt64(&s.MaxBodyBytes, defaultMaxBodyBytes)
	setString(&s.TLS.MinVersion, defaultTLSMinVersion)
	if s.TLS.ClientAuth.CAFile != "" {
		setString(&s.TLS.ClientAuth.Mode, ClientAuthRequire)
	}
	if a := &s.TLS.ACME; a.Enabled {
		setString(&a.CacheDir, defaultACMECacheDir)
		setDuration(&a.RenewBefore, defaultACMERenewBefore)
	}

	setString(&c.Log.Level, defaultLogLevel)
	setString(&c.Log.Format, defaultLogFormat)
	setString(&c.Tracing.Protocol, "http/protobuf")
	setString(&c.Tracing.ServiceName, "altair")
	c.Redis.applyDefaults()
	setString(&c.Metrics.Path, defaultMetricsPath)

	d := &c.Edge.DDoS
	setInt(&d.Threshold, defaultDDoSThreshold)
	setDuration(&d.BlockDuration, defaultBlockDuration)
	rl := &c.Edge.RateLimit
	setFloat(&rl.RequestsPerSecond, defaultRequestsPerSecond)
	setInt(&rl.Burst, defaultBurst)
	setString(&rl.Key, defaultRateLimitKey)

	h := &c.SecurityHeaders
	setString(&h.ContentTypeOptions, defaultContentTypeOptions)
	setString(&h.FrameOptions, defaultFrameOptions)
	setString(&h.StrictTransportSecurity, defaultStrictTransportSecurity)
	setString(&h.ContentSecurityPolicy, defaultContentSecurityPolicy)
	setString(&h.ReferrerPolicy, defaultReferrerPolicy)

	cors := &c.CORS
	setStrings(&cors.AllowedOrigins, defaultCORSOrigins)
	setStrings(&cors.AllowedMethods, defaultCORSMethods)
	setStrings(&cors.AllowedHeaders, defaultCORSHeaders)
	setStrings(&cors.ExposedHeaders, defaultCORSExposedHeaders)
	setDuration(&cors.MaxAge, defaultCORSMaxAge)

	a := &c.Auth
	setStrings(&a.PublicPaths, defaultPublicPaths)
	setStrings(&a.JWT.SecretAlgorithms, defaultSecretAlgorithms)
	setDuration(&a.JWT.JWKSRefresh, defaultJWKSRefresh)
	setDuration(&a.JWT.Leeway, defaultLeeway)
	if a.JWT.ClaimHeaders == nil {
		a.JWT.ClaimHeaders = defaultClaimHeaders()
	}
	setString(&a.APIKeys.Header, defaultAPIKeyHeader)

	setDuration(&c.Defaults.Timeout, defaultRouteTimeout)

	written := c.Defaults.UpstreamSettings.clone()
	if c.Upstreams == nil {
		c.Upstreams = make(map[string]*Upstream)
	}
	for name, u := range c.Upstreams {
		if u == nil {
			u = &Upstream{}
			c.Upstreams[name] = u
		}
		u.UpstreamSettings.inherit(&written)
		u.UpstreamSettings.applyBuiltin()
		defaultWeights(u.Backends)
	}
	c.Defaults.UpstreamSettings.applyBuiltin()

	for i := range c.Routes {
		r := &c.Routes[i]
		setDuration(&r.Timeout, c.Defaults.Timeout)
		setInt64(&r.MaxBodyBytes, c.Server.MaxBodyBytes)
		if r.Auth.Forward.URL != "" {
			setDuration(&r.Auth.Forward.Timeout, defaultForwardAuthTimeout)
		}
		defaultWeights(r.Backends)
	}
}

// defaultWeights sets zero weights to 1; negative ones stay for Validate.
func defaultWeights(bs []Backend) {
	for i := range bs {
		setInt(&bs[i].Weight, defaultWeight)
	}
}

// clone returns a deep copy (the only reference field is Retry.OnStatus).
func (s UpstreamSettings) clone() UpstreamSettings {
	s.Retry.OnStatus = slices.Clone(s.Retry.OnStatus)
	return s
}

// inherit fills each zero field of s from d.
func (s *UpstreamSettings) inherit(d *UpstreamSettings) {
	setString(&s.LoadBalancing, d.LoadBalancing)
	setFloat(&s.PanicThreshold, d.PanicThreshold)

	h, dh := &s.HealthCheck, &d.HealthCheck
	setBool(&h.Disabled, dh.Disabled)
	setString(&h.Type, dh.Type)
	setString(&h.Path, dh.Path)
	setString(&h.Service, dh.Service)
	setInt(&h.ExpectedStatus, dh.ExpectedStatus)
	setDuration(&h.Interval, dh.Interval)
	setDuration(&h.Timeout, dh.Timeout)
	setInt(&h.Rise, dh.Rise)
	setInt(&h.Fall, dh.Fall)

	p, dp := &s.PassiveHealth, &d.PassiveHealth
	setBool(&p.Disabled, dp.Disabled)
	setInt(&p.ConsecutiveFailures, dp.ConsecutiveFailures)
	setDuration(&p.EjectionTime, dp.EjectionTime)
	setFloat(&p.MaxEjectedShare, dp.MaxEjectedShare)

	b, db := &s.CircuitBreaker, &d.CircuitBreaker
	setBool(&b.Disabled, db.Disabled)
	setInt(&b.MaxFailures, db.MaxFailures)
	setDuration(&b.Timeout, db.Timeout)
	setInt(&b.MinRequests, db.MinRequests)

	r, dr := &s.Retry, &d.Retry
	setInt(&r.Attempts, dr.Attempts)
	setDuration(&r.Backoff, dr.Backoff)
	setDuration(&r.MaxBackoff, dr.MaxBackoff)
	setDuration(&r.PerTryTimeout, dr.PerTryTimeout)
	setFloat(&r.Budget, dr.Budget)
	setInt64(&r.MaxBodyBytes, dr.MaxBodyBytes)
	if r.OnStatus == nil && dr.OnStatus != nil {
		r.OnStatus = slices.Clone(dr.OnStatus)
	}

	t, dt := &s.Transport, &d.Transport
	setInt(&t.MaxIdleConns, dt.MaxIdleConns)
	setDuration(&t.IdleConnTimeout, dt.IdleConnTimeout)
	setDuration(&t.DialTimeout, dt.DialTimeout)
	setString(&t.Protocol, dt.Protocol)
	tt, dtt := &t.TLS, &dt.TLS
	setString(&tt.CAFile, dtt.CAFile)
	if tt.CertFile == "" && tt.KeyFile == "" {
		// A key pair comes from one place: never a certificate from the
		// defaults with a key of the upstream's own.
		tt.CertFile, tt.KeyFile = dtt.CertFile, dtt.KeyFile
	}
	setString(&tt.ServerName, dtt.ServerName)
	setString(&tt.MinVersion, dtt.MinVersion)
}

// applyBuiltin fills each zero field of s with the built-in default.
func (s *UpstreamSettings) applyBuiltin() {
	setString(&s.LoadBalancing, defaultLoadBalancing)
	setFloat(&s.PanicThreshold, defaultPanicThreshold)

	h := &s.HealthCheck
	if h.Type == "" {
		if h.Path != "" {
			h.Type = "http"
		} else {
			h.Type = "tcp"
		}
	}
	setDuration(&h.Interval, defaultHealthInterval)
	setDuration(&h.Timeout, min(defaultHealthTimeout, h.Interval))
	setInt(&h.Rise, defaultHealthRise)
	setInt(&h.Fall, defaultHealthFall)

	p := &s.PassiveHealth
	setInt(&p.ConsecutiveFailures, defaultConsecutiveFailures)
	setDuration(&p.EjectionTime, defaultEjectionTime)
	setFloat(&p.MaxEjectedShare, defaultMaxEjectedShare)

	b := &s.CircuitBreaker
	setInt(&b.MaxFailures, defaultBreakerMaxFailures)
	setDuration(&b.Timeout, defaultBreakerTimeout)
	setInt(&b.MinRequests, b.MaxFailures)

	r := &s.Retry
	setInt(&r.Attempts, defaultRetryAttempts)
	setDuration(&r.Backoff, defaultRetryBackoff)
	setDuration(&r.MaxBackoff, defaultRetryMaxBackoff)
	setFloat(&r.Budget, defaultRetryBudget)
	setInt64(&r.MaxBodyBytes, defaultRetryMaxBodyBytes)
	// nil means unset; an explicit empty list (on_status: []) means retry on
	// transport errors only and is kept.
	if r.OnStatus == nil {
		r.OnStatus = defaultRetryStatuses()
	}

	t := &s.Transport
	setInt(&t.MaxIdleConns, defaultMaxIdleConns)
	setDuration(&t.IdleConnTimeout, defaultIdleConnTimeout)
	setDuration(&t.DialTimeout, defaultDialTimeout)
	setString(&t.TLS.MinVersion, defaultTLSMinVersion)
}

// normalize gives a validated, defaulted config the one shape the gateway
// expects: inline route backends become implicit upstreams named after their
// route, methods are upper-case, hosts lower-case and the listen addresses are
// host:port. srcs says where each route came from (nil: all from YAML).
func (c *Config) normalize(srcs []routeSource) {
	c.Server.Listen = listenAddr(c.Server.Listen)
	c.Admin.Listen = listenAddr(c.Admin.Listen)
	c.Server.TLS.RedirectListen = listenAddr(c.Server.TLS.RedirectListen)
	c.Server.HTTP3.Listen = listenAddr(c.Server.HTTP3.Listen)
	if c.Upstreams == nil {
		c.Upstreams = make(map[string]*Upstream)
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		for j, m := range r.Match.Methods {
			r.Match.Methods[j] = strings.ToUpper(m)
		}
		for j, h := range r.Match.Hosts {
			r.Match.Hosts[j] = strings.ToLower(h)
		}
		if len(r.Backends) == 0 {
			continue
		}
		c.Upstreams[r.Name] = &Upstream{
			Backends:         r.Backends,
			UpstreamSettings: c.Defaults.UpstreamSettings.clone(),
		}
		if i >= len(srcs) || srcs[i].remap == nil {
			c.aliasLines(routePath(i)+".backends", "upstreams."+r.Name+".backends")
		}
		r.Upstream = r.Name
		r.Backends = nil
	}
}

// aliasLines records, for every known line under the path from, the same line
// under the path to, so that problems found later in an implicit upstream still
// point at the route's backends in the YAML file.
func (c *Config) aliasLines(from, to string) {
	for p, l := range c.lines {
		if rest, ok := strings.CutPrefix(p, from); ok && (rest == "" || rest[0] == '[' || rest[0] == '.') {
			c.lines[to+rest] = l
		}
	}
}

// listenAddr turns a bare port such as "9777" into ":9777".
func listenAddr(s string) string {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		return ":" + s
	}
	return s
}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setInt64(p *int64, v int64) {
	if *p == 0 {
		*p = v
	}
}

func setFloat(p *float64, v float64) {
	if *p == 0 {
		*p = v
	}
}

func setDuration(p *time.Duration, v time.Duration) {
	if *p == 0 {
		*p = v
	}
}

// setStrings sets a nil list to a fresh default; an empty one stays empty.
func setStrings(p *[]string, v func() []string) {
	if *p == nil {
		*p = v()
	}
}

func setBool(p *bool, v bool) {
	if !*p {
		*p = v
	}
}
