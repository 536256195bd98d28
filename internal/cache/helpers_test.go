package cache

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/observe"
)

// harness is a gateway in miniature around the cache: a front server whose
// chain is what the gateway builds (a recording writer with the gateway's
// own header fields, CaptureCredentials, an auth step that strips
// credentials, the cache, a path rewrite that edits r.URL in place as the
// gateway's proxy step does, and an httputil.ReverseProxy), in front of a
// real origin server whose handler the test sets.
type harness struct {
	t      *testing.T
	clock  *fakeClock
	cache  *Cache
	mem    *Memory
	origin *httptest.Server
	front  *httptest.Server
	client *http.Client

	mu      sync.Mutex
	handler func(w http.ResponseWriter, r *http.Request, n int)
	reqs    []*http.Request // what the origin received
	hits    atomic.Int64    // origin requests
	records chan observe.Record
	metrics *testMetrics
	route   string
}

type harnessOptions struct {
	Options
	route RouteOptions
	// gate, if set, is waited on by the origin before it answers.
	gate chan struct{}
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, clock: newClock(), records: make(chan observe.Record, 1024), metrics: newTestMetrics()}
	o.Now = h.clock.Now
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Metrics = h.metrics
	if o.Store == nil && o.Shared == nil {
		maxMem := o.MaxMemoryBytes
		if maxMem == 0 {
			maxMem = DefaultMaxMemoryBytes
		}
		maxBody := o.MaxBodyBytes
		if maxBody == 0 {
			maxBody = DefaultMaxBodyBytes
		}
		m, err := NewMemory(MemoryOptions{MaxBytes: maxMem, MaxEntryBytes: maxBody, Now: h.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		h.mem = m
		o.Store = m
	}
	c, err := New(o.Options)
	if err != nil {
		t.Fatal(err)
	}
	h.cache = c
	if o.Shared != nil {
		h.mem = c.mem // the memory tier; nil with SharedOnly
	}
	t.Cleanup(func() { c.Close() })

	h.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(h.hits.Add(1))
		h.mu.Lock()
		h.reqs = append(h.reqs, r.Clone(context.Background()))
		handler := h.handler
		h.mu.Unlock()
		if o.gate != nil {
			<-o.gate
		}
		if !strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.Path, "/v1/v1/") {
			http.Error(w, "rewritten twice: "+r.URL.Path, http.StatusTeapot)
			return
		}
		w.Header().Set("Date", httpDate(h.clock.Now()))
		if handler == nil {
			w.Header().Set("Cache-Control", "max-age=60")
			fmt.Fprintf(w, "response %d", n)
			return
		}
		handler(w, r, n)
	}))
	t.Cleanup(h.origin.Close)
	h.front = httptest.NewServer(h.chain(o.route))
	t.Cleanup(h.front.Close)
	h.client = &http.Client{
		Transport:     &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(h.client.CloseIdleConnections)
	return h
}

// proxyTo returns the harness's upstream step for origin: a path rewrite in
// place, then a reverse proxy.
func proxyTo(t testing.TB, origin string) http.Handler {
	target, _ := url.Parse(origin)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0),
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/v1" + r.URL.Path // as the gateway's rewrite does: in place
		r.URL.RawPath = ""
		rp.ServeHTTP(w, r)
	})
}

func (h *harness) chain(ro RouteOptions) http.Handler {
	if ro.Name == "" {
		ro.Name = "test"
	}
	h.route = ro.Name
	ch := h.cache.Handler(ro, proxyTo(h.t, h.origin.URL))
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As the auth step does: credentials stay at the gateway.
		r.Header.Del("Authorization")
		r.Header.Del("X-Api-Key")
		ch.ServeHTTP(w, r)
	})
	capture := CaptureCredentials("X-Api-Key")(auth)
	var ids atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &recordingWriter{ResponseWriter: w}
		// Fields the gateway sets before the route's chain.
		rw.Header().Set("X-Request-Id", fmt.Sprint("req-", ids.Add(1)))
		rw.Header().Set("X-Frame-Options", "DENY")
		rw.Header()["Vary"] = []string{"Origin"}
		capture.ServeHTTP(rw, r)
		select {
		case h.records <- rw.rec:
		default:
		}
	})
}

// recordingWriter carries an observe.Record, as the gateway's statusWriter.
type recordingWriter struct {
	http.ResponseWriter
	rec observe.Record
}

func (w *recordingWriter) Record() *observe.Record     { return &w.rec }
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
func (w *recordingWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// setHandler sets the origin's handler; n counts origin requests from 1.
func (h *harness) setHandler(f func(w http.ResponseWriter, r *http.Request, n int)) {
	h.mu.Lock()
	h.handler = f
	h.mu.Unlock()
}

// lastRequest returns the last request the origin received.
func (h *harness) lastRequest() *http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reqs) == 0 {
		return nil
	}
	return h.reqs[len(h.reqs)-1]
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request through the front server; headers are name, value
// pairs.
func (h *harness) do(method, path string, headers ...string) response {
	h.t.Helper()
	resp, err := h.try(method, path, headers...)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// try is do for other goroutines than the test's: it returns the error.
func (h *harness) try(method, path string, headers ...string) (response, error) {
	req, err := http.NewRequest(method, h.front.URL+path, nil)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

// opener returns a function that closes gate once; it is also a cleanup,
// run before the servers close, so that a failed test does not hang.
func opener(t *testing.T, gate chan struct{}) func() {
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open)
	return open
}

func (h *harness) get(path string, headers ...string) response {
	h.t.Helper()
	return h.do(http.MethodGet, path, headers...)
}

// key is the primary key of path on the front server.
func (h *harness) key(path string) string {
	u, _ := url.Parse(h.front.URL + path)
	return Key(u.Host, u.Path, u.RawQuery)
}

// stored returns every entry the memory store holds under the key of path.
func (h *harness) stored(path string) []*Entry {
	h.t.Helper()
	if h.mem == nil {
		h.t.Fatal("harness without a memory store")
	}
	s := h.mem.shard(h.key(path))
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[h.key(path)]
	if k == nil {
		return nil
	}
	var out []*Entry
	for _, ms := range k.subs {
		out = append(out, ms.entries...)
	}
	return out
}

// waiters returns how many requests wait for the flight of path's key
// (requests without credentials).
func (h *harness) waiters(path string) int32 {
	fk := h.key(path) + "\x00" + h.route + "\x00"
	s := h.cache.flights.shard(fk)
	s.mu.Lock()
	f := s.m[fk]
	s.mu.Unlock()
	if f == nil {
		return 0
	}
	return f.waiters.Load()
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// testMetrics counts results per route.
type testMetrics struct {
	mu     sync.Mutex
	counts map[string]map[Result]int
	errs   map[string]int
}

func newTestMetrics() *testMetrics {
	return &testMetrics{counts: map[string]map[Result]int{}, errs: map[string]int{}}
}

func (m *testMetrics) Route(name string) RouteMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts[name] == nil {
		m.counts[name] = map[Result]int{}
	}
	return routeCounter{m, name}
}

func (m *testMetrics) StoreError(op string) {
	m.mu.Lock()
	m.errs[op]++
	m.mu.Unlock()
}

func (m *testMetrics) count(route string, r Result) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[route][r]
}

type routeCounter struct {
	m     *testMetrics
	route string
}

func (c routeCounter) Count(r Result) {
	c.m.mu.Lock()
	c.m.counts[c.route][r]++
	c.m.mu.Unlock()
}
