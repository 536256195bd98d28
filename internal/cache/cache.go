// Package cache is the gateway's HTTP response cache: a shared cache as RFC
// 9111 defines it, with the stale-while-revalidate and stale-if-error
// extensions of RFC 5861, request coalescing and purging.
//
// A route's handler (Cache.Handler) sits after authentication and in front
// of the proxy. It answers GET and HEAD from the store when a stored
// response may be used, revalidates stale responses with the origin
// (If-None-Match / If-Modified-Since), lets one request per key go upstream
// on a miss while the others wait, stores what may be stored, and
// invalidates a resource after an unsafe request (POST, PUT, PATCH, DELETE)
// succeeds. Everything else passes through untouched: the request the
// origin sees carries the client's header fields unchanged, except for the
// conditional fields the cache adds to revalidate its own entries.
//
// Who may see a stored response: the store key has the resource (host, path,
// query) and, below it, the route and the request's credentials partition
// (Credentials: a hash of Authorization, the API key and Cookie, "" without
// them), so a response fetched with one credential is never served to a
// request with another or with none. Responses to requests with
// Authorization or an API key are stored only when the response allows a
// shared cache to (public, s-maxage or must-revalidate; RFC 9111 §3.5);
// responses with no-store, private, Set-Cookie or Vary: * never are. The
// auth step removes credentials before the cache sees the request, so the
// gateway records the partition before auth (CaptureCredentials); without
// it the cache bypasses the request.
//
// Responses carry two header fields of the cache's own: Age (RFC 9111 §5.1)
// on answers from the store, and X-Cache: HIT (fresh from the store), MISS
// (fetched from the origin), STALE (a stale stored response, within
// max-stale, stale-while-revalidate or stale-if-error), REVALIDATED (stored,
// confirmed by the origin with 304) or BYPASS (not cacheable: methods other
// than GET and HEAD, Range and other conditional requests the cache does not
// evaluate, no-store, bodies and upgrades).
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero Options fields.
const (
	// DefaultMaxBodyBytes is the largest body stored; larger ones stream
	// to the client and are not stored.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxMemoryBytes bounds the in-process store.
	DefaultMaxMemoryBytes = 64 << 20
	// DefaultKeepStale is how long an entry that can be revalidated is kept
	// after it may no longer be served without the origin.
	DefaultKeepStale = 10 * time.Minute
	// DefaultRevalidateTimeout bounds a background revalidation.
	DefaultRevalidateTimeout = 30 * time.Second
	// DefaultCoalesceTimeout bounds how long a request waits for another
	// request's upstream fetch of the same key before it sends its own.
	DefaultCoalesceTimeout = 5 * time.Second
)

// Options configure a Cache.
type Options struct {
	// Store keeps the entries. Nil: a Memory store of MaxMemoryBytes, in
	// front of Redis when Shared is set.
	Store Store
	// Shared, when set, keeps the entries in the Redis the replicas share
	// (see Shared), so a response stored through one replica is a hit
	// through every other; Store must be nil.
	Shared *Shared
	// SharedOnly, with Shared, leaves out the memory tier: every lookup
	// reads Redis, invalidations apply everywhere at once, and while Redis
	// is down nothing is cached.
	SharedOnly bool
	// DefaultTTL (CACHE_TTL) is the freshness lifetime of a storable
	// response that states none (no max-age, s-maxage or Expires). Zero is
	// strict mode: only RFC 9111's own rules apply, the heuristic from
	// Last-Modified (§4.2.2) included. RouteOptions.TTL overrides it.
	DefaultTTL time.Duration
	// MaxBodyBytes is the largest body stored (default
	// DefaultMaxBodyBytes); larger bodies stream and are not stored.
	MaxBodyBytes int64
	// MaxMemoryBytes bounds the Memory store made when Store is nil (the
	// memory tier with Shared; default DefaultMaxMemoryBytes); at least
	// MaxBodyBytes.
	MaxMemoryBytes int64
	// KeepStale is how long an entry is kept past its freshness and stale
	// windows so that a later request can revalidate it with a 304 instead
	// of refetching it, or take it stale when the client allows (max-stale,
	// stale-if-error); default DefaultKeepStale. An entry that forbids
	// stale use (must-revalidate, no-cache, ...) and has no validator goes
	// when it stops being fresh. The store's byte bound applies throughout.
	KeepStale time.Duration
	// RevalidateTimeout bounds a stale-while-revalidate background
	// revalidation (default DefaultRevalidateTimeout).
	RevalidateTimeout time.Duration
	// CoalesceTimeout bounds how long a request waits for another's fetch
	// of the same key (default DefaultCoalesceTimeout); its own context
	// bounds it too.
	CoalesceTimeout time.Duration
	// Metrics receives the counts; nil counts nothing.
	Metrics Metrics
	// Logger logs store failures (once per outage) and misconfiguration;
	// default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Result is what the cache did with one request.
type Result uint8

// Results, in the order of their label values.
const (
	// Bypass: the cache did not look the request up.
	Bypass Result = iota
	// Miss: fetched from the origin (stored or not).
	Miss
	// Hit: served fresh from the store.
	Hit
	// Stale: served stale from the store.
	Stale
	// Revalidated: served from the store after the origin answered 304.
	Revalidated
	numResults
)

var resultNames = [numResults]string{"BYPASS", "MISS", "HIT", "STALE", "REVALIDATED"}

// String returns the X-Cache value: HIT, MISS, STALE, REVALIDATED or BYPASS.
func (r Result) String() string {
	if r < numResults {
		return resultNames[r]
	}
	return "UNKNOWN"
}

// Label returns the metric label value: the lower-case String.
func (r Result) Label() string { return strings.ToLower(r.String()) }

// Metrics receives the cache's counts. The gateway implements it with
// Prometheus; methods must be cheap and safe for concurrent use.
type Metrics interface {
	// Route returns the counter of one route's results; it is called once
	// per route when the route's handler is built.
	Route(name string) RouteMetrics
	// StoreError counts a failed store operation: "get", "set" or
	// "delete".
	StoreError(op string)
}

// RouteMetrics counts one route's requests by result.
type RouteMetrics interface {
	// Count counts one request.
	Count(Result)
}

// Cache is the response cache shared by the routes of a gateway. It outlives
// reloads: the gateway keeps one Cache (and its store) and builds new route
// handlers over it.
type Cache struct {
	store             Store
	mem               *Memory // the store when it is ours
	defaultTTL        time.Duration
	maxBody           int64
	keepStale         time.Duration
	revalidateTimeout time.Duration
	coalesceTimeout   time.Duration
	metrics           Metrics
	log               *slog.Logger
	now               func() time.Time
	flights           *flights
	detach            func() // takes the memory tier off Shared; nil without

	storeDown    atomic.Bool // a store operation failed and none has succeeded since
	warnedNoCred atomic.Bool

	// Background revalidations: started under mu unless closed, stopped by
	// ctx, awaited by Close.
	mu     sync.Mutex
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ErrInvalidOptions wraps the problems New finds in its Options.
var ErrInvalidOptions = errors.New("cache: invalid options")

// New returns a Cache for o.
func New(o Options) (*Cache, error) {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxMemoryBytes == 0 {
		o.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	if o.KeepStale == 0 {
		o.KeepStale = DefaultKeepStale
	}
	if o.RevalidateTimeout == 0 {
		o.RevalidateTimeout = DefaultRevalidateTimeout
	}
	if o.CoalesceTimeout == 0 {
		o.CoalesceTimeout = DefaultCoalesceTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var problems []error
	if o.DefaultTTL < 0 {
		problems = append(problems, errors.New("default TTL is negative"))
	}
	if o.MaxBodyBytes < 0 {
		problems = append(problems, errors.New("max body bytes is negative"))
	}
	if o.Store == nil && o.MaxMemoryBytes < o.MaxBodyBytes {
		problems = append(problems, fmt.Errorf("max memory bytes (%d) is less than max body bytes (%d)", o.MaxMemoryBytes, o.MaxBodyBytes))
	}
	if o.Store != nil && o.Shared != nil {
		problems = append(problems, errors.New("both a store and the shared tier"))
	}
	if o.KeepStale < 0 || o.RevalidateTimeout < 0 || o.CoalesceTimeout < 0 {
		problems = append(problems, errors.New("a duration is negative"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(problems...))
	}
	c := &Cache{
		store:             o.Store,
		defaultTTL:        o.DefaultTTL,
		maxBody:           o.MaxBodyBytes,
		keepStale:         o.KeepStale,
		revalidateTimeout: o.RevalidateTimeout,
		coalesceTimeout:   o.CoalesceTimeout,
		metrics:           o.Metrics,
		log:               o.Logger,
		now:               o.Now,
		flights:           newFlights(),
	}
	var rds *Redis
	if o.Shared != nil {
		rds = NewRedis(o.Shared.cl, o.Now)
		if o.SharedOnly {
			c.store = rds
		}
	}
	if c.store == nil {
		m, err := NewMemory(MemoryOptions{
			MaxBytes:      o.MaxMemoryBytes,
			MaxEntryBytes: o.MaxBodyBytes + 64<<10, // room for the header fields
			Now:           o.Now,
		})
		if err != nil {
			return nil, err
		}
		c.store, c.mem = m, m
		if rds != nil {
			t := newTiered(m, rds, o.Shared)
			o.Shared.attach(t)
			c.store, c.detach = t, func() { o.Shared.detach(t) }
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Close stops background revalidations and waits for them to return. The
// handlers keep serving from the store but start no more; with Shared, the
// memory tier no longer follows other replicas' invalidations.
func (c *Cache) Close() error {
	c.mu.Lock()
	closed := c.closed
	c.closed = true
	c.mu.Unlock()
	if !closed && c.detach != nil {
		c.detach()
	}
	c.cancel()
	c.wg.Wait()
	return nil
}

// MemoryStats returns the in-process store's statistics; false when the
// store is not the cache's own Memory store.
func (c *Cache) MemoryStats() (MemoryStats, bool) {
	if c.mem == nil {
		return MemoryStats{}, false
	}
	return c.mem.Stats(), true
}

// Purge removes every entry of the resource with primary key key (see Key),
// for every route, credentials partition and variant, and returns how many
// it removed.
func (c *Cache) Purge(ctx context.Context, key string) (int, error) {
	n, err := c.store.Delete(ctx, key)
	if err != nil {
		c.storeFailed("delete", err)
		return n, fmt.Errorf("purge %q: %w", key, err)
	}
	return n, nil
}

// ErrHostRequired is returned by PurgePrefix without a host.
var ErrHostRequired = errors.New("cache: purge by prefix needs a host")

// PurgePrefix removes the entries of every resource on host whose path is
// pathPrefix or below it, on segment boundaries (/api covers /api, /api?x
// and /api/users, not /apis), and returns how many it removed. pathPrefix is
// decoded, like Key's path; "/" purges the whole host.
func (c *Cache) PurgePrefix(ctx context.Context, host, pathPrefix string) (int, error) {
	if host == "" {
		return 0, ErrHostRequired
	}
	if !strings.HasPrefix(pathPrefix, "/") {
		pathPrefix = "/" + pathPrefix
	}
	base := Key(host, pathPrefix, "")
	var prefixes []string
	var n int
	if strings.HasSuffix(base, "/") {
		prefixes = []string{base}
	} else {
		m, err := c.Purge(ctx, base)
		n += m
		if err != nil {
			return n, err
		}
		prefixes = []string{base + "?", base + "/"}
	}
	for _, p := range prefixes {
		m, err := c.store.DeletePrefix(ctx, p)
		n += m
		if err != nil {
			c.storeFailed("delete", err)
			return n, fmt.Errorf("purge prefix %q: %w", p, err)
		}
	}
	return n, nil
}

// storeFailed counts a store failure and logs the first of an outage.
func (c *Cache) storeFailed(op string, err error) {
	if c.metrics != nil {
		c.metrics.StoreError(op)
	}
	if c.storeDown.CompareAndSwap(false, true) {
		c.log.Warn("cache store unavailable, serving without it", "op", op, "error", err)
	}
}

// storeOK notes a successful store operation, logging the end of an outage.
func (c *Cache) storeOK() {
	if c.storeDown.Load() && c.storeDown.CompareAndSwap(true, false) {
		c.log.Info("cache store available again")
	}
}

// goBackground runs f on a goroutine owned by the cache, with base's values
// and a context that ends with Close or after d; false when the cache is
// closed.
func (c *Cache) goBackground(base context.Context, d time.Duration, f func(ctx context.Context)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(base, d)
		defer cancel()
		stop := context.AfterFunc(c.ctx, cancel)
		defer stop()
		f(ctx)
	}()
	return true
}
