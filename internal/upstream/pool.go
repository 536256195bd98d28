// Package upstream forwards requests to pools of backends: balancing (round-robin,
// least-conn, ip-hash, weighted), active health checks, passive health (outlier
// ejection), a circuit breaker per backend, retries with backoff and a retry
// budget, and the reverse proxy itself (net/http/httputil.ReverseProxy with
// Rewrite).
//
// A Pool is built from one config.Upstream and is immutable; the state that must
// survive a config reload (health, breakers, ejections, in-flight counts) lives in
// a Registry that the gateway owns and hands to every Pool it builds.
package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/upstream/h1"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNoBackend means no backend of the pool was available for an attempt
	// (all unhealthy, ejected or with an open breaker). It maps to 503.
	ErrNoBackend = errors.New("no available backend")
	// ErrTimeout means the route's timeout elapsed before the response headers
	// arrived (or, as ErrTryTimeout, one attempt's). It maps to 504.
	ErrTimeout = errors.New("upstream timeout")
	// ErrTryTimeout means one attempt's Retry.PerTryTimeout elapsed before its
	// response headers arrived. It wraps ErrTimeout, so when no retry follows it
	// maps to 504 too.
	ErrTryTimeout = fmt.Errorf("per-try %w", ErrTimeout)
)

// Options build a Pool. Config is fully defaulted by the config package; NewPool
// only guards against values that would make it misbehave (such as a zero probe
// interval).
type Options struct {
	// Name is the pool's name: the registry key, and the pool label in logs and
	// Status.
	Name string
	// Config is the pool's configuration.
	Config config.Upstream
	// Registry holds the state that survives reloads. Nil gives the pool a
	// registry of its own.
	Registry *Registry
	// Logger receives breaker, health and error logs. Nil discards them.
	Logger *slog.Logger
	// Now is the clock for breaker, outlier and budget logic. Nil means time.Now.
	Now func() time.Time
	// TrustForwarded reports whether the direct peer of a request is a trusted
	// proxy, whose X-Forwarded-For/Proto/Host are kept (and appended to). Nil
	// means never: X-Forwarded-* from the client are replaced.
	TrustForwarded func(*http.Request) bool
	// Metrics receives per-backend attempt, error and breaker events. Nil
	// counts nothing.
	Metrics Metrics
}

// Pool is a named set of backends with a balancer, health state, breakers and a
// shared transport. It is safe for concurrent use. Build it with NewPool, start
// its health checks with Start and stop them with Close.
type Pool struct {
	name      string
	cfg       config.Upstream
	algorithm string
	backends  []*backend
	balancer  balancer
	transport transport
	// insecure serves the backends with insecure_skip_verify; nil when none
	// has it.
	insecure transport
	shared   *poolState
	logger   *slog.Logger
	now      func() time.Time
	trust    func(*http.Request) bool
	// afterFunc starts the route and per-try timers: time.AfterFunc, which
	// tests replace to fire timeouts by hand.
	afterFunc func(time.Duration, func()) stopper

	breakerCfg breakerConfig
	outlierCfg outlierConfig
	health     healthConfig
	warn       rateLimit
	buffers    bufferPool

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// backend is one member of a pool. Everything but state is immutable.
type backend struct {
	idx    int
	url    string   // as configured: the registry key
	name   string   // url with any password redacted: the name in logs and Status
	target *url.URL // parsed url, path without trailing slash
	weight int
	state  *backendState
	// transport is the pool's transport, or its insecure one for a backend
	// with insecure_skip_verify.
	transport transport
	metrics   BackendMetrics
}

// usable reports whether b may take an attempt at now: healthy (active) and not
// ejected (passive) unless ignoreHealth, and its breaker not open.
func (b *backend) usable(now int64, ignoreHealth bool, bc *breakerConfig) bool {
	s := b.state
	if !ignoreHealth && (!s.healthy.Load() || s.outlier.ejected(now)) {
		return false
	}
	return s.breaker.usable(*bc, now)
}

// NewPool builds a pool. It validates the backends' URLs and the algorithm and
// returns an error naming the first problem.
func NewPool(o Options) (*Pool, error) {
	cfg := o.Config
	if len(cfg.Backends) == 0 {
		return nil, fmt.Errorf("pool %q: no backends", o.Name)
	}
	algorithm := cfg.LoadBalancing
	if algorithm == "" {
		algorithm = AlgorithmLeastConn
	}
	switch algorithm {
	case AlgorithmRoundRobin, AlgorithmLeastConn, AlgorithmIPHash, AlgorithmWeighted:
	default:
		return nil, fmt.Errorf("pool %q: unknown load balancing algorithm %q", o.Name, algorithm)
	}
	health, err := newHealthConfig(cfg.HealthCheck)
	if err != nil {
		return nil, fmt.Errorf("pool %q: %w", o.Name, err)
	}
	metrics := o.Metrics
	if metrics == nil {
		metrics = noMetrics{}
	}
	reg := o.Registry
	if reg == nil {
		reg = NewRegistry()
	}
	p := &Pool{
		name:      o.Name,
		cfg:       cfg,
		algorithm: algorithm,
		shared:    reg.pool(o.Name),
		logger:    o.Logger,
		now:       o.Now,
		trust:     o.TrustForwarded,
		afterFunc: afterFunc,
		health:    health,
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.trust == nil {
		p.trust = func(*http.Request) bool { return false }
	}
	if p.cfg.Retry.Attempts < 1 {
		p.cfg.Retry.Attempts = 1
	}
	cb := cfg.CircuitBreaker
	p.breakerCfg = newBreakerConfig(cb.Disabled, cb.MaxFailures, cb.MinRequests, cb.Timeout)
	ph := cfg.PassiveHealth
	p.outlierCfg = newOutlierConfig(ph.Disabled, ph.ConsecutiveFailures, ph.EjectionTime, ph.MaxEjectedShare, len(cfg.Backends))

	for i, cb := range cfg.Backends {
		u, err := parseBackendURL(cb.URL)
		if err != nil {
			return nil, fmt.Errorf("pool %q: backend %d: %w", o.Name, i, err)
		}
		b := &backend{
			idx:    i,
			url:    cb.URL,
			name:   u.Redacted(),
			target: u,
			weight: max(1, cb.Weight),
			state:  reg.backend(o.Name, cb.URL),
		}
		b.metrics = metrics.Backend(o.Name, b.name)
		if cfg.HealthCheck.Disabled {
			// Health from an earlier config with checks on must not stick.
			b.state.healthy.Store(true)
		}
		p.backends = append(p.backends, b)
	}
	p.balancer = newBalancer(algorithm, p.backends)
	tlsConf, err := newTLSConfig(cfg.Transport.TLS)
	if err != nil {
		return nil, fmt.Errorf("pool %q: transport tls: %w", o.Name, err)
	}
	p.transport = newTransport(cfg.Transport, len(p.backends), tlsConf)
	for i, b := range p.backends {
		b.transport = p.transport
		if !cfg.Backends[i].InsecureSkipVerify {
			continue
		}
		if p.insecure == nil {
			insecure := tlsConf.Clone()
			insecure.InsecureSkipVerify = true
			p.insecure = newTransport(cfg.Transport, len(p.backends), insecure)
		}
		b.transport = p.insecure
		// Said at every build, so at start and at every reload: a backend
		// whose certificate is not checked must never go unnoticed.
		p.logger.Warn("tls certificate verification disabled for backend (insecure_skip_verify)",
			"pool", p.name, "backend", b.name)
	}
	return p, nil
}

// newTLSConfig builds the client TLS configuration towards c's https
// backends: its CA bundle instead of the system roots, its client key pair
// for mTLS, its server name and its minimum version.
func newTLSConfig(c config.UpstreamTLS) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.MinVersion == "1.3" {
		conf.MinVersion = tls.VersionTLS13
	}
	if c.CAFile != "" {
		b, err := config.ReadPEMFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("ca_file %q: no PEM certificate", c.CAFile)
		}
		conf.RootCAs = roots
	}
	if c.CertFile != "" || c.KeyFile != "" {
		certPEM, err := config.ReadPEMFile(c.CertFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		keyPEM, err := config.ReadPEMFile(c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("load client key pair: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// parseBackendURL parses a backend base URL: http or https, with a host, and an
// optional path prefix (kept without its trailing slash).
func parseBackendURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %q: missing host", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// transport is the pool's connection pool towards its backends.
type transport interface {
	http.RoundTripper
	CloseIdleConnections()
}

// newTransport builds the pool's connection pool: the lean h1 transport for
// bodiless reads to plain-http backends (most of a gateway's traffic), over
// net/http's Transport for everything else (TLS, HTTP/2, bodies, upgrades).
// With protocol h2 or h2c it is net/http's Transport alone, speaking only
// HTTP/2.
// There is no ResponseHeaderTimeout: the route timeout, and per attempt
// Retry.PerTryTimeout, bound the wait for headers.
func newTransport(c config.Transport, backends int, tlsConf *tls.Config) transport {
	dialTimeout := c.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = 5 * time.Second
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	std := &http.Transport{
		Proxy:                 nil, // never from the environment
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          c.MaxIdleConns * backends,
		MaxIdleConnsPerHost:   c.MaxIdleConns,
		IdleConnTimeout:       c.IdleConnTimeout,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
	switch c.Protocol {
	case config.ProtocolH2, config.ProtocolH2C:
		// HTTP/2 only, so never the h1 fast path: h2 over TLS (ALPN), h2c
		// with prior knowledge over cleartext. Either carries gRPC.
		var protos http.Protocols
		if c.Protocol == config.ProtocolH2 {
			protos.SetHTTP2(true)
		} else {
			protos.SetUnencryptedHTTP2(true)
		}
		std.Protocols = &protos
		return std
	}
	return &h1.Transport{
		Dial:           d.DialContext,
		Fallback:       std,
		MaxIdlePerHost: c.MaxIdleConns,
		IdleTimeout:    c.IdleConnTimeout,
	}
}

// Lean reports whether every backend of the pool is plain HTTP/1.1 through
// the lean h1 transport, which makes an exchange on the caller's goroutine
// and leaves nothing of the request behind once it has returned (net/http's
// transport may still be writing it).
func (p *Pool) Lean() bool {
	if !h1.Available() {
		return false
	}
	for _, b := range p.backends {
		if _, ok := b.transport.(*h1.Transport); !ok || b.target.Scheme != "http" {
			return false
		}
	}
	return len(p.backends) > 0
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Start starts the active health checks, one goroutine per backend. They stop
// when ctx is done or Close is called. Start does nothing when checks are
// disabled, when the pool was already started, or after Close.
func (p *Pool) Start(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	if p.health.disabled {
		return
	}
	ctx, p.cancel = context.WithCancel(ctx)
	clients := make(map[transport]*http.Client, 2)
	for _, b := range p.backends {
		client := clients[b.transport]
		if client == nil {
			client = p.healthClient(b.transport)
			clients[b.transport] = client
		}
		p.wg.Go(func() { p.checkLoop(ctx, client, b) })
	}
}

// Close stops the health checks, waits for their goroutines and closes idle
// upstream connections. It does not cut in-flight or upgraded requests; they
// finish on their own. Close is idempotent.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	cancel := p.cancel
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	p.wg.Wait()
	p.transport.CloseIdleConnections()
	if p.insecure != nil {
		p.insecure.CloseIdleConnections()
	}
}

// PoolStatus is a snapshot of a pool for /health and /stats.
type PoolStatus struct {
	// Name is the pool's name.
	Name string `json:"name"`
	// Algorithm is the balancing algorithm.
	Algorithm string `json:"algorithm"`
	// Healthy counts backends that are neither failing active checks nor ejected.
	Healthy int `json:"healthy"`
	// Total counts all backends.
	Total int `json:"total"`
	// Panic is true when so many backends are unhealthy that the pool ignores
	// health and balances across all of them.
	Panic bool `json:"panic"`
	// Backends has one entry per backend, in configuration order.
	Backends []BackendStatus `json:"backends"`
}

// BackendStatus is a snapshot of one backend.
type BackendStatus struct {
	// URL is the backend's base URL as configured.
	URL string `json:"url"`
	// Weight is the backend's relative share of traffic.
	Weight int `json:"weight"`
	// Healthy is the result of active health checks.
	Healthy bool `json:"healthy"`
	// Ejected is true while passive health has the backend ejected.
	Ejected bool `json:"ejected"`
	// Breaker is "closed", "open" or "half-open".
	Breaker string `json:"breaker"`
	// InFlight counts attempts sent and not yet finished.
	InFlight int64 `json:"in_flight"`
	// Requests counts attempts sent.
	Requests uint64 `json:"requests"`
	// Failures counts attempts that failed (transport error, timeout or 5xx).
	Failures uint64 `json:"failures"`
}

// Status returns a snapshot of the pool's backends.
func (p *Pool) Status() PoolStatus {
	now := p.now().UnixNano()
	st := PoolStatus{
		Name:      p.name,
		Algorithm: p.algorithm,
		Total:     len(p.backends),
		Panic:     p.panicking(now),
		Backends:  make([]BackendStatus, 0, len(p.backends)),
	}
	for _, b := range p.backends {
		s := b.state
		bs := BackendStatus{
			URL:      b.name,
			Weight:   b.weight,
			Healthy:  s.healthy.Load(),
			Ejected:  s.outlier.ejected(now),
			Breaker:  s.breaker.state(p.breakerCfg, now).String(),
			InFlight: s.inFlight.Load(),
			Requests: s.requests.Load(),
			Failures: s.failures.Load(),
		}
		if bs.Healthy && !bs.Ejected {
			st.Healthy++
		}
		st.Backends = append(st.Backends, bs)
	}
	return st
}

// panicking reports whether the share of backends unavailable by health (active
// or passive) exceeds the panic threshold, in which case health is ignored.
func (p *Pool) panicking(now int64) bool {
	down := 0
	for _, b := range p.backends {
		if !b.state.healthy.Load() || b.state.outlier.ejected(now) {
			down++
		}
	}
	return down > 0 && float64(down) > p.cfg.PanicThreshold*float64(len(p.backends))
}

// pick chooses a backend for one attempt and admits it through its breaker.
// probe reports that the attempt is the breaker's half-open probe. It returns nil
// when no backend is available.
func (p *Pool) pick(f filter) (b *backend, probe bool) {
	f.breaker = &p.breakerCfg
	for range len(p.backends) + 1 {
		b := p.balancer.pick(f)
		if b == nil {
			return nil, false
		}
		ok, probe, t := b.state.breaker.allow(p.breakerCfg, f.now)
		if t.changed {
			p.logBreaker(b, t)
		}
		if ok {
			return b, probe
		}
		f.tried |= 1 << (uint(b.idx) & 63) // another request won the probe
	}
	return nil, false
}

// record counts the outcome of one attempt on b, ended at now (UnixNano):
// request and failure counters, the breaker and passive health. A request
// whose outcome is unknown (the client went away) is not counted as a
// failure or success.
func (p *Pool) record(b *backend, probe bool, o outcome, now int64) {
	if o == outcomeUnknown {
		if probe {
			b.state.breaker.release(p.breakerCfg, now)
		}
		return
	}
	failed := o == outcomeFailure
	if failed {
		b.state.failures.Add(1)
	}
	if t := b.state.breaker.record(p.breakerCfg, now, probe, failed); t.changed {
		if t.to == stateOpen {
			b.metrics.BreakerOpened()
		}
		p.logBreaker(b, t)
	}
	if p.recordOutlier(b, now, failed) {
		p.logger.Warn("backend ejected", "pool", p.name, "backend", b.name,
			"ejection_time", p.cfg.PassiveHealth.EjectionTime.String())
	}
}

// outcome classifies an attempt for the breaker and passive health.
type outcome int

const (
	outcomeSuccess outcome = iota
	outcomeFailure         // transport error, timeout or 5xx
	outcomeUnknown         // the client went away before the outcome was known
)

func (p *Pool) logBreaker(b *backend, t transition) {
	level := slog.LevelInfo
	if t.to == stateOpen {
		level = slog.LevelWarn
	}
	p.logger.Log(context.Background(), level, "circuit breaker state change",
		"pool", p.name, "backend", b.name, "from", t.from.String(), "to", t.to.String())
}
