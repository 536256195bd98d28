package edge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/identity"
)

// errorBody is httperr's JSON answer.
type errorBody struct {
	Error     string `json:"error"`
	Status    int    `json:"status"`
	RequestID string `json:"request_id"`
}

func decodeError(t *testing.T, rec *httptest.ResponseRecorder) errorBody {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q is not httperr JSON: %v", rec.Body.String(), err)
	}
	return b
}

func request(remote string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r.RemoteAddr = remote
	return r
}

// okHandler answers 200 and the client IP it found in the context.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	ip, ok := identity.ClientIP(r.Context())
	if !ok {
		http.Error(w, "no client ip", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write([]byte(ip.String()))
})

func TestGuardOrder(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	rv, err := NewResolver([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	lists := NewLists()
	if err := lists.SetConfig([]string{"192.0.2.1"}, []string{"192.0.2.0/24"}); err != nil {
		t.Fatal(err)
	}
	blocker := NewBlocker(clk.Now)
	blocker.SetConfig(config.DDoS{Threshold: 3, BlockDuration: time.Minute})
	limiter := NewLocalLimiter(clk.Now)
	keyFn := func(r *http.Request) string { return "" } // falls back to the client IP
	h := NewGuard(GuardOptions{Resolver: rv, Lists: lists, Blocker: blocker}).
		Wrap(RateLimit(limiter, "ip|", 1, 1, keyFn)(okHandler))

	type step struct {
		remote, xff string
		status      int
		code        string
		body        string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "allow list beats deny list, DDoS block and rate limit", steps: []step{
			{remote: "192.0.2.1:1", status: 200, body: "192.0.2.1"},
			{remote: "192.0.2.1:1", status: 200, body: "192.0.2.1"},
			{remote: "192.0.2.1:1", status: 200, body: "192.0.2.1"},
			{remote: "192.0.2.1:1", status: 200, body: "192.0.2.1"},
			{remote: "192.0.2.1:1", status: 200, body: "192.0.2.1"},
		}},
		{name: "allow list through a trusted proxy", steps: []step{
			{remote: "10.0.0.1:1", xff: "192.0.2.1", status: 200, body: "192.0.2.1"},
			{remote: "10.0.0.1:1", xff: "192.0.2.1", status: 200, body: "192.0.2.1"},
		}},
		{name: "deny list", steps: []step{
			{remote: "192.0.2.2:1", status: 403, code: CodeForbidden},
		}},
		{name: "spoofed XFF from untrusted peer does not reach the allow list", steps: []step{
			{remote: "192.0.2.3:1", xff: "192.0.2.1", status: 403, code: CodeForbidden},
		}},
		{name: "rate limit then DDoS block", steps: []step{
			{remote: "198.51.100.1:1", status: 200, body: "198.51.100.1"},
			{remote: "198.51.100.1:1", status: 429, code: CodeRateLimited},
			{remote: "198.51.100.1:1", status: 429, code: CodeRateLimited},
			{remote: "198.51.100.1:1", status: 403, code: CodeBlocked},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for i, s := range tt.steps {
				r := request(s.remote)
				if s.xff != "" {
					r.Header.Set("X-Forwarded-For", s.xff)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != s.status {
					t.Fatalf("step %d: status = %d, want %d (body %q)", i, rec.Code, s.status, rec.Body.String())
				}
				if s.code != "" {
					if b := decodeError(t, rec); b.Error != s.code || b.Status != s.status {
						t.Errorf("step %d: body = %+v, want error %q status %d", i, b, s.code, s.status)
					}
				} else if got := rec.Body.String(); got != s.body {
					t.Errorf("step %d: body = %q, want %q", i, got, s.body)
				}
				if s.code == CodeBlocked && rec.Header().Get("Retry-After") != "60" {
					t.Errorf("step %d: Retry-After = %q, want 60", i, rec.Header().Get("Retry-After"))
				}
				if s.body == "192.0.2.1" && rec.Header().Get("RateLimit-Limit") != "" {
					t.Errorf("step %d: allow-listed request got RateLimit-Limit %q, want none", i, rec.Header().Get("RateLimit-Limit"))
				}
			}
		})
	}
}

func TestGuardRuntimeListChange(t *testing.T) {
	t.Parallel()
	lists := NewLists()
	h := NewGuard(GuardOptions{Lists: lists}).Wrap(okHandler)
	serve := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, request("203.0.113.9:5"))
		return rec.Code
	}
	if got := serve(); got != 200 {
		t.Fatalf("status = %d, want 200", got)
	}
	if err := lists.Add(Deny, "203.0.113.0/24"); err != nil {
		t.Fatal(err)
	}
	if got := serve(); got != 403 {
		t.Errorf("status after Add(Deny) = %d, want 403", got)
	}
	if err := lists.Add(Allow, "203.0.113.9"); err != nil {
		t.Fatal(err)
	}
	if got := serve(); got != 200 {
		t.Errorf("status with the IP in both lists = %d, want 200 (allow wins)", got)
	}
}

func TestGuardUnknownClientIP(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	b := NewBlocker(clk.Now)
	b.SetConfig(config.DDoS{Threshold: 1, BlockDuration: time.Minute})
	h := NewGuard(GuardOptions{Blocker: b, Limits: config.ConnectionLimits{MaxInFlightPerIP: 1}}).Wrap(okHandler)
	for i := range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, request("@"))
		if rec.Code != 200 {
			t.Errorf("request %d from a Unix socket: status = %d, want 200", i, rec.Code)
		}
	}
}

// holdHandler blocks each request until release is closed, announcing it on
// started.
type holdHandler struct {
	started chan string
	release chan struct{}
}

func (h *holdHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip, _ := identity.ClientIP(r.Context())
	h.started <- ip.String()
	<-h.release
}

func TestGuardInFlightCaps(t *testing.T) {
	t.Parallel()
	lists := NewLists()
	if err := lists.Add(Allow, "192.0.2.200"); err != nil {
		t.Fatal(err)
	}
	hold := &holdHandler{started: make(chan string), release: make(chan struct{})}
	g := NewGuard(GuardOptions{Lists: lists, Limits: config.ConnectionLimits{MaxInFlight: 3, MaxInFlightPerIP: 2}})
	h := g.Wrap(hold)

	var wg sync.WaitGroup
	start := func(remote string) {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, request(remote))
			if rec.Code != 200 {
				t.Errorf("held request from %s: status = %d, want 200", remote, rec.Code)
			}
		})
		<-hold.started
	}
	serveNow := func(remote string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, request(remote))
		return rec
	}

	start("192.0.2.1:1")
	start("192.0.2.1:2")
	// Per-IP cap: a third from the same IP is refused (before the handler).
	if rec := serveNow("192.0.2.1:3"); rec.Code != 429 || decodeError(t, rec).Error != CodeTooManyRequests {
		t.Errorf("3rd in-flight request from one IP: %d %q, want 429 %s", rec.Code, rec.Body.String(), CodeTooManyRequests)
	}
	start("192.0.2.2:1")
	if got := g.InFlight(); got != 3 {
		t.Errorf("InFlight() = %d, want 3", got)
	}
	// Global cap.
	if rec := serveNow("192.0.2.3:1"); rec.Code != 503 || decodeError(t, rec).Error != CodeOverloaded {
		t.Errorf("4th in-flight request: %d %q, want 503 %s", rec.Code, rec.Body.String(), CodeOverloaded)
	}
	// The allow list is exempt from both.
	start("192.0.2.200:1")
	if got := g.counts.perIP.count(netip.MustParseAddr("192.0.2.1")); got != 2 {
		t.Errorf("per-IP count = %d, want 2", got)
	}

	close(hold.release)
	wg.Wait()
	if got := g.InFlight(); got != 0 {
		t.Errorf("InFlight() after all finished = %d, want 0", got)
	}
	if got := g.counts.perIP.size(); got != 0 {
		t.Errorf("per-IP entries after all finished = %d, want 0", got)
	}
}

func TestGuardInFlightReleasedOnPanic(t *testing.T) {
	t.Parallel()
	g := NewGuard(GuardOptions{Limits: config.ConnectionLimits{MaxInFlight: 1, MaxInFlightPerIP: 1}})
	h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), request("192.0.2.1:1"))
	}()
	if got := g.InFlight(); got != 0 {
		t.Errorf("InFlight() after a panic = %d, want 0", got)
	}
	if got := g.counts.perIP.size(); got != 0 {
		t.Errorf("per-IP entries after a panic = %d, want 0", got)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLocalLimiter(clk.Now)
	keyFn := func(r *http.Request) string { return r.Header.Get("X-Key") }
	h := RateLimit(l, "ns|", 0.5, 2, keyFn)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	type want struct {
		status                        int
		limit, remaining, reset, retr string
	}
	steps := []struct {
		advance time.Duration
		key     string
		want    want
	}{
		{0, "a", want{204, "2", "1", "2", ""}},
		{0, "a", want{204, "2", "0", "4", ""}},
		{0, "a", want{429, "2", "0", "4", "2"}},
		{500 * time.Millisecond, "a", want{429, "2", "0", "4", "2"}}, // 3.5s → 4, 1.5s → 2
		{0, "b", want{204, "2", "1", "2", ""}},
		{1500 * time.Millisecond, "a", want{204, "2", "0", "4", ""}},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		r := request("192.0.2.1:1")
		r.Header.Set("X-Key", s.key)
		r.Header.Set("X-Request-ID", "rid-1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		got := want{rec.Code, rec.Header().Get("RateLimit-Limit"), rec.Header().Get("RateLimit-Remaining"),
			rec.Header().Get("RateLimit-Reset"), rec.Header().Get("Retry-After")}
		if got != s.want {
			t.Errorf("step %d: (status, limit, remaining, reset, retry-after) = %v, want %v", i, got, s.want)
		}
		if rec.Code == 429 {
			b := decodeError(t, rec)
			if b.Error != CodeRateLimited || b.Status != 429 || b.RequestID != "rid-1" {
				t.Errorf("step %d: body = %+v, want rate_limited, 429, rid-1", i, b)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("step %d: Content-Type = %q, want application/json", i, ct)
			}
		}
	}
	if got := l.Len(); got != 2 {
		t.Errorf("limiter keys = %d, want 2 (ns|a, ns|b)", got)
	}
}

func TestRateLimitRetryAfterAtLeastOne(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLocalLimiter(clk.Now)
	h := RateLimit(l, "", 1000, 1, func(*http.Request) string { return "k" })(okHandler)
	h.ServeHTTP(httptest.NewRecorder(), request("192.0.2.1:1"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request("192.0.2.1:1"))
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("over a 1000 rps limit: status %d, Retry-After %q, want 429, 1", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestRateLimitKeyFallback(t *testing.T) {
	t.Parallel()
	l := &recordingLimiter{}
	h := RateLimit(l, "r|", 1, 1, func(*http.Request) string { return "" })(okHandler)
	r := request("192.0.2.1:1")
	r = r.WithContext(identity.WithClientIP(r.Context(), netip.MustParseAddr("198.51.100.4")))
	h.ServeHTTP(httptest.NewRecorder(), r)
	h.ServeHTTP(httptest.NewRecorder(), request("192.0.2.1:1"))
	want := []string{"r|198.51.100.4", "r|192.0.2.1:1"}
	if len(l.keys) != 2 || l.keys[0] != want[0] || l.keys[1] != want[1] {
		t.Errorf("limiter keys = %q, want %q", l.keys, want)
	}
}

type recordingLimiter struct {
	mu   sync.Mutex
	keys []string
}

func (l *recordingLimiter) Allow(key string, rps float64, burst int) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys = append(l.keys, key)
	return Decision{Allowed: true, Limit: burst, Remaining: burst}
}

// TestInFlightCountsOutliveAGuard: the Guard of a new config generation sees
// the requests still running under the old one.
func TestInFlightCountsOutliveAGuard(t *testing.T) {
	t.Parallel()
	counts := NewInFlightCounts()
	limits := config.ConnectionLimits{MaxInFlight: 1}
	release := make(chan struct{})
	entered := make(chan struct{})
	old := NewGuard(GuardOptions{Limits: limits, Counts: counts}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		old.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	<-entered
	next := NewGuard(GuardOptions{Limits: limits, Counts: counts}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	w := httptest.NewRecorder()
	next.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	close(release)
	<-done
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("second request under a new Guard while one runs under the old (cap 1) = %d, want 503", w.Code)
	}
}

// TestGuardAdmit: Admit decides what the guard's handler decides for a
// plain guard (client IP; allow list before deny list), and Plain tells a
// guard that does more.
func TestGuardAdmit(t *testing.T) {
	t.Parallel()
	rv, err := NewResolver([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	lists := NewLists()
	if err := lists.SetConfig([]string{"192.0.2.1"}, []string{"192.0.2.0/24"}); err != nil {
		t.Fatal(err)
	}
	g := NewGuard(GuardOptions{Resolver: rv, Lists: lists})
	if !g.Plain() {
		t.Fatal("a guard with lists only is not Plain")
	}
	h := g.Wrap(okHandler)
	for _, tc := range []struct {
		remote, xff string
		ip          string
		ok          bool
	}{
		{remote: "198.51.100.7:1", ip: "198.51.100.7", ok: true},
		{remote: "192.0.2.1:1", ip: "192.0.2.1", ok: true},  // allowed wins
		{remote: "192.0.2.9:1", ip: "192.0.2.9", ok: false}, // denied
		{remote: "10.1.1.1:1", xff: "192.0.2.9", ip: "192.0.2.9", ok: false},
		{remote: "10.1.1.1:1", xff: "203.0.113.5", ip: "203.0.113.5", ok: true},
	} {
		r := request(tc.remote)
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		ip, ok := g.Admit(r)
		if ip.String() != tc.ip || ok != tc.ok {
			t.Errorf("%s (XFF %q): Admit = %v, %v; want %s, %v", tc.remote, tc.xff, ip, ok, tc.ip, tc.ok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if (rec.Code == http.StatusOK) != ok {
			t.Errorf("%s (XFF %q): Admit says %v, the guard answered %d", tc.remote, tc.xff, ok, rec.Code)
		}
	}
	for _, o := range []GuardOptions{
		{Blocker: NewBlocker(time.Now)},
		{Limits: config.ConnectionLimits{MaxInFlight: 10}},
		{Limits: config.ConnectionLimits{MaxInFlightPerIP: 2}},
	} {
		if NewGuard(o).Plain() {
			t.Errorf("guard with %+v is Plain", o)
		}
	}
}
