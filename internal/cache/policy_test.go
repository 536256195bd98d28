package cache

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestParseDirectives(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give []string
		want directives
	}{
		{nil, directives{}},
		{[]string{"no-store"}, directives{flags: ccNoStore}},
		{[]string{"No-Cache, PRIVATE"}, directives{flags: ccNoCache | ccPrivate}},
		{[]string{`no-cache="Set-Cookie, X-Foo", max-age=5`}, directives{flags: ccNoCache | ccMaxAge, maxAge: 5}},
		{[]string{`private="a,b"`}, directives{flags: ccPrivate}},
		{[]string{"max-age=60"}, directives{flags: ccMaxAge, maxAge: 60}},
		{[]string{`max-age="60"`}, directives{flags: ccMaxAge, maxAge: 60}},
		{[]string{" max-age = 60 "}, directives{flags: ccMaxAge, maxAge: 60}},
		{[]string{"max-age=60", "max-age=10"}, directives{flags: ccMaxAge, maxAge: 10}},
		{[]string{"max-age=10, max-age=60"}, directives{flags: ccMaxAge, maxAge: 10}},
		{[]string{"max-age=ten"}, directives{flags: ccMaxAge, maxAge: 0}},
		{[]string{"max-age=-1"}, directives{flags: ccMaxAge, maxAge: 0}},
		{[]string{"max-age"}, directives{flags: ccMaxAge, maxAge: 0}},
		{[]string{`max-age="60`}, directives{flags: ccMaxAge, maxAge: 0}},
		{[]string{`max-age="6"0`}, directives{flags: ccMaxAge, maxAge: 0}},
		{[]string{"max-age=99999999999999999999999"}, directives{flags: ccMaxAge, maxAge: maxDelta}},
		{[]string{"s-maxage=5, public"}, directives{flags: ccSMaxAge | ccPublic, sMaxAge: 5}},
		{[]string{"max-stale"}, directives{flags: ccMaxStaleAny}},
		{[]string{"max-stale, max-stale=5"}, directives{flags: ccMaxStale, maxStale: 5}},
		{[]string{"max-stale=5, max-stale"}, directives{flags: ccMaxStale, maxStale: 5}},
		{[]string{"max-stale=x"}, directives{}},
		{[]string{"min-fresh=5, min-fresh=10"}, directives{flags: ccMinFresh, minFresh: 10}},
		{[]string{"min-fresh=x"}, directives{flags: ccMinFresh, minFresh: maxDelta}},
		{[]string{"stale-while-revalidate=30, stale-if-error=60"}, directives{flags: ccStaleWhileRevalidate | ccStaleIfError, swr: 30, sie: 60}},
		{[]string{"stale-if-error=x"}, directives{flags: ccStaleIfError}},
		{[]string{"must-revalidate,proxy-revalidate,only-if-cached"}, directives{flags: ccMustRevalidate | ccProxyRevalidate | ccOnlyIfCached}},
		{[]string{`ext="a, no-store", public`}, directives{flags: ccPublic}},
		{[]string{`ext="a\"b, no-store", public`}, directives{flags: ccPublic}},
		{[]string{",,, ,public,,"}, directives{flags: ccPublic}},
		{[]string{"no-storex, xno-store, no-store=1"}, directives{flags: ccNoStore}},
	}
	for _, tt := range tests {
		if got := parseDirectives(tt.give); got != tt.want {
			t.Errorf("parseDirectives(%q) = %+v, want %+v", tt.give, got, tt.want)
		}
	}
}

func TestRequestDirectivesPragma(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give http.Header
		want bool
	}{
		{http.Header{"Pragma": {"no-cache"}}, true},
		{http.Header{"Pragma": {"x, NO-CACHE"}}, true},
		{http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"max-age=5"}}, false},
		{http.Header{"Pragma": {"nocache"}}, false},
	}
	for _, tt := range tests {
		d := requestDirectives(tt.give)
		if got := d.has(ccNoCache); got != tt.want {
			t.Errorf("requestDirectives(%v) no-cache = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestParseDirectivesAllocs(t *testing.T) {
	vs := []string{`public, max-age=60, no-cache="Set-Cookie", stale-while-revalidate=30`}
	if n := testing.AllocsPerRun(100, func() { parseDirectives(vs) }); n != 0 {
		t.Errorf("parseDirectives allocates %v times, want 0", n)
	}
}

func TestFreshness(t *testing.T) {
	t.Parallel()
	date := httpDate(t0)
	tests := []struct {
		name     string
		status   int
		header   http.Header
		ttl      time.Duration
		wantLife time.Duration
		wantAge  time.Duration
	}{
		{"s-maxage", 200, http.Header{"Cache-Control": {"max-age=5, s-maxage=7"}}, 0, 7 * time.Second, 0},
		{"max-age over Expires", 200, http.Header{"Cache-Control": {"max-age=5"}, "Expires": {httpDate(t0.Add(time.Hour))}, "Date": {date}}, 0, 5 * time.Second, 0},
		{"Expires − Date", 200, http.Header{"Expires": {httpDate(t0.Add(90 * time.Second))}, "Date": {date}}, time.Hour, 90 * time.Second, 0},
		{"Expires before Date", 200, http.Header{"Expires": {httpDate(t0.Add(-time.Second))}, "Date": {date}}, time.Hour, 0, 0},
		{"two Expires", 200, http.Header{"Expires": {httpDate(t0.Add(time.Hour)), httpDate(t0.Add(time.Hour))}}, time.Hour, 0, 0},
		{"CACHE_TTL", 200, http.Header{"Last-Modified": {httpDate(t0.Add(-time.Hour))}}, time.Minute, time.Minute, 0},
		{"heuristic", 200, http.Header{"Last-Modified": {httpDate(t0.Add(-time.Hour))}, "Date": {date}}, 0, 6 * time.Minute, 0},
		{"heuristic for public 302", 302, http.Header{"Cache-Control": {"public"}, "Last-Modified": {httpDate(t0.Add(-time.Hour))}}, 0, 6 * time.Minute, 0},
		{"no heuristic for 302", 302, http.Header{"Last-Modified": {httpDate(t0.Add(-time.Hour))}}, 0, 0, 0},
		{"Last-Modified in the future", 200, http.Header{"Last-Modified": {httpDate(t0.Add(time.Hour))}}, 0, 0, 0},
		{"Age", 200, http.Header{"Cache-Control": {"max-age=60"}, "Age": {"20"}, "Date": {date}}, 0, time.Minute, 20 * time.Second},
		{"invalid Age", 200, http.Header{"Age": {"x"}, "Date": {date}}, 0, 0, 0},
		{"apparent age", 200, http.Header{"Date": {httpDate(t0.Add(-30 * time.Second))}, "Age": {"10"}}, 0, 0, 30 * time.Second},
		{"Date in the future", 200, http.Header{"Date": {httpDate(t0.Add(time.Hour))}}, 0, 0, 0},
	}
	for _, tt := range tests {
		f := computeFreshness(tt.status, tt.header, t0, t0)
		if got := f.lifetime(tt.ttl); got != tt.wantLife {
			t.Errorf("%s: lifetime = %v, want %v", tt.name, got, tt.wantLife)
		}
		if f.initialAge != tt.wantAge {
			t.Errorf("%s: initial age = %v, want %v", tt.name, f.initialAge, tt.wantAge)
		}
	}
	// §4.2.3: the response delay counts toward the age.
	f := computeFreshness(200, http.Header{"Age": {"10"}, "Date": {date}}, t0, t0.Add(3*time.Second))
	if f.initialAge != 13*time.Second {
		t.Errorf("corrected age = %v, want 13s (Age + response delay)", f.initialAge)
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		response string
		request  string
		life     time.Duration
		age      time.Duration
		want     verdict
	}{
		{"fresh", "", "", time.Minute, 59 * time.Second, useFresh},
		{"exactly at lifetime is stale", "", "", time.Minute, time.Minute, mustValidate},
		{"no-cache response", "no-cache", "", time.Minute, 0, mustValidate},
		{"no-cache request", "", "no-cache", time.Minute, 0, mustValidate},
		{"request max-age", "", "max-age=10", time.Minute, 11 * time.Second, mustValidate},
		{"request max-age met", "", "max-age=10", time.Minute, 10 * time.Second, useFresh},
		{"min-fresh met", "", "min-fresh=10", time.Minute, 50 * time.Second, useFresh},
		{"min-fresh not met", "", "min-fresh=10", time.Minute, 51 * time.Second, mustValidate},
		{"min-fresh on stale", "stale-while-revalidate=60", "min-fresh=0", time.Minute, 61 * time.Second, mustValidate},
		{"max-stale", "", "max-stale=10", time.Minute, 70 * time.Second, useStale},
		{"max-stale exceeded", "", "max-stale=10", time.Minute, 71 * time.Second, mustValidate},
		{"max-stale any", "", "max-stale", time.Minute, time.Hour, useStale},
		{"max-stale with max-age", "", "max-stale, max-age=30", time.Minute, 70 * time.Second, mustValidate},
		{"must-revalidate", "must-revalidate", "max-stale", time.Minute, 70 * time.Second, mustValidate},
		{"proxy-revalidate", "proxy-revalidate", "max-stale", time.Minute, 70 * time.Second, mustValidate},
		{"s-maxage", "s-maxage=60", "max-stale", time.Minute, 70 * time.Second, mustValidate},
		{"stale-while-revalidate", "stale-while-revalidate=30", "", time.Minute, 89 * time.Second, useStaleRevalidate},
		{"stale-while-revalidate over", "stale-while-revalidate=30", "", time.Minute, 90 * time.Second, mustValidate},
		{"stale-while-revalidate, must-revalidate", "stale-while-revalidate=30, must-revalidate", "", time.Minute, 61 * time.Second, mustValidate},
		{"stale-while-revalidate, request no-cache", "stale-while-revalidate=30", "no-cache", time.Minute, 61 * time.Second, mustValidate},
	}
	for _, tt := range tests {
		f := freshness{cc: parseDirectives([]string{tt.response})}
		rc := parseDirectives([]string{tt.request})
		if got := decide(&f, &rc, tt.life, tt.age); got != tt.want {
			t.Errorf("%s: decide(%q, %q, life %v, age %v) = %d, want %d", tt.name, tt.response, tt.request, tt.life, tt.age, got, tt.want)
		}
	}
}

func TestStaleIfError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		response, request string
		age               time.Duration
		want              bool
	}{
		{"stale-if-error=60", "", 119 * time.Second, true},
		{"stale-if-error=60", "", 120 * time.Second, false},
		{"", "stale-if-error=60", 119 * time.Second, true},
		{"", "", 61 * time.Second, false},
		{"", "", 59 * time.Second, true}, // still fresh
		{"", "no-cache", 59 * time.Second, false},
		{"no-cache, stale-if-error=60", "", 59 * time.Second, false},
		{"stale-if-error=60, must-revalidate", "", 61 * time.Second, false},
		{"stale-if-error=60, s-maxage=60", "", 61 * time.Second, false},
	}
	for _, tt := range tests {
		f := freshness{cc: parseDirectives([]string{tt.response})}
		rc := parseDirectives([]string{tt.request})
		if got := staleIfError(&f, &rc, time.Minute, tt.age); got != tt.want {
			t.Errorf("staleIfError(%q, %q, age %v) = %v, want %v", tt.response, tt.request, tt.age, got, tt.want)
		}
	}
}

func TestKeepFor(t *testing.T) {
	t.Parallel()
	const stale = 10 * time.Minute
	lm := httpDate(t0.Add(-time.Hour))
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"fresh, no validator", http.Header{"Cache-Control": {"max-age=60"}}, time.Minute + stale},
		{"no lifetime, no validator", http.Header{}, 0},
		{"no lifetime, validator", http.Header{"Etag": {`"a"`}}, stale},
		{"stale windows", http.Header{"Cache-Control": {"max-age=60, stale-while-revalidate=30, stale-if-error=120"}}, 3*time.Minute + stale},
		{"must-revalidate without validator", http.Header{"Cache-Control": {"max-age=60, must-revalidate, stale-if-error=120"}}, time.Minute},
		{"must-revalidate with validator", http.Header{"Cache-Control": {"max-age=60, must-revalidate"}, "Last-Modified": {lm}}, time.Minute + stale},
		{"max-age=0 with swr", http.Header{"Cache-Control": {"max-age=0, stale-while-revalidate=30"}}, 30*time.Second + stale},
	}
	for _, tt := range tests {
		f := computeFreshness(200, tt.header, t0, t0)
		if got := f.keepFor(0, 0, stale); got != tt.want {
			t.Errorf("%s: keepFor = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestStorable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		header http.Header
		authz  bool
		want   bool
	}{
		{"200", 200, http.Header{}, false, true},
		{"201 without freshness", 201, http.Header{}, false, false},
		{"201 public", 201, http.Header{"Cache-Control": {"public"}}, false, false},
		{"206", 206, http.Header{"Cache-Control": {"max-age=60"}}, false, false},
		{"307 max-age", 307, http.Header{"Cache-Control": {"max-age=60"}}, false, true},
		{"307 Expires", 307, http.Header{"Expires": {"0"}}, false, true},
		{"302 public", 302, http.Header{"Cache-Control": {"public"}}, false, true},
		{"503 max-age", 503, http.Header{"Cache-Control": {"max-age=60"}}, false, false},
		{"authorized", 200, http.Header{"Cache-Control": {"max-age=60"}}, true, false},
		{"authorized public", 200, http.Header{"Cache-Control": {"public"}}, true, true},
		{"Vary *", 200, http.Header{"Vary": {"Accept, *"}}, false, false},
		{"Trailer", 200, http.Header{"Trailer": {"X-Sum"}}, false, false},
		{"event stream", 200, http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}}, false, false},
		{"Content-Range", 200, http.Header{"Content-Range": {"bytes 0-1/2"}}, false, false},
	}
	for _, tt := range tests {
		cc := parseDirectives(tt.header["Cache-Control"])
		if got := storable(tt.status, tt.header, &cc, tt.authz); got != tt.want {
			t.Errorf("%s: storable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	req := func(fields ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for i := 0; i+1 < len(fields); i += 2 {
			r.Header.Add(fields[i], fields[i+1])
		}
		return r
	}
	if got := Credentials(req("Accept", "x"), "X-Key"); got != "" {
		t.Errorf("no credentials: %q, want \"\"", got)
	}
	seen := map[string]string{}
	for _, fields := range [][]string{
		{"Authorization", "Bearer a"},
		{"Authorization", "Bearer b"},
		{"X-Api-Key", "Bearer a"},
		{"X-Key", "Bearer a"},
		{"Cookie", "Bearer a"},
		{"Authorization", "Bearer a", "Cookie", "c"},
		{"Authorization", "Bearer a", "Authorization", "Bearer b"},
	} {
		got := Credentials(req(fields...), "x-key")
		if prev, dup := seen[got]; dup {
			t.Errorf("Credentials(%q) = Credentials(%s)", fields, prev)
		}
		seen[got] = joinFields(fields)
		wantAuthz := fields[0] != "Cookie"
		if authorized(got) != wantAuthz || len(got) != 65 {
			t.Errorf("Credentials(%q) = %q: authorized %v, want %v, 65 characters", fields, got, authorized(got), wantAuthz)
		}
	}
	if Credentials(req("Authorization", "Bearer a"), "") != Credentials(req("Authorization", "Bearer a"), "X-Other") {
		t.Error("the partition of Authorization depends on the API-key header name")
	}
}

func joinFields(fields []string) string {
	s := ""
	for _, f := range fields {
		s += f + ";"
	}
	return s
}

func TestKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host, path, query, want string
	}{
		{"Example.COM", "/a/b", "", "example.com/a/b"},
		{"example.com:8080", "/a b", "x=1&y=%20", "example.com:8080/a%20b?x=1&y=%20"},
		{"h", "/a?b", "", "h/a%3Fb"},
		{"h", "/a", "b", "h/a?b"},
	}
	for _, tt := range tests {
		if got := Key(tt.host, tt.path, tt.query); got != tt.want {
			t.Errorf("Key(%q, %q, %q) = %q, want %q", tt.host, tt.path, tt.query, got, tt.want)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "http://H/a%3Fb?c=d", nil)
	if got := requestKey(r); got != "h/a%3Fb?c=d" {
		t.Errorf("requestKey = %q, want h/a%%3Fb?c=d", got)
	}
}

func TestIsServerError(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]bool{500: true, 502: true, 503: true, 504: true, 501: false, 404: false, 200: false, 505: false} {
		if got := isServerError(status); got != want {
			t.Errorf("isServerError(%d) = %v, want %v", status, got, want)
		}
	}
}
