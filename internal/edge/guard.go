package edge

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/httperr"
	"github.com/altair-gateway/altair/internal/identity"
	"github.com/altair-gateway/altair/internal/observe"
)

// Stable error codes of the edge's answers (the "error" field of the JSON
// body written by httperr).
const (
	// CodeForbidden: the client IP is in the deny list (403).
	CodeForbidden = "forbidden"
	// CodeBlocked: the client IP is blocked for exceeding the DDoS threshold
	// (403, with Retry-After).
	CodeBlocked = "blocked"
	// CodeOverloaded: the gateway serves MaxInFlight requests already (503).
	CodeOverloaded = "overloaded"
	// CodeTooManyRequests: the client has MaxInFlightPerIP requests in flight
	// already (429).
	CodeTooManyRequests = "too_many_requests"
	// CodeRateLimited: the client's rate limit is used up (429, with
	// Retry-After).
	CodeRateLimited = "rate_limited"
)

// allowListedKey marks a request's context when the Guard let it through on
// the allow list, so that RateLimit lets it through too.
type allowListedKey struct{}

func allowListed(ctx context.Context) bool {
	v, _ := ctx.Value(allowListedKey{}).(bool)
	return v
}

// GuardOptions are what a Guard checks with.
type GuardOptions struct {
	// Resolver decides the client IP. Nil: the TCP peer, no trusted proxies.
	Resolver *Resolver
	// Lists are the allow and deny lists. Nil: empty lists.
	Lists *Lists
	// Blocker does DDoS threshold blocking. Nil: none.
	Blocker *Blocker
	// Limits gives the in-flight caps (MaxInFlight, MaxInFlightPerIP); zero
	// is no cap. The connection caps are LimitListener's.
	Limits config.ConnectionLimits
	// Logger receives a Debug line per refused request. Nil: no logging.
	Logger *slog.Logger
	// Counts are the in-flight counts the caps apply to. Pass the same Counts
	// to the Guard of every config generation, so requests still running on
	// the old graph during a reload keep counting. Nil: counts of its own.
	Counts *InFlightCounts
}

// InFlightCounts are the requests in flight, in total and per client. They
// outlive one Guard: the gateway keeps them for the process.
type InFlightCounts struct {
	total atomic.Int64
	perIP *ipCounter
}

// NewInFlightCounts returns zero counts.
func NewInFlightCounts() *InFlightCounts { return &InFlightCounts{perIP: newIPCounter()} }

// Guard is the middleware in front of routing. For every request it decides
// the client IP once and stores it in the context (identity.WithClientIP),
// then, in order:
//
//  1. allow list: the request passes, skipping every check below and any
//     RateLimit middleware further down;
//  2. deny list: 403 CodeForbidden;
//  3. DDoS blocking (Blocker.Hit): 403 CodeBlocked with Retry-After;
//  4. the global in-flight cap: 503 CodeOverloaded;
//  5. the per-IP in-flight cap: 429 CodeTooManyRequests.
//
// A request whose client IP is unknown (RemoteAddr not an IP) matches no
// list and skips the per-IP checks.
type Guard struct {
	rv      *Resolver
	lists   *Lists
	blocker *Blocker
	limits  config.ConnectionLimits
	log     *slog.Logger
	counts  *InFlightCounts
}

// NewGuard returns a Guard counting in o.Counts (fresh counts when nil).
func NewGuard(o GuardOptions) *Guard {
	if o.Counts == nil {
		o.Counts = NewInFlightCounts()
	}
	g := &Guard{rv: o.Resolver, lists: o.Lists, blocker: o.Blocker, limits: o.Limits, log: o.Logger, counts: o.Counts}
	if g.rv == nil {
		g.rv = &Resolver{}
	}
	if g.lists == nil {
		g.lists = NewLists()
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	return g
}

// Plain reports whether the guard does no more than Admit checks: no DDoS
// blocker and no in-flight caps.
func (g *Guard) Plain() bool {
	return g.blocker == nil && g.limits.MaxInFlight <= 0 && g.limits.MaxInFlightPerIP <= 0
}

// Admit decides r's client IP and reports whether the IP lists let it
// through, as Wrap's handler does: an allow-listed IP passes, then a
// deny-listed one is refused. Together with Plain it lets a caller skip the
// guard for a request it would pass unchanged (but for the client IP,
// which the caller carries itself).
func (g *Guard) Admit(r *http.Request) (netip.Addr, bool) {
	ip := g.rv.ClientIP(r)
	if g.lists.Allowed(ip) {
		return ip, true
	}
	return ip, !g.lists.Denied(ip)
}

// Wrap returns next behind the guard.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, next)
	})
}

func (g *Guard) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ip := g.rv.ClientIP(r)
	if rec := observe.RecordOf(w); rec != nil {
		rec.ClientIP = ip
	}
	ctx := identity.WithClientIP(r.Context(), ip)
	if g.lists.Allowed(ip) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, allowListedKey{}, true)))
		return
	}
	r = r.WithContext(ctx)
	if g.lists.Denied(ip) {
		g.refuse(w, r, ip, http.StatusForbidden, CodeForbidden)
		return
	}
	if g.blocker != nil {
		if blocked, ra := g.blocker.Hit(ip); blocked {
			w.Header().Set("Retry-After", retryAfter(ra))
			g.refuse(w, r, ip, http.StatusForbidden, CodeBlocked)
			return
		}
	}
	if n := g.limits.MaxInFlight; n > 0 {
		if g.counts.total.Add(1) > int64(n) {
			g.counts.total.Add(-1)
			g.refuse(w, r, ip, http.StatusServiceUnavailable, CodeOverloaded)
			return
		}
		defer g.counts.total.Add(-1)
	}
	if n := g.limits.MaxInFlightPerIP; n > 0 && ip.IsValid() {
		if !g.counts.perIP.acquire(ip, n) {
			g.refuse(w, r, ip, http.StatusTooManyRequests, CodeTooManyRequests)
			return
		}
		defer g.counts.perIP.release(ip)
	}
	next.ServeHTTP(w, r)
}

func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, ip netip.Addr, status int, code string) {
	if g.log.Enabled(r.Context(), slog.LevelDebug) {
		g.log.LogAttrs(r.Context(), slog.LevelDebug, "edge refused request",
			slog.String("client_ip", ip.String()), slog.String("error", code), slog.Int("status", status),
			slog.String("request_id", r.Header.Get(httperr.RequestIDHeader)))
	}
	httperr.Write(w, r, status, code)
}

// InFlight returns the number of requests the guard is serving now (counted
// only when MaxInFlight is set).
func (g *Guard) InFlight() int { return int(g.counts.total.Load()) }

// RateLimit returns middleware that limits each key to rps requests per
// second with bursts of burst, through l. The limiter key is namespace +
// keyFn(r) (the namespace should end in a separator that keys cannot
// contain, e.g. "route:api|"); an empty keyFn result falls back to the
// client IP the Guard stored, or else to r.RemoteAddr.
//
// Every answer carries RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset (seconds, rounded up) from draft-ietf-httpapi-ratelimit-
// headers. A request over the limit gets 429 CodeRateLimited with
// Retry-After (whole seconds, rounded up, at least 1). A request the Guard
// let through on the allow list is not limited and gets no such headers.
func RateLimit(l Limiter, namespace string, rps float64, burst int, keyFn func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if allowListed(r.Context()) {
				next.ServeHTTP(w, r)
				return
			}
			key := keyFn(r)
			if key == "" {
				if ip, ok := identity.ClientIP(r.Context()); ok && ip.IsValid() {
					key = ip.String()
				} else {
					key = r.RemoteAddr
				}
			}
			d := l.Allow(namespace+key, rps, burst)
			h := w.Header()
			// Canonical keys set directly: no canonicalisation per request.
			h["Ratelimit-Limit"] = []string{strconv.Itoa(d.Limit)}
			h["Ratelimit-Remaining"] = []string{strconv.Itoa(max(d.Remaining, 0))}
			h["Ratelimit-Reset"] = []string{strconv.FormatInt(ceilSeconds(d.Reset), 10)}
			if !d.Allowed {
				h["Retry-After"] = []string{retryAfter(d.RetryAfter)}
				httperr.Write(w, r, http.StatusTooManyRequests, CodeRateLimited)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
