package middleware

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

// defaultCORS is config.CORS as config.Defaults leaves it.
var defaultCORS = config.CORS{
	AllowedOrigins: []string{"*"},
	AllowedMethods: []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"},
	AllowedHeaders: []string{"Authorization", "Content-Type", "X-API-Key", "X-Request-ID"},
	ExposedHeaders: []string{"X-Request-ID"},
	MaxAge:         10 * time.Minute,
}

// corsWith returns defaultCORS changed by f.
func corsWith(f func(*config.CORS)) config.CORS {
	c := defaultCORS
	f(&c)
	return c
}

func mustCORS(t testing.TB, cfg config.CORS) *CORS {
	t.Helper()
	c, err := NewCORS(cfg)
	if err != nil {
		t.Fatalf("NewCORS(%+v) = %v", cfg, err)
	}
	return c
}

const (
	preflightVary  = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
	defaultMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
	defaultHeaders = "Authorization, Content-Type, X-API-Key, X-Request-ID"
)

// corsHeaders returns the Access-Control-* and Vary headers of h.
func corsHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "Access-Control-") || k == "Vary" {
			out[k] = v
		}
	}
	return out
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	exact := corsWith(func(c *config.CORS) {
		c.AllowedOrigins = []string{"https://app.example.com", "http://localhost:3000"}
	})
	wild := corsWith(func(c *config.CORS) {
		c.AllowedOrigins = []string{"https://*.example.com", "https://*.dev.example.org:8443"}
	})
	allowed := func(origin string) http.Header {
		return http.Header{
			"Access-Control-Allow-Origin":  {origin},
			"Access-Control-Allow-Methods": {defaultMethods},
			"Access-Control-Allow-Headers": {defaultHeaders},
			"Access-Control-Max-Age":       {"600"},
			"Vary":                         {preflightVary},
		}
	}
	refused := http.Header{"Vary": {preflightVary}}
	tests := []struct {
		name       string
		cfg        config.CORS
		origin     string
		method     string
		reqHeaders string
		want       http.Header
	}{
		{name: "star", cfg: defaultCORS, origin: "https://any.test", method: "PUT", want: allowed("*")},
		{name: "exact", cfg: exact, origin: "https://app.example.com", method: "POST", want: allowed("https://app.example.com")},
		{name: "exact with port", cfg: exact, origin: "http://localhost:3000", method: "GET", want: allowed("http://localhost:3000")},
		{name: "exact wrong port", cfg: exact, origin: "http://localhost:3001", method: "GET", want: refused},
		{name: "exact wrong scheme", cfg: exact, origin: "http://app.example.com", method: "GET", want: refused},
		{name: "exact is not a suffix", cfg: exact, origin: "https://evil-app.example.com", method: "GET", want: refused},
		{name: "disallowed origin", cfg: exact, origin: "https://evil.test", method: "GET", want: refused},
		{name: "wildcard one label", cfg: wild, origin: "https://a.example.com", method: "GET", want: allowed("https://a.example.com")},
		{name: "wildcard two labels", cfg: wild, origin: "https://a.b.example.com", method: "GET", want: allowed("https://a.b.example.com")},
		{name: "wildcard with port", cfg: wild, origin: "https://x.dev.example.org:8443", method: "GET", want: allowed("https://x.dev.example.org:8443")},
		{name: "wildcard needs a label", cfg: wild, origin: "https://example.com", method: "GET", want: refused},
		{name: "wildcard empty label", cfg: wild, origin: "https://.example.com", method: "GET", want: refused},
		{name: "wildcard wrong scheme", cfg: wild, origin: "http://a.example.com", method: "GET", want: refused},
		{name: "wildcard extra port", cfg: wild, origin: "https://a.example.com:8443", method: "GET", want: refused},
		{name: "wildcard missing port", cfg: wild, origin: "https://x.dev.example.org", method: "GET", want: refused},
		{name: "wildcard wrong port", cfg: wild, origin: "https://x.dev.example.org:9443", method: "GET", want: refused},
		{name: "wildcard lookalike domain", cfg: wild, origin: "https://evilexample.com", method: "GET", want: refused},
		{name: "wildcard suffix trick", cfg: wild, origin: "https://a.example.com.evil.test", method: "GET", want: refused},
		{name: "wildcard path trick", cfg: wild, origin: "https://evil.test/.example.com", method: "GET", want: refused},
		{name: "wildcard userinfo trick", cfg: wild, origin: "https://evil.test@a.example.com", method: "GET", want: refused},
		{name: "method not allowed", cfg: corsWith(func(c *config.CORS) { c.AllowedMethods = []string{"GET"} }), origin: "https://a.test", method: "DELETE", want: refused},
		{
			name: "max age and methods as configured",
			cfg: corsWith(func(c *config.CORS) {
				c.AllowedMethods = []string{"GET", "POST"}
				c.MaxAge = 90 * time.Second
			}),
			origin: "https://a.test", method: "POST",
			want: http.Header{
				"Access-Control-Allow-Origin":  {"*"},
				"Access-Control-Allow-Methods": {"GET, POST"},
				"Access-Control-Allow-Headers": {defaultHeaders},
				"Access-Control-Max-Age":       {"90"},
				"Vary":                         {preflightVary},
			},
		},
		{
			name:   "no max age",
			cfg:    corsWith(func(c *config.CORS) { c.MaxAge = 0 }),
			origin: "https://a.test", method: "GET",
			want: http.Header{
				"Access-Control-Allow-Origin":  {"*"},
				"Access-Control-Allow-Methods": {defaultMethods},
				"Access-Control-Allow-Headers": {defaultHeaders},
				"Vary":                         {preflightVary},
			},
		},
		{
			name: "credentials answer the exact origin",
			cfg: corsWith(func(c *config.CORS) {
				c.AllowedOrigins = []string{"https://app.example.com"}
				c.AllowCredentials = true
			}),
			origin: "https://app.example.com", method: "GET",
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://app.example.com"},
				"Access-Control-Allow-Methods":     {defaultMethods},
				"Access-Control-Allow-Headers":     {defaultHeaders},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Max-Age":           {"600"},
				"Vary":                             {preflightVary},
			},
		},
		{
			name: "star headers and methods echo the request",
			cfg: corsWith(func(c *config.CORS) {
				c.AllowedMethods = []string{"*"}
				c.AllowedHeaders = []string{"*"}
			}),
			origin: "https://a.test", method: "PURGE", reqHeaders: "x-custom, content-type",
			want: http.Header{
				"Access-Control-Allow-Origin":  {"*"},
				"Access-Control-Allow-Methods": {"PURGE"},
				"Access-Control-Allow-Headers": {"x-custom, content-type"},
				"Access-Control-Max-Age":       {"600"},
				"Vary":                         {preflightVary},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := mustCORS(t, tt.cfg).Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				t.Error("preflight reached the next handler")
			}))
			r := httptest.NewRequest(http.MethodOptions, "/api", nil)
			r.Header.Set("Origin", tt.origin)
			r.Header.Set("Access-Control-Request-Method", tt.method)
			if tt.reqHeaders != "" {
				r.Header.Set("Access-Control-Request-Headers", tt.reqHeaders)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusNoContent {
				t.Errorf("preflight(%s %s) status = %d, want %d", tt.origin, tt.method, w.Code, http.StatusNoContent)
			}
			if got := corsHeaders(w.Header()); !equalHeader(got, tt.want) {
				t.Errorf("preflight(%s %s) = %v, want %v", tt.origin, tt.method, got, tt.want)
			}
		})
	}
}

func TestCORSActual(t *testing.T) {
	t.Parallel()
	exactCreds := corsWith(func(c *config.CORS) {
		c.AllowedOrigins = []string{"https://app.example.com", "https://*.example.org"}
		c.AllowCredentials = true
	})
	tests := []struct {
		name   string
		cfg    config.CORS
		method string
		origin string
		want   http.Header
	}{
		{
			name: "star", cfg: defaultCORS, method: "GET", origin: "https://a.test",
			want: http.Header{
				"Access-Control-Allow-Origin":   {"*"},
				"Access-Control-Expose-Headers": {"X-Request-ID"},
				"Vary":                          {"Origin"},
			},
		},
		{
			name: "exact with credentials", cfg: exactCreds, method: "POST", origin: "https://app.example.com",
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://app.example.com"},
				"Access-Control-Expose-Headers":    {"X-Request-ID"},
				"Access-Control-Allow-Credentials": {"true"},
				"Vary":                             {"Origin"},
			},
		},
		{
			name: "wildcard with credentials", cfg: exactCreds, method: "GET", origin: "https://x.example.org",
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://x.example.org"},
				"Access-Control-Expose-Headers":    {"X-Request-ID"},
				"Access-Control-Allow-Credentials": {"true"},
				"Vary":                             {"Origin"},
			},
		},
		{
			name: "no exposed headers", cfg: corsWith(func(c *config.CORS) { c.ExposedHeaders = nil }), method: "GET", origin: "https://a.test",
			want: http.Header{"Access-Control-Allow-Origin": {"*"}, "Vary": {"Origin"}},
		},
		{name: "disallowed origin", cfg: exactCreds, method: "GET", origin: "https://evil.test", want: http.Header{"Vary": {"Origin"}}},
		{name: "no origin", cfg: exactCreds, method: "GET", want: http.Header{"Vary": {"Origin"}}},
		{name: "no origin, star", cfg: defaultCORS, method: "GET", want: http.Header{"Vary": {"Origin"}}},
		{
			name: "OPTIONS without request method is not a preflight", cfg: defaultCORS, method: "OPTIONS", origin: "https://a.test",
			want: http.Header{
				"Access-Control-Allow-Origin":   {"*"},
				"Access-Control-Expose-Headers": {"X-Request-ID"},
				"Vary":                          {"Origin"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got http.Header
			h := mustCORS(t, tt.cfg).Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				got = corsHeaders(w.Header()) // before next writes: the gateway's own errors carry them
				w.WriteHeader(http.StatusTeapot)
			}))
			r := httptest.NewRequest(tt.method, "/api", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusTeapot {
				t.Fatalf("%s from %q: status = %d, want %d (request must pass)", tt.method, tt.origin, w.Code, http.StatusTeapot)
			}
			if !equalHeader(got, tt.want) {
				t.Errorf("%s from %q: headers = %v, want %v", tt.method, tt.origin, got, tt.want)
			}
		})
	}
}

func TestCORSVaryAddsToExisting(t *testing.T) {
	t.Parallel()
	c := mustCORS(t, defaultCORS)
	h := c.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := httptest.NewRecorder()
	w.Header().Set("Vary", "Accept-Encoding")
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if got, want := w.Header().Values("Vary"), []string{"Accept-Encoding", "Origin"}; !slices.Equal(got, want) {
		t.Errorf("Vary = %q, want %q", got, want)
	}
}

func TestCORSModifyResponse(t *testing.T) {
	t.Parallel()
	resp := &http.Response{Header: http.Header{
		"Access-Control-Allow-Origin":      {"*"},
		"Access-Control-Allow-Credentials": {"true"},
		"Access-Control-Expose-Headers":    {"X-Secret"},
		"Content-Type":                     {"application/json"},
	}}
	if err := mustCORS(t, defaultCORS).ModifyResponse(resp); err != nil {
		t.Fatalf("ModifyResponse() = %v, want nil", err)
	}
	want := http.Header{"Content-Type": {"application/json"}}
	if !equalHeader(resp.Header, want) {
		t.Errorf("ModifyResponse: resp.Header = %v, want %v", resp.Header, want)
	}
}

// End to end through httputil.ReverseProxy, wired as the gateway does: the
// client sees our policy, once, never the upstream's.
func TestCORSThroughReverseProxy(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Access-Control-Expose-Headers", "X-Secret")
		w.Header().Set("Vary", "Accept-Encoding")
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)

	c := mustCORS(t, corsWith(func(c *config.CORS) {
		c.AllowedOrigins = []string{"https://app.example.com"}
		c.AllowCredentials = true
	}))
	proxy := &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ModifyResponse: c.ModifyResponse,
	}
	gw := httptest.NewServer(c.Wrap(proxy))
	t.Cleanup(gw.Close)

	tests := []struct {
		name   string
		origin string
		want   http.Header
	}{
		{
			name: "allowed", origin: "https://app.example.com",
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://app.example.com"},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Expose-Headers":    {"X-Request-ID"},
				"Vary":                             {"Origin", "Accept-Encoding"},
			},
		},
		{name: "disallowed", origin: "https://evil.test", want: http.Header{"Vary": {"Origin", "Accept-Encoding"}}},
		{name: "no origin", want: http.Header{"Vary": {"Origin", "Accept-Encoding"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodGet, gw.URL, nil)
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			resp, err := gw.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := corsHeaders(resp.Header); !equalHeader(got, tt.want) {
				t.Errorf("proxied GET from %q = %v, want %v", tt.origin, got, tt.want)
			}
		})
	}
}

func TestCORSDisabled(t *testing.T) {
	t.Parallel()
	for _, c := range []*CORS{nil, mustCORS(t, config.CORS{Disabled: true, AllowedOrigins: []string{"*"}, AllowCredentials: true})} {
		reached := false
		h := c.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
		r := httptest.NewRequest(http.MethodOptions, "/", nil)
		r.Header.Set("Origin", "https://a.test")
		r.Header.Set("Access-Control-Request-Method", "GET")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if !reached || len(w.Header()) != 0 {
			t.Errorf("disabled CORS (%v): reached next = %v, headers = %v, want true, none", c, reached, w.Header())
		}
		resp := &http.Response{Header: http.Header{"Access-Control-Allow-Origin": {"*"}}}
		if err := c.ModifyResponse(resp); err != nil || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("disabled CORS ModifyResponse: header = %v, err = %v, want upstream's kept", resp.Header, err)
		}
	}
}

func TestNewCORSErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		origins []string
		creds   bool
		want    error // nil: valid
	}{
		{name: "star", origins: []string{"*"}},
		{name: "exact", origins: []string{"https://app.example.com", "HTTP://LOCALHOST:3000"}},
		{name: "wildcard with port", origins: []string{"https://*.example.com:8443"}},
		{name: "ipv4 and ipv6", origins: []string{"http://127.0.0.1:8080", "http://[::1]:8080"}},
		{name: "custom scheme", origins: []string{"capacitor://localhost"}},
		{name: "star with credentials", origins: []string{"*"}, creds: true, want: ErrWildcardCredentials},
		{name: "credentials with exact", origins: []string{"https://a.test"}, creds: true},
		{name: "no scheme", origins: []string{"example.com"}, want: ErrInvalidOrigin},
		{name: "null", origins: []string{"null"}, want: ErrInvalidOrigin},
		{name: "empty", origins: []string{""}, want: ErrInvalidOrigin},
		{name: "no host", origins: []string{"https://"}, want: ErrInvalidOrigin},
		{name: "path", origins: []string{"https://a.test/"}, want: ErrInvalidOrigin},
		{name: "query", origins: []string{"https://a.test?x"}, want: ErrInvalidOrigin},
		{name: "userinfo", origins: []string{"https://u@a.test"}, want: ErrInvalidOrigin},
		{name: "star inside label", origins: []string{"https://*example.com"}, want: ErrInvalidOrigin},
		{name: "star in the middle", origins: []string{"https://a.*.example.com"}, want: ErrInvalidOrigin},
		{name: "star alone as host", origins: []string{"https://*"}, want: ErrInvalidOrigin},
		{name: "star scheme", origins: []string{"*://a.test"}, want: ErrInvalidOrigin},
		{name: "bad port", origins: []string{"https://a.test:99999"}, want: ErrInvalidOrigin},
		{name: "zero port", origins: []string{"https://a.test:0"}, want: ErrInvalidOrigin},
		{name: "empty port", origins: []string{"https://a.test:"}, want: ErrInvalidOrigin},
		{name: "empty label", origins: []string{"https://a..test"}, want: ErrInvalidOrigin},
		{name: "trailing dot", origins: []string{"https://a.test."}, want: ErrInvalidOrigin},
		{name: "bad ipv6", origins: []string{"http://[::1"}, want: ErrInvalidOrigin},
		{name: "ipv4 in brackets", origins: []string{"http://[127.0.0.1]"}, want: ErrInvalidOrigin},
		{name: "ipv6 zone", origins: []string{"http://[fe80::1%25eth0]"}, want: ErrInvalidOrigin},
		{name: "one bad among good", origins: []string{"https://a.test", "nope"}, want: ErrInvalidOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := corsWith(func(c *config.CORS) {
				c.AllowedOrigins = tt.origins
				c.AllowCredentials = tt.creds
			})
			c, err := NewCORS(cfg)
			if tt.want == nil {
				if err != nil || c == nil {
					t.Errorf("NewCORS(%q, credentials %v) = %v, want no error", tt.origins, tt.creds, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || c != nil {
				t.Errorf("NewCORS(%q, credentials %v) = %v, %v, want nil, %v", tt.origins, tt.creds, c, err, tt.want)
			}
		})
	}
}

// Configured origins are normalized the way browsers serialize them.
func TestCORSOriginNormalization(t *testing.T) {
	t.Parallel()
	c := mustCORS(t, corsWith(func(c *config.CORS) {
		c.AllowedOrigins = []string{"HTTPS://App.Example.com:443", "http://*.Local.test:80", "http://localhost:08080", "http://[0:0::1]:8080"}
	}))
	tests := []struct {
		give string
		want bool
	}{
		{"https://app.example.com", true},
		{"https://app.example.com:443", false}, // browsers never send a default port
		{"http://a.local.test", true},
		{"https://other.example.com", false},
		{"http://localhost:8080", true},
		{"http://[::1]:8080", true},
	}
	for _, tt := range tests {
		if got := c.allowOrigin(tt.give) != nil; got != tt.want {
			t.Errorf("allowOrigin(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestMergeCORS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		base     config.CORS
		override config.CORS
		want     config.CORS
	}{
		{name: "empty override keeps base", base: defaultCORS, want: defaultCORS},
		{
			name:     "field by field",
			base:     defaultCORS,
			override: config.CORS{AllowedOrigins: []string{"https://a.test"}, AllowCredentials: true, MaxAge: time.Minute},
			want: corsWith(func(c *config.CORS) {
				c.AllowedOrigins = []string{"https://a.test"}
				c.AllowCredentials = true
				c.MaxAge = time.Minute
			}),
		},
		{
			name:     "lists",
			base:     defaultCORS,
			override: config.CORS{AllowedMethods: []string{"GET"}, AllowedHeaders: []string{"*"}, ExposedHeaders: []string{"ETag"}},
			want: corsWith(func(c *config.CORS) {
				c.AllowedMethods = []string{"GET"}
				c.AllowedHeaders = []string{"*"}
				c.ExposedHeaders = []string{"ETag"}
			}),
		},
		{name: "override disables", base: defaultCORS, override: config.CORS{Disabled: true}, want: corsWith(func(c *config.CORS) { c.Disabled = true })},
		{
			name:     "credentials cannot be turned off",
			base:     corsWith(func(c *config.CORS) { c.AllowCredentials = true }),
			override: config.CORS{AllowedMethods: []string{"GET"}},
			want: corsWith(func(c *config.CORS) {
				c.AllowCredentials = true
				c.AllowedMethods = []string{"GET"}
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := MergeCORS(tt.base, tt.override); !equalCORS(got, tt.want) {
				t.Errorf("MergeCORS(%+v, %+v) = %+v, want %+v", tt.base, tt.override, got, tt.want)
			}
		})
	}
}

func TestIsPreflight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    bool
	}{
		{"preflight", "OPTIONS", map[string]string{"Origin": "https://a.test", "Access-Control-Request-Method": "PUT"}, true},
		{"no request method", "OPTIONS", map[string]string{"Origin": "https://a.test"}, false},
		{"no origin", "OPTIONS", map[string]string{"Access-Control-Request-Method": "PUT"}, false},
		{"not OPTIONS", "GET", map[string]string{"Origin": "https://a.test", "Access-Control-Request-Method": "PUT"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, "/", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if got := IsPreflight(r); got != tt.want {
				t.Errorf("IsPreflight(%s %v) = %v, want %v", tt.method, tt.headers, got, tt.want)
			}
		})
	}
}

func equalCORS(a, b config.CORS) bool {
	return a.Disabled == b.Disabled && a.AllowCredentials == b.AllowCredentials && a.MaxAge == b.MaxAge &&
		slices.Equal(a.AllowedOrigins, b.AllowedOrigins) && slices.Equal(a.AllowedMethods, b.AllowedMethods) &&
		slices.Equal(a.AllowedHeaders, b.AllowedHeaders) && slices.Equal(a.ExposedHeaders, b.ExposedHeaders)
}
