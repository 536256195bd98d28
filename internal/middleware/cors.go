package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

// Errors NewCORS reports (wrapped, joined when there are several).
var (
	// ErrInvalidOrigin is an allowed origin that is not "*",
	// "scheme://host[:port]" or "scheme://*.domain[:port]".
	ErrInvalidOrigin = errors.New("invalid origin")
	// ErrWildcardCredentials is the origin "*" together with
	// allow_credentials, which browsers refuse.
	ErrWildcardCredentials = errors.New(`origin "*" with allow_credentials`)
)

// Canonical header keys, so headers are assigned without re-canonicalizing.
const (
	hOrigin           = "Origin"
	hVary             = "Vary"
	hRequestMethod    = "Access-Control-Request-Method"
	hRequestHeaders   = "Access-Control-Request-Headers"
	hAllowOrigin      = "Access-Control-Allow-Origin"
	hAllowMethods     = "Access-Control-Allow-Methods"
	hAllowHeaders     = "Access-Control-Allow-Headers"
	hAllowCredentials = "Access-Control-Allow-Credentials"
	hExposeHeaders    = "Access-Control-Expose-Headers"
	hMaxAge           = "Access-Control-Max-Age"
	accessControl     = "Access-Control-"
)

// Shared header values (len == cap, see SecurityHeaders for why sharing is
// safe).
var (
	valStar          = []string{"*"}
	valTrue          = []string{"true"}
	valVaryOrigin    = []string{hOrigin}
	valVaryPreflight = []string{hOrigin + ", " + hRequestMethod + ", " + hRequestHeaders}
)

// CORS is a compiled cross-origin resource sharing policy.
//
// The gateway owns CORS: Wrap answers preflights itself and puts the
// headers of an actual request on w.Header() before the route runs, so the
// gateway's own errors (401, 429, 502...) carry them too. Wire ModifyResponse
// into the upstream proxy so an upstream's own Access-Control-* headers are
// dropped rather than added beside ours.
//
// A CORS built from a disabled config (or a nil *CORS) does nothing: Wrap
// returns next, ModifyResponse leaves the response alone (the upstream's CORS
// headers pass), and preflights reach the route like any OPTIONS request.
type CORS struct {
	disabled    bool
	credentials bool
	anyOrigin   bool                // "*" in allowed origins: answer "*"
	exact       map[string][]string // normalized origin → shared ACAO value
	wildcards   []wildcard

	anyMethod    bool     // "*" in allowed methods: echo the requested one
	methods      []string // as configured, compared exactly
	allowMethods []string // shared Access-Control-Allow-Methods value

	anyHeader     bool     // "*" in allowed headers: echo the requested ones
	allowHeaders  []string // shared Access-Control-Allow-Headers value; nil: none
	exposeHeaders []string // shared Access-Control-Expose-Headers value; nil: none
	maxAge        []string // shared Access-Control-Max-Age value; nil: none
}

// wildcard is "scheme://*.domain[:port]" split around the "*": an origin
// matches when it is prefix + one or more DNS labels + suffix.
type wildcard struct {
	prefix string // "https://"
	suffix string // ".example.com" or ".example.com:8443"
}

// MergeCORS returns base with each non-zero field of override replacing it,
// field by field (a route that sets allowed_origins keeps the default
// methods). Disabled in either disables CORS; allow_credentials can be
// turned on by a route but not off (false is the zero value).
func MergeCORS(base, override config.CORS) config.CORS {
	out := base
	out.Disabled = base.Disabled || override.Disabled
	if len(override.AllowedOrigins) > 0 {
		out.AllowedOrigins = slices.Clone(override.AllowedOrigins)
	}
	if len(override.AllowedMethods) > 0 {
		out.AllowedMethods = slices.Clone(override.AllowedMethods)
	}
	if len(override.AllowedHeaders) > 0 {
		out.AllowedHeaders = slices.Clone(override.AllowedHeaders)
	}
	if len(override.ExposedHeaders) > 0 {
		out.ExposedHeaders = slices.Clone(override.ExposedHeaders)
	}
	if override.AllowCredentials {
		out.AllowCredentials = true
	}
	if override.MaxAge != 0 {
		out.MaxAge = override.MaxAge
	}
	return out
}

// NewCORS compiles cfg. Allowed origins are "*" (any origin), exact origins
// ("https://app.example.com", matched case-insensitively, default ports
// ignored) or wildcard subdomains ("https://*.example.com": one or more
// labels in front of example.com, with the same scheme and port). It rejects
// malformed origins and "*" with credentials, every problem at once.
//
// Lists are used as given (config arrives defaulted): no allowed origin
// allows none, no allowed method refuses every preflight. "*" in
// allowed_methods or allowed_headers echoes what the preflight asks for,
// which also works with credentials. MaxAge under a second sends no
// Access-Control-Max-Age.
func NewCORS(cfg config.CORS) (*CORS, error) {
	c := &CORS{disabled: cfg.Disabled, credentials: cfg.AllowCredentials}
	if cfg.Disabled {
		return c, nil
	}
	var errs []error
	for i, o := range cfg.AllowedOrigins {
		if o == "*" {
			c.anyOrigin = true
			if cfg.AllowCredentials {
				errs = append(errs, fmt.Errorf("allowed_origins[%d]: %w", i, ErrWildcardCredentials))
			}
			continue
		}
		exact, wc, err := parseOrigin(o)
		if err != nil {
			errs = append(errs, fmt.Errorf("allowed_origins[%d] %q: %w", i, o, err))
			continue
		}
		if wc != nil {
			c.wildcards = append(c.wildcards, *wc)
			continue
		}
		if c.exact == nil {
			c.exact = make(map[string][]string)
		}
		c.exact[exact] = []string{exact}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, m := range cfg.AllowedMethods {
		if m == "*" {
			c.anyMethod = true
			continue
		}
		c.methods = append(c.methods, m)
	}
	if len(c.methods) > 0 {
		c.allowMethods = []string{strings.Join(c.methods, ", ")}
	}
	for _, h := range cfg.AllowedHeaders {
		if h == "*" {
			c.anyHeader = true
		}
	}
	if !c.anyHeader && len(cfg.AllowedHeaders) > 0 {
		c.allowHeaders = []string{strings.Join(cfg.AllowedHeaders, ", ")}
	}
	if len(cfg.ExposedHeaders) > 0 {
		c.exposeHeaders = []string{strings.Join(cfg.ExposedHeaders, ", ")}
	}
	if s := int64(cfg.MaxAge / time.Second); s > 0 {
		c.maxAge = []string{strconv.FormatInt(s, 10)}
	}
	return c, nil
}

// IsPreflight reports whether r is a CORS preflight: an OPTIONS request with
// Origin and Access-Control-Request-Method.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions &&
		r.Header.Get(hOrigin) != "" &&
		r.Header.Get(hRequestMethod) != ""
}

// Wrap applies the policy in front of next.
//
// A preflight is answered here with 204 and never reaches next (so it passes
// before authentication: browsers send no credentials on a preflight). An
// allowed origin asking for an allowed method gets Access-Control-Allow-
// Origin, -Methods, -Headers, -Max-Age and -Credentials; anything else gets
// no allow headers, which makes the browser block the request. Both carry
// Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers.
//
// Any other request passes to next. With an allowed Origin it first gets
// Access-Control-Allow-Origin, -Expose-Headers and -Credentials on
// w.Header(); a disallowed or missing Origin gets no CORS headers (the
// browser enforces CORS, not the gateway). Every such response carries
// Vary: Origin, because its CORS headers depend on the request's Origin and a
// shared cache must not hand one origin's answer to another.
func (c *CORS) Wrap(next http.Handler) http.Handler {
	if c == nil || c.disabled {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsPreflight(r) {
			c.preflight(w, r)
			return
		}
		c.Simple(w.Header(), r)
		next.ServeHTTP(w, r)
	})
}

// Simple adds to the response header h what Wrap adds for r when r is no
// preflight: Vary: Origin, and the allow headers for an allowed Origin.
func (c *CORS) Simple(h http.Header, r *http.Request) {
	addVary(h, valVaryOrigin)
	if origin := r.Header.Get(hOrigin); origin != "" {
		if acao := c.allowOrigin(origin); acao != nil {
			h[hAllowOrigin] = acao
			if c.exposeHeaders != nil {
				h[hExposeHeaders] = c.exposeHeaders
			}
			if c.credentials {
				h[hAllowCredentials] = valTrue
			}
		}
	}
}

// preflight answers a preflight request.
func (c *CORS) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	addVary(h, valVaryPreflight)
	acao := c.allowOrigin(r.Header.Get(hOrigin))
	method := r.Header.Get(hRequestMethod)
	if acao != nil && (c.anyMethod || slices.Contains(c.methods, method)) {
		h[hAllowOrigin] = acao
		switch {
		case c.anyMethod:
			h[hAllowMethods] = []string{method}
		case c.allowMethods != nil:
			h[hAllowMethods] = c.allowMethods
		}
		switch {
		case c.anyHeader:
			if v := r.Header[hRequestHeaders]; len(v) > 0 {
				h[hAllowHeaders] = slices.Clip(v)
			}
		case c.allowHeaders != nil:
			h[hAllowHeaders] = c.allowHeaders
		}
		if c.maxAge != nil {
			h[hMaxAge] = c.maxAge
		}
		if c.credentials {
			h[hAllowCredentials] = valTrue
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// ModifyResponse drops every Access-Control-* header the upstream set, so
// the gateway's policy is the only one the client sees.
//
// It does not set ours again: Wrap already put them on w.Header() for this
// request, and httputil.ReverseProxy copies resp.Header onto w.Header() with
// Add, so setting them here too would send Access-Control-Allow-Origin twice,
// which browsers reject. It therefore needs Wrap in front of the proxy. A
// disabled or nil *CORS leaves the response alone.
func (c *CORS) ModifyResponse(resp *http.Response) error {
	if c == nil || c.disabled || resp == nil {
		return nil
	}
	for k := range resp.Header {
		if len(k) > len(accessControl) && strings.EqualFold(k[:len(accessControl)], accessControl) {
			delete(resp.Header, k)
		}
	}
	return nil
}

// allowOrigin returns the Access-Control-Allow-Origin value for origin, or
// nil when origin is not allowed. Exact origins and "*" reuse a shared value;
// a wildcard match allocates one.
func (c *CORS) allowOrigin(origin string) []string {
	if origin == "" {
		return nil
	}
	if c.anyOrigin { // never with credentials: NewCORS refuses that
		return valStar
	}
	if v, ok := c.exact[origin]; ok {
		return v
	}
	for _, wc := range c.wildcards {
		if wc.match(origin) {
			return []string{origin}
		}
	}
	return nil
}

// match reports whether origin is wc's prefix, one or more DNS labels, then
// wc's suffix. Browsers send origins lowercased and without a default port,
// which is how patterns are stored.
func (wc wildcard) match(origin string) bool {
	if len(origin) <= len(wc.prefix)+len(wc.suffix) ||
		!strings.HasPrefix(origin, wc.prefix) || !strings.HasSuffix(origin, wc.suffix) {
		return false
	}
	return validLabels(origin[len(wc.prefix) : len(origin)-len(wc.suffix)])
}

// addVary adds v to h's Vary without allocating when h has none yet.
func addVary(h http.Header, v []string) {
	if old := h[hVary]; len(old) > 0 {
		h[hVary] = append(old, v...)
		return
	}
	h[hVary] = v
}

// parseOrigin validates a configured origin and returns it normalized the
// way browsers serialize an origin (lowercase, no default port, no leading
// zeros in the port, canonical IPv6), or as a wildcard when its host starts
// with "*.". It accepts any URI scheme (config validation narrows that to
// http and https).
func parseOrigin(o string) (string, *wildcard, error) {
	o = strings.ToLower(o)
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || !validScheme(scheme) {
		return "", nil, fmt.Errorf("%w: want scheme://host[:port]", ErrInvalidOrigin)
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@ ") {
		return "", nil, fmt.Errorf("%w: want scheme://host[:port] with no path, query or user", ErrInvalidOrigin)
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") { // IPv6 literal
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", nil, fmt.Errorf("%w: unclosed IPv6 literal", ErrInvalidOrigin)
		}
		host, rest = rest[:end+1], rest[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", nil, fmt.Errorf("%w: text after IPv6 literal", ErrInvalidOrigin)
			}
			port = rest[1:]
			if port == "" {
				return "", nil, fmt.Errorf("%w: empty port", ErrInvalidOrigin)
			}
		}
		ip, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", nil, fmt.Errorf("%w: bad IPv6 literal", ErrInvalidOrigin)
		}
		host = "[" + ip.String() + "]" // as browsers serialize it
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port = rest[:i], rest[i+1:]
		if port == "" {
			return "", nil, fmt.Errorf("%w: empty port", ErrInvalidOrigin)
		}
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return "", nil, fmt.Errorf("%w: bad port %q", ErrInvalidOrigin, port)
		}
		port = strconv.FormatUint(n, 10) // "08080" → "8080", as browsers send it
		if scheme == "https" && n == 443 || scheme == "http" && n == 80 {
			port = ""
		}
	}
	hostPort := host
	if port != "" {
		hostPort += ":" + port
	}
	if domain, ok := strings.CutPrefix(host, "*."); ok {
		if !validLabels(domain) {
			return "", nil, fmt.Errorf("%w: bad domain after \"*.\"", ErrInvalidOrigin)
		}
		return "", &wildcard{prefix: scheme + "://", suffix: hostPort[1:]}, nil
	}
	if !strings.HasPrefix(host, "[") && !validLabels(host) {
		return "", nil, fmt.Errorf("%w: bad host %q (a wildcard is only \"*.\" in front)", ErrInvalidOrigin, host)
	}
	return scheme + "://" + hostPort, nil, nil
}

// validScheme reports whether s is a URI scheme (RFC 3986: ALPHA *( ALPHA /
// DIGIT / "+" / "-" / "." )), lowercase.
func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '+' || b == '-' || b == '.') {
			return false
		}
	}
	return true
}

// validLabels reports whether s is one or more dot-separated, non-empty DNS
// labels of lowercase letters, digits and hyphens (an IPv4 address
// qualifies).
func validLabels(s string) bool {
	if s == "" {
		return false
	}
	n := 0 // length of the current label
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= 'a' && b <= 'z', b >= '0' && b <= '9', b == '-':
			n++
			if n > 63 {
				return false
			}
		case b == '.':
			if n == 0 {
				return false
			}
			n = 0
		default:
			return false
		}
	}
	return n > 0
}
