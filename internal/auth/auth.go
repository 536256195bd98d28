// Package auth authenticates requests on routes that require it: JWT bearer
// tokens (an HMAC secret, PEM public keys and a JWKS URL), API keys and
// forward auth (an external service decides).
//
// New loads everything the config names once; Middleware builds one route's
// auth step from it. Nothing on the request path parses config or takes a
// global lock: the static keys are immutable, the JWKS key set is swapped
// atomically, and API keys are looked up by their SHA-256 hash.
//
// JWT rules:
//   - Every key is pinned to its algorithms (the secret to
//     jwt.secret_algorithms, a PEM key to its one algorithm, a JWKS key to
//     its "alg" or the one its type implies), and the token is parsed with
//     exactly that list, so "none" and HMAC-with-a-public-key are refused.
//   - A token with a kid is verified only by keys with that id; a token
//     without kid by the secret and the keys without id. The secret has no
//     id, so an HMAC token must not carry a kid.
//   - exp is required (a token that never expires cannot be revoked short
//     of rotating the key); exp, nbf and iat are checked with jwt.leeway;
//     iss and aud when configured.
//   - A token that verified is remembered, by its SHA-256, for at most
//     60 s (tokenCache): a hit skips the signature and claim parsing but
//     re-checks exp, nbf and iat with the leeway, and a token verified by
//     a JWKS key is honoured only while that key is in the current set.
//     Refused tokens are never remembered. The cache belongs to the
//     Authenticator, so a reload starts empty.
//   - The JWKS is not fetched by New: Start fetches it at once and then
//     every jwt.jwks_refresh; without Start, the first token that needs it
//     does. An unknown kid refetches at most every 30 s, one fetch shared by
//     all waiting requests; a failed fetch keeps the last good set.
//
// Credentials never reach a log line or an error answer: logs name the API
// key's name or the token's subject, and clients learn only "invalid token",
// "invalid key" or "missing credentials".
package auth

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

// Method names, as in config.RouteAuth.Methods and identity.Principal.Method.
const (
	MethodJWT     = "jwt"
	MethodAPIKey  = "api_key"
	MethodForward = "forward"
)

const (
	// defaultAPIKeyHeader is used when config.APIKeys.Header is empty.
	defaultAPIKeyHeader = "X-API-Key"
	// defaultJWKSRefresh is used when config.JWT.JWKSRefresh is not positive.
	defaultJWKSRefresh = 10 * time.Minute
	// defaultForwardTimeout is used when config.ForwardAuth.Timeout is not
	// positive.
	defaultForwardTimeout = 5 * time.Second
	// warnInterval spaces out repeated warnings (JWKS failures, an
	// unreachable forward-auth service) so that an outage does not flood
	// the log.
	warnInterval = time.Minute
)

// Options are the Authenticator's dependencies.
type Options struct {
	// Logger receives warnings and debug lines; nil discards them.
	Logger *slog.Logger
	// Now is the clock for token times and the JWKS refetch limit; nil
	// means time.Now.
	Now func() time.Time
	// HTTPClient fetches the JWKS and calls forward-auth services. Nil
	// means a client with connect, TLS and header timeouts of its own.
	// Forward auth never follows redirects (a 302 to a login page goes
	// back to the client), whatever the client's CheckRedirect says.
	HTTPClient *http.Client
}

// FieldError is one problem with the auth config. Field is the path below
// "auth." for New ("jwt.keys[1].file") and relative to the route for
// Middleware ("auth.methods[0]").
type FieldError struct {
	Field string
	Msg   string
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Errors lists every problem New or Middleware found, so that a config can
// be fixed in one pass. Match it, or a single *FieldError, with errors.As.
type Errors []*FieldError

// Error implements error.
func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the single problems, so that errors.As finds a *FieldError.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

func (es *Errors) add(field, format string, args ...any) {
	*es = append(*es, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Authenticator holds the loaded keys of one config. It is safe for
// concurrent use. A config reload builds a new Authenticator with New and
// closes the old one once its routes have drained.
type Authenticator struct {
	log        *slog.Logger
	now        func() time.Time
	client     *http.Client // JWKS
	fwdClient  *http.Client // forward auth: same transport, no redirects
	ownsClient bool

	jwt     *jwtVerifier // nil when JWT is not configured
	apiKeys *keyStore    // nil when API keys are not configured
	public  []string     // public path prefixes, without a trailing slash

	mu      sync.Mutex
	started bool
	closed  bool
	stop    chan struct{} // closed by Close
	wg      sync.WaitGroup
}

// New loads everything cfg names: it hashes the API keys and reads the API
// key file, reads the PEM key files and checks each key against its
// algorithm. It does no network I/O: the JWKS is first fetched by Start's
// goroutine or, when Start was not called, by the first token that needs
// it, so that a reload never waits for (or fails because of) the identity
// provider. Every problem is reported at once as an Errors.
func New(cfg config.Auth, o Options) (*Authenticator, error) {
	a := &Authenticator{
		log:  o.Logger,
		now:  o.Now,
		stop: make(chan struct{}),
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.client = o.HTTPClient
	if a.client == nil {
		a.client = defaultClient()
		a.ownsClient = true
	}
	fc := *a.client
	fc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	a.fwdClient = &fc

	var errs Errors
	if jwtConfigured(cfg.JWT) {
		a.jwt = newJWTVerifier(cfg.JWT, a, &errs)
	}
	if len(cfg.APIKeys.Keys) > 0 || cfg.APIKeys.File != "" {
		a.apiKeys = newKeyStore(cfg.APIKeys, &errs)
	}
	if a.jwt != nil {
		apiKeyHeader := cfg.APIKeys.Header
		if apiKeyHeader == "" {
			apiKeyHeader = defaultAPIKeyHeader
		}
		checkClaimHeaders(a.jwt.claimHeaders, apiKeyHeader, &errs)
	}
	for i, p := range cfg.PublicPaths {
		if !strings.HasPrefix(p, "/") {
			errs.add(fmt.Sprintf("public_paths[%d]", i), "path must start with /")
			continue
		}
		a.public = append(a.public, strings.TrimRight(p, "/"))
	}
	if len(errs) > 0 {
		a.closeIdle()
		return nil, errs
	}
	return a, nil
}

// defaultClient is the HTTP client used when Options.HTTPClient is nil.
func defaultClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second, // an upper bound; each call sets its own deadline
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			ExpectContinueTimeout: time.Second,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
	}
}

// Methods returns the globally configured methods, "jwt" and/or "api_key",
// in that order.
func (a *Authenticator) Methods() []string {
	var m []string
	if a.jwt != nil {
		m = append(m, MethodJWT)
	}
	if a.apiKeys != nil {
		m = append(m, MethodAPIKey)
	}
	return m
}

// Start starts the JWKS refresh goroutine when a JWKS URL is configured: it
// fetches the key set at once and then every jwt.jwks_refresh. It stops
// when ctx ends or Close is called. Start is a no-op after the first call
// and after Close.
func (a *Authenticator) Start(ctx context.Context) {
	if a.jwt == nil || a.jwt.jwks == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started || a.closed {
		return
	}
	a.started = true
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.jwt.jwks.run(ctx, a.stop)
	}()
}

// Close stops the refresh goroutine and any JWKS fetch in flight, and waits
// for them. Requests still in flight keep working with the keys they have.
func (a *Authenticator) Close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.stop)
	}
	a.mu.Unlock()
	if a.jwt != nil && a.jwt.jwks != nil {
		a.jwt.jwks.close()
	}
	a.wg.Wait()
	a.closeIdle()
}

func (a *Authenticator) closeIdle() {
	if a.ownsClient {
		a.client.CloseIdleConnections()
	}
}

// warnLimiter lets a warning through at most once per warnInterval, so
// that an outage (a JWKS endpoint, a forward-auth service) does not flood
// the log.
type warnLimiter struct {
	last atomic.Int64 // Unix nanoseconds of the last warning; 0 = never
}

func (l *warnLimiter) warn(log *slog.Logger, now time.Time, msg string, args ...any) {
	n := now.UnixNano()
	last := l.last.Load()
	if last != 0 && n-last < int64(warnInterval) {
		return
	}
	if !l.last.CompareAndSwap(last, n) {
		return
	}
	log.Warn(msg, args...)
}
