package auth

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/identity"
)

func forwardRoute(url string, timeout time.Duration) config.RouteAuth {
	return config.RouteAuth{
		Methods: []string{"forward"},
		Forward: config.ForwardAuth{URL: url, Timeout: timeout, CopyHeaders: []string{"X-User-ID", "x-tenant"}},
	}
}

func TestForwardAllow(t *testing.T) {
	t.Parallel()
	var got *http.Request
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(r.Context())
		body, _ := io.ReadAll(r.Body)
		if len(body) != 0 {
			t.Errorf("auth service got a body %q", body)
		}
		w.Header().Set("X-User-ID", "bob")
		w.Header().Add("X-Tenant", "t1")
		w.Header().Add("X-Tenant", "t2")
		w.Header().Set("X-Other", "not copied")
		w.WriteHeader(http.StatusOK)
	}))
	defer svc.Close()
	a := newAuth(t, config.Auth{}, Options{})
	h, s := handler(t, a, forwardRoute(svc.URL+"/verify", time.Second))

	r := httptest.NewRequest(http.MethodPost, "http://gw.example/api/orders?id=7&x=%20", strings.NewReader("payload"))
	r.Header.Set("X-Request-ID", "req-9")
	r.Header.Set("Authorization", "Bearer opaque")
	r.Header.Set("Cookie", "session=1")
	r.Header.Set("X-User-ID", "mallory")
	r.Header.Set("Connection", "X-Hop")
	r.Header.Set("X-Hop", "1")
	r.Header.Set("X-Forwarded-For", "6.6.6.6")
	// Headers a client could use to tell the auth service it asks about
	// something else (nginx auth_request style).
	r.Header.Set("X-Original-URL", "/public")
	r.Header.Set("X-Original-Method", "GET")
	r.Header.Set("X-Forwarded-Prefix", "/public")
	r.Header.Set("X-Forwarded-Port", "1")
	r.Header.Set("Forwarded", "for=6.6.6.6;host=evil")
	r.Header.Set("X-Real-IP", "6.6.6.6")
	r = r.WithContext(identity.WithClientIP(r.Context(), netip.MustParseAddr("192.0.2.7")))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	if w.Code != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", w.Code)
	}
	if got.Method != http.MethodGet || got.URL.Path != "/verify" {
		t.Errorf("auth request = %s %s, want GET /verify", got.Method, got.URL.Path)
	}
	wantHeaders := map[string]string{
		"X-Forwarded-Method": "POST",
		"X-Forwarded-Uri":    "/api/orders?id=7&x=%20",
		"X-Forwarded-Host":   "gw.example",
		"X-Forwarded-Proto":  "http",
		"X-Forwarded-For":    "192.0.2.7",
		"X-Real-Ip":          "192.0.2.7",
		"X-Original-Url":     "/api/orders?id=7&x=%20",
		"X-Original-Method":  "POST",
		"X-Forwarded-Prefix": "",
		"X-Forwarded-Port":   "",
		"Forwarded":          "",
		"X-Request-Id":       "req-9",
		"Authorization":      "Bearer opaque",
		"Cookie":             "session=1",
		"X-User-Id":          "", // the client's spoof never reaches anyone
		"X-Hop":              "",
		"Connection":         "",
	}
	for k, v := range wantHeaders {
		if g := got.Header.Get(k); g != v {
			t.Errorf("auth request %s = %q, want %q", k, g, v)
		}
	}
	if g := s.header.Values("X-User-Id"); len(g) != 1 || g[0] != "bob" {
		t.Errorf("upstream X-User-ID = %q, want [bob]", g)
	}
	if g := s.header.Values("X-Tenant"); len(g) != 2 || g[0] != "t1" || g[1] != "t2" {
		t.Errorf("upstream X-Tenant = %q", g)
	}
	if s.header.Get("X-Other") != "" || s.header.Get("Authorization") != "" {
		t.Errorf("upstream headers = %v", s.header)
	}
	if s.principal == nil || s.principal.Method != "forward" {
		t.Errorf("principal = %+v", s.principal)
	}
}

func TestForwardDeny(t *testing.T) {
	t.Parallel()
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("case") {
		case "redirect":
			http.Redirect(w, r, "https://login.example/", http.StatusFound)
		case "big":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(strings.Repeat("x", forwardMaxBody+1)))
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Reason", "policy")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"denied":true}`))
		}
	}))
	t.Cleanup(svc.Close)
	a := newAuth(t, config.Auth{}, Options{})

	tests := []struct {
		query      string
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{"", http.StatusForbidden, `{"denied":true}`, map[string]string{"Content-Type": "application/json", "X-Reason": "policy", "Connection": "", "X-Request-Id": "req-1"}},
		{"redirect", http.StatusFound, "", map[string]string{"Location": "https://login.example/"}},
		{"big", http.StatusForbidden, "", map[string]string{"Content-Type": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			h, s := handler(t, a, forwardRoute(svc.URL+"/?case="+tt.query, time.Second))
			w := get(h, "/api")
			if w.Code != tt.wantStatus || s.called {
				t.Fatalf("status = %d (upstream called %v), want %d", w.Code, s.called, tt.wantStatus)
			}
			if tt.query != "redirect" && w.Body.String() != tt.wantBody {
				t.Errorf("body = %.80q, want %q", w.Body.String(), tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if g := w.Header().Get(k); g != v {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
		})
	}
}

func TestForwardUnavailable(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)

	// A dead service: a port bound and closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	a := newAuth(t, config.Auth{}, Options{})
	tests := []struct {
		name string
		url  string
	}{
		{"timeout", slow.URL},
		{"unreachable", dead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, s := handler(t, a, forwardRoute(tt.url, 50*time.Millisecond))
			start := time.Now()
			w := get(h, "/api")
			if w.Code != http.StatusServiceUnavailable || s.called {
				t.Fatalf("status = %d, want 503", w.Code)
			}
			if b := decodeErr(t, w); b.Error != CodeAuthUnavailable || b.RequestID != "req-1" {
				t.Errorf("body = %+v", b)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v, the timeout is 50ms", d)
			}
		})
	}
}

func TestForwardAfterLocalMethods(t *testing.T) {
	t.Parallel()
	calls := 0
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer svc.Close()
	a := newAuth(t, config.Auth{JWT: baseJWT()}, Options{})
	route := config.RouteAuth{Forward: config.ForwardAuth{URL: svc.URL, Timeout: time.Second}}
	// Default methods: jwt, then forward.
	h, s := handler(t, a, route)
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0))
	if w := get(h, "/api", "Authorization", "Bearer "+tok); w.Code != http.StatusNoContent || s.principal.Method != "jwt" {
		t.Fatalf("status = %d, principal %+v", w.Code, s.principal)
	}
	if calls != 0 {
		t.Errorf("forward auth called although jwt succeeded")
	}
	if w := get(h, "/api"); w.Code != http.StatusUnauthorized || calls != 1 {
		t.Fatalf("status = %d, calls %d; want the service's 401", w.Code, calls)
	}
}

func TestForwardTokenExchange(t *testing.T) {
	t.Parallel()
	var gotAuthz string
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuthz = r.Header.Get("Authorization")
		w.Header().Set("Authorization", "Bearer internal")
	}))
	defer svc.Close()
	a := newAuth(t, config.Auth{}, Options{})
	h, s := handler(t, a, config.RouteAuth{Methods: []string{"forward"},
		Forward: config.ForwardAuth{URL: svc.URL, Timeout: time.Second, CopyHeaders: []string{"Authorization"}}})
	if w := get(h, "/api", "Authorization", "Bearer external"); w.Code != http.StatusNoContent {
		t.Fatalf("status = %d", w.Code)
	}
	if gotAuthz != "Bearer external" {
		t.Errorf("auth service got Authorization %q, want the client's", gotAuthz)
	}
	if got := s.header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer internal" {
		t.Errorf("upstream Authorization = %q, want the service's", got)
	}
}
