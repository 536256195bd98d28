package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// jwtSecret is a valid JWT_SECRET.
const jwtSecret = "0123456789abcdef0123456789abcdef"

func TestLoadEnvOverrides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		environ []string
		get     func(*Config) any
		want    any
	}{
		{"GATEWAY_PORT bare", "", []string{"GATEWAY_PORT=8080"}, func(c *Config) any { return c.Server.Listen }, ":8080"},
		{"GATEWAY_PORT host:port", "", []string{"GATEWAY_PORT=127.0.0.1:9000"}, func(c *Config) any { return c.Server.Listen }, "127.0.0.1:9000"},
		{"GATEWAY_PORT over file", "server:\n  listen: :1234\n", []string{"GATEWAY_PORT=8080"}, func(c *Config) any { return c.Server.Listen }, ":8080"},
		{"GATEWAY_PORT empty is unset", "server:\n  listen: :1234\n", []string{"GATEWAY_PORT="}, func(c *Config) any { return c.Server.Listen }, ":1234"},
		{"LOAD_BALANCING_ALGO", "", []string{"LOAD_BALANCING_ALGO=ip-hash"}, func(c *Config) any { return c.Defaults.LoadBalancing }, "ip-hash"},
		{"HEALTH_CHECK_INTERVAL go syntax", "", []string{"HEALTH_CHECK_INTERVAL=1m"}, func(c *Config) any { return c.Defaults.HealthCheck.Interval }, time.Minute},
		{"HEALTH_CHECK_INTERVAL seconds", "", []string{"HEALTH_CHECK_INTERVAL=15"}, func(c *Config) any { return c.Defaults.HealthCheck.Interval }, 15 * time.Second},
		{"health timeout capped by env interval", "", []string{"HEALTH_CHECK_INTERVAL=1"}, func(c *Config) any { return c.Defaults.HealthCheck.Timeout }, time.Second},
		{"CONNECTION_TIMEOUT", "", []string{"CONNECTION_TIMEOUT=45"}, func(c *Config) any { return c.Defaults.Timeout }, 45 * time.Second},
		{"CONNECTION_TIMEOUT over file", "defaults:\n  timeout: 5s\n", []string{"CONNECTION_TIMEOUT=45s"}, func(c *Config) any { return c.Defaults.Timeout }, 45 * time.Second},
		{"MAX_IDLE_CONNS", "", []string{"MAX_IDLE_CONNS=7"}, func(c *Config) any { return c.Defaults.Transport.MaxIdleConns }, 7},
		{"IDLE_CONN_TIMEOUT", "", []string{"IDLE_CONN_TIMEOUT=2m"}, func(c *Config) any { return c.Defaults.Transport.IdleConnTimeout }, 2 * time.Minute},
		{"CIRCUIT_BREAKER_MAX", "", []string{"CIRCUIT_BREAKER_MAX=11"}, func(c *Config) any { return c.Defaults.CircuitBreaker.MaxFailures }, 11},
		{"CIRCUIT_BREAKER_MAX sets min_requests default", "", []string{"CIRCUIT_BREAKER_MAX=11"}, func(c *Config) any { return c.Defaults.CircuitBreaker.MinRequests }, 11},
		{"CIRCUIT_BREAKER_TIMEOUT", "", []string{"CIRCUIT_BREAKER_TIMEOUT=90"}, func(c *Config) any { return c.Defaults.CircuitBreaker.Timeout }, 90 * time.Second},
		{"LOG_LEVEL", "", []string{"LOG_LEVEL=WARN"}, func(c *Config) any { return c.Log.Level }, "warn"},
		{"tracing off by default", "", nil, func(c *Config) any { return c.Tracing.Enabled }, false},
		{"OTLP endpoint turns tracing on", "", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318"}, func(c *Config) any { return [2]any{c.Tracing.Enabled, c.Tracing.URL()} }, [2]any{true, "http://jaeger:4318/v1/traces"}},
		{"traces endpoint used as given", "", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://b:4318/custom"}, func(c *Config) any { return c.Tracing.URL() }, "http://b:4318/custom"},
		{"grpc endpoint as given", "", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}, func(c *Config) any { return c.Tracing.URL() }, "http://c:4317"},
		{"traces protocol wins", "", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf"}, func(c *Config) any { return c.Tracing.Protocol }, "http/protobuf"},
		{"OTEL_SDK_DISABLED", "tracing:\n  enabled: true\n", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://a:4318", "OTEL_SDK_DISABLED=true"}, func(c *Config) any { return c.Tracing.Enabled }, false},
		{"OTEL_TRACES_EXPORTER none", "tracing:\n  enabled: true\n", []string{"OTEL_TRACES_EXPORTER=none"}, func(c *Config) any { return c.Tracing.Enabled }, false},
		{"OTEL_SERVICE_NAME", "", []string{"OTEL_SERVICE_NAME=edge-eu"}, func(c *Config) any { return c.Tracing.ServiceName }, "edge-eu"},
		{"OTEL_TRACES_SAMPLER_ARG", "", []string{"OTEL_TRACES_SAMPLER_ARG=0.25"}, func(c *Config) any { return c.Tracing.Ratio() }, 0.25},
		{"sample ratio from file", "tracing:\n  sample_ratio: 0\n", nil, func(c *Config) any { return c.Tracing.Ratio() }, 0.0},
		{"TRUSTED_PROXIES", "", []string{"TRUSTED_PROXIES=10.0.0.0/8, 172.16.0.1,,"}, func(c *Config) any { return c.Server.TrustedProxies }, []string{"10.0.0.0/8", "172.16.0.1"}},
		{"later entry wins", "", []string{"LOG_LEVEL=debug", "LOG_LEVEL=error"}, func(c *Config) any { return c.Log.Level }, "error"},
		{"JWT_SECRET", "", []string{"JWT_SECRET= " + jwtSecret + " "}, func(c *Config) any { return c.Auth.JWT.Secret }, jwtSecret},
		{"JWT_SECRET over file", "auth:\n  jwt:\n    secret: " + strings.Repeat("f", 40) + "\n", []string{"JWT_SECRET=" + jwtSecret}, func(c *Config) any { return c.Auth.JWT.Secret }, jwtSecret},
		{"ADMIN_TOKEN", "admin:\n  token: from-the-file-0123\n", []string{"ADMIN_TOKEN=from-the-env-01234"}, func(c *Config) any { return c.Admin.Token }, "from-the-env-01234"},
		{
			"API_KEYS",
			"",
			[]string{"API_KEYS= alice : alice-key-0123456789 ,bare-key-0123456789,bob:bob-key-0123456789, another-bare-key-0123"},
			func(c *Config) any { return c.Auth.APIKeys.Keys },
			[]APIKey{
				{Name: "alice", Key: "alice-key-0123456789"},
				{Name: "key-1", Key: "bare-key-0123456789"},
				{Name: "bob", Key: "bob-key-0123456789"},
				{Name: "key-2", Key: "another-bare-key-0123"},
			},
		},
		{
			"API_KEYS appended to the file's",
			"auth:\n  api_keys:\n    keys: [{name: file, sha256: " + strings.Repeat("0", 64) + "}]\n",
			[]string{"API_KEYS=env:env-key-0123456789abc"},
			func(c *Config) any { return c.Auth.APIKeys.Keys },
			[]APIKey{{Name: "file", SHA256: strings.Repeat("0", 64)}, {Name: "env", Key: "env-key-0123456789abc"}},
		},
		{
			"CORS_ALLOWED_ORIGINS",
			"cors:\n  allowed_origins: [\"https://file.example.com\"]\n",
			[]string{`CORS_ALLOWED_ORIGINS=["https://app.example.com", "https://*.example.org"]`},
			func(c *Config) any { return c.CORS.AllowedOrigins },
			[]string{"https://app.example.com", "https://*.example.org"},
		},
		{"CORS_ALLOWED_ORIGINS empty array", "", []string{"CORS_ALLOWED_ORIGINS=[]"}, func(c *Config) any { return c.CORS.AllowedOrigins }, []string{}},
		{"MAX_REQUESTS_PER_SECOND", "", []string{"MAX_REQUESTS_PER_SECOND=2.5"}, func(c *Config) any { return c.Edge.RateLimit.RequestsPerSecond }, 2.5},
		{"MAX_REQUESTS_PER_SECOND over file", "edge:\n  rate_limit:\n    requests_per_second: 7\n", []string{"MAX_REQUESTS_PER_SECOND=300"}, func(c *Config) any { return c.Edge.RateLimit.RequestsPerSecond }, 300.0},
		{"MAX_BURST_SIZE", "", []string{"MAX_BURST_SIZE=1"}, func(c *Config) any { return c.Edge.RateLimit.Burst }, 1},
		{"DDOS_THRESHOLD", "", []string{"DDOS_THRESHOLD=50"}, func(c *Config) any { return c.Edge.DDoS.Threshold }, 50},
		{"BLOCK_DURATION seconds", "", []string{"BLOCK_DURATION=300"}, func(c *Config) any { return c.Edge.DDoS.BlockDuration }, 5 * time.Minute},
		{"BLOCK_DURATION go syntax", "edge:\n  ddos:\n    block_duration: 1m\n", []string{"BLOCK_DURATION=1h"}, func(c *Config) any { return c.Edge.DDoS.BlockDuration }, time.Hour},
		{"route override keeps global env value out", route, []string{"MAX_BURST_SIZE=3"}, func(c *Config) any { return c.Routes[0].RateLimit }, RateLimit{}},
		{
			"upstream keeps its own value",
			"upstreams:\n  u:\n    backends: [{url: http://u}]\n    load_balancing: weighted\n    circuit_breaker:\n      timeout: 3s\n",
			[]string{"LOAD_BALANCING_ALGO=round-robin", "CIRCUIT_BREAKER_TIMEOUT=60"},
			func(c *Config) any {
				u := c.Upstreams["u"]
				return []any{u.LoadBalancing, u.CircuitBreaker.Timeout}
			},
			[]any{"weighted", 3 * time.Second},
		},
		{
			"upstream inherits env default",
			"upstreams:\n  u:\n    backends: [{url: http://u}]\n",
			[]string{"LOAD_BALANCING_ALGO=round-robin", "MAX_IDLE_CONNS=3"},
			func(c *Config) any {
				u := c.Upstreams["u"]
				return []any{u.LoadBalancing, u.Transport.MaxIdleConns}
			},
			[]any{"round-robin", 3},
		},
		{
			"route keeps its own timeout",
			"routes:\n  - name: a\n    match: {prefix: /a}\n    timeout: 2s\n    backends: [{url: http://a}]\n  - name: b\n    backends: [{url: http://b}]\n",
			[]string{"CONNECTION_TIMEOUT=60"},
			func(c *Config) any { return []time.Duration{c.Routes[0].Timeout, c.Routes[1].Timeout} },
			[]time.Duration{2 * time.Second, time.Minute},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tt.yaml, tt.environ...)
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load(%q, %q) = %#v, want %#v", tt.yaml, tt.environ, got, tt.want)
			}
		})
	}
}

func TestLoadEnvProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  string
		path string
		msg  string
	}{
		{"GATEWAY_PORT=http", "GATEWAY_PORT", `invalid listen address "http"`},
		{"GATEWAY_PORT=99999", "GATEWAY_PORT", `invalid port "99999"`},
		{"LOAD_BALANCING_ALGO=random", "LOAD_BALANCING_ALGO", `invalid value "random"`},
		{"HEALTH_CHECK_INTERVAL=often", "HEALTH_CHECK_INTERVAL", `invalid duration "often"`},
		{"CONNECTION_TIMEOUT=abc", "CONNECTION_TIMEOUT", `invalid duration "abc"`},
		{"CONNECTION_TIMEOUT=-5", "CONNECTION_TIMEOUT", "must not be negative"},
		{"CONNECTION_TIMEOUT=-5s", "CONNECTION_TIMEOUT", "must not be negative"},
		{"CONNECTION_TIMEOUT=99999999999999", "CONNECTION_TIMEOUT", "too large"},
		{"MAX_IDLE_CONNS=many", "MAX_IDLE_CONNS", `invalid integer "many"`},
		{"MAX_IDLE_CONNS=-1", "MAX_IDLE_CONNS", "must not be negative"},
		{"IDLE_CONN_TIMEOUT=1x", "IDLE_CONN_TIMEOUT", `invalid duration "1x"`},
		{"CIRCUIT_BREAKER_MAX=1.5", "CIRCUIT_BREAKER_MAX", `invalid integer "1.5"`},
		{"CIRCUIT_BREAKER_TIMEOUT=x", "CIRCUIT_BREAKER_TIMEOUT", `invalid duration "x"`},
		{"LOG_LEVEL=trace", "LOG_LEVEL", `invalid value "trace"`},
		{"OTEL_EXPORTER_OTLP_ENDPOINT=jaeger:4318", "OTEL_EXPORTER_OTLP_ENDPOINT", "invalid OTLP endpoint"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL=http/json", "OTEL_EXPORTER_OTLP_PROTOCOL", `invalid value "http/json"`},
		{"OTEL_TRACES_SAMPLER_ARG=2", "OTEL_TRACES_SAMPLER_ARG", "between 0 and 1"},
		{"OTEL_TRACES_EXPORTER=zipkin", "OTEL_TRACES_EXPORTER", "only otlp and none"},
		{"TRUSTED_PROXIES=10.0.0.0/8,nope", "TRUSTED_PROXIES", `invalid CIDR or IP "nope"`},
		{"JWT_SECRET=0123456789abcdef0123456789abcde", "JWT_SECRET", "JWT_SECRET must be at least 32 bytes"},
		{"ADMIN_TOKEN=0123456789abcde", "ADMIN_TOKEN", "token is too short to be a secret: want at least 16 characters"},
		{"API_KEYS=a:0123456789abcdef,,b:0123456789abcdef", "API_KEYS[1]", "empty entry: want name:key or key"},
		{"API_KEYS=0123456789abcdef,", "API_KEYS[1]", "empty entry"},
		{"API_KEYS=:0123456789abcdef", "API_KEYS[0]", "name is empty"},
		{"API_KEYS=a b:0123456789abcdef", "API_KEYS[0]", `name "a b" must match [A-Za-z0-9_.-]+`},
		{"API_KEYS=a:0123456789abcdef,a:0123456789abcdeF", "API_KEYS[1]", `name "a" is already used by API_KEYS[0]`},
		{"API_KEYS=key-1:0123456789abcdef,0123456789abcdeF", "API_KEYS[1]", `name "key-1" is already used by API_KEYS[0]`},
		{"API_KEYS=a:short", "API_KEYS[0]", "key is too short to be a secret"},
		{"API_KEYS=a:", "API_KEYS[0]", "key is too short to be a secret"},
		{"CORS_ALLOWED_ORIGINS=https://a.example.com", "CORS_ALLOWED_ORIGINS", "want a JSON array of strings"},
		{`CORS_ALLOWED_ORIGINS=["https://a.example.com"`, "CORS_ALLOWED_ORIGINS", "want a JSON array of strings"},
		{`CORS_ALLOWED_ORIGINS=[1]`, "CORS_ALLOWED_ORIGINS", "want a JSON array of strings"},
		{`CORS_ALLOWED_ORIGINS=null`, "CORS_ALLOWED_ORIGINS", "got null"},
		{`CORS_ALLOWED_ORIGINS=[] []`, "CORS_ALLOWED_ORIGINS", "data after the array"},
		{`CORS_ALLOWED_ORIGINS=["https://a.example.com/"]`, "CORS_ALLOWED_ORIGINS", "an origin has no path"},
		{"MAX_REQUESTS_PER_SECOND=fast", "MAX_REQUESTS_PER_SECOND", `invalid number "fast"`},
		{"MAX_REQUESTS_PER_SECOND=0", "MAX_REQUESTS_PER_SECOND", "must be greater than 0"},
		{"MAX_REQUESTS_PER_SECOND=-1", "MAX_REQUESTS_PER_SECOND", "must be greater than 0"},
		{"MAX_REQUESTS_PER_SECOND=NaN", "MAX_REQUESTS_PER_SECOND", `invalid number "NaN"`},
		{"MAX_REQUESTS_PER_SECOND=+Inf", "MAX_REQUESTS_PER_SECOND", `invalid number "+Inf"`},
		{"MAX_BURST_SIZE=0", "MAX_BURST_SIZE", `invalid integer "0": must be at least 1`},
		{"MAX_BURST_SIZE=1.5", "MAX_BURST_SIZE", `invalid integer "1.5"`},
		{"DDOS_THRESHOLD=-3", "DDOS_THRESHOLD", "must be at least 1"},
		{"DDOS_THRESHOLD=many", "DDOS_THRESHOLD", `invalid integer "many"`},
		{"BLOCK_DURATION=0", "BLOCK_DURATION", "must be greater than 0"},
		{"BLOCK_DURATION=0s", "BLOCK_DURATION", "must be greater than 0"},
		{"BLOCK_DURATION=-1", "BLOCK_DURATION", "must not be negative"},
		{"BLOCK_DURATION=soon", "BLOCK_DURATION", `invalid duration "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Parallel()
			c, err := Load("", []string{tt.env})
			if c != nil {
				t.Errorf("Load(%q) config = %+v, want nil", tt.env, c)
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 || ps[0].Path != tt.path || ps[0].Line != 0 || !strings.Contains(ps[0].Msg, tt.msg) {
				t.Errorf("Load(%q) = %v, want one problem at %s, line 0, with %q", tt.env, err, tt.path, tt.msg)
			}
		})
	}
	// The exact message of the brief's example.
	_, err := Load("", []string{"CONNECTION_TIMEOUT=abc"})
	if want := (Problem{Path: "CONNECTION_TIMEOUT", Msg: `invalid duration "abc"`}); len(problemsOf(t, err)) != 1 || problemsOf(t, err)[0] != want {
		t.Errorf(`Load("", CONNECTION_TIMEOUT=abc) = %v, want %v`, err, want)
	}
}

func TestLoadServiceRoutes(t *testing.T) {
	t.Parallel()
	const routes = `SERVICE_ROUTES=[
		{"prefix": "/api/studio", "target_url": "http://studio-1:8080", "strip_prefix": true, "weight": 3, "timeout_secs": 5},
		{"prefix": "/", "target_url": "http://web:80"},
		{"prefix": "/api/studio", "target_url": "http://studio-2:8080", "strip_prefix": true, "timeout_secs": 5}
	]`
	c, err := Load("", []string{routes})
	if err != nil {
		t.Fatalf("Load(SERVICE_ROUTES) error:\n%v", err)
	}
	want := []Route{
		{Name: "api-studio", Match: Match{Prefix: "/api/studio"}, StripPrefix: true, Timeout: 5 * time.Second, MaxBodyBytes: 10485760, Upstream: "api-studio"},
		{Name: "root", Match: Match{Prefix: "/"}, Timeout: 30 * time.Second, MaxBodyBytes: 10485760, Upstream: "root"},
	}
	if !reflect.DeepEqual(c.Routes, want) {
		t.Errorf("Load(SERVICE_ROUTES).Routes = %+v, want %+v", c.Routes, want)
	}
	wantBackends := map[string][]Backend{
		"api-studio": {{URL: "http://studio-1:8080", Weight: 3}, {URL: "http://studio-2:8080", Weight: 1}},
		"root":       {{URL: "http://web:80", Weight: 1}},
	}
	for name, bs := range wantBackends {
		u := c.Upstreams[name]
		if u == nil {
			t.Errorf("Load(SERVICE_ROUTES).Upstreams[%q] missing", name)
			continue
		}
		if !reflect.DeepEqual(u.Backends, bs) {
			t.Errorf("Load(SERVICE_ROUTES).Upstreams[%q].Backends = %+v, want %+v", name, u.Backends, bs)
		}
		if u.LoadBalancing != "least-conn" || u.Retry.Attempts != 3 {
			t.Errorf("Load(SERVICE_ROUTES).Upstreams[%q] settings not defaulted: %+v", name, u.UpstreamSettings)
		}
	}
}

func TestLoadServiceRoutesProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value string
		want  Problems // Msg is a substring
	}{
		{"not JSON", `{"prefix": "/a"`, Problems{{Path: "SERVICE_ROUTES", Msg: "want a JSON array"}}},
		{"not an array", `{"prefix": "/a"}`, Problems{{Path: "SERVICE_ROUTES", Msg: "want a JSON array"}}},
		{"unknown field", `[{"prefix": "/a", "target": "http://a"}]`, Problems{{Path: "SERVICE_ROUTES", Msg: `unknown field "target"`}}},
		{"trailing data", `[] []`, Problems{{Path: "SERVICE_ROUTES", Msg: "data after the array"}}},
		{"missing prefix", `[{"target_url": "http://a"}]`, Problems{{Path: "SERVICE_ROUTES[0].prefix", Msg: "prefix is required"}}},
		{"prefix without slash", `[{"prefix": "api", "target_url": "http://a"}]`, Problems{{Path: "SERVICE_ROUTES[0].prefix", Msg: "must start with /"}}},
		{"bad target", `[{"prefix": "/a", "target_url": "http://a"}, {"prefix": "/a", "target_url": "ftp://b"}]`, Problems{{Path: "SERVICE_ROUTES[1].target_url", Msg: "scheme must be http or https"}}},
		{"missing target", `[{"prefix": "/a"}]`, Problems{{Path: "SERVICE_ROUTES[0].target_url", Msg: "url is required"}}},
		{"negative weight", `[{"prefix": "/a", "target_url": "http://a", "weight": -1}]`, Problems{{Path: "SERVICE_ROUTES[0].weight", Msg: "must not be negative"}}},
		{"negative timeout", `[{"prefix": "/a", "target_url": "http://a", "timeout_secs": -1}]`, Problems{{Path: "SERVICE_ROUTES[0].timeout_secs", Msg: "must not be negative"}}},
		{"huge timeout", `[{"prefix": "/a", "target_url": "http://a", "timeout_secs": 1e300}]`, Problems{{Path: "SERVICE_ROUTES[0].timeout_secs", Msg: "too large"}}},
		{"require_auth", `[{"prefix": "/a", "target_url": "http://a", "require_auth": true}]`, Problems{{Path: "SERVICE_ROUTES[0].require_auth", Msg: "require_auth needs an authentication method: configure auth.jwt, auth.api_keys or this route's auth.forward"}}},
		{
			"conflicting group",
			`[{"prefix": "/a", "target_url": "http://a"}, {"prefix": "/a", "target_url": "http://b", "strip_prefix": true, "timeout_secs": 3}]`,
			Problems{
				{Path: "SERVICE_ROUTES[1].strip_prefix", Msg: `conflicts with SERVICE_ROUTES[0], which has the same prefix "/a"`},
				{Path: "SERVICE_ROUTES[1].timeout_secs", Msg: `conflicts with SERVICE_ROUTES[0]`},
			},
		},
		{"invalid derived name", `[{"prefix": "/~me", "target_url": "http://a"}]`, Problems{{Path: "SERVICE_ROUTES[0].prefix", Msg: `name "~me" must match`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("", []string{"SERVICE_ROUTES=" + tt.value})
			ps := problemsOf(t, err)
			if len(ps) != len(tt.want) {
				t.Fatalf("Load(SERVICE_ROUTES=%s) problems:\n%v\nwant %d", tt.value, err, len(tt.want))
			}
			for i, w := range tt.want {
				if ps[i].Path != w.Path || ps[i].Line != 0 || !strings.Contains(ps[i].Msg, w.Msg) {
					t.Errorf("Load(SERVICE_ROUTES=%s) problem %d = %q, want %s: ...%s...", tt.value, i, ps[i], w.Path, w.Msg)
				}
			}
		})
	}
}

func TestLoadRoutePairs(t *testing.T) {
	t.Parallel()
	const text = `upstreams:
  users:
    backends: [{url: "http://users"}]
routes:
  - name: billing
    match: {prefix: /old-billing}
    upstream: users
  - name: users
    match: {prefix: /users}
    upstream: users
`
	environ := []string{
		"ROUTE_BILLING_PREFIX=/billing",
		"ROUTE_BILLING_URL=http://billing:8080",
		"ROUTE_USER_ADMIN_PREFIX=/admin",
		"ROUTE_USER_ADMIN_URL=https://admin",
		"ROUTE_TABLE=ignored",
		"SERVICE_ROUTES=[{\"prefix\": \"/shop\", \"target_url\": \"http://shop\"}]",
	}
	c := mustLoad(t, text, environ...)
	want := []Route{
		{Name: "billing", Match: Match{Prefix: "/billing"}, Timeout: 30 * time.Second, MaxBodyBytes: 10485760, Upstream: "billing"}, // replaced in place
		{Name: "users", Match: Match{Prefix: "/users"}, Timeout: 30 * time.Second, MaxBodyBytes: 10485760, Upstream: "users"},
		{Name: "shop", Match: Match{Prefix: "/shop"}, Timeout: 30 * time.Second, MaxBodyBytes: 10485760, Upstream: "shop"},
		{Name: "user-admin", Match: Match{Prefix: "/admin"}, Timeout: 30 * time.Second, MaxBodyBytes: 10485760, Upstream: "user-admin"},
	}
	if !reflect.DeepEqual(c.Routes, want) {
		t.Errorf("Load(ROUTE_*).Routes = %+v\nwant %+v", c.Routes, want)
	}
	for name, url := range map[string]string{"billing": "http://billing:8080", "user-admin": "https://admin", "shop": "http://shop", "users": "http://users"} {
		if u := c.Upstreams[name]; u == nil || len(u.Backends) != 1 || u.Backends[0] != (Backend{URL: url, Weight: 1}) {
			t.Errorf("Load(ROUTE_*).Upstreams[%q] = %+v, want one backend %s", name, u, url)
		}
	}
	// The replaced route's file lines are gone (the nearest ancestor left is
	// "routes"), the others stay.
	if got, want := c.Line("routes[0].match.prefix"), lineOf(t, text, "routes:"); got != want {
		t.Errorf("Line(routes[0].match.prefix) of a replaced route = %d, want %d", got, want)
	}
	if got, want := c.Line("routes[1].match"), lineOf(t, text, "prefix: /users"); got != want {
		t.Errorf("Line(routes[1].match) = %d, want %d", got, want)
	}
}

func TestLoadRoutePairProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		environ []string
		want    Problems // Msg is a substring
	}{
		{"prefix without url", "", []string{"ROUTE_A_PREFIX=/a"}, Problems{{Path: "ROUTE_A_URL", Msg: "not set, but ROUTE_A_PREFIX is"}}},
		{"url without prefix", "", []string{"ROUTE_A_URL=http://a", "ROUTE_A_PREFIX="}, Problems{{Path: "ROUTE_A_PREFIX", Msg: "not set, but ROUTE_A_URL is"}}},
		{"bad url", "", []string{"ROUTE_A_PREFIX=/a", "ROUTE_A_URL=a.example.com"}, Problems{{Path: "ROUTE_A_URL", Msg: "scheme must be http or https"}}},
		{"bad prefix", "", []string{"ROUTE_A_PREFIX=a", "ROUTE_A_URL=http://a"}, Problems{{Path: "ROUTE_A_PREFIX", Msg: "must start with /"}}},
		{"empty name", "", []string{"ROUTE__PREFIX=/a", "ROUTE__URL=http://a"}, Problems{{Path: "ROUTE__PREFIX", Msg: "name is required"}}},
		{
			"same name as SERVICE_ROUTES",
			"",
			[]string{"ROUTE_API_PREFIX=/v2", "ROUTE_API_URL=http://a", `SERVICE_ROUTES=[{"prefix": "/api", "target_url": "http://b"}]`},
			Problems{{Path: "ROUTE_API_PREFIX", Msg: `name "api" is already used by SERVICE_ROUTES[0]`}},
		},
		{
			"same match as a file route",
			"routes:\n  - name: a\n    match: {prefix: /x}\n    backends: [{url: http://a}]\n",
			[]string{"ROUTE_B_PREFIX=/x", "ROUTE_B_URL=http://b"},
			Problems{{Path: "ROUTE_B_PREFIX", Msg: `routes "a" (routes[0]) and "b" have the same match`}},
		},
		{
			"named like a file upstream",
			"upstreams:\n  api:\n    backends: [{url: http://u}]\n",
			[]string{"ROUTE_API_PREFIX=/api", "ROUTE_API_URL=http://a"},
			Problems{{Path: "ROUTE_API_PREFIX", Msg: `upstream "api" already exists`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadText(t, tt.yaml, tt.environ...)
			ps := problemsOf(t, err)
			if len(ps) != len(tt.want) {
				t.Fatalf("Load(%q) problems:\n%v\nwant %d", tt.environ, err, len(tt.want))
			}
			for i, w := range tt.want {
				if ps[i].Path != w.Path || ps[i].Line != 0 || !strings.Contains(ps[i].Msg, w.Msg) {
					t.Errorf("Load(%q) problem %d = %q, want %s: ...%s...", tt.environ, i, ps[i], w.Path, w.Msg)
				}
			}
		})
	}
}

func TestRouteNameFromPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct{ give, want string }{
		{"/api/studio", "api-studio"},
		{"/", "root"},
		{"/API/", "api"},
		{"/v1", "v1"},
		{"", "root"},
	}
	for _, tt := range tests {
		if got := routeNameFromPrefix(tt.give); got != tt.want {
			t.Errorf("routeNameFromPrefix(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestLoadAPIKeysProblems(t *testing.T) {
	t.Parallel()
	const (
		text   = "auth:\n  api_keys:\n    keys: [{name: ci, key: file-key-0123456789}]\n"
		secret = "tiny-secret"
	)
	_, err := loadText(t, text, "API_KEYS=ci:env-key-0123456789, "+secret+" ,x:"+secret+"-2")
	ps := problemsOf(t, err)
	want := Problems{
		{Path: "API_KEYS[0]", Msg: `name "ci" is already used by auth.api_keys.keys[0]`},
		{Path: "API_KEYS[1]", Msg: "key is too short to be a secret: want at least 16 characters"},
		{Path: "API_KEYS[2]", Msg: "key is too short to be a secret: want at least 16 characters"},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Errorf("Load(API_KEYS) problems:\n%v\nwant:\n%v", ps, want)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("Load(API_KEYS) error %q quotes a key", err)
	}
}
