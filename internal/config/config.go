// Package config defines Altair's configuration schema, its defaults, how it is
// loaded from YAML and the environment, and how it is validated.
//
// The schema is the contract between operators and the gateway: every field has a
// yaml tag, a unit and a default, and Validate reports problems with the YAML path
// and line of the offending key.
package config

import (
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole gateway configuration after defaults, the YAML file and the
// environment have been merged.
type Config struct {
	// Server configures the listener and its hardening limits.
	Server Server `yaml:"server"`
	// Log configures structured logging.
	Log Log `yaml:"log"`
	// Admin configures the admin API.
	Admin Admin `yaml:"admin"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
	// Monitor configures the system-monitor page.
	Monitor Monitor `yaml:"monitor"`
	// Tracing configures OpenTelemetry tracing (OTLP export).
	Tracing Tracing `yaml:"tracing"`
	// Redis configures the Redis that replicas share state through.
	Redis Redis `yaml:"redis"`
	// Edge configures the checks that run before routing.
	Edge Edge `yaml:"edge"`
	// SecurityHeaders are set on every response; routes may override them.
	SecurityHeaders SecurityHeaders `yaml:"security_headers"`
	// CORS is the default CORS policy; routes may override it.
	CORS CORS `yaml:"cors"`
	// Compression is the default response compression; routes may
	// override it.
	Compression Compression `yaml:"compression"`
	// Cache configures the HTTP response cache.
	Cache Cache `yaml:"cache"`
	// Auth configures the authentication methods routes can require.
	Auth Auth `yaml:"auth"`
	// Defaults holds the settings that every upstream and route inherits unless it
	// sets its own.
	Defaults Defaults `yaml:"defaults"`
	// Upstreams are named pools of backends that routes refer to by name.
	Upstreams map[string]*Upstream `yaml:"upstreams"`
	// Routes are matched against each request; the most specific match wins.
	Routes []Route `yaml:"routes"`

	// Source names where the config came from (a file path, or "environment").
	Source string `yaml:"-"`
	// lines maps YAML paths such as "routes[2].backends[0].url" to line numbers.
	lines map[string]int
}

// Server configures the client-facing listener.
type Server struct {
	// Listen is the bind address (GATEWAY_PORT). Default ":9777". A bare port
	// number such as "9777" is accepted.
	Listen string `yaml:"listen"`
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes caps the size of request headers, in bytes. Default 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// ShutdownTimeout bounds the graceful drain on SIGINT/SIGTERM. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// DrainDelay is how long /ready answers 503 after SIGINT/SIGTERM before the
	// listener closes, so load balancers stop sending new requests first
	// (Kubernetes: a few seconds). Default 0.
	DrainDelay time.Duration `yaml:"drain_delay"`
	// MaxURIBytes caps the request target's length; longer gets 414.
	// Default 8192.
	MaxURIBytes int `yaml:"max_uri_bytes"`
	// MaxBodyBytes is the default request body limit of every route; larger
	// bodies get 413. Default 10485760 (10 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// TrustedProxies lists CIDRs (or single IPs) whose X-Forwarded-* headers are
	// believed (TRUSTED_PROXIES, comma-separated). Default: none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TLS terminates TLS on the listener when it names certificates. Read at
	// start, except the certificate files, which are re-read when they change.
	TLS ServerTLS `yaml:"tls"`
	// H2C serves HTTP/2 without TLS (prior knowledge) beside HTTP/1.1 on a
	// cleartext listener. Default false. Read at start.
	H2C bool `yaml:"h2c"`
	// HTTP3 serves HTTP/3 over QUIC beside the TLS listener. Read at start.
	HTTP3 ServerHTTP3 `yaml:"http3"`
	// DirectLane lets plain requests on routes without middleware of their
	// own skip the handler chain on cleartext HTTP/1.1 (same answers, less
	// CPU). Default on.
	DirectLane ServerDirectLane `yaml:"direct_lane"`
}

// ServerDirectLane configures the direct lane.
type ServerDirectLane struct {
	// Disabled sends every request through the handler chain.
	Disabled bool `yaml:"disabled"`
}

// ServerHTTP3 configures the HTTP/3 (QUIC) listener.
type ServerHTTP3 struct {
	// Enabled serves HTTP/3 on UDP with the TLS listener's certificates and
	// handler, and advertises it on TCP responses with Alt-Svc. Needs
	// server.tls.certificates. Default false.
	Enabled bool `yaml:"enabled"`
	// Listen is the UDP bind address. Default: the address and port the TCP
	// listener (server.listen) bound.
	Listen string `yaml:"listen"`
}

// ServerTLS configures TLS termination on the main listener.
type ServerTLS struct {
	// Certificates are the key pairs served. A client's SNI name picks the
	// certificate whose DNS SANs name it (exactly or by a wildcard); the
	// first is served to clients without SNI or with a name none carries.
	// Default: none, which serves plain HTTP.
	Certificates []CertificateFiles `yaml:"certificates"`
	// MinVersion is the oldest TLS version accepted: "1.2" or "1.3".
	// Default "1.2". TLS 1.3 is preferred whenever the client offers it.
	MinVersion string `yaml:"min_version"`
	// RedirectListen, when set, is a cleartext listener (":80") that answers
	// every request with 308 to the same URL on https, except /health and
	// /ready, which it serves for probes. Default: none.
	RedirectListen string `yaml:"redirect_listen"`
	// ClientAuth asks clients for a certificate (mTLS). Default: none.
	ClientAuth ClientAuth `yaml:"client_auth"`
	// ACME obtains and renews certificates from an ACME CA (Let's Encrypt by
	// default) for the names it lists. Default: off.
	ACME ACME `yaml:"acme"`
	// OCSPStapling staples an OCSP response, fetched in the background, to
	// every certificate whose leaf names an OCSP responder and whose chain
	// holds its issuer. Default true (read it with StaplesOCSP); a
	// certificate without an OCSP URL costs nothing. Read at start.
	OCSPStapling *bool `yaml:"ocsp_stapling"`
}

// Enabled reports whether the listener terminates TLS.
func (t *ServerTLS) Enabled() bool { return len(t.Certificates) > 0 || t.ACME.Enabled }

// ACME configures automatic certificates (RFC 8555) on the TLS listener,
// through golang.org/x/crypto/acme/autocert. A handshake whose SNI name is one
// of Domains and that no certificate file names gets an ACME certificate,
// obtained at its first handshake and renewed before it expires. The CA
// validates with TLS-ALPN-01 on the TLS listener (which must then be reached
// on port 443) or with HTTP-01 on server.tls.redirect_listen (port 80). Read
// at start.
type ACME struct {
	// Enabled turns ACME on. Default false.
	Enabled bool `yaml:"enabled"`
	// Domains are the exact host names certificates are asked for; no
	// other name ever makes Altair contact the CA. Required when enabled.
	Domains []string `yaml:"domains"`
	// Email is the account's contact address, for the CA's expiry notices.
	// Default: none.
	Email string `yaml:"email"`
	// DirectoryURL is the CA's ACME directory. Default: Let's Encrypt's
	// production directory.
	DirectoryURL string `yaml:"directory_url"`
	// CacheDir holds the account key and the certificates, so a restart
	// does not ask the CA again. Created with mode 0700. Default
	// "acme-cache" in the working directory.
	CacheDir string `yaml:"cache_dir"`
	// CAFile is a PEM bundle of the CAs trusted for the HTTPS connection to
	// DirectoryURL, beside the system's: for a private CA (step-ca, Pebble).
	// Default: the system roots only.
	CAFile string `yaml:"ca_file"`
	// RenewBefore is how long before expiry a certificate is renewed.
	// Default 720h (30 days).
	RenewBefore time.Duration `yaml:"renew_before"`
}

// StaplesOCSP reports whether OCSP stapling is on: OCSPStapling, or true when
// unset.
func (t *ServerTLS) StaplesOCSP() bool { return t.OCSPStapling == nil || *t.OCSPStapling }

// Client certificate modes of server.tls.client_auth.mode.
const (
	// ClientAuthRequest asks for a certificate and verifies one that is
	// sent, but lets clients without one connect.
	ClientAuthRequest = "request"
	// ClientAuthRequire refuses the handshake without a valid certificate.
	ClientAuthRequire = "require"
)

// ClientAuth configures client certificates on the TLS listener. Read at
// start.
type ClientAuth struct {
	// CAFile is a PEM bundle of the CAs that sign accepted client
	// certificates. Required with a mode.
	CAFile string `yaml:"ca_file"`
	// Mode is "request" or "require". Default "require" when CAFile is set.
	Mode string `yaml:"mode"`
}

// Enabled reports whether the listener asks for client certificates.
func (c *ClientAuth) Enabled() bool { return c.CAFile != "" || c.Mode != "" }

// CertificateFiles is one PEM certificate chain and its private key.
type CertificateFiles struct {
	// CertFile is the PEM certificate chain, leaf first.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the leaf.
	KeyFile string `yaml:"key_file"`
}

// Metrics configures the Prometheus metrics endpoint.
type Metrics struct {
	// Path is where the metrics are served, like /health: a reserved path,
	// answered before routing. It must start with "/". Default "/metrics".
	Path string `yaml:"path"`
	// Disabled stops serving the endpoint (requests to Path are routed like
	// any other); the gateway still counts. Default false.
	Disabled bool `yaml:"disabled"`
	// OnAdmin serves the metrics only with the admin token: on the admin
	// listener (admin.listen) when there is one, else on the main listener
	// behind the token. It needs admin.token. Default false: served on the
	// main listener to anyone who can reach it.
	OnAdmin bool `yaml:"on_admin"`
}

// Monitor configures the system-monitor page (GET /monitor) and the JSON it
// reads (GET /api/system-metrics), reserved paths answered before routing.
type Monitor struct {
	// Disabled stops serving the page and the JSON (their paths are then
	// routed like any other). Default false.
	Disabled bool `yaml:"disabled"`
	// OnAdmin serves the JSON only with the admin token: on the admin
	// listener (admin.listen) when there is one, the page with it; else on
	// the main listener behind the token. It needs admin.token. Default
	// false: served on the main listener to anyone who can reach it.
	OnAdmin bool `yaml:"on_admin"`
}

// Tracing configures OpenTelemetry tracing. It is read once at start (a
// reload does not change it). The standard OTEL_* environment variables win
// over the file: OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) turns it
// on, OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turns it off.
type Tracing struct {
	// Enabled turns tracing on. Default false, or true when an OTLP endpoint
	// is set by the environment.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the OTLP base URL, e.g. http://collector:4318 for
	// http/protobuf or http://collector:4317 for grpc
	// (OTEL_EXPORTER_OTLP_ENDPOINT). For http/protobuf, /v1/traces is
	// appended. Default: the protocol's default on localhost.
	Endpoint string `yaml:"endpoint"`
	// TracesEndpoint is the full URL of the traces endpoint, used as given
	// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). It wins over Endpoint.
	TracesEndpoint string `yaml:"traces_endpoint"`
	// Protocol is http/protobuf or grpc (OTEL_EXPORTER_OTLP_PROTOCOL,
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL). Default http/protobuf.
	Protocol string `yaml:"protocol"`
	// SampleRatio is the share (0..1) of new traces sampled; a request that
	// arrives with a sampled traceparent is always traced (parent-based).
	// (OTEL_TRACES_SAMPLER_ARG.) Default 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name resource attribute
	// (OTEL_SERVICE_NAME). Default "altair".
	ServiceName string `yaml:"service_name"`
}

// Ratio is SampleRatio, or 1 when unset.
func (t Tracing) Ratio() float64 {
	if t.SampleRatio == nil {
		return 1
	}
	return *t.SampleRatio
}

// URL is the traces endpoint to export to: TracesEndpoint as given, else
// Endpoint with /v1/traces appended for http/protobuf, else "" (the
// exporter's default).
func (t Tracing) URL() string {
	if t.TracesEndpoint != "" {
		return t.TracesEndpoint
	}
	if t.Endpoint == "" || t.Protocol == "grpc" {
		return t.Endpoint
	}
	return strings.TrimSuffix(t.Endpoint, "/") + "/v1/traces"
}

// Compression configures response compression (gzip, brotli, zstd). A
// zero field means the built-in default (the gateway fills them in).
type Compression struct {
	// Disabled turns compression off (ENABLE_COMPRESSION=false). Default
	// false: responses are compressed for clients that accept it.
	Disabled bool `yaml:"disabled"`
	// Encodings in server preference order: zstd, gzip, br. Default
	// [zstd, gzip, br].
	Encodings []string `yaml:"encodings"`
	// MinSize is the smallest body compressed, in bytes. Default 1024.
	MinSize int `yaml:"min_size"`
	// Levels per encoding; 0 means the default (zstd 3, gzip 5, br 4).
	Levels CompressionLevels `yaml:"levels"`
	// Types replaces the list of compressible content types.
	Types []string `yaml:"types"`
	// ExtraTypes adds to the default list (e.g. text/event-stream).
	ExtraTypes []string `yaml:"extra_types"`
}

// Cache configures the HTTP response cache (RFC 9111, shared-cache rules).
type Cache struct {
	// Enabled turns caching on for every route (ENABLE_CACHING). Default
	// false: routes opt in with routes[].cache.enabled.
	Enabled bool `yaml:"enabled"`
	// TTL is the freshness of cacheable responses that state none
	// (CACHE_TTL). Default 5m; 0s is strict mode: only RFC 9111's own
	// freshness rules apply.
	TTL *time.Duration `yaml:"ttl"`
	// MaxBodyBytes: larger responses stream through and are not stored.
	// Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxMemoryBytes bounds the in-process store. Default 64 MiB.
	MaxMemoryBytes int64 `yaml:"max_memory_bytes"`
	// KeepStale is how long an entry is kept after it goes stale, for
	// revalidation and stale-if-error. Default 10m.
	KeepStale time.Duration `yaml:"keep_stale"`
	// CoalesceTimeout bounds how long a request waits for a concurrent
	// miss on the same key. Default 5s.
	CoalesceTimeout time.Duration `yaml:"coalesce_timeout"`
	// RevalidateTimeout bounds a background revalidation. Default 30s.
	RevalidateTimeout time.Duration `yaml:"revalidate_timeout"`
	// Store is where entries are kept: "memory" (each replica its own),
	// "memory+redis" (each replica's memory in front of the Redis the
	// replicas share, so a response cached through one is a hit through
	// all) or "redis" (Redis alone). Default: memory+redis with a redis
	// section, else memory.
	Store string `yaml:"store"`
}

// Cache stores (cache.store).
const (
	CacheStoreMemory      = "memory"
	CacheStoreMemoryRedis = "memory+redis"
	CacheStoreRedis       = "redis"
)

func cacheStores() []string {
	return []string{CacheStoreMemory, CacheStoreMemoryRedis, CacheStoreRedis}
}

// StoreWith is Store, or its default when unset: memory+redis when redis
// (a Redis is configured), else memory.
func (c Cache) StoreWith(redis bool) string {
	switch {
	case c.Store != "":
		return c.Store
	case redis:
		return CacheStoreMemoryRedis
	}
	return CacheStoreMemory
}

// DefaultCacheTTL is CACHE_TTL's default, as in the original gateway.
const DefaultCacheTTL = 5 * time.Minute

// FreshnessTTL is TTL, or DefaultCacheTTL when unset.
func (c Cache) FreshnessTTL() time.Duration {
	if c.TTL == nil {
		return DefaultCacheTTL
	}
	return *c.TTL
}

// RouteCache is a route's cache setting.
type RouteCache struct {
	// Enabled overrides cache.enabled for the route.
	Enabled *bool `yaml:"enabled"`
	// TTL overrides cache.ttl for the route; 0s is strict mode.
	TTL *time.Duration `yaml:"ttl"`
}

// CompressionLevels are per-encoding compression levels.
type CompressionLevels struct {
	Zstd   int `yaml:"zstd"`
	Gzip   int `yaml:"gzip"`
	Brotli int `yaml:"br"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error (LOG_LEVEL). Default info.
	Level string `yaml:"level"`
	// Levels overrides Level for some subsystems, e.g. {proxy: debug}.
	// Names: LogSubsystems.
	Levels map[string]string `yaml:"levels"`
	// Format is json or text. Default json.
	Format string `yaml:"format"`
	// Access configures the access log: one line per proxied request.
	Access AccessLog `yaml:"access"`
}

// AccessLog configures the access log. Its lines go to the same output as
// the other logs, in the same format, with subsystem "access".
type AccessLog struct {
	// Disabled turns the access log off. Default false.
	Disabled bool `yaml:"disabled"`
	// Sample is the share (0..1) of requests logged; responses with a 5xx
	// status are always logged. Default 1 (every request).
	Sample *float64 `yaml:"sample"`
}

// SampleRate is Sample, or 1 when unset.
func (a AccessLog) SampleRate() float64 {
	if a.Sample == nil {
		return 1
	}
	return *a.Sample
}

// Defaults are inherited by every upstream and route that leaves a field unset
// (zero).
type Defaults struct {
	// Timeout is a route's default time limit from sending the request upstream to
	// receiving the response headers, across all attempts (CONNECTION_TIMEOUT).
	// Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// UpstreamSettings are the defaults for every upstream.
	UpstreamSettings `yaml:",inline"`
}

// Upstream is a named pool of backends with its balancing, health and resilience
// settings.
type Upstream struct {
	// Backends are the pool's members.
	Backends []Backend `yaml:"backends"`
	// UpstreamSettings override the defaults for this pool.
	UpstreamSettings `yaml:",inline"`
}

// UpstreamSettings are the per-pool settings that can also be given as defaults.
type UpstreamSettings struct {
	// LoadBalancing is round-robin, least-conn, ip-hash or weighted
	// (LOAD_BALANCING_ALGO). Default least-conn.
	LoadBalancing string `yaml:"load_balancing"`
	// PanicThreshold is the share of unhealthy backends (0..1) above which the pool
	// balances across all its backends instead of overloading the few left.
	// Default 0.5. Set 1 to never panic.
	PanicThreshold float64 `yaml:"panic_threshold"`
	// HealthCheck configures active health checks.
	HealthCheck HealthCheck `yaml:"health_check"`
	// PassiveHealth configures outlier ejection from live traffic.
	PassiveHealth PassiveHealth `yaml:"passive_health"`
	// CircuitBreaker configures the per-backend breaker.
	CircuitBreaker CircuitBreaker `yaml:"circuit_breaker"`
	// Retry configures retries across backends.
	Retry Retry `yaml:"retry"`
	// Transport configures connections to the backends.
	Transport Transport `yaml:"transport"`
}

// Backend is one member of a pool.
type Backend struct {
	// URL is the backend's base URL, http or https, optionally with a path prefix.
	URL string `yaml:"url"`
	// Weight is the backend's relative share of traffic. Default 1.
	Weight int `yaml:"weight"`
	// InsecureSkipVerify accepts any certificate from this https backend, without
	// checking its chain or name. It exists for test rigs only, can be set only
	// here (never as a default) and is logged as a warning naming the backend at
	// every start and reload. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// HealthCheck configures active probing of each backend.
type HealthCheck struct {
	// Disabled turns active health checks off for the pool.
	Disabled bool `yaml:"disabled"`
	// Type is http, tcp or grpc. Default http when Path is set, tcp otherwise.
	// grpc calls the standard grpc.health.v1.Health/Check (SERVING is
	// healthy) and needs transport.protocol h2 or h2c.
	Type string `yaml:"type"`
	// Service is the service name a grpc check asks about. Default "": the
	// backend's overall health.
	Service string `yaml:"service"`
	// Path is the HTTP path probed on each backend, e.g. /healthz.
	Path string `yaml:"path"`
	// ExpectedStatus is the status a healthy backend answers. Default: any 2xx or 3xx.
	ExpectedStatus int `yaml:"expected_status"`
	// Interval between probes (HEALTH_CHECK_INTERVAL). Default 10s.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one probe. Default 2s (capped at Interval).
	Timeout time.Duration `yaml:"timeout"`
	// Rise is how many consecutive passing probes mark a backend healthy. Default 2.
	Rise int `yaml:"rise"`
	// Fall is how many consecutive failing probes mark a backend unhealthy. Default 3.
	Fall int `yaml:"fall"`
}

// PassiveHealth configures outlier ejection based on live traffic.
type PassiveHealth struct {
	// Disabled turns outlier ejection off for the pool.
	Disabled bool `yaml:"disabled"`
	// ConsecutiveFailures (5xx or transport errors) that eject a backend. Default 5.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// EjectionTime is how long an ejected backend stays out. Default 30s.
	EjectionTime time.Duration `yaml:"ejection_time"`
	// MaxEjectedShare caps the share of a pool (0..1) that may be ejected at once;
	// at least one backend may always be ejected. Default 0.5.
	MaxEjectedShare float64 `yaml:"max_ejected_share"`
}

// CircuitBreaker configures the per-backend breaker.
type CircuitBreaker struct {
	// Disabled turns the breaker off for the pool.
	Disabled bool `yaml:"disabled"`
	// MaxFailures is the number of consecutive failures that open the breaker
	// (CIRCUIT_BREAKER_MAX). Default 5.
	MaxFailures int `yaml:"max_failures"`
	// Timeout is how long the breaker stays open before half-open
	// (CIRCUIT_BREAKER_TIMEOUT). Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// MinRequests is the request volume a backend must have seen since the breaker
	// last closed before it may open. Default: MaxFailures.
	MinRequests int `yaml:"min_requests"`
}

// Retry configures retries of failed attempts on other backends.
type Retry struct {
	// Attempts is the total number of tries, the first included. Default 3. 1 means
	// no retries.
	Attempts int `yaml:"attempts"`
	// Backoff is the base of the exponential backoff (base * 2^n, with jitter).
	// Default 100ms.
	Backoff time.Duration `yaml:"backoff"`
	// MaxBackoff caps one backoff wait. Default 1s.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// PerTryTimeout bounds one attempt, from sending it to receiving response
	// headers; on expiry an idempotent request is retried on the next backend.
	// Default 0: only the route timeout applies.
	PerTryTimeout time.Duration `yaml:"per_try_timeout"`
	// Budget is the largest share of a pool's requests that may be retries (0..1).
	// Default 0.2.
	Budget float64 `yaml:"budget"`
	// MaxBodyBytes is the largest request body buffered so it can be replayed.
	// Larger bodies are streamed and not retried. Default 65536.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// OnStatus lists upstream statuses that are retried for idempotent requests.
	// Default [502, 503, 504].
	OnStatus []int `yaml:"on_status"`
}

// Transport configures the connection pool towards backends.
type Transport struct {
	// MaxIdleConns is the number of idle keep-alive connections kept per backend
	// (MAX_IDLE_CONNS). Default 100.
	MaxIdleConns int `yaml:"max_idle_conns"`
	// IdleConnTimeout closes idle upstream connections (IDLE_CONN_TIMEOUT).
	// Default 90s.
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout"`
	// DialTimeout bounds establishing a TCP connection. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Protocol is the HTTP version spoken to the backends: http1 (HTTP/1.1,
	// and HTTP/2 when an https backend offers it), h2 (HTTP/2 over TLS only:
	// https backends) or h2c (HTTP/2 with prior knowledge over cleartext:
	// http backends). gRPC backends need h2 or h2c. Default http1.
	Protocol string `yaml:"protocol"`
	// TLS configures connections to https backends (and active health checks
	// of them).
	TLS UpstreamTLS `yaml:"tls"`
}

// UpstreamTLS configures TLS towards https backends. Each field is inherited
// from defaults.transport.tls when unset; cert_file and key_file are inherited
// together, as a pair.
type UpstreamTLS struct {
	// CAFile is a PEM bundle of the certificate authorities trusted to sign
	// backend certificates. It replaces the system roots for the pool: only
	// these authorities are trusted. Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile is the PEM client certificate (chain) presented to backends that
	// ask for one (mTLS). Needs KeyFile.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
	// ServerName overrides the name sent in SNI and checked against the backend
	// certificate. Default: the host of the backend's URL.
	ServerName string `yaml:"server_name"`
	// MinVersion is the oldest TLS version used: "1.2" or "1.3". Default "1.2".
	MinVersion string `yaml:"min_version"`
}

// Route maps matching requests to an upstream.
type Route struct {
	// Name identifies the route in logs, metrics and /stats. Required and unique.
	Name string `yaml:"name"`
	// Match selects the requests this route takes.
	Match Match `yaml:"match"`
	// StripPrefix removes the matched prefix before forwarding.
	StripPrefix bool `yaml:"strip_prefix"`
	// Rewrite replaces the forwarded path with a template: {param} inserts a path
	// parameter, {path} the whole cleaned path and {suffix} the part after a
	// matched prefix.
	Rewrite string `yaml:"rewrite"`
	// RequestHeaders are changed before forwarding.
	RequestHeaders HeaderOps `yaml:"request_headers"`
	// ResponseHeaders are changed before answering the client.
	ResponseHeaders HeaderOps `yaml:"response_headers"`
	// Timeout overrides Defaults.Timeout for this route.
	Timeout time.Duration `yaml:"timeout"`
	// RequireAuth makes the route refuse callers that do not authenticate
	// with one of Auth's methods (401), except on auth.public_paths. At least
	// one of those methods must be configured.
	RequireAuth bool `yaml:"require_auth"`
	// RequireClientCert makes the route answer 403 to requests without a
	// client certificate verified against server.tls.client_auth.ca_file.
	// Default false.
	RequireClientCert bool `yaml:"require_client_cert"`
	// Auth chooses the route's authentication methods and what credentials
	// are passed upstream.
	Auth RouteAuth `yaml:"auth"`
	// RateLimit overrides edge.rate_limit for this route, field by field; the
	// route then has buckets of its own. A zero field inherits; the config
	// keeps it zero and the gateway merges.
	RateLimit RateLimit `yaml:"rate_limit"`
	// CORS overrides the default CORS policy for this route, field by field.
	// A zero field, an empty list included, inherits; the config keeps it
	// zero and the gateway merges. Disabled in either disables CORS.
	CORS CORS `yaml:"cors"`
	// SecurityHeaders override the defaults for this route, field by field;
	// an empty field inherits and "off" leaves the header out.
	SecurityHeaders SecurityHeaders `yaml:"security_headers"`
	// MaxBodyBytes overrides server.max_body_bytes for this route. Default:
	// server.max_body_bytes.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Compression overrides the default compression for this route, field
	// by field; disabled in either turns it off.
	Compression Compression `yaml:"compression"`
	// Cache turns the response cache on or off for this route and sets its
	// default freshness.
	Cache RouteCache `yaml:"cache"`
	// WebSocket limits the route's upgraded connections (WebSocket or any
	// other protocol switched to with Upgrade).
	WebSocket WebSocket `yaml:"websocket"`
	// Plugins are the route's plugin middlewares, in order: the first sees
	// the request first and the response last. They run after the edge
	// checks, CORS, authentication, rate limits, compression and the body
	// limit, and before the response cache. At most MaxRoutePlugins.
	Plugins []PluginUse `yaml:"plugins"`
	// Upstream names an entry of Config.Upstreams. Exactly one of Upstream and
	// Backends is set.
	Upstream string `yaml:"upstream"`
	// Backends is a shorthand for a pool of its own with default settings, named
	// after the route.
	Backends []Backend `yaml:"backends"`
}

// MaxRoutePlugins bounds a route's plugins list.
const MaxRoutePlugins = 16

// PluginUse is one entry of a route's plugins list: a plugin the binary has
// (compiled in, or the built-in "wasm" that loads a WebAssembly module) and
// its configuration, which the plugin decodes itself.
type PluginUse struct {
	// Name is the plugin's name. Required.
	Name string `yaml:"name"`
	// Label names this use in metrics (the plugin label), logs and explain,
	// unique within the route. Default: Name, or Name#N for the N-th use
	// of the same plugin on the route (N from 2).
	Label string `yaml:"label"`
	// Config is the plugin's configuration, as written (after ${VAR}
	// expansion). Default: none.
	Config yaml.Node `yaml:"config"`
}

// WebSocket limits a route's upgraded connections.
type WebSocket struct {
	// MaxConnections caps the route's open upgraded connections; a new
	// upgrade beyond it is answered 503 websocket_limit before reaching the
	// backend. Default 0: unlimited.
	MaxConnections int `yaml:"max_connections"`
	// IdleTimeout closes an upgraded connection when no byte has flowed in
	// either direction for this long. Default 5m; 0 means never.
	IdleTimeout *time.Duration `yaml:"idle_timeout"`
}

// DefaultWebSocketIdleTimeout is WebSocket.IdleTimeout when unset.
const DefaultWebSocketIdleTimeout = 5 * time.Minute

// Idle is IdleTimeout, or DefaultWebSocketIdleTimeout when unset; zero means
// no limit.
func (w WebSocket) Idle() time.Duration {
	if w.IdleTimeout == nil {
		return DefaultWebSocketIdleTimeout
	}
	return *w.IdleTimeout
}

// Match selects requests. Every condition given must hold; an empty Match takes
// every request.
type Match struct {
	// Hosts are exact host names or wildcards such as *.example.com (one or more
	// labels). Empty means any host.
	Hosts []string `yaml:"hosts"`
	// Methods are HTTP methods. Empty means any method.
	Methods []string `yaml:"methods"`
	// Prefix matches the path on segment boundaries: /api matches /api and /api/x
	// but not /apix. At most one of Prefix and Path.
	Prefix string `yaml:"prefix"`
	// Path matches the whole path; {name} matches one segment and a final
	// {name...} matches the rest.
	Path string `yaml:"path"`
	// Headers must be present with exactly these values; "*" means present with
	// any value.
	Headers map[string]string `yaml:"headers"`
	// Query parameters must be present with exactly these values; "*" means
	// present with any value.
	Query map[string]string `yaml:"query"`
}

// HeaderOps change a header set: Remove first, then Set, then Add.
type HeaderOps struct {
	// Set replaces any existing values.
	Set map[string]string `yaml:"set"`
	// Add appends a value.
	Add map[string]string `yaml:"add"`
	// Remove deletes headers by name.
	Remove []string `yaml:"remove"`
}

// Line returns the line in the source YAML of the key at path, such as
// "routes[1].backends[0].url", or of its nearest ancestor that has one; 0 when
// unknown (for example for values from the environment).
func (c *Config) Line(path string) int {
	if c == nil || c.lines == nil {
		return 0
	}
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := c.lines[p]; ok {
			return l
		}
	}
	return 0
}

// parentPath drops the last element of a YAML path: "a.b[2]" → "a.b", "a.b" → "a".
func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		switch p[i] {
		case '.':
			return p[:i]
		case '[':
			return p[:i]
		}
	}
	return ""
}

// Equal reports whether a and b configure the same ACME.
func (a ACME) Equal(b ACME) bool {
	return a.Enabled == b.Enabled && slices.Equal(a.Domains, b.Domains) && a.Email == b.Email &&
		a.DirectoryURL == b.DirectoryURL && a.CacheDir == b.CacheDir && a.CAFile == b.CAFile &&
		a.RenewBefore == b.RenewBefore
}
