package upstream

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The fast path must send the backend the query ReverseProxy sends: with a
// Rewrite hook, ReverseProxy drops query parameters url.ParseQuery cannot
// parse (a ';' or a bad escape), so that the gateway and the backend cannot
// read different parameters out of one query (parameter smuggling).
func TestReviewFastPathCleansQueryAsReverseProxy(t *testing.T) {
	t.Parallel()
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Saw-Query", r.URL.RawQuery)
	})
	p := newTestPool(t, testUpstream(be.URL))
	fast := p.Handler(RouteOptions{}).(*routeHandler)
	general := p.Handler(RouteOptions{}).(*routeHandler)
	general.noFast = true
	for _, target := range []string{
		"/p?a=1;admin=true",
		"/p?a=%zz&b=2",
		"/p?a=1&b=%4",
		"/p?a=1&b=2",
	} {
		req := func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "http://client.example"+target, nil)
			r.RemoteAddr = "192.0.2.7:5555"
			return r
		}
		want := serve(general, req()).Header().Get("X-Saw-Query")
		got := serve(fast, req()).Header().Get("X-Saw-Query")
		if got != want {
			t.Errorf("%s: the backend saw query %q on the fast path, %q through ReverseProxy", target, got, want)
		}
	}
}
