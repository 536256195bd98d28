package cache

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// step is one request of an RFC case.
type step struct {
	advance time.Duration // clock moves first
	method  string        // default GET
	header  []string      // request fields: name, value pairs
	cache   string        // want X-Cache
	status  int           // want status; default 200
	up      int           // want origin requests so far
	body    string        // want body, when set
	age     string        // want Age, when set
	want    map[string]string
}

type rfcCase struct {
	name   string // names the RFC section
	ttl    time.Duration
	origin func(w http.ResponseWriter, r *http.Request, n int)
	steps  []step
}

// reply answers with status, header fields (name, value pairs) and a body
// naming the origin request.
func reply(status int, fields ...string) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		for i := 0; i+1 < len(fields); i += 2 {
			w.Header().Add(fields[i], fields[i+1])
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "v%d", n)
	}
}

// validating answers 304 to a conditional request whose If-None-Match has
// etag or whose If-Modified-Since is lm, else 200 with fields.
func validating(etag, lm string, fields ...string) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		if lm != "" {
			w.Header().Set("Last-Modified", lm)
		}
		for i := 0; i+1 < len(fields); i += 2 {
			w.Header().Add(fields[i], fields[i+1])
		}
		if etag != "" && r.Header.Get("If-None-Match") == etag ||
			etag == "" && lm != "" && r.Header.Get("If-Modified-Since") == lm {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprintf(w, "v%d", n)
	}
}

// TestRFC runs caching cases taken from RFC 9111 and RFC 5861 through a
// real proxy to a real origin; each case names its section.
func TestRFC(t *testing.T) {
	lm := httpDate(t0.Add(-100 * time.Second))        // 10% heuristic: 10s
	oldLM := httpDate(t0.Add(-1000 * 24 * time.Hour)) // heuristic capped at 24h
	tests := []rfcCase{
		// §3 Storing responses.
		{name: "§3 200 without freshness or validator in strict mode is stored for no time",
			origin: reply(200),
			steps:  []step{{cache: "MISS", up: 1}, {cache: "MISS", up: 2}}},
		{name: "§3 CACHE_TTL is the lifetime of a storable response that states none",
			ttl: time.Minute, origin: reply(200),
			steps: []step{{cache: "MISS", up: 1}, {advance: 59 * time.Second, cache: "HIT", up: 1, age: "59"}, {advance: 2 * time.Second, cache: "MISS", up: 2}}},
		{name: "§3 no-store is never stored",
			ttl: time.Minute, origin: reply(200, "Cache-Control", "max-age=60, no-store"),
			steps: []step{{cache: "MISS", up: 1}, {cache: "MISS", up: 2}}},
		{name: "§3 private is not stored by a shared cache",
			ttl: time.Minute, origin: reply(200, "Cache-Control", "private, max-age=60"),
			steps: []step{{cache: "MISS", up: 1}, {cache: "MISS", up: 2}}},
		{name: "§5.2.2.7 private with field names counts as private",
			origin: reply(200, "Cache-Control", `max-age=60, private="X-User"`),
			steps:  []step{{cache: "MISS", up: 1}, {cache: "MISS", up: 2}}},
		{name: "§3 a status the cache does not understand is not stored",
			origin: reply(500, "Cache-Control", "max-age=60"),
			steps:  []step{{cache: "MISS", status: 500, up: 1}, {cache: "MISS", status: 500, up: 2}}},
		{name: "§3 302 is not heuristically cacheable: CACHE_TTL does not apply",
			ttl: time.Minute, origin: reply(302, "Location", "/elsewhere"),
			steps: []step{{cache: "MISS", status: 302, up: 1}, {cache: "MISS", status: 302, up: 2}}},
		{name: "§3 302 with max-age is stored",
			origin: reply(302, "Location", "/elsewhere", "Cache-Control", "max-age=60"),
			steps:  []step{{cache: "MISS", status: 302, up: 1}, {cache: "HIT", status: 302, up: 1}}},
		{name: "§3 404 is heuristically cacheable: CACHE_TTL applies",
			ttl: time.Minute, origin: reply(404),
			steps: []step{{cache: "MISS", status: 404, up: 1}, {cache: "HIT", status: 404, up: 1}}},
		{name: "§3 a response with Set-Cookie is never stored (our decision)",
			origin: reply(200, "Cache-Control", "public, max-age=60", "Set-Cookie", "s=1"),
			steps:  []step{{cache: "MISS", up: 1}, {cache: "MISS", up: 2}}},
		{name: "§4.1 Vary: * is never stored",
			origin: reply(200, "Cache-Control", "max-age=60", "Vary", "*"),
			steps:  []step{{cache: "MISS", up: 1}, {cache: "MISS", up: 2}}},
		{name: "§3.3 a Range request bypasses the cache",
			origin: reply(200, "Cache-Control", "max-age=60"),
			steps: []step{{header: []string{"Range", "bytes=0-1"}, cache: "BYPASS", up: 1},
				{cache: "MISS", up: 2}, {header: []string{"Range", "bytes=0-1"}, cache: "BYPASS", up: 3}}},
		{name: "§5.2.2.4 no-cache is stored but validated before every use",
			origin: validating(`"e1"`, "", "Cache-Control", "max-age=60, no-cache"),
			steps:  []step{{cache: "MISS", up: 1, body: "v1"}, {cache: "REVALIDATED", up: 2, body: "v1"}, {cache: "REVALIDATED", up: 3, body: "v1"}}},
		{name: "§5.2.2.4 no-cache with field names counts as no-cache",
			origin: validating(`"e1"`, "", "Cache-Control", `max-age=60, no-cache="Set-Cookie"`),
			steps:  []step{{cache: "MISS", up: 1}, {cache: "REVALIDATED", up: 2, body: "v1"}}},

		// §3.5 Storing responses to authenticated requests.
		{name: "§3.5 a response to a request with Authorization is not stored without public, s-maxage or must-revalidate",
			origin: reply(200, "Cache-Control", "max-age=60"),
			steps: []step{{header: []string{"Authorization", "Bearer a"}, cache: "MISS", up: 1},
				{header: []string{"Authorization", "Bearer a"}, cache: "MISS", up: 2}}},
		{name: "§3.5 an API key counts as Authorization",
			origin: reply(200, "Cache-Control", "max-age=60"),
			steps: []step{{header: []string{"X-Api-Key", "k"}, cache: "MISS", up: 1},
				{header: []string{"X-Api-Key", "k"}, cache: "MISS", up: 2}}},
		{name: "§3.5 public allows it, for the same credential",
			origin: reply(200, "Cache-Control", "public, max-age=60"),
			steps: []step{{header: []string{"Authorization", "Bearer a"}, cache: "MISS", up: 1},
				{header: []string{"Authorization", "Bearer a"}, cache: "HIT", up: 1}}},
		{name: "§3.5 s-maxage allows it",
			origin: reply(200, "Cache-Control", "s-maxage=60"),
			steps: []step{{header: []string{"Authorization", "Bearer a"}, cache: "MISS", up: 1},
				{header: []string{"Authorization", "Bearer a"}, cache: "HIT", up: 1}}},
		{name: "§3.5 must-revalidate allows it",
			origin: reply(200, "Cache-Control", "max-age=60, must-revalidate"),
			steps: []step{{header: []string{"Authorization", "Bearer a"}, cache: "MISS", up: 1},
				{header: []string{"Authorization", "Bearer a"}, cache: "HIT", up: 1}}},

		// §4.2.1 Calculating freshness lifetime.
		{name: "§4.2.1 s-maxage takes precedence over max-age",
			origin: reply(200, "Cache-Control", "max-age=100, s-maxage=10"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 9 * time.Second, cache: "HIT", up: 1}, {advance: 2 * time.Second, cache: "MISS", up: 2}}},
		{name: "§4.2.1 max-age takes precedence over Expires",
			origin: reply(200, "Cache-Control", "max-age=10", "Expires", httpDate(t0.Add(time.Hour))),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 11 * time.Second, cache: "MISS", up: 2}}},
		{name: "§4.2.1 Expires minus Date",
			origin: reply(200, "Expires", httpDate(t0.Add(30*time.Second))),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 29 * time.Second, cache: "HIT", up: 1}, {advance: 2 * time.Second, cache: "MISS", up: 2}}},
		{name: "§5.3 an invalid Expires means already expired, even with CACHE_TTL",
			ttl: time.Minute, origin: reply(200, "Expires", "0"),
			steps: []step{{cache: "MISS", up: 1}, {cache: "MISS", up: 2}}},
		{name: "§4.2.1 a directive given twice keeps its most restrictive value",
			origin: reply(200, "Cache-Control", "max-age=100", "Cache-Control", "max-age=10"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 11 * time.Second, cache: "MISS", up: 2}}},
		{name: "§4.2.1 an invalid max-age makes the response stale",
			ttl: time.Minute, origin: reply(200, "Cache-Control", "max-age=ten"),
			steps: []step{{cache: "MISS", up: 1}, {cache: "MISS", up: 2}}},
		{name: "§5.2 a quoted argument is accepted",
			origin: reply(200, "Cache-Control", `max-age="60"`),
			steps:  []step{{cache: "MISS", up: 1}, {cache: "HIT", up: 1}}},
		{name: "§1.2.2 a huge delta-seconds is taken as 2^31",
			origin: reply(200, "Cache-Control", "max-age=99999999999999999999"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 1000 * 24 * time.Hour, cache: "HIT", up: 1}}},

		// §4.2.2 Heuristic freshness.
		{name: "§4.2.2 strict mode: 10% of the time since Last-Modified",
			origin: validating("", lm),
			steps: []step{{cache: "MISS", up: 1}, {advance: 9 * time.Second, cache: "HIT", up: 1},
				{advance: 2 * time.Second, cache: "REVALIDATED", up: 2, body: "v1"}}},
		{name: "§4.2.2 the heuristic is capped at a day",
			origin: validating("", oldLM),
			steps: []step{{cache: "MISS", up: 1}, {advance: 23 * time.Hour, cache: "HIT", up: 1},
				{advance: 65 * time.Minute, cache: "REVALIDATED", up: 2}}},
		{name: "§4.2.2 no heuristic for a status that is not heuristically cacheable",
			origin: reply(302, "Location", "/x", "Last-Modified", lm),
			steps:  []step{{cache: "MISS", status: 302, up: 1}, {cache: "MISS", status: 302, up: 2}}},
		{name: "§4.2.2 CACHE_TTL replaces the heuristic",
			ttl: time.Minute, origin: validating("", lm),
			steps: []step{{cache: "MISS", up: 1}, {advance: 59 * time.Second, cache: "HIT", up: 1},
				{advance: 2 * time.Second, cache: "REVALIDATED", up: 2}}},

		// §4.2.3 Calculating age.
		{name: "§4.2.3 the Age the origin sent counts",
			origin: reply(200, "Cache-Control", "max-age=60", "Age", "50"),
			steps: []step{{cache: "MISS", up: 1}, {advance: 5 * time.Second, cache: "HIT", up: 1, age: "55"},
				{advance: 6 * time.Second, cache: "MISS", up: 2}}},
		{name: "§4.2.3 apparent age from an old Date",
			origin: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Date", httpDate(t0.Add(-30*time.Second)))
				reply(200, "Cache-Control", "max-age=60")(w, r, n)
			},
			steps: []step{{cache: "MISS", up: 1}, {advance: 29 * time.Second, cache: "HIT", up: 1, age: "59"},
				{advance: 2 * time.Second, cache: "MISS", up: 2}}},

		// §4.2.4 Serving stale responses; §5.2.1.2 max-stale.
		{name: "§4.2.4 a stale response is not served without permission",
			origin: reply(200, "Cache-Control", "max-age=10"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 11 * time.Second, cache: "MISS", up: 2, body: "v2"}}},
		{name: "§5.2.1.2 max-stale lets the client take a stale response",
			origin: reply(200, "Cache-Control", "max-age=10"),
			steps: []step{{cache: "MISS", up: 1}, {advance: 15 * time.Second, header: []string{"Cache-Control", "max-stale=10"}, cache: "STALE", up: 1, body: "v1"},
				{header: []string{"Cache-Control", "max-stale=1"}, cache: "MISS", up: 2}}},
		{name: "§5.2.1.2 max-stale without a value accepts any staleness",
			origin: reply(200, "Cache-Control", "max-age=10"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 5 * time.Minute, header: []string{"Cache-Control", "max-stale"}, cache: "STALE", up: 1}}},
		{name: "§5.2.2.2 must-revalidate forbids stale even under max-stale",
			origin: validating(`"e1"`, "", "Cache-Control", "max-age=10, must-revalidate"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 15 * time.Second, header: []string{"Cache-Control", "max-stale"}, cache: "REVALIDATED", up: 2}}},
		{name: "§5.2.2.8 proxy-revalidate forbids stale in a shared cache",
			origin: validating(`"e1"`, "", "Cache-Control", "max-age=10, proxy-revalidate"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 15 * time.Second, header: []string{"Cache-Control", "max-stale"}, cache: "REVALIDATED", up: 2}}},
		{name: "§5.2.2.10 s-maxage forbids stale in a shared cache",
			origin: validating(`"e1"`, "", "Cache-Control", "s-maxage=10"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 15 * time.Second, header: []string{"Cache-Control", "max-stale"}, cache: "REVALIDATED", up: 2}}},

		// §4.3 Validation.
		{name: "§4.3.1 a stale response with an ETag is revalidated with If-None-Match; §4.3.3 a 304 freshens it",
			origin: validating(`"e1"`, "", "Cache-Control", "max-age=10"),
			steps: []step{{cache: "MISS", up: 1}, {advance: 11 * time.Second, cache: "REVALIDATED", status: 200, up: 2, body: "v1", age: "0"},
				{advance: 9 * time.Second, cache: "HIT", up: 2, body: "v1"}}},
		{name: "§4.3.1 Last-Modified is revalidated with If-Modified-Since",
			origin: validating("", lm, "Cache-Control", "max-age=10"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 11 * time.Second, cache: "REVALIDATED", up: 2, body: "v1"}}},
		{name: "§4.3.4 a 304 updates the stored header fields",
			origin: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("X-Version", fmt.Sprint(n))
				validating(`"e1"`, "", "Cache-Control", "max-age=10")(w, r, n)
			},
			steps: []step{{cache: "MISS", up: 1, want: map[string]string{"X-Version": "1"}},
				{advance: 11 * time.Second, cache: "REVALIDATED", up: 2, body: "v1", want: map[string]string{"X-Version": "2"}},
				{cache: "HIT", up: 2, body: "v1", want: map[string]string{"X-Version": "2"}}}},
		{name: "§4.3.4 a 304 with another ETag is not used: the cache fetches in full",
			origin: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Cache-Control", "max-age=10")
				if r.Header.Get("If-None-Match") != "" {
					w.Header().Set("ETag", `"other"`)
					w.WriteHeader(http.StatusNotModified)
					return
				}
				w.Header().Set("ETag", fmt.Sprintf(`"e%d"`, n))
				fmt.Fprintf(w, "v%d", n)
			},
			steps: []step{{cache: "MISS", up: 1}, {advance: 11 * time.Second, cache: "MISS", up: 3, body: "v3"}}},
		{name: "§4.3.2 a client's If-None-Match is answered 304 from a fresh stored response",
			origin: reply(200, "Cache-Control", "max-age=60", "ETag", `"e1"`),
			steps: []step{{cache: "MISS", up: 1},
				{header: []string{"If-None-Match", `"x", W/"e1"`}, cache: "HIT", status: 304, up: 1, body: "", want: map[string]string{"Etag": `"e1"`}},
				{header: []string{"If-None-Match", `"x"`}, cache: "HIT", status: 200, up: 1, body: "v1"}}},
		{name: "§4.3.2 If-Modified-Since without Last-Modified uses the stored Date",
			origin: reply(200, "Cache-Control", "max-age=60"),
			steps: []step{{cache: "MISS", up: 1},
				{header: []string{"If-Modified-Since", httpDate(t0)}, cache: "HIT", status: 304, up: 1},
				{header: []string{"If-Modified-Since", httpDate(t0.Add(-time.Second))}, cache: "HIT", status: 200, up: 1}}},
		{name: "§4.3.2 a client's conditional with nothing stored goes upstream unchanged",
			origin: validating(`"e1"`, "", "Cache-Control", "max-age=60"),
			steps: []step{{header: []string{"If-None-Match", `"e1"`}, cache: "MISS", status: 304, up: 1},
				{cache: "MISS", up: 2, body: "v2"}, {header: []string{"If-None-Match", `"e1"`}, cache: "HIT", status: 304, up: 2}}},
		{name: "§4.3.2 a client's conditional on a stale response: the cache revalidates, then answers the client's",
			origin: validating(`"e1"`, "", "Cache-Control", "max-age=10"),
			steps: []step{{cache: "MISS", up: 1},
				{advance: 11 * time.Second, header: []string{"If-None-Match", `"e1"`}, cache: "REVALIDATED", status: 304, up: 2},
				{advance: 11 * time.Second, header: []string{"If-None-Match", `"zz"`}, cache: "REVALIDATED", status: 200, up: 3, body: "v1"}}},

		// §4.4 Invalidating stored responses.
		{name: "§4.4 a successful POST invalidates the target URI",
			origin: reply(200, "Cache-Control", "max-age=60"),
			steps: []step{{cache: "MISS", up: 1}, {cache: "HIT", up: 1}, {method: "POST", cache: "BYPASS", up: 2},
				{cache: "MISS", up: 3, body: "v3"}}},
		{name: "§4.4 an error response to a DELETE does not invalidate",
			origin: func(w http.ResponseWriter, r *http.Request, n int) {
				if r.Method == http.MethodDelete {
					w.WriteHeader(http.StatusConflict)
					return
				}
				reply(200, "Cache-Control", "max-age=60")(w, r, n)
			},
			steps: []step{{cache: "MISS", up: 1}, {method: "DELETE", cache: "BYPASS", status: 409, up: 2}, {cache: "HIT", up: 2, body: "v1"}}},

		// §5.2.1 Request directives.
		{name: "§5.2.1.1 a request's max-age=0 forces validation of a response older than 0s",
			origin: validating(`"e1"`, "", "Cache-Control", "max-age=60"),
			steps: []step{{cache: "MISS", up: 1}, {header: []string{"Cache-Control", "max-age=0"}, cache: "HIT", up: 1},
				{advance: time.Second, header: []string{"Cache-Control", "max-age=0"}, cache: "REVALIDATED", up: 2, body: "v1"},
				{advance: 5 * time.Second, header: []string{"Cache-Control", "max-age=10"}, cache: "HIT", up: 2}}},
		{name: "§5.2.1.3 min-fresh wants more freshness than is left",
			origin: reply(200, "Cache-Control", "max-age=60"),
			steps: []step{{cache: "MISS", up: 1}, {advance: 30 * time.Second, header: []string{"Cache-Control", "min-fresh=20"}, cache: "HIT", up: 1},
				{advance: 15 * time.Second, header: []string{"Cache-Control", "min-fresh=20"}, cache: "MISS", up: 2}}},
		{name: "§5.2.1.4 no-cache in a request forces validation",
			origin: reply(200, "Cache-Control", "max-age=60"),
			steps:  []step{{cache: "MISS", up: 1}, {header: []string{"Cache-Control", "no-cache"}, cache: "MISS", up: 2, body: "v2"}}},
		{name: "§5.4 Pragma: no-cache without Cache-Control is no-cache",
			origin: reply(200, "Cache-Control", "max-age=60"),
			steps: []step{{cache: "MISS", up: 1}, {header: []string{"Pragma", "no-cache"}, cache: "MISS", up: 2},
				{header: []string{"Pragma", "no-cache", "Cache-Control", "max-stale"}, cache: "HIT", up: 2}}},
		{name: "§5.2.1.5 no-store in a request bypasses the cache and stores nothing",
			origin: reply(200, "Cache-Control", "max-age=60"),
			steps:  []step{{header: []string{"Cache-Control", "no-store"}, cache: "BYPASS", up: 1}, {cache: "MISS", up: 2}}},
		{name: "§5.2.1.7 only-if-cached with nothing usable is a 504",
			origin: reply(200, "Cache-Control", "max-age=10"),
			steps: []step{{header: []string{"Cache-Control", "only-if-cached"}, cache: "MISS", status: 504, up: 0},
				{cache: "MISS", up: 1}, {header: []string{"Cache-Control", "only-if-cached"}, cache: "HIT", up: 1},
				{advance: 11 * time.Second, header: []string{"Cache-Control", "only-if-cached"}, status: 504, up: 1},
				{header: []string{"Cache-Control", "only-if-cached, max-stale"}, cache: "STALE", up: 1}}},

		// RFC 5861.
		{name: "RFC 5861 §3 stale-while-revalidate serves stale at once",
			origin: reply(200, "Cache-Control", "max-age=10, stale-while-revalidate=30"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 15 * time.Second, cache: "STALE", body: "v1"}}},
		{name: "RFC 5861 §3 past the stale-while-revalidate window the client waits for the origin",
			origin: reply(200, "Cache-Control", "max-age=10, stale-while-revalidate=30"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 41 * time.Second, cache: "MISS", up: 2, body: "v2"}}},
		{name: "RFC 5861 §3 must-revalidate overrides stale-while-revalidate",
			origin: validating(`"e1"`, "", "Cache-Control", "max-age=10, stale-while-revalidate=30, must-revalidate"),
			steps:  []step{{cache: "MISS", up: 1}, {advance: 15 * time.Second, cache: "REVALIDATED", up: 2, body: "v1"}}},
		{name: "RFC 5861 §4 stale-if-error serves stale when the origin answers 500",
			origin: func(w http.ResponseWriter, r *http.Request, n int) {
				if n > 1 {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				reply(200, "Cache-Control", "max-age=10, stale-if-error=60")(w, r, n)
			},
			steps: []step{{cache: "MISS", up: 1}, {advance: 30 * time.Second, cache: "STALE", status: 200, up: 2, body: "v1", age: "30"},
				{advance: 60 * time.Second, cache: "MISS", status: 500, up: 3}}},
		{name: "RFC 5861 §4 stale-if-error in the request",
			origin: func(w http.ResponseWriter, r *http.Request, n int) {
				if n > 1 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				reply(200, "Cache-Control", "max-age=10")(w, r, n)
			},
			steps: []step{{cache: "MISS", up: 1}, {advance: 30 * time.Second, cache: "MISS", status: 503, up: 2},
				{header: []string{"Cache-Control", "stale-if-error=60"}, cache: "STALE", status: 200, up: 3, body: "v1"}}},
		{name: "RFC 5861 §4 must-revalidate overrides stale-if-error",
			origin: func(w http.ResponseWriter, r *http.Request, n int) {
				if n > 1 {
					w.WriteHeader(http.StatusBadGateway)
					return
				}
				reply(200, "Cache-Control", "max-age=10, stale-if-error=60, must-revalidate", "ETag", `"e1"`)(w, r, n)
			},
			steps: []step{{cache: "MISS", up: 1}, {advance: 30 * time.Second, cache: "MISS", status: 502, up: 2}}},

		// RFC 9110 §9.3.2 HEAD.
		{name: "RFC 9110 §9.3.2 HEAD is answered from a stored GET response",
			origin: reply(200, "Cache-Control", "max-age=60"),
			steps:  []step{{cache: "MISS", up: 1}, {method: "HEAD", cache: "HIT", up: 1, body: "", want: map[string]string{"Content-Length": "2"}}}},
		{name: "§3 a HEAD response is never stored",
			origin: reply(200, "Cache-Control", "max-age=60"),
			steps: []step{{method: "HEAD", cache: "MISS", up: 1}, {method: "HEAD", cache: "MISS", up: 2},
				{cache: "MISS", up: 3}, {method: "HEAD", cache: "HIT", up: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ttl := tt.ttl
			h := newHarness(t, harnessOptions{Options: Options{DefaultTTL: ttl}})
			h.setHandler(tt.origin)
			for i, s := range tt.steps {
				h.clock.Advance(s.advance)
				method := s.method
				if method == "" {
					method = http.MethodGet
				}
				resp := h.do(method, "/api/thing?id=1", s.header...)
				want := s.status
				if want == 0 {
					want = http.StatusOK
				}
				if resp.status != want {
					t.Errorf("step %d: status = %d, want %d (body %q)", i, resp.status, want, resp.body)
				}
				if s.cache != "" && resp.header.Get("X-Cache") != s.cache {
					t.Errorf("step %d: X-Cache = %q, want %q", i, resp.header.Get("X-Cache"), s.cache)
				}
				if s.up != 0 || s.cache != "STALE" {
					if got := int(h.hits.Load()); got != s.up {
						t.Errorf("step %d: origin requests = %d, want %d", i, got, s.up)
					}
				}
				if s.body != "" || s.status == 304 {
					if resp.body != s.body {
						t.Errorf("step %d: body = %q, want %q", i, resp.body, s.body)
					}
				}
				if s.age != "" && resp.header.Get("Age") != s.age {
					t.Errorf("step %d: Age = %q, want %q", i, resp.header.Get("Age"), s.age)
				}
				for k, v := range s.want {
					if got := resp.header.Get(k); got != v {
						t.Errorf("step %d: %s = %q, want %q", i, k, got, v)
					}
				}
			}
		})
	}
}
