package cache

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/altair-gateway/altair/internal/httperr"
	"github.com/altair-gateway/altair/internal/observe"
)

// CodeNotCached is the error code of the 504 answering a request with
// Cache-Control: only-if-cached that the store cannot satisfy (RFC 9111
// §5.2.1.7).
const CodeNotCached = "not_cached"

// resultValues are the X-Cache values, shared by every response (len == cap,
// so an append elsewhere copies).
var resultValues = [numResults][]string{
	{resultNames[Bypass]}, {resultNames[Miss]}, {resultNames[Hit]},
	{resultNames[Stale]}, {resultNames[Revalidated]},
}

// RouteOptions configure one route's cache handler.
type RouteOptions struct {
	// Name is the route's name: part of every key's sub-key, and the
	// metrics label.
	Name string
	// TTL, when set, overrides Options.DefaultTTL for the route; zero is
	// strict mode.
	TTL *time.Duration
	// Disabled makes the handler neither serve nor store; it still
	// invalidates after unsafe requests, so a route that writes to a
	// resource another route caches keeps that cache correct.
	Disabled bool
}

// Handler returns the cache step of one route, in front of next (the
// proxy). The route's chain must have recorded the credentials partition
// before auth (CaptureCredentials).
func (c *Cache) Handler(o RouteOptions, next http.Handler) http.Handler {
	h := &routeHandler{c: c, next: next, route: o.Name, ttl: c.defaultTTL, disabled: o.Disabled, subNone: o.Name + "\x00"}
	if o.TTL != nil {
		h.ttl = *o.TTL
	}
	if c.metrics != nil && !o.Disabled {
		h.counter = c.metrics.Route(o.Name)
	}
	return h
}

type routeHandler struct {
	c        *Cache
	next     http.Handler
	route    string
	ttl      time.Duration
	disabled bool
	subNone  string // the sub-key of requests without credentials
	counter  RouteMetrics
}

// sub is the sub-key of a request with credentials partition creds.
func (h *routeHandler) sub(creds string) string {
	if creds == "" {
		return h.subNone
	}
	return h.subNone + creds
}

// done counts and records a request's result.
func (h *routeHandler) done(w http.ResponseWriter, res Result) {
	if h.counter != nil {
		h.counter.Count(res)
	}
	if rec := observe.RecordOf(w); rec != nil {
		rec.Cache = res.String()
	}
}

// ServeHTTP implements http.Handler.
func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions, http.MethodTrace:
		h.bypass(w, r)
		return
	default:
		h.serveUnsafe(w, r)
		return
	}
	if h.disabled {
		h.next.ServeHTTP(w, r)
		return
	}
	if bypassRequest(r) {
		h.bypass(w, r)
		return
	}
	creds, ok := CredentialsFrom(r.Context())
	if !ok {
		if h.c.warnedNoCred.CompareAndSwap(false, true) {
			h.c.log.Error("cache: request without a credentials partition; the route's chain lacks CaptureCredentials, so the cache bypasses it", "route", h.route)
		}
		h.bypass(w, r)
		return
	}
	rc := requestDirectives(r.Header)
	if rc.has(ccNoStore) {
		h.bypass(w, r)
		return
	}

	c := h.c
	key := requestKey(r)
	sub := h.sub(creds) + forwardedPart(r)
	e := h.lookup(r.Context(), key, sub, r.Header)
	if e != nil {
		d := e.derive()
		now := c.now()
		age := e.age(now)
		switch decide(&d.fresh, &rc, d.fresh.lifetime(h.ttl), age) {
		case useFresh:
			h.serveEntry(w, r, e, age, Hit)
			h.done(w, Hit)
			return
		case useStale:
			h.serveEntry(w, r, e, age, Stale)
			h.done(w, Stale)
			return
		case useStaleRevalidate:
			h.revalidateInBackground(r, key, sub, creds, e)
			h.serveEntry(w, r, e, age, Stale)
			h.done(w, Stale)
			return
		}
	}
	if rc.has(ccOnlyIfCached) {
		w.Header()[hXCache] = resultValues[Miss]
		h.done(w, Miss)
		httperr.Write(w, r, http.StatusGatewayTimeout, CodeNotCached)
		return
	}

	f := &fetch{h: h, w: w, req: r, key: key, sub: sub, creds: creds, rc: rc, stale: e}
	f.conditional = e != nil && e.derive().fresh.hasValidator()
	// Only GETs are stored, so only a GET may lead a flight; a request
	// whose own conditionals go upstream unchanged may get a 304 that
	// answers it alone.
	if r.Method == http.MethodGet && (f.conditional || !clientConditional(r.Header)) {
		fk := key + "\x00" + sub
		fl, leader := c.flights.join(fk)
		if leader {
			f.fl, f.fkey = fl, fk
		} else {
			if fl.wait(r.Context(), c.coalesceTimeout) {
				if e2 := h.lookup(r.Context(), key, sub, r.Header); e2 != nil {
					d := e2.derive()
					age := e2.age(c.now())
					switch decide(&d.fresh, &rc, d.fresh.lifetime(h.ttl), age) {
					case useFresh:
						h.serveEntry(w, r, e2, age, Hit)
						h.done(w, Hit)
						return
					case useStale, useStaleRevalidate:
						h.serveEntry(w, r, e2, age, Stale)
						h.done(w, Stale)
						return
					}
					// Usable only validated (the request says no-cache, or
					// the response does): validate what the leader stored.
					f.stale, f.conditional = e2, d.fresh.hasValidator()
				}
			}
			if r.Context().Err() != nil {
				return // the client went away while waiting
			}
			// The leader stored nothing this request may use (another
			// variant, or nothing at all), or took too long: go upstream
			// alone.
		}
	}
	h.done(w, f.run())
}

// forwardedPart is the part of a request's sub-key that tells apart what the
// origin is told about how the client reached the gateway: the scheme
// (TLS), and the X-Forwarded-Proto and X-Forwarded-Host the proxy passes on
// from trusted proxies. The primary key has neither, and an origin commonly
// answers by them (an http request redirected to https): without this, the
// redirect stored for a plain-HTTP request would be served to HTTPS clients,
// a redirect loop for everyone. "" for a plain request without them, the
// usual case, so it allocates nothing there. Untrusted clients' values are
// replaced by the proxy but still part of this: more partitions, never a
// wrong answer.
func forwardedPart(r *http.Request) string {
	proto, fhost := r.Header["X-Forwarded-Proto"], r.Header["X-Forwarded-Host"]
	if r.TLS == nil && len(proto)+len(fhost) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\x00")
	if r.TLS != nil {
		b.WriteString("tls")
	}
	for _, vs := range [2][]string{proto, fhost} {
		b.WriteByte(0)
		for _, v := range vs {
			b.WriteString(strings.ToLower(v))
			b.WriteByte(1)
		}
	}
	return b.String()
}

// bypassRequest reports whether a GET or HEAD is passed on without looking
// at the cache: a Range request (the cache stores no partial content), a
// precondition only the origin can evaluate (If-Match, If-Unmodified-Since,
// If-Range; RFC 9111 §4.3.2), an upgrade (WebSocket), or a request with a
// body, which the key does not cover.
func bypassRequest(r *http.Request) bool {
	hd := r.Header
	if len(hd["Range"])+len(hd["If-Match"])+len(hd["If-Unmodified-Since"])+len(hd["If-Range"])+len(hd["Upgrade"]) > 0 {
		return true
	}
	return r.ContentLength > 0 || r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody
}

// clientConditional reports whether the request has conditionals the cache
// evaluates.
func clientConditional(hd http.Header) bool {
	return len(hd["If-None-Match"])+len(hd["If-Modified-Since"]) > 0
}

// bypass passes the request on, saying so.
func (h *routeHandler) bypass(w http.ResponseWriter, r *http.Request) {
	if !h.disabled {
		w.Header()[hXCache] = resultValues[Bypass]
		h.done(w, Bypass)
	}
	h.next.ServeHTTP(w, r)
}

// tieredStore is a store with an in-process tier in front of a shared one.
type tieredStore interface {
	Store
	// getUpper reads the in-process tier.
	getUpper(ctx context.Context, key, sub string) []*Entry
	// getLower reads the shared tier, copying what it finds into the
	// in-process one; nil when it has nothing or is unavailable.
	getLower(ctx context.Context, key, sub string) []*Entry
}

// lookup returns the stored variant under key and sub that matches request
// header hd, or nil. With a tiered store, the shared tier is read when the
// in-process one has no fresh match, so another replica's fill, variant or
// revalidation is used rather than the origin asked again; the newer of the
// two answers wins.
func (h *routeHandler) lookup(ctx context.Context, key, sub string, hd http.Header) *Entry {
	c := h.c
	ts, ok := c.store.(tieredStore)
	if !ok {
		return selectEntry(c.get(ctx, key, sub), hd)
	}
	e := selectEntry(ts.getUpper(ctx, key, sub), hd)
	if e != nil && e.Fresh(c.now(), h.ttl) {
		return e
	}
	if e2 := selectEntry(ts.getLower(ctx, key, sub), hd); e2 != nil && (e == nil || e2.ResponseTime.After(e.ResponseTime)) {
		return e2
	}
	return e
}

// get reads the store; a failure counts as a miss.
func (c *Cache) get(ctx context.Context, key, sub string) []*Entry {
	es, err := c.store.Get(ctx, key, sub)
	if err != nil {
		c.storeFailed("get", err)
		return nil
	}
	c.storeOK()
	return es
}

// set writes the store; a failure is counted and logged, not returned: the
// response has been served either way.
func (c *Cache) set(ctx context.Context, key, sub string, e *Entry, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	if err := c.store.Set(context.WithoutCancel(ctx), key, sub, e, ttl); err != nil {
		c.storeFailed("set", err)
		return
	}
	c.storeOK()
}

// delete removes everything stored under key.
func (c *Cache) delete(ctx context.Context, key string) {
	if _, err := c.store.Delete(context.WithoutCancel(ctx), key); err != nil {
		c.storeFailed("delete", err)
		return
	}
	c.storeOK()
}

// serveEntry answers r from e, whose current age is age: a 304 when r's
// conditionals match e (RFC 9110 §13.2, RFC 9111 §4.3.2), else e in full
// (its header fields only for HEAD).
func (h *routeHandler) serveEntry(w http.ResponseWriter, r *http.Request, e *Entry, age time.Duration, res Result) {
	d := e.derive()
	hdr := w.Header()
	notModified := e.Status == http.StatusOK && notModifiedSince(r.Header, e)
	_, hasETag := e.Header["Etag"]
	// One array holds every value copied, Age and Content-Length.
	vals := make([]string, d.nvals+2)
	vals[0] = strconv.FormatInt(min(int64(age/time.Second), maxDelta), 10)
	hdr["Age"] = vals[0:1:1]
	hdr[hXCache] = resultValues[res]
	vals = vals[1:]
	for k, vs := range e.Header {
		if servedByCache(k) || notModified && !in304(k, hasETag) {
			continue
		}
		n := copy(vals, vs)
		v := vals[:n:n]
		vals = vals[n:]
		if old := hdr[k]; len(old) > 0 {
			hdr[k] = append(old, v...)
		} else {
			hdr[k] = v
		}
	}
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := bodyAllowed(e.Status)
	if body {
		vals[0] = d.contentLength
		hdr["Content-Length"] = vals[0:1:1]
	}
	w.WriteHeader(e.Status)
	if body && r.Method != http.MethodHead && len(e.Body) > 0 {
		_, _ = w.Write(e.Body)
	}
}

// in304 reports whether a stored field goes into a 304 made from the
// store: the fields RFC 9110 §15.4.5 lists, and Last-Modified when there is
// no ETag.
func in304(k string, hasETag bool) bool {
	switch k {
	case "Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary":
		return true
	case "Last-Modified":
		return !hasETag
	}
	return false
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// notModifiedSince evaluates a request's If-None-Match, or without it its
// If-Modified-Since, against e (RFC 9110 §13.2.2 precedence; RFC 9111
// §4.3.2 for a stored response without Last-Modified).
func notModifiedSince(hd http.Header, e *Entry) bool {
	if inm := hd["If-None-Match"]; len(inm) > 0 {
		return noneMatch(inm, e.derive().fresh.etag)
	}
	ims := hd["If-Modified-Since"]
	if len(ims) != 1 {
		return false
	}
	t, err := http.ParseTime(ims[0])
	if err != nil {
		return false
	}
	f := &e.derive().fresh
	lm := f.lastModified
	if lm.IsZero() {
		lm = f.date
	}
	return !lm.After(t)
}

// setValidators replaces a request's conditionals with the validators of e,
// for the cache's own revalidation (RFC 9111 §4.3.1).
func setValidators(hd http.Header, e *Entry) {
	delete(hd, "If-None-Match")
	delete(hd, "If-Modified-Since")
	if et := e.derive().fresh.etag; et != "" {
		hd["If-None-Match"] = []string{et}
	}
	if lm := e.Header["Last-Modified"]; len(lm) > 0 {
		hd["If-Modified-Since"] = []string{lm[0]}
	}
}

// revalidateInBackground starts one revalidation of e with the origin
// unless one is under way for the key (RFC 5861 §3). It runs on a clone of r
// that keeps r's context values (route parameters, client identity, trace)
// but not its cancellation, bounded by Options.RevalidateTimeout and Close.
func (h *routeHandler) revalidateInBackground(r *http.Request, key, sub, creds string, e *Entry) {
	c := h.c
	fk := key + "\x00" + sub
	fl, leader := c.flights.join(fk)
	if !leader {
		return
	}
	base := context.WithoutCancel(r.Context())
	br := r.Clone(base)
	br.Method = http.MethodGet
	br.Body, br.ContentLength = http.NoBody, 0
	// The client's own conditionals are its business; the fetch adds the
	// cache's.
	delete(br.Header, "If-None-Match")
	delete(br.Header, "If-Modified-Since")
	conditional := e.derive().fresh.hasValidator()
	started := c.goBackground(base, c.revalidateTimeout, func(ctx context.Context) {
		defer func() {
			// The proxy aborts a response whose body fails mid-copy with
			// http.ErrAbortHandler, which net/http would have recovered.
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				c.log.Error("cache: background revalidation panicked", "route", h.route, "panic", v)
			}
		}()
		f := &fetch{
			h: h, w: &discardWriter{header: make(http.Header)}, req: br.WithContext(ctx),
			key: key, sub: sub, creds: creds, stale: e, conditional: conditional,
			fl: fl, fkey: fk, background: true,
		}
		f.run()
	})
	if !started {
		c.flights.end(fk, fl, false)
	}
}

// serveUnsafe passes an unsafe request on and, once the origin has answered
// it with a non-error status, invalidates the target URI and the same-host
// Location and Content-Location URIs of the response (RFC 9111 §4.4), for
// every route, partition and variant, before the response reaches the
// client.
func (h *routeHandler) serveUnsafe(w http.ResponseWriter, r *http.Request) {
	if len(r.Header["Upgrade"]) > 0 || r.Method == http.MethodConnect {
		h.next.ServeHTTP(w, r)
		return
	}
	// Taken now: the proxy step rewrites r.URL.Path in place.
	u := *r.URL
	iw := &invalidator{ResponseWriter: w, h: h, ctx: r.Context(), host: r.Host, url: &u, key: requestKey(r)}
	if !h.disabled {
		w.Header()[hXCache] = resultValues[Bypass]
		h.done(w, Bypass)
	}
	h.next.ServeHTTP(iw, r)
}

// invalidator watches an unsafe request's response status.
type invalidator struct {
	http.ResponseWriter
	h    *routeHandler
	ctx  context.Context
	host string
	url  *url.URL
	key  string
	done bool
}

func (iw *invalidator) WriteHeader(code int) {
	if !iw.done && code >= 200 {
		iw.done = true
		if code < 400 {
			iw.invalidate()
		}
	}
	iw.ResponseWriter.WriteHeader(code)
}

func (iw *invalidator) Write(b []byte) (int, error) {
	if !iw.done {
		iw.WriteHeader(http.StatusOK)
	}
	return iw.ResponseWriter.Write(b)
}

// FlushError flushes the client's writer.
func (iw *invalidator) FlushError() error {
	return http.NewResponseController(iw.ResponseWriter).Flush()
}

// Unwrap returns the client's writer, for http.ResponseController.
func (iw *invalidator) Unwrap() http.ResponseWriter { return iw.ResponseWriter }

func (iw *invalidator) invalidate() {
	c := iw.h.c
	keys := []string{iw.key}
	hdr := iw.ResponseWriter.Header()
	for _, name := range [...]string{"Location", "Content-Location"} {
		for _, v := range hdr[name] {
			if k, ok := sameHostKey(iw.host, iw.url, v); ok && k != iw.key {
				keys = append(keys, k)
			}
		}
	}
	for _, k := range keys {
		c.delete(iw.ctx, k)
	}
}

// sameHostKey returns the key of a Location or Content-Location reference,
// resolved against the request's URL, when it names the request's host (RFC
// 9111 §4.4: invalidating other hosts' resources would let one origin
// evict another's).
func sameHostKey(host string, base *url.URL, ref string) (string, bool) {
	u, err := url.Parse(ref)
	if err != nil {
		return "", false
	}
	if u.IsAbs() || u.Host != "" {
		if !strings.EqualFold(u.Host, host) {
			return "", false
		}
	} else {
		u = base.ResolveReference(u)
	}
	return buildKey(host, u.EscapedPath(), u.RawQuery), true
}

// discardWriter is the response writer of a background revalidation.
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
