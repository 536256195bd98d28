package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeConfig writes text to a fresh altair.yaml and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "altair.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadText loads text as a config file with the given environment.
func loadText(t *testing.T, text string, environ ...string) (*Config, error) {
	t.Helper()
	return Load(writeConfig(t, text), environ)
}

// mustLoad loads text and fails the test on any problem.
func mustLoad(t *testing.T, text string, environ ...string) *Config {
	t.Helper()
	c, err := loadText(t, text, environ...)
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	return c
}

// lineOf returns the 1-based number of the first line of text containing
// marker.
func lineOf(t *testing.T, text, marker string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, marker) {
			return i + 1
		}
	}
	t.Fatalf("marker %q not in text", marker)
	return 0
}

// problemsOf returns err as Problems, failing the test if it is not.
func problemsOf(t *testing.T, err error) Problems {
	t.Helper()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error = %v (%T), want Problems", err, err)
	}
	return ps
}

// builtinSettings is what an upstream with nothing set ends up with.
func builtinSettings() UpstreamSettings {
	return UpstreamSettings{
		LoadBalancing:  "least-conn",
		PanicThreshold: 0.5,
		HealthCheck:    HealthCheck{Type: "tcp", Interval: 10 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3},
		PassiveHealth:  PassiveHealth{ConsecutiveFailures: 5, EjectionTime: 30 * time.Second, MaxEjectedShare: 0.5},
		CircuitBreaker: CircuitBreaker{MaxFailures: 5, Timeout: 30 * time.Second, MinRequests: 5},
		Retry: Retry{
			Attempts: 3, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second,
			Budget: 0.2, MaxBodyBytes: 65536, OnStatus: []int{502, 503, 504},
		},
		Transport: Transport{MaxIdleConns: 100, IdleConnTimeout: 90 * time.Second, DialTimeout: 5 * time.Second, TLS: UpstreamTLS{MinVersion: "1.2"}},
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	got := Default()
	want := &Config{
		Server: Server{
			Listen: ":9777", ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
			MaxHeaderBytes: 65536, ShutdownTimeout: 30 * time.Second,
			MaxURIBytes: 8192, MaxBodyBytes: 10485760, TLS: ServerTLS{MinVersion: "1.2"},
		},
		Log:     Log{Level: "info", Format: "json"},
		Metrics: Metrics{Path: "/metrics"},
		Tracing: Tracing{Protocol: "http/protobuf", ServiceName: "altair"},
		Redis:   Redis{Timeout: 50 * time.Millisecond, KeyPrefix: "altair:"},
		Edge: Edge{
			DDoS:      DDoS{Threshold: 1000, BlockDuration: 10 * time.Minute},
			RateLimit: RateLimit{RequestsPerSecond: 100, Burst: 200, Key: "ip"},
		},
		SecurityHeaders: SecurityHeaders{
			ContentTypeOptions:      "nosniff",
			FrameOptions:            "DENY",
			StrictTransportSecurity: "max-age=31536000; includeSubDomains",
			ContentSecurityPolicy:   "default-src 'none'; frame-ancestors 'none'",
			ReferrerPolicy:          "no-referrer",
		},
		CORS: CORS{
			AllowedOrigins: []string{"*"},
			AllowedMethods: []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"},
			AllowedHeaders: []string{"Authorization", "Content-Type", "X-API-Key", "X-Request-ID"},
			ExposedHeaders: []string{"X-Request-ID"},
			MaxAge:         10 * time.Minute,
		},
		Auth: Auth{
			JWT: JWT{
				SecretAlgorithms: []string{"HS256", "HS384", "HS512"},
				JWKSRefresh:      10 * time.Minute,
				Leeway:           30 * time.Second,
				ClaimHeaders:     map[string]string{"sub": "X-User-ID"},
			},
			APIKeys:     APIKeys{Header: "X-API-Key"},
			PublicPaths: []string{"/health", "/metrics", "/login", "/register", "/api/v1/public"},
		},
		Defaults:  Defaults{Timeout: 30 * time.Second, UpstreamSettings: builtinSettings()},
		Upstreams: map[string]*Upstream{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Default() = %+v, want %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
}

func TestLoadFull(t *testing.T) {
	t.Parallel()
	const path = "testdata/full.yaml"
	c, err := Load(path, nil)
	if err != nil {
		t.Fatalf("Load(%q) error:\n%v", path, err)
	}

	defaults := UpstreamSettings{
		LoadBalancing:  "round-robin",
		PanicThreshold: 0.7,
		HealthCheck: HealthCheck{
			Type: "http", Path: "/healthz", ExpectedStatus: 204,
			Interval: 5 * time.Second, Timeout: time.Second, Rise: 3, Fall: 4,
		},
		PassiveHealth:  PassiveHealth{ConsecutiveFailures: 7, EjectionTime: 45 * time.Second, MaxEjectedShare: 0.3},
		CircuitBreaker: CircuitBreaker{MaxFailures: 8, Timeout: 40 * time.Second, MinRequests: 20},
		Retry: Retry{
			Attempts: 2, Backoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
			Budget: 0.1, MaxBodyBytes: 1024, OnStatus: []int{502, 503},
		},
		Transport: Transport{MaxIdleConns: 50, IdleConnTimeout: 30 * time.Second, DialTimeout: 3 * time.Second, TLS: UpstreamTLS{MinVersion: "1.2"}},
	}
	want := Config{
		Server: Server{
			Listen: "127.0.0.1:8080", ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second,
			MaxHeaderBytes: 32768, ShutdownTimeout: 15 * time.Second, DrainDelay: 2 * time.Second,
			MaxURIBytes: 4096, MaxBodyBytes: 1048576, TLS: ServerTLS{MinVersion: "1.2"},
			TrustedProxies: []string{"10.0.0.0/8", "192.168.1.1"},
		},
		Log:   Log{Level: "debug", Format: "text"},
		Admin: Admin{Token: "admin-token-0123456789", Listen: "127.0.0.1:8081"},
		Edge: Edge{
			Allow:     []string{"10.1.0.0/16", "2001:db8::1"},
			Deny:      []string{"203.0.113.0/24"},
			DDoS:      DDoS{Threshold: 500, BlockDuration: 5 * time.Minute},
			RateLimit: RateLimit{RequestsPerSecond: 50.5, Burst: 75, Key: "header:X-Client-ID"},
			Connections: ConnectionLimits{
				MaxConnections: 10000, MaxConnectionsPerIP: 100, MaxInFlight: 5000, MaxInFlightPerIP: 50,
			},
		},
		SecurityHeaders: SecurityHeaders{
			ContentTypeOptions:      "nosniff",
			FrameOptions:            "SAMEORIGIN",
			StrictTransportSecurity: "max-age=63072000",
			ContentSecurityPolicy:   "default-src 'self'",
			ReferrerPolicy:          "same-origin",
		},
		CORS: CORS{
			AllowedOrigins:   []string{"https://app.example.com", "https://*.example.net", "http://localhost:3000"},
			AllowedMethods:   []string{"GET", "POST"},
			AllowedHeaders:   []string{"Authorization", "Content-Type"},
			ExposedHeaders:   []string{"X-Request-ID", "X-Total-Count"},
			AllowCredentials: true,
			MaxAge:           time.Hour,
		},
		Auth: Auth{
			JWT: JWT{
				Secret:           "0123456789abcdef0123456789abcdef",
				SecretAlgorithms: []string{"HS256"},
				Keys:             []JWTKey{{ID: "main", File: "/etc/altair/jwt.pem", Algorithm: "RS256"}},
				JWKSURL:          "https://idp.example.com/.well-known/jwks.json",
				JWKSRefresh:      15 * time.Minute,
				Issuer:           "https://idp.example.com",
				Audience:         []string{"altair", "api"},
				Leeway:           time.Minute,
				ClaimHeaders:     map[string]string{"sub": "X-User-ID", "email": "X-User-Email"},
			},
			APIKeys: APIKeys{
				Header: "X-Key",
				Keys: []APIKey{
					{Name: "mobile", Key: "mobile-key-0123456789"},
					{Name: "partner", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
				},
				File: "/etc/altair/api-keys.txt",
			},
			PublicPaths: []string{"/health", "/docs"},
		},
		Defaults: Defaults{Timeout: 20 * time.Second, UpstreamSettings: defaults},
		Upstreams: map[string]*Upstream{
			"users": {
				Backends: []Backend{{URL: "http://users-1:8080", Weight: 3}, {URL: "https://users-2:8443/base", Weight: 1}},
				UpstreamSettings: UpstreamSettings{
					LoadBalancing:  "weighted",
					PanicThreshold: 0.9,
					HealthCheck: HealthCheck{
						Disabled: true, Type: "tcp", Path: "/ping", ExpectedStatus: 200,
						Interval: 20 * time.Second, Timeout: 3 * time.Second, Rise: 1, Fall: 2,
					},
					PassiveHealth:  PassiveHealth{Disabled: true, ConsecutiveFailures: 3, EjectionTime: 10 * time.Second, MaxEjectedShare: 0.2},
					CircuitBreaker: CircuitBreaker{Disabled: true, MaxFailures: 2, Timeout: 5 * time.Second, MinRequests: 4},
					Retry: Retry{
						Attempts: 1, Backoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
						Budget: 0.5, MaxBodyBytes: 2048, OnStatus: []int{503},
					},
					Transport: Transport{MaxIdleConns: 10, IdleConnTimeout: 15 * time.Second, DialTimeout: time.Second, TLS: UpstreamTLS{MinVersion: "1.2"}},
				},
			},
			"orders": {
				Backends:         []Backend{{URL: "http://orders:9000", Weight: 1}},
				UpstreamSettings: defaults,
			},
			"order-items": {
				Backends:         []Backend{{URL: "http://orders-v2:9000", Weight: 2}, {URL: "http://orders-v2b:9000", Weight: 1}},
				UpstreamSettings: defaults,
			},
		},
		Routes: []Route{
			{
				Name: "users-api",
				Match: Match{
					Hosts:   []string{"api.example.com", "*.example.org"},
					Methods: []string{"GET", "POST"},
					Prefix:  "/api/users",
					Headers: map[string]string{"X-Tenant": "acme"},
					Query:   map[string]string{"version": "2"},
				},
				StripPrefix: true,
				RequestHeaders: HeaderOps{
					Set:    map[string]string{"X-Gateway": "altair"},
					Add:    map[string]string{"X-Trace": "on"},
					Remove: []string{"Cookie"},
				},
				ResponseHeaders: HeaderOps{
					Set:    map[string]string{"Cache-Control": "no-store"},
					Add:    map[string]string{"X-Served-By": "altair"},
					Remove: []string{"Server"},
				},
				Timeout:     10 * time.Second,
				RequireAuth: true,
				Auth: RouteAuth{
					Methods: []string{"jwt", "api_key", "forward"},
					Forward: ForwardAuth{
						URL: "http://auth.internal:9000/check", Timeout: 2 * time.Second,
						CopyHeaders: []string{"X-User-ID"},
					},
					ForwardAuthorization: true,
					ForwardAPIKey:        true,
				},
				RateLimit: RateLimit{RequestsPerSecond: 10, Burst: 20, Key: "jwt_sub"},
				CORS: CORS{
					AllowedOrigins:   []string{"https://users.example.com"},
					AllowedMethods:   []string{"GET"},
					AllowedHeaders:   []string{"Authorization"},
					ExposedHeaders:   []string{"X-Request-ID"},
					AllowCredentials: true,
					MaxAge:           5 * time.Minute,
				},
				SecurityHeaders: SecurityHeaders{
					ContentTypeOptions:      "nosniff",
					FrameOptions:            "off",
					StrictTransportSecurity: "max-age=31536000",
					ContentSecurityPolicy:   "default-src 'none'",
					ReferrerPolicy:          "no-referrer",
				},
				MaxBodyBytes: 65536,
				Upstream:     "users",
			},
			{
				Name:         "order-items",
				Match:        Match{Path: "/orders/{id}/items/{rest...}"},
				Rewrite:      "/v2/orders/{id}/{rest}",
				Timeout:      20 * time.Second,
				MaxBodyBytes: 1048576, // server.max_body_bytes
				Upstream:     "order-items",
			},
		},
		Source: path,
	}
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"Server", c.Server, want.Server},
		{"Log", c.Log, want.Log},
		{"Admin", c.Admin, want.Admin},
		{"Edge", c.Edge, want.Edge},
		{"SecurityHeaders", c.SecurityHeaders, want.SecurityHeaders},
		{"CORS", c.CORS, want.CORS},
		{"Auth", c.Auth, want.Auth},
		{"Defaults", c.Defaults, want.Defaults},
		{"Routes", c.Routes, want.Routes},
		{"Source", c.Source, want.Source},
		{"len(Upstreams)", len(c.Upstreams), len(want.Upstreams)},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("Load(%q).%s = %+v, want %+v", path, f.name, f.got, f.want)
		}
	}
	for name, w := range want.Upstreams {
		if g := c.Upstreams[name]; !reflect.DeepEqual(g, w) {
			t.Errorf("Load(%q).Upstreams[%q] = %+v, want %+v", path, name, g, w)
		}
	}

	// The implicit upstream must not share the defaults' on_status array.
	c.Upstreams["order-items"].Retry.OnStatus[0] = 500
	if c.Defaults.Retry.OnStatus[0] != 502 {
		t.Errorf("implicit upstream shares Retry.OnStatus with Defaults")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() of a loaded config = %v, want nil", err)
	}

	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := []struct{ path, marker string }{
		{"server.listen", "listen:"},
		{"server.trusted_proxies[1]", "192.168.1.1"},
		{"defaults.retry.on_status", "on_status: [502, 503]"},
		{"defaults.retry.on_status[1]", "on_status: [502, 503]"},
		{"upstreams.users.retry.attempts", "attempts: 1"},
		{"upstreams.users.backends[1].url", "https://users-2"},
		{"routes[0].match.headers.X-Tenant", "X-Tenant"},
		{"routes[1].backends[0].url", "http://orders-v2:9000"},
		{"routes[1].backends[1].weight", "http://orders-v2b"}, // no weight key: nearest ancestor
		{"upstreams.order-items.backends[0].url", "http://orders-v2:9000"},
		{"routes[1]", "name: order-items"},
		{"admin.listen", "127.0.0.1:8081"},
		{"edge.allow[1]", "2001:db8::1"},
		{"edge.rate_limit.key", "header:X-Client-ID"},
		{"cors.allowed_origins[2]", "https://app.example.com"},
		{"auth.jwt.claim_headers.email", "X-User-Email"},
		{"auth.api_keys.keys[1].sha256", "sha256: 9f86"},
		{"routes[0].auth.forward.url", "http://auth.internal"},
		{"routes[0].cors.allow_credentials", "      allow_credentials: true"},
	}
	for _, l := range lines {
		if got, want := c.Line(l.path), lineOf(t, string(text), l.marker); got != want {
			t.Errorf("Line(%q) = %d, want %d", l.path, got, want)
		}
	}
	if got := c.Line("no.such.key"); got != 0 {
		t.Errorf("Line(%q) = %d, want 0", "no.such.key", got)
	}
}

func TestLoadNoRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path func(t *testing.T) string
	}{
		{"no file", func(*testing.T) string { return "" }},
		{"empty file", func(t *testing.T) string { return writeConfig(t, "") }},
		{"comments only", func(t *testing.T) string { return writeConfig(t, "# nothing yet\n") }},
		{"null document", func(t *testing.T) string { return writeConfig(t, "~\n") }},
		{"empty sections", func(t *testing.T) string { return writeConfig(t, "upstreams: {}\nroutes: []\n") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := tt.path(t)
			c, err := Load(path, nil)
			if err != nil {
				t.Fatalf("Load(%q) error: %v", path, err)
			}
			if len(c.Routes) != 0 || len(c.Upstreams) != 0 {
				t.Errorf("Load(%q) = %d routes, %d upstreams, want none", path, len(c.Routes), len(c.Upstreams))
			}
			if c.Server.Listen != ":9777" || c.Defaults.Timeout != 30*time.Second {
				t.Errorf("Load(%q) did not apply defaults: %+v", path, c.Server)
			}
			wantSource := path
			if path == "" {
				wantSource = "environment"
			}
			if c.Source != wantSource {
				t.Errorf("Load(%q).Source = %q, want %q", path, c.Source, wantSource)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "absent.yaml")
	c, err := Load(path, nil)
	if c != nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(%q) = %v, %v, want nil, fs.ErrNotExist", path, c, err)
	}
}

func TestApplyDefaultsInheritance(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, `
defaults:
  load_balancing: ip-hash
  health_check:
    interval: 1s
  circuit_breaker:
    max_failures: 9
  retry:
    on_status: [500]
    per_try_timeout: 2s
upstreams:
  a:
    backends: [{url: "http://a"}]
    health_check:
      path: /healthz
    circuit_breaker:
      timeout: 7s
  b:
    backends: [{url: "http://b"}]
    load_balancing: round-robin
    circuit_breaker:
      max_failures: 2
    retry:
      on_status: []
      per_try_timeout: 250ms
`)
	a, b := c.Upstreams["a"], c.Upstreams["b"]
	tests := []struct {
		name      string
		got, want any
	}{
		{"a.LoadBalancing (inherited)", a.LoadBalancing, "ip-hash"},
		{"b.LoadBalancing (own)", b.LoadBalancing, "round-robin"},
		{"a.HealthCheck.Type (own path)", a.HealthCheck.Type, "http"},
		{"b.HealthCheck.Type (no path)", b.HealthCheck.Type, "tcp"},
		{"Defaults.HealthCheck.Type", c.Defaults.HealthCheck.Type, "tcp"},
		{"a.HealthCheck.Interval", a.HealthCheck.Interval, time.Second},
		{"a.HealthCheck.Timeout (capped)", a.HealthCheck.Timeout, time.Second},
		{"a.CircuitBreaker.MaxFailures", a.CircuitBreaker.MaxFailures, 9},
		{"a.CircuitBreaker.MinRequests", a.CircuitBreaker.MinRequests, 9},
		{"a.CircuitBreaker.Timeout", a.CircuitBreaker.Timeout, 7 * time.Second},
		{"b.CircuitBreaker.MinRequests", b.CircuitBreaker.MinRequests, 2},
		{"a.Retry.OnStatus", a.Retry.OnStatus, []int{500}},
		{"b.Retry.OnStatus (explicit empty)", b.Retry.OnStatus, []int{}},
		{"a.Retry.Attempts (built-in)", a.Retry.Attempts, 3},
		{"a.Retry.PerTryTimeout (inherited)", a.Retry.PerTryTimeout, 2 * time.Second},
		{"b.Retry.PerTryTimeout (own)", b.Retry.PerTryTimeout, 250 * time.Millisecond},
		{"Defaults.Retry.PerTryTimeout", c.Defaults.Retry.PerTryTimeout, 2 * time.Second},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	a.Retry.OnStatus[0] = 599
	if c.Defaults.Retry.OnStatus[0] != 500 {
		t.Errorf("upstream shares Retry.OnStatus with Defaults")
	}

	// Idempotent.
	before := *c.Upstreams["a"]
	c.ApplyDefaults()
	if !reflect.DeepEqual(*c.Upstreams["a"], before) {
		t.Errorf("second ApplyDefaults changed upstream a: %+v, want %+v", *c.Upstreams["a"], before)
	}
}

func TestLoadNormalizes(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, `
server:
  listen: "8080"
admin:
  listen: "9778"
defaults:
  timeout: 12s
routes:
  - name: r
    match:
      methods: [get]
      hosts: [Example.COM]
    backends:
      - url: http://x
      - url: http://y
        weight: 5
`)
	r := c.Routes[0]
	u := c.Upstreams["r"]
	tests := []struct {
		name      string
		got, want any
	}{
		{"Server.Listen", c.Server.Listen, ":8080"},
		{"Admin.Listen", c.Admin.Listen, ":9778"},
		{"Route.Upstream", r.Upstream, "r"},
		{"Route.Backends", r.Backends, []Backend(nil)},
		{"Route.Timeout", r.Timeout, 12 * time.Second},
		{"Route.Match.Methods", r.Match.Methods, []string{"GET"}},
		{"Route.Match.Hosts", r.Match.Hosts, []string{"example.com"}},
		{"implicit upstream backends", u.Backends, []Backend{{URL: "http://x", Weight: 1}, {URL: "http://y", Weight: 5}}},
		{"implicit upstream settings", u.UpstreamSettings, c.Defaults.UpstreamSettings},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func TestLoadExpand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		environ []string
		get     func(*Config) any
		want    any
	}{
		{
			name:    "string",
			yaml:    "log:\n  level: ${LVL}\n",
			environ: []string{"LVL=warn"},
			get:     func(c *Config) any { return c.Log.Level },
			want:    "warn",
		},
		{
			name:    "inside a value",
			yaml:    "routes:\n  - name: r\n    backends: [{url: \"http://${HOST}:${PORT}/v1\"}]\n",
			environ: []string{"HOST=users", "PORT=8080"},
			get:     func(c *Config) any { return c.Upstreams["r"].Backends[0].URL },
			want:    "http://users:8080/v1",
		},
		{
			name:    "integer from plain scalar",
			yaml:    "server:\n  max_header_bytes: ${MHB}\n",
			environ: []string{"MHB=1024"},
			get:     func(c *Config) any { return c.Server.MaxHeaderBytes },
			want:    1024,
		},
		{
			name:    "duration",
			yaml:    "defaults:\n  timeout: ${T}\n",
			environ: []string{"T=7s"},
			get:     func(c *Config) any { return c.Defaults.Timeout },
			want:    7 * time.Second,
		},
		{
			name: "default when unset",
			yaml: "defaults:\n  timeout: ${T:-9s}\n",
			get:  func(c *Config) any { return c.Defaults.Timeout },
			want: 9 * time.Second,
		},
		{
			name:    "default when empty",
			yaml:    "log:\n  level: ${LVL:-error}\n",
			environ: []string{"LVL="},
			get:     func(c *Config) any { return c.Log.Level },
			want:    "error",
		},
		{
			name:    "empty default",
			yaml:    "routes:\n  - name: r\n    backends: [{url: http://x}]\n    request_headers:\n      set: {X-Key: \"${KEY:-}\"}\n",
			environ: nil,
			get:     func(c *Config) any { return c.Routes[0].RequestHeaders.Set["X-Key"] },
			want:    "",
		},
		{
			name:    "value cannot inject YAML",
			yaml:    "routes:\n  - name: r\n    backends: [{url: http://x}]\n    match:\n      query:\n        q: ${KEY}\n",
			environ: []string{"KEY=a, b: c\n# d: [e"},
			get:     func(c *Config) any { return c.Routes[0].Match.Query["q"] },
			want:    "a, b: c\n# d: [e",
		},
		{
			name: "escaped and lone dollars",
			yaml: "routes:\n  - name: r\n    backends: [{url: http://x}]\n    request_headers:\n      set: {X-Tpl: \"$${NAME} costs $5\"}\n",
			get:  func(c *Config) any { return c.Routes[0].RequestHeaders.Set["X-Tpl"] },
			want: "${NAME} costs $5",
		},
		{
			name: "comments are not expanded",
			yaml: "# set ${UNSET_IN_COMMENT} here\nlog:\n  level: info # or ${ALSO_UNSET}\n",
			get:  func(c *Config) any { return c.Log.Level },
			want: "info",
		},
		{
			name:    "anchors expand once for every alias",
			yaml:    "upstreams:\n  a:\n    backends: &b [{url: \"http://${H}\"}]\n  b:\n    backends: *b\n",
			environ: []string{"H=shared"},
			get:     func(c *Config) any { return c.Upstreams["b"].Backends[0].URL },
			want:    "http://shared",
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

func TestExpandEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"A": "1", "EMPTY": ""}
	tests := []struct {
		give    string
		want    string
		wantErr string
	}{
		{give: "x${A}y", want: "x1y"},
		{give: "${EMPTY}", want: ""},
		{give: "${EMPTY:-d}", want: "d"},
		{give: "${MISSING:-a:-b}", want: "a:-b"},
		{give: "$A ${A}", want: "$A 1"},
		{give: "$${A}", want: "${A}"},
		{give: "$", want: "$"},
		{give: "${MISSING}", wantErr: "environment variable MISSING is not set"},
		{give: "${A", wantErr: "unterminated ${"},
		{give: "${1A}", wantErr: `invalid variable name "1A"`},
		{give: "${}", wantErr: `invalid variable name ""`},
	}
	for _, tt := range tests {
		got, err := expandEnv(tt.give, env)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("expandEnv(%q) = %q, %v, want error containing %q", tt.give, got, err, tt.wantErr)
			}
		case err != nil || got != tt.want:
			t.Errorf("expandEnv(%q) = %q, %v, want %q", tt.give, got, err, tt.want)
		}
	}
}

func TestProblemError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give Problem
		want string
	}{
		{Problem{"routes[2].backends[0].url", 41, "scheme must be http or https"}, "routes[2].backends[0].url (line 41): scheme must be http or https"},
		{Problem{"CONNECTION_TIMEOUT", 0, `invalid duration "abc"`}, `CONNECTION_TIMEOUT: invalid duration "abc"`},
		{Problem{"", 3, "did not find expected key"}, "line 3: did not find expected key"},
		{Problem{"", 0, "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.give.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.give, got, tt.want)
		}
	}
	ps := Problems{tests[0].give, tests[1].give}
	if got, want := ps.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Problems.Error() = %q, want %q", got, want)
	}
}

func TestApplyDefaultsSecurity(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, `
server:
  max_body_bytes: 2048
cors:
  allowed_origins: []
  allowed_methods: [GET]
auth:
  public_paths: []
  jwt:
    claim_headers: {}
routes:
  - name: a
    match: {prefix: /a}
    backends: [{url: "http://a"}]
    max_body_bytes: 100
    auth:
      forward: {url: "http://auth"}
  - name: b
    backends: [{url: "http://b"}]
    auth:
      forward: {timeout: 1s}
`)
	a, b := c.Routes[0], c.Routes[1]
	tests := []struct {
		name      string
		got, want any
	}{
		{"a.MaxBodyBytes (own)", a.MaxBodyBytes, int64(100)},
		{"b.MaxBodyBytes (server)", b.MaxBodyBytes, int64(2048)},
		{"a.Auth.Forward.Timeout (url set)", a.Auth.Forward.Timeout, 5 * time.Second},
		{"b.Auth.Forward.Timeout (own, no url)", b.Auth.Forward.Timeout, time.Second},
		{"a.RateLimit (inherits)", a.RateLimit, RateLimit{}},
		{"a.CORS.AllowedOrigins (inherits)", a.CORS.AllowedOrigins, []string(nil)},
		{"a.SecurityHeaders (inherit)", a.SecurityHeaders, SecurityHeaders{}},
		{"CORS.AllowedOrigins (explicit empty)", c.CORS.AllowedOrigins, []string{}},
		{"CORS.AllowedMethods (own)", c.CORS.AllowedMethods, []string{"GET"}},
		{"CORS.AllowedHeaders (default)", c.CORS.AllowedHeaders, []string{"Authorization", "Content-Type", "X-API-Key", "X-Request-ID"}},
		{"Auth.PublicPaths (explicit empty)", c.Auth.PublicPaths, []string{}},
		{"Auth.JWT.ClaimHeaders (explicit empty)", c.Auth.JWT.ClaimHeaders, map[string]string{}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}

	// Idempotent.
	before := c.Routes[0]
	c.ApplyDefaults()
	if !reflect.DeepEqual(c.Routes[0], before) {
		t.Errorf("second ApplyDefaults changed route a: %+v, want %+v", c.Routes[0], before)
	}

	// No two configs share a default list or map.
	x, y := Default(), Default()
	x.CORS.AllowedOrigins[0] = "https://x.example.com"
	x.Auth.PublicPaths[0] = "/x"
	x.Auth.JWT.SecretAlgorithms[0] = "HS512"
	x.Auth.JWT.ClaimHeaders["sub"] = "X-X"
	if y.CORS.AllowedOrigins[0] != "*" || y.Auth.PublicPaths[0] != "/health" || y.Auth.JWT.SecretAlgorithms[0] != "HS256" || y.Auth.JWT.ClaimHeaders["sub"] != "X-User-ID" {
		t.Errorf("Default() configs share their default lists or maps")
	}
}
