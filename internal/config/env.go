package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Environment variables, a compatibility contract with the original gateway.
const (
	envGatewayPort           = "GATEWAY_PORT"
	envLoadBalancingAlgo     = "LOAD_BALANCING_ALGO"
	envHealthCheckInterval   = "HEALTH_CHECK_INTERVAL"
	envConnectionTimeout     = "CONNECTION_TIMEOUT"
	envMaxIdleConns          = "MAX_IDLE_CONNS"
	envIdleConnTimeout       = "IDLE_CONN_TIMEOUT"
	envCircuitBreakerMax     = "CIRCUIT_BREAKER_MAX"
	envCircuitBreakerTimeout = "CIRCUIT_BREAKER_TIMEOUT"
	envLogLevel              = "LOG_LEVEL"
	envTrustedProxies        = "TRUSTED_PROXIES"
	envServiceRoutes         = "SERVICE_ROUTES"
	envRoutePrefix           = "ROUTE_" // ROUTE_<NAME>_PREFIX and ROUTE_<NAME>_URL
	envJWTSecret             = "JWT_SECRET"
	envAPIKeys               = "API_KEYS"
	envAdminToken            = "ADMIN_TOKEN"
	envCORSAllowedOrigins    = "CORS_ALLOWED_ORIGINS"
	envMaxRequestsPerSecond  = "MAX_REQUESTS_PER_SECOND"
	envMaxBurstSize          = "MAX_BURST_SIZE"
	envDDoSThreshold         = "DDOS_THRESHOLD"
	envBlockDuration         = "BLOCK_DURATION"
	envEnableCompression     = "ENABLE_COMPRESSION"
	envEnableCaching         = "ENABLE_CACHING"
	envCacheTTL              = "CACHE_TTL"

	// OpenTelemetry's standard variables.
	envOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envOTLPProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envOTLPTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envOTelServiceName    = "OTEL_SERVICE_NAME"
	envOTelSamplerArg     = "OTEL_TRACES_SAMPLER_ARG"
	envOTelSDKDisabled    = "OTEL_SDK_DISABLED"
	envOTelTracesExporter = "OTEL_TRACES_EXPORTER"
)

// parseEnviron turns "KEY=value" entries into a map; a later entry for the same
// key wins, as with os/exec.
func parseEnviron(environ []string) map[string]string {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" {
			env[k] = v
		}
	}
	return env
}

// lookup returns the trimmed value of name; an empty value counts as unset, as
// compose files and Kubernetes manifests often define variables as "".
func lookup(env map[string]string, name string) (string, bool) {
	v := strings.TrimSpace(env[name])
	return v, v != ""
}

// applyEnv overrides c with the environment and adds its routes, keeping srcs
// aligned with c.Routes. A value that is not valid is reported under the
// variable's name and not applied, so that validation does not report it again
// under a YAML path.
func applyEnv(c *Config, env map[string]string, srcs *[]routeSource) Problems {
	var ps Problems
	bad := func(name string, err error) {
		ps = append(ps, Problem{Path: name, Msg: err.Error()})
	}

	if v, ok := lookup(env, envGatewayPort); ok {
		addr := listenAddr(v)
		if err := checkListen(addr); err != nil {
			bad(envGatewayPort, err)
		} else {
			c.Server.Listen = addr
		}
	}
	if v, ok := lookup(env, envLogLevel); ok {
		v = strings.ToLower(v)
		if err := checkOneOf(v, logLevels()); err != nil {
			bad(envLogLevel, err)
		} else {
			c.Log.Level = v
		}
	}
	if v, ok := lookup(env, envTrustedProxies); ok {
		var proxies []string
		valid := true
		for p := range strings.SplitSeq(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if err := checkCIDR(p); err != nil {
				bad(envTrustedProxies, err)
				valid = false
			}
			proxies = append(proxies, p)
		}
		if valid && proxies != nil {
			c.Server.TrustedProxies = proxies
		}
	}
	if v, ok := lookup(env, envLoadBalancingAlgo); ok {
		if err := checkOneOf(v, algorithms()); err != nil {
			bad(envLoadBalancingAlgo, err)
		} else {
			c.Defaults.LoadBalancing = v
		}
	}

	d := &c.Defaults
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{envHealthCheckInterval, &d.HealthCheck.Interval},
		{envConnectionTimeout, &d.Timeout},
		{envIdleConnTimeout, &d.Transport.IdleConnTimeout},
		{envCircuitBreakerTimeout, &d.CircuitBreaker.Timeout},
	}
	for _, e := range durations {
		if v, ok := lookup(env, e.name); ok {
			if dur, err := parseEnvDuration(v); err != nil {
				bad(e.name, err)
			} else {
				*e.dst = dur
			}
		}
	}
	ints := []struct {
		name string
		dst  *int
	}{
		{envMaxIdleConns, &d.Transport.MaxIdleConns},
		{envCircuitBreakerMax, &d.CircuitBreaker.MaxFailures},
	}
	for _, e := range ints {
		if v, ok := lookup(env, e.name); ok {
			if n, err := parseEnvInt(v); err != nil {
				bad(e.name, err)
			} else {
				*e.dst = n
			}
		}
	}

	ps = append(ps, applySecurityEnv(c, env)...)

	routes, rsrcs, rps := envRoutes(env)
	ps = append(ps, rps...)
	for k, r := range routes {
		addEnvRoute(c, srcs, r, rsrcs[k])
	}
	return ps
}

// applySecurityEnv applies the variables of the admin, edge, cors and auth
// sections. Secrets are never repeated in a message.
func applySecurityEnv(c *Config, env map[string]string) Problems {
	var ps Problems
	bad := func(name string, err error) {
		ps = append(ps, Problem{Path: name, Msg: err.Error()})
	}

	if v, ok := lookup(env, envJWTSecret); ok {
		if err := checkJWTSecret(v); err != nil {
			bad(envJWTSecret, err)
		} else {
			c.Auth.JWT.Secret = v
		}
	}
	applyOTelEnv(&c.Tracing, env, bad)
	applyRedisEnv(&c.Redis, env, bad)
	if v, ok := lookup(env, envEnableCaching); ok {
		on, err := strconv.ParseBool(v)
		if err != nil {
			bad(envEnableCaching, fmt.Errorf("want true or false, got %q", v))
		} else {
			c.Cache.Enabled = on
		}
	}
	if v, ok := lookup(env, envCacheTTL); ok {
		if d, err := parseEnvDuration(v); err != nil {
			bad(envCacheTTL, err)
		} else {
			c.Cache.TTL = &d
		}
	}
	if v, ok := lookup(env, envEnableCompression); ok {
		on, err := strconv.ParseBool(v)
		if err != nil {
			bad(envEnableCompression, fmt.Errorf("want true or false, got %q", v))
		} else {
			c.Compression.Disabled = !on
		}
	}
	if v, ok := lookup(env, envAdminToken); ok {
		if err := CheckSecret("token", v); err != nil {
			bad(envAdminToken, err)
		} else {
			c.Admin.Token = v
		}
	}
	if v, ok := lookup(env, envAPIKeys); ok {
		keys, kps := parseAPIKeys(v, c.Auth.APIKeys.Keys)
		if len(kps) > 0 {
			ps = append(ps, kps...)
		} else {
			c.Auth.APIKeys.Keys = append(c.Auth.APIKeys.Keys, keys...)
		}
	}
	if v, ok := lookup(env, envCORSAllowedOrigins); ok {
		var origins []string
		dec := json.NewDecoder(strings.NewReader(v))
		err := dec.Decode(&origins)
		switch {
		case err == nil && dec.More():
			err = errors.New("data after the array")
		case err == nil && origins == nil:
			err = errors.New("got null")
		}
		if err != nil {
			bad(envCORSAllowedOrigins, fmt.Errorf(`want a JSON array of strings, such as ["https://app.example.com"]: %w`, err))
		} else {
			valid := true
			for _, o := range origins {
				if err := checkOrigin(o); err != nil {
					bad(envCORSAllowedOrigins, err)
					valid = false
				}
			}
			if valid {
				c.CORS.AllowedOrigins = origins
			}
		}
	}
	if v, ok := lookup(env, envMaxRequestsPerSecond); ok {
		if f, err := parseEnvRate(v); err != nil {
			bad(envMaxRequestsPerSecond, err)
		} else {
			c.Edge.RateLimit.RequestsPerSecond = f
		}
	}
	for _, e := range []struct {
		name string
		dst  *int
	}{
		{envMaxBurstSize, &c.Edge.RateLimit.Burst},
		{envDDoSThreshold, &c.Edge.DDoS.Threshold},
	} {
		if v, ok := lookup(env, e.name); ok {
			if n, err := parseEnvPositiveInt(v); err != nil {
				bad(e.name, err)
			} else {
				*e.dst = n
			}
		}
	}
	if v, ok := lookup(env, envBlockDuration); ok {
		d, err := parseEnvDuration(v)
		if err == nil && d == 0 {
			err = fmt.Errorf("invalid duration %q: must be greater than 0", v)
		}
		if err != nil {
			bad(envBlockDuration, err)
		} else {
			c.Edge.DDoS.BlockDuration = d
		}
	}
	return ps
}

// parseAPIKeys parses API_KEYS: comma-separated "name:key" or bare "key"
// entries, the bare ones named key-1, key-2, ... in order. file holds the
// keys of the file, whose names the new ones must not reuse. Problems are
// reported per entry, as API_KEYS[i], and never quote a key.
func parseAPIKeys(v string, file []APIKey) ([]APIKey, Problems) {
	var (
		keys  []APIKey
		ps    Problems
		bare  int
		names = make(map[string]string) // name → path of its first key
	)
	for i, k := range file {
		if _, dup := names[k.Name]; !dup {
			names[k.Name] = fmt.Sprintf("auth.api_keys.keys[%d]", i)
		}
	}
	for j, e := range strings.Split(v, ",") {
		path := envAPIKeys + "[" + strconv.Itoa(j) + "]"
		bad := func(format string, args ...any) {
			ps = append(ps, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
		}
		e = strings.TrimSpace(e)
		if e == "" {
			bad("empty entry: want name:key or key")
			continue
		}
		var k APIKey
		if name, key, ok := strings.Cut(e, ":"); ok {
			k = APIKey{Name: strings.TrimSpace(name), Key: strings.TrimSpace(key)}
		} else {
			bare++
			k = APIKey{Name: "key-" + strconv.Itoa(bare), Key: e}
		}
		switch first, dup := names[k.Name]; {
		case k.Name == "":
			bad("name is empty: want name:key or key")
		case !ValidKeyName(k.Name):
			bad("name %q must match [A-Za-z0-9_.-]+", k.Name)
		case dup:
			bad("name %q is already used by %s", k.Name, first)
		default:
			names[k.Name] = path
		}
		if err := CheckSecret("key", k.Key); err != nil {
			bad("%v", err)
		}
		keys = append(keys, k)
	}
	return keys, ps
}

// parseEnvRate accepts a finite number greater than 0.
func parseEnvRate(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("invalid number %q", v)
	}
	if f <= 0 {
		return 0, fmt.Errorf("invalid number %q: must be greater than 0", v)
	}
	return f, nil
}

// parseEnvPositiveInt accepts an integer of at least 1.
func parseEnvPositiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("invalid integer %q", v)
	}
	if n < 1 {
		return 0, fmt.Errorf("invalid integer %q: must be at least 1", v)
	}
	return n, nil
}

// addEnvRoute replaces the file's route of the same name, or appends r.
func addEnvRoute(c *Config, srcs *[]routeSource, r Route, src routeSource) {
	for i := range c.Routes {
		if (*srcs)[i].remap == nil && c.Routes[i].Name == r.Name {
			c.Routes[i] = r
			(*srcs)[i] = src
			// The file's lines for this index describe the replaced route.
			prefix := routePath(i)
			for p := range c.lines {
				if rest, ok := strings.CutPrefix(p, prefix); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
					delete(c.lines, p)
				}
			}
			return
		}
	}
	c.Routes = append(c.Routes, r)
	*srcs = append(*srcs, src)
}

// parseEnvDuration accepts Go durations ("30s", "10m") and bare integers, which
// mean seconds.
func parseEnvDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("invalid duration %q: must not be negative", v)
		}
		if n > math.MaxInt64/int64(time.Second) {
			return 0, fmt.Errorf("invalid duration %q: too large", v)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", v)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", v)
	}
	return d, nil
}

func parseEnvInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("invalid integer %q", v)
	}
	if n < 0 {
		return 0, fmt.Errorf("invalid integer %q: must not be negative", v)
	}
	return n, nil
}

// serviceRoute is one entry of SERVICE_ROUTES.
type serviceRoute struct {
	Prefix      string  `json:"prefix"`
	TargetURL   string  `json:"target_url"`
	StripPrefix bool    `json:"strip_prefix"`
	RequireAuth bool    `json:"require_auth"`
	Weight      int     `json:"weight"`
	TimeoutSecs float64 `json:"timeout_secs"`
}

// envRoutes builds the routes of SERVICE_ROUTES and of ROUTE_<NAME>_PREFIX /
// ROUTE_<NAME>_URL pairs, in that order, with the source of each.
func envRoutes(env map[string]string) ([]Route, []routeSource, Problems) {
	routes, srcs, ps := serviceRoutes(env)

	type pair struct{ prefix, url string }
	pairs := make(map[string]*pair)
	for k := range env {
		rest, ok := strings.CutPrefix(k, envRoutePrefix)
		if !ok {
			continue
		}
		v, set := lookup(env, k)
		if !set {
			continue
		}
		if name, ok := strings.CutSuffix(rest, "_PREFIX"); ok {
			if pairs[name] == nil {
				pairs[name] = &pair{}
			}
			pairs[name].prefix = v
		} else if name, ok := strings.CutSuffix(rest, "_URL"); ok {
			if pairs[name] == nil {
				pairs[name] = &pair{}
			}
			pairs[name].url = v
		}
	}
	names := make([]string, 0, len(pairs))
	for name := range pairs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := pairs[name]
		prefixVar := envRoutePrefix + name + "_PREFIX"
		urlVar := envRoutePrefix + name + "_URL"
		switch {
		case p.url == "":
			ps = append(ps, Problem{Path: urlVar, Msg: "not set, but " + prefixVar + " is"})
			continue
		case p.prefix == "":
			ps = append(ps, Problem{Path: prefixVar, Msg: "not set, but " + urlVar + " is"})
			continue
		}
		routes = append(routes, Route{
			Name:     strings.ReplaceAll(strings.ToLower(name), "_", "-"),
			Match:    Match{Prefix: p.prefix},
			Backends: []Backend{{URL: p.url}},
		})
		srcs = append(srcs, routeSource{base: envRoutePrefix + name, remap: map[string]string{
			"":                prefixVar,
			"name":            prefixVar,
			"match":           prefixVar,
			"match.prefix":    prefixVar,
			"backends":        urlVar,
			"backends[0]":     urlVar,
			"backends[0].url": urlVar,
		}})
	}
	return routes, srcs, ps
}

// serviceRoutes parses SERVICE_ROUTES. Entries sharing a prefix form one route
// whose pool holds all their targets; the route's strip_prefix, require_auth
// and timeout_secs come from the group's first entry and must not conflict with
// the others'.
func serviceRoutes(env map[string]string) ([]Route, []routeSource, Problems) {
	v, ok := lookup(env, envServiceRoutes)
	if !ok {
		return nil, nil, nil
	}
	var entries []serviceRoute
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	err := dec.Decode(&entries)
	if err == nil && dec.More() {
		err = errors.New("data after the array")
	}
	if err != nil {
		return nil, nil, Problems{{Path: envServiceRoutes, Msg: fmt.Sprintf("want a JSON array of {prefix, target_url, strip_prefix, require_auth, weight, timeout_secs}: %v", err)}}
	}

	var (
		routes []Route
		srcs   []routeSource
		ps     Problems
		first  = make(map[string]int) // prefix → index of the group's first entry
		group  = make(map[string]int) // prefix → index in routes
	)
	for j, e := range entries {
		base := envServiceRoutes + "[" + strconv.Itoa(j) + "]"
		if e.Prefix == "" {
			ps = append(ps, Problem{Path: base + ".prefix", Msg: "prefix is required"})
			continue
		}
		gi, seen := group[e.Prefix]
		if !seen {
			timeout := time.Duration(0)
			if e.TimeoutSecs > math.MaxInt64/float64(time.Second) {
				ps = append(ps, Problem{Path: base + ".timeout_secs", Msg: "too large"})
			} else {
				timeout = time.Duration(e.TimeoutSecs * float64(time.Second))
			}
			gi = len(routes)
			group[e.Prefix] = gi
			first[e.Prefix] = j
			routes = append(routes, Route{
				Name:        routeNameFromPrefix(e.Prefix),
				Match:       Match{Prefix: e.Prefix},
				StripPrefix: e.StripPrefix,
				RequireAuth: e.RequireAuth,
				Timeout:     timeout,
			})
			srcs = append(srcs, routeSource{base: base, remap: map[string]string{
				"":             base,
				"name":         base + ".prefix",
				"match":        base + ".prefix",
				"match.prefix": base + ".prefix",
				"strip_prefix": base + ".strip_prefix",
				"require_auth": base + ".require_auth",
				"timeout":      base + ".timeout_secs",
			}})
		} else {
			f := entries[first[e.Prefix]]
			conflict := func(field string) {
				ps = append(ps, Problem{
					Path: base + "." + field,
					Msg:  fmt.Sprintf("conflicts with %s[%d], which has the same prefix %q", envServiceRoutes, first[e.Prefix], e.Prefix),
				})
			}
			if e.StripPrefix != f.StripPrefix {
				conflict("strip_prefix")
			}
			if e.RequireAuth != f.RequireAuth {
				conflict("require_auth")
			}
			if e.TimeoutSecs != f.TimeoutSecs {
				conflict("timeout_secs")
			}
		}
		r := &routes[gi]
		k := strconv.Itoa(len(r.Backends))
		r.Backends = append(r.Backends, Backend{URL: e.TargetURL, Weight: e.Weight})
		m := srcs[gi].remap
		m["backends["+k+"]"] = base
		m["backends["+k+"].url"] = base + ".target_url"
		m["backends["+k+"].weight"] = base + ".weight"
	}
	return routes, srcs, ps
}

// routeNameFromPrefix derives a route name from a path prefix:
// "/api/studio" → "api-studio", "/" → "root".
func routeNameFromPrefix(prefix string) string {
	s := strings.Trim(prefix, "/")
	if s == "" {
		return "root"
	}
	return strings.ToLower(strings.ReplaceAll(s, "/", "-"))
}

// applyOTelEnv applies OpenTelemetry's standard variables to t: an endpoint
// turns tracing on; OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn
// it off, whatever else is set.
func applyOTelEnv(t *Tracing, env map[string]string, bad func(string, error)) {
	for _, e := range []struct {
		name string
		dst  *string
	}{{envOTLPEndpoint, &t.Endpoint}, {envOTLPTracesEndpoint, &t.TracesEndpoint}} {
		if v, ok := lookup(env, e.name); ok {
			if err := checkOTLPURL(v); err != nil {
				bad(e.name, err)
				continue
			}
			*e.dst, t.Enabled = v, true
		}
	}
	for _, name := range []string{envOTLPProtocol, envOTLPTracesProtocol} { // the specific one wins
		if v, ok := lookup(env, name); ok {
			if err := checkOneOf(v, otlpProtocols()); err != nil {
				bad(name, err)
			} else {
				t.Protocol = v
			}
		}
	}
	if v, ok := lookup(env, envOTelServiceName); ok {
		t.ServiceName = v
	}
	if v, ok := lookup(env, envOTelSamplerArg); ok {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r >= 0 && r <= 1) {
			bad(envOTelSamplerArg, fmt.Errorf("must be a number between 0 and 1, got %q", v))
		} else {
			t.SampleRatio = &r
		}
	}
	if v, ok := lookup(env, envOTelSDKDisabled); ok && strings.EqualFold(v, "true") {
		t.Enabled = false
	}
	if v, ok := lookup(env, envOTelTracesExporter); ok {
		switch strings.ToLower(v) {
		case "none":
			t.Enabled = false
		case "otlp":
		default:
			bad(envOTelTracesExporter, fmt.Errorf("only otlp and none are supported, got %q", v))
		}
	}
}
