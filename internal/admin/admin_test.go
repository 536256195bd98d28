package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/edge"
)

const token = "admin-token-0123456789"

func call(h http.Handler, method, target, bearer string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestDisabledWithoutToken(t *testing.T) {
	t.Parallel()
	h := New(Options{Lists: edge.NewLists()})
	if h.Enabled() {
		t.Fatal("Enabled() = true without a token")
	}
	for _, bearer := range []string{"", "anything"} {
		if w := call(h, "GET", "/admin/whitelist", bearer); w.Code != http.StatusNotFound {
			t.Errorf("GET /admin/whitelist (bearer %q) without a configured token = %d, want 404", bearer, w.Code)
		}
	}
}

func TestTokenChecks(t *testing.T) {
	t.Parallel()
	h := New(Options{Token: token, Lists: edge.NewLists()})
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"none", "", http.StatusUnauthorized},
		{"wrong", "Bearer " + token + "x", http.StatusUnauthorized},
		{"prefix of the token", "Bearer " + token[:10], http.StatusUnauthorized},
		{"basic scheme", "Basic " + token, http.StatusUnauthorized},
		{"right", "Bearer " + token, http.StatusOK},
		{"scheme case-insensitive", "bearer " + token, http.StatusOK},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/admin/whitelist", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s: status = %d, want %d", tt.name, w.Code, tt.want)
		}
		if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tt.name)
		}
	}
}

func TestListChanges(t *testing.T) {
	t.Parallel()
	lists := edge.NewLists()
	if err := lists.SetConfig([]string{"10.0.0.0/8"}, nil); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Token: token, Lists: lists})
	ip := netip.MustParseAddr("192.0.2.7")

	if w := call(h, "POST", "/admin/blacklist?ip=192.0.2.0/24", token); w.Code != 200 {
		t.Fatalf("POST blacklist = %d %s", w.Code, w.Body)
	}
	if !lists.Denied(ip) {
		t.Fatal("192.0.2.7 not denied after POST /admin/blacklist?ip=192.0.2.0/24")
	}
	w := call(h, "GET", "/admin/blacklist", token)
	var got struct {
		List    string           `json:"list"`
		Entries []edge.ListEntry `json:"entries"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.List != "deny" || len(got.Entries) != 1 || got.Entries[0].Source != "runtime" {
		t.Fatalf("GET blacklist = %s (%v), want one runtime entry", w.Body, err)
	}
	if w := call(h, "DELETE", "/admin/blacklist?ip=192.0.2.0/24", token); w.Code != 200 {
		t.Fatalf("DELETE blacklist = %d", w.Code)
	}
	if lists.Denied(ip) {
		t.Fatal("still denied after DELETE")
	}
	if w := call(h, "DELETE", "/admin/blacklist?ip=192.0.2.0/24", token); w.Code != http.StatusNotFound {
		t.Fatalf("DELETE of an absent entry = %d, want 404", w.Code)
	}
	// A config entry cannot be removed at run time.
	if w := call(h, "DELETE", "/admin/whitelist?ip=10.0.0.0/8", token); w.Code != http.StatusNotFound {
		t.Fatalf("DELETE of a config entry = %d, want 404", w.Code)
	}
	for _, bad := range []string{"", "nope", "300.1.1.1", "10.0.0.0/99"} {
		if w := call(h, "POST", "/admin/whitelist?ip="+bad, token); w.Code != http.StatusBadRequest {
			t.Errorf("POST whitelist ip=%q = %d, want 400", bad, w.Code)
		}
	}
	if w := call(h, "PUT", "/admin/whitelist?ip=10.1.1.1", token); w.Code != http.StatusMethodNotAllowed || !strings.Contains(w.Header().Get("Allow"), "POST") {
		t.Fatalf("PUT = %d (Allow %q), want 405 with Allow", w.Code, w.Header().Get("Allow"))
	}
	if w := call(h, "GET", "/admin/nothing", token); w.Code != http.StatusNotFound {
		t.Fatalf("GET /admin/nothing = %d, want 404", w.Code)
	}
}

func TestBlockedAndUnblock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := edge.NewBlocker(func() time.Time { return now })
	b.SetConfig(config.DDoS{Threshold: 3, BlockDuration: time.Minute})
	ip := netip.MustParseAddr("198.51.100.9")
	for i := 0; i < 10; i++ {
		b.Hit(ip)
	}
	h := New(Options{Token: token, Lists: edge.NewLists(), Blocker: b})
	w := call(h, "GET", "/admin/blocked", token)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "198.51.100.9") {
		t.Fatalf("GET /admin/blocked = %d %s, want the blocked IP", w.Code, w.Body)
	}
	if w := call(h, "DELETE", "/admin/blocked?ip=198.51.100.9", token); w.Code != 200 {
		t.Fatalf("DELETE /admin/blocked = %d %s", w.Code, w.Body)
	}
	if blocked, _ := b.Hit(ip); blocked {
		t.Fatal("IP still blocked after DELETE /admin/blocked")
	}
	if w := call(h, "DELETE", "/admin/blocked?ip=bad", token); w.Code != http.StatusBadRequest {
		t.Fatalf("DELETE /admin/blocked?ip=bad = %d, want 400", w.Code)
	}
	// Without DDoS blocking the endpoint says so.
	off := New(Options{Token: token, Lists: edge.NewLists()})
	if w := call(off, "GET", "/admin/blocked", token); w.Code != 200 || !strings.Contains(w.Body.String(), "disabled") {
		t.Fatalf("GET /admin/blocked with DDoS off = %d %s", w.Code, w.Body)
	}
}
