package cache

import (
	"net/http"
	"slices"
	"strconv"
	"time"
)

// fetchState is what a fetch does with the origin's response.
type fetchState uint8

const (
	// statePending: no response header yet.
	statePending fetchState = iota
	// statePass: the response goes to the client (and maybe the store).
	statePass
	// stateNotModified: a 304 to the cache's own conditional; the client
	// gets the freshened stored response.
	stateNotModified
	// stateError: the origin failed and the stale stored response answers
	// instead (stale-if-error).
	stateError
)

// fetch is one trip to the origin for a GET or HEAD that the store could
// not answer alone. It is the response writer the next handler (the proxy)
// writes to: it decides at the status line whether the response goes to the
// client or is replaced by a stored one, and copies a storable body into a
// buffer as it streams to the client.
//
// The next handler writes the origin's header fields into the client
// writer's header map, on top of those the gateway put there beforehand
// (security headers, CORS, the request id). The fields the origin added are
// told apart by a snapshot of the map taken before: they are what is stored,
// and the snapshot is what the map is reset to when the origin's response is
// not the one the client gets.
type fetch struct {
	h     *routeHandler
	w     http.ResponseWriter // the client's, or a discardWriter
	req   *http.Request       // the client's request
	key   string
	sub   string
	creds string
	rc    directives
	// stale is the stored response being revalidated, or usable when the
	// origin fails; nil when there is none.
	stale *Entry
	// conditional: the request sent upstream carries stale's validators.
	conditional bool
	// fl is the flight this fetch leads, nil when it leads none.
	fl         *flight
	fkey       string
	background bool

	snap      http.Header
	state     fetchState
	status    int
	reqTime   time.Time
	respTime  time.Time
	notMod    http.Header // the 304's fields
	entry     *Entry      // the entry being filled; nil: not storing
	keepUntil time.Time
	declared  int64 // the origin's Content-Length, -1 when unknown
	buf       []byte
}

// run sends the request upstream and returns the result.
func (f *fetch) run() Result {
	defer f.endFlight(false)
	out := f.req
	if f.conditional {
		// A clone: the proxy step rewrites the URL in place, and the
		// client's request may still have to go upstream as it came.
		out = f.req.Clone(f.req.Context())
		setValidators(out.Header, f.stale)
	}
	hdr := f.w.Header()
	f.snap = make(http.Header, len(hdr))
	for k, vs := range hdr {
		f.snap[k] = vs
	}
	f.reqTime = f.h.c.now()
	f.h.next.ServeHTTP(f, out)
	return f.finish()
}

// finish acts on the response once the next handler has returned.
func (f *fetch) finish() Result {
	c := f.h.c
	switch f.state {
	case statePass:
		if e := f.entry; e != nil {
			if f.declared >= 0 && int64(len(f.buf)) != f.declared {
				f.dropEntry() // cut short
			} else {
				e.Body = f.buf
				c.set(f.req.Context(), f.key, f.sub, e, f.keepUntil.Sub(c.now()))
				f.endFlight(true)
				return Miss
			}
		}
		if f.stale != nil && f.req.Method == http.MethodGet && f.status < 500 && f.status != http.StatusNotModified {
			// The origin answered with a new response that is not stored
			// (no-store now, gone, too large, ...): the stored one is
			// outdated and must not be served stale later. (A 304 here
			// answers the client's own conditional and says nothing
			// about the stored response.)
			c.delete(f.req.Context(), f.key)
		}
	case stateNotModified:
		ne, ok := f.stale.freshen(f.notMod, f.reqTime, f.respTime)
		if !ok {
			return f.refetch()
		}
		now := c.now()
		age := ne.age(now)
		fr := &ne.derive().fresh
		c.set(f.req.Context(), f.key, f.sub, ne, fr.keepFor(f.h.ttl, age, c.keepStale))
		f.endFlight(true)
		if !f.background {
			f.h.serveEntry(f.w, f.req, ne, age, Revalidated)
		}
		return Revalidated
	case stateError:
		if !f.background {
			f.h.serveEntry(f.w, f.req, f.stale, f.stale.age(c.now()), Stale)
		}
		return Stale
	}
	return Miss
}

// refetch sends the client's request again without the cache's
// conditionals, after a 304 that did not match the stored response (RFC
// 9111 §4.3.4). The new fetch takes over the flight.
func (f *fetch) refetch() Result {
	g := &fetch{
		h: f.h, w: f.w, req: f.req, key: f.key, sub: f.sub, creds: f.creds, rc: f.rc,
		stale: f.stale, fl: f.fl, fkey: f.fkey, background: f.background,
	}
	f.fl = nil
	return g.run()
}

func (f *fetch) endFlight(stored bool) {
	if f.fl != nil {
		f.h.c.flights.end(f.fkey, f.fl, stored)
	}
}

// dropEntry gives up storing the response; waiters stop waiting.
func (f *fetch) dropEntry() {
	f.entry, f.buf = nil, nil
	f.endFlight(false)
}

// Header implements http.ResponseWriter.
func (f *fetch) Header() http.Header { return f.w.Header() }

// WriteHeader implements http.ResponseWriter: the status decides where the
// response goes.
func (f *fetch) WriteHeader(code int) {
	if f.state != statePending {
		return
	}
	hdr := f.w.Header()
	if code < 200 {
		// An informational response (103 Early Hints) goes through; the
		// proxy then clears the header map, and so the snapshot.
		f.w.WriteHeader(code)
		f.snap = http.Header{}
		return
	}
	c := f.h.c
	f.respTime = c.now()
	f.status = code
	origin := diffHeader(hdr, f.snap)
	switch {
	case f.conditional && code == http.StatusNotModified:
		f.state = stateNotModified
		f.notMod = make(http.Header, len(origin))
		for k, vs := range origin {
			f.notMod[k] = slices.Clone(vs)
		}
		f.restore(hdr)
		return
	case f.stale != nil && isServerError(code) && f.staleOnError():
		f.state = stateError
		f.restore(hdr)
		return
	}
	f.state = statePass
	f.prepareEntry(code, origin)
	if f.entry == nil {
		f.endFlight(false) // not shareable: waiters go upstream now
	}
	hdr[hXCache] = resultValues[Miss]
	f.w.WriteHeader(code)
}

// staleOnError reports whether the stale response may replace an error.
func (f *fetch) staleOnError() bool {
	d := f.stale.derive()
	return staleIfError(&d.fresh, &f.rc, d.fresh.lifetime(f.h.ttl), f.stale.age(f.respTime))
}

// prepareEntry starts an entry when a response with status code and the
// origin's header fields may be stored.
func (f *fetch) prepareEntry(code int, origin http.Header) {
	c := f.h.c
	if f.req.Method != http.MethodGet {
		return // a HEAD response is never stored (it has no body)
	}
	cc := parseDirectives(origin["Cache-Control"])
	if !storable(code, origin, &cc, authorized(f.creds)) {
		return
	}
	declared := int64(-1)
	if cl := origin["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			declared = n
		}
	}
	if declared > c.maxBody {
		return
	}
	stored := make(http.Header, len(origin))
	for k, vs := range origin {
		if !notStored(k) {
			stored[k] = slices.Clone(vs)
		}
	}
	fr := computeFreshness(code, stored, f.reqTime, f.respTime)
	keep := fr.keepFor(f.h.ttl, fr.initialAge, c.keepStale)
	if keep <= 0 {
		return // stale at once and not revalidatable: nothing to reuse
	}
	f.entry = &Entry{
		Status:       code,
		Header:       stored,
		RequestTime:  f.reqTime,
		ResponseTime: f.respTime,
		Variant:      variantKey(varyNames(stored), f.req.Header),
	}
	f.keepUntil = f.respTime.Add(keep)
	f.declared = declared
	if declared > 0 {
		f.buf = make([]byte, 0, declared)
	}
}

// restore resets the client's header map to the snapshot.
func (f *fetch) restore(hdr http.Header) {
	clear(hdr)
	for k, vs := range f.snap {
		hdr[k] = vs
	}
}

// Write implements http.ResponseWriter.
func (f *fetch) Write(b []byte) (int, error) {
	if f.state == statePending {
		f.WriteHeader(http.StatusOK)
	}
	if f.state != statePass {
		return len(b), nil
	}
	n, err := f.w.Write(b)
	if f.entry != nil {
		if err != nil || int64(len(f.buf)+n) > f.h.c.maxBody {
			f.dropEntry()
		} else {
			f.buf = append(f.buf, b[:n]...)
		}
	}
	return n, err
}

// FlushError flushes the client's writer while the response goes to it.
func (f *fetch) FlushError() error {
	if f.state != statePass {
		return nil
	}
	return http.NewResponseController(f.w).Flush()
}

// Unwrap returns the client's writer, for http.ResponseController and
// observe.RecordOf.
func (f *fetch) Unwrap() http.ResponseWriter { return f.w }

// diffHeader returns the fields of now that were not in before, as they
// were: new fields whole, and for a field that was there, the values
// appended to it (http.Header.Add, as the proxy copies the origin's fields)
// or all of them when it was replaced.
func diffHeader(now, before http.Header) http.Header {
	out := make(http.Header, len(now))
	for k, vs := range now {
		old, ok := before[k]
		switch {
		case !ok:
			out[k] = vs
		case len(old) == len(vs) && (len(vs) == 0 || &old[0] == &vs[0]):
			// unchanged
		case len(vs) > len(old) && slices.Equal(vs[:len(old)], old):
			out[k] = vs[len(old):]
		default:
			out[k] = vs
		}
	}
	return out
}
