package middleware

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/httperr"
)

// defaultSecurity is config.SecurityHeaders as config.Defaults leaves it.
var defaultSecurity = config.SecurityHeaders{
	ContentTypeOptions:      "nosniff",
	FrameOptions:            "DENY",
	StrictTransportSecurity: "max-age=31536000; includeSubDomains",
	ContentSecurityPolicy:   "default-src 'none'; frame-ancestors 'none'",
	ReferrerPolicy:          "no-referrer",
}

// defaultSecurityHeader is what defaultSecurity sets.
func defaultSecurityHeader() http.Header {
	return http.Header{
		"X-Content-Type-Options":    {"nosniff"},
		"X-Frame-Options":           {"DENY"},
		"Strict-Transport-Security": {"max-age=31536000; includeSubDomains"},
		"Content-Security-Policy":   {"default-src 'none'; frame-ancestors 'none'"},
		"Referrer-Policy":           {"no-referrer"},
	}
}

func TestSecurityHeadersApply(t *testing.T) {
	t.Parallel()
	without := func(keys ...string) http.Header {
		h := defaultSecurityHeader()
		for _, k := range keys {
			h.Del(k)
		}
		return h
	}
	with := func(k, v string) http.Header {
		h := defaultSecurityHeader()
		h.Set(k, v)
		return h
	}
	tests := []struct {
		name string
		give config.SecurityHeaders
		want http.Header
	}{
		{name: "defaults", give: defaultSecurity, want: defaultSecurityHeader()},
		{name: "empty fields get the defaults", give: config.SecurityHeaders{}, want: defaultSecurityHeader()},
		{name: "disabled", give: config.SecurityHeaders{Disabled: true}, want: http.Header{}},
		{
			name: "off omits",
			give: func() config.SecurityHeaders {
				c := defaultSecurity
				c.FrameOptions = "off"
				c.StrictTransportSecurity = "OFF"
				return c
			}(),
			want: without("X-Frame-Options", "Strict-Transport-Security"),
		},
		{
			name: "custom value",
			give: func() config.SecurityHeaders {
				c := defaultSecurity
				c.FrameOptions = "SAMEORIGIN"
				return c
			}(),
			want: with("X-Frame-Options", "SAMEORIGIN"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := http.Header{}
			NewSecurityHeaders(tt.give).Apply(got)
			if !equalHeader(got, tt.want) {
				t.Errorf("Apply(%+v) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestSecurityHeadersApplyReplacesButLeavesOffAlone(t *testing.T) {
	t.Parallel()
	cfg := defaultSecurity
	cfg.ReferrerPolicy = "off"
	h := http.Header{
		"X-Frame-Options": {"SAMEORIGIN", "ALLOWALL"},
		"Referrer-Policy": {"origin"},
	}
	NewSecurityHeaders(cfg).Apply(h)
	if got, want := h.Values("X-Frame-Options"), []string{"DENY"}; !slices.Equal(got, want) {
		t.Errorf("Apply: X-Frame-Options = %q, want %q", got, want)
	}
	if got, want := h.Values("Referrer-Policy"), []string{"origin"}; !slices.Equal(got, want) {
		t.Errorf("Apply: Referrer-Policy (off) = %q, want %q", got, want)
	}
}

// The shared value slices must not leak from one response into another.
func TestSecurityHeadersSharedValues(t *testing.T) {
	t.Parallel()
	s := NewSecurityHeaders(defaultSecurity)
	a, b := http.Header{}, http.Header{}
	s.Apply(a)
	s.Apply(b)
	a.Add("X-Frame-Options", "SAMEORIGIN")
	copyHeaderLikeReverseProxy(a, http.Header{"Referrer-Policy": {"origin"}})
	if got, want := b.Values("X-Frame-Options"), []string{"DENY"}; !slices.Equal(got, want) {
		t.Errorf("after Add on another header: X-Frame-Options = %q, want %q", got, want)
	}
	if got, want := b.Values("Referrer-Policy"), []string{"no-referrer"}; !slices.Equal(got, want) {
		t.Errorf("after copy onto another header: Referrer-Policy = %q, want %q", got, want)
	}
}

func TestMergeSecurityHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		base     config.SecurityHeaders
		override config.SecurityHeaders
		want     config.SecurityHeaders
	}{
		{name: "empty override keeps base", base: defaultSecurity, want: defaultSecurity},
		{
			name:     "field by field",
			base:     defaultSecurity,
			override: config.SecurityHeaders{FrameOptions: "SAMEORIGIN", ContentSecurityPolicy: "off"},
			want: config.SecurityHeaders{
				ContentTypeOptions:      "nosniff",
				FrameOptions:            "SAMEORIGIN",
				StrictTransportSecurity: "max-age=31536000; includeSubDomains",
				ContentSecurityPolicy:   "off",
				ReferrerPolicy:          "no-referrer",
			},
		},
		{
			name:     "override value beats base off",
			base:     config.SecurityHeaders{FrameOptions: "off"},
			override: config.SecurityHeaders{FrameOptions: "DENY"},
			want:     config.SecurityHeaders{FrameOptions: "DENY"},
		},
		{
			name:     "override disables",
			base:     defaultSecurity,
			override: config.SecurityHeaders{Disabled: true},
			want: func() config.SecurityHeaders {
				c := defaultSecurity
				c.Disabled = true
				return c
			}(),
		},
		{
			name:     "base disabled stays disabled",
			base:     config.SecurityHeaders{Disabled: true},
			override: config.SecurityHeaders{FrameOptions: "DENY"},
			want:     config.SecurityHeaders{Disabled: true, FrameOptions: "DENY"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := MergeSecurityHeaders(tt.base, tt.override); got != tt.want {
				t.Errorf("MergeSecurityHeaders(%+v, %+v) = %+v, want %+v", tt.base, tt.override, got, tt.want)
			}
		})
	}
}

func TestSecurityHeadersModifyResponse(t *testing.T) {
	t.Parallel()
	cfg := defaultSecurity
	cfg.ReferrerPolicy = "off"
	s := NewSecurityHeaders(cfg)
	// Fewer fields than managed headers, and more (two ways of looking).
	for _, extra := range []http.Header{{}, {"A": {"1"}, "B": {"2"}, "C": {"3"}, "Content-Security-Policy": {"x"}}} {
		h := http.Header{
			"X-Frame-Options": {"SAMEORIGIN"},
			"Referrer-Policy": {"origin"},
			"Content-Type":    {"text/html"},
		}
		want := http.Header{"Referrer-Policy": {"origin"}, "Content-Type": {"text/html"}}
		for k, v := range extra {
			h[k] = v
			if k != "Content-Security-Policy" {
				want[k] = v
			}
		}
		resp := &http.Response{Header: h}
		if err := s.ModifyResponse(resp); err != nil {
			t.Fatalf("ModifyResponse() = %v, want nil", err)
		}
		if !equalHeader(resp.Header, want) {
			t.Errorf("ModifyResponse: resp.Header = %v, want %v", resp.Header, want)
		}
	}
}

// End to end through httputil.ReverseProxy, wired as the gateway does: Apply
// on w.Header() first, ModifyResponse on the upstream's answer.
func TestSecurityHeadersThroughReverseProxy(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		w.Header().Set("Referrer-Policy", "origin")
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)

	cfg := defaultSecurity
	cfg.ReferrerPolicy = "off"
	s := NewSecurityHeaders(cfg)
	proxy := &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ModifyResponse: s.ModifyResponse,
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Apply(w.Header())
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(gw.Close)

	resp, err := gw.Client().Get(gw.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tests := []struct {
		key  string
		want []string
	}{
		{"X-Frame-Options", []string{"DENY"}},
		{"Content-Security-Policy", []string{"default-src 'none'; frame-ancestors 'none'"}},
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"Referrer-Policy", []string{"origin"}}, // off: the upstream's passes
	}
	for _, tt := range tests {
		if got := resp.Header.Values(tt.key); !slices.Equal(got, tt.want) {
			t.Errorf("proxied response %s = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestSecurityHeadersOnErrorResponses(t *testing.T) {
	t.Parallel()
	s := NewSecurityHeaders(defaultSecurity)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/nowhere", nil)
	s.Apply(w.Header())
	httperr.Write(w, r, http.StatusNotFound, httperr.CodeNotFound)
	if w.Code != http.StatusNotFound {
		t.Errorf("status = %d, want %d", w.Code, http.StatusNotFound)
	}
	for k, want := range defaultSecurityHeader() {
		if got := w.Result().Header.Values(k); !slices.Equal(got, want) {
			t.Errorf("error response %s = %q, want %q", k, got, want)
		}
	}
}

func TestSecurityHeadersNil(t *testing.T) {
	t.Parallel()
	var s *SecurityHeaders
	h := http.Header{}
	s.Apply(h)
	if err := s.ModifyResponse(&http.Response{Header: h}); err != nil || len(h) != 0 {
		t.Errorf("nil SecurityHeaders: header = %v, err = %v, want empty, nil", h, err)
	}
}

// equalHeader compares headers regardless of how value slices are shared.
func equalHeader(a, b http.Header) bool {
	return maps.EqualFunc(a, b, slices.Equal)
}

// copyHeaderLikeReverseProxy does what httputil.ReverseProxy does with an
// upstream's headers.
func copyHeaderLikeReverseProxy(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

func TestResetThenRouteSet(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	NewSecurityHeaders(config.SecurityHeaders{}).Apply(h)
	ResetSecurityHeaders(h)
	NewSecurityHeaders(config.SecurityHeaders{FrameOptions: "off", ContentSecurityPolicy: "default-src 'self'"}).Apply(h)
	if got := h.Get("X-Frame-Options"); got != "" {
		t.Errorf("X-Frame-Options after a route's off = %q, want none", got)
	}
	if got := h.Get("Content-Security-Policy"); got != "default-src 'self'" {
		t.Errorf("Content-Security-Policy = %q, want the route's", got)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
}

// TestSecurityHeadersLines: Lines gives the set as header lines but
// X-Content-Type-Options, which it sets on the map; "off" headers are in
// neither; a value's line breaks become spaces.
func TestSecurityHeadersLines(t *testing.T) {
	t.Parallel()
	cfg := defaultSecurity
	cfg.ReferrerPolicy = "off"
	cfg.ContentSecurityPolicy = " default-src 'self'\r\nX-Injected: 1 "
	h := http.Header{}
	got := string(NewSecurityHeaders(cfg).Lines(h))
	want := "X-Frame-Options: " + cfg.FrameOptions + "\r\n" +
		"Strict-Transport-Security: " + cfg.StrictTransportSecurity + "\r\n" +
		"Content-Security-Policy: default-src 'self'  X-Injected: 1\r\n"
	if got != want {
		t.Errorf("Lines = %q, want %q", got, want)
	}
	if !equalHeader(h, http.Header{"X-Content-Type-Options": {cfg.ContentTypeOptions}}) {
		t.Errorf("Lines set %v on the map, want X-Content-Type-Options only", h)
	}
	h = http.Header{}
	if got := NewSecurityHeaders(config.SecurityHeaders{Disabled: true}).Lines(h); got != nil || len(h) != 0 {
		t.Errorf("disabled set: Lines = %q, map %v; want nothing", got, h)
	}
	var none *SecurityHeaders
	if none.Lines(h) != nil {
		t.Error("nil set: Lines not nil")
	}
}
