package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/altair-gateway/altair/internal/httperr"
	"github.com/altair-gateway/altair/internal/identity"
	"github.com/altair-gateway/altair/internal/interrupt"
	"github.com/altair-gateway/altair/internal/observe"
)

// RouteOptions configure the proxy handler of one route.
type RouteOptions struct {
	// Route is the route's name, for logs.
	Route string
	// Timeout bounds the time from sending the first attempt to receiving the
	// response headers, across all attempts and backoffs; when it elapses the
	// client gets 504. Once headers have arrived the body may stream for as long
	// as it lasts (SSE, downloads, WebSocket). Zero means no limit.
	Timeout time.Duration
	// RewriteRequest, if set, is called last in the Rewrite hook with the
	// outgoing request (the route's request header operations).
	RewriteRequest func(out *http.Request)
	// ModifyResponse, if set, changes the upstream response before it is copied
	// to the client (the route's response header operations).
	ModifyResponse func(*http.Response) error
	// OnRetry, if set, is called for every retry attempt of the route (the
	// route's retry counter, resolved once when the route is built).
	OnRetry func()
	// Tracer, if set, makes a client span per attempt and propagates the
	// trace to the backend (traceparent, baggage).
	Tracer *observe.Tracer
}

// drainLimit bounds how much of a discarded response body is read so that its
// connection can be reused.
const drainLimit = 64 << 10

// Handler returns the proxy handler for one route using this pool. Routes that
// share a pool share its balancer, backend state and transport.
//
// The gateway has already put the final upstream path in r.URL.Path (with
// r.URL.RawPath empty); the outgoing URL is the backend's base URL joined with it,
// with the query unchanged, and the client's Host header is kept.
func (p *Pool) Handler(o RouteOptions) http.Handler {
	o.ModifyResponse = closeOnPanic(o.ModifyResponse)
	h := &routeHandler{pool: p, opts: o}
	h.proxy = &httputil.ReverseProxy{
		Rewrite:   h.rewrite,
		Transport: (*routeTransport)(h),
		// Zero: ReverseProxy already flushes at once for text/event-stream and
		// for responses of unknown length (gRPC's, which stream and end
		// with trailers, among them); everything else is buffered.
		FlushInterval:  0,
		ErrorLog:       slog.NewLogLogger(p.logger.Handler(), slog.LevelDebug),
		ErrorHandler:   h.serveError,
		ModifyResponse: o.ModifyResponse,
		BufferPool:     &p.buffers,
	}
	return h
}

// copyBufferSize is the size of the buffers that copy response bodies (the
// size ReverseProxy allocates per request without a pool).
const copyBufferSize = 32 << 10

// bufferPool recycles response copy buffers across a pool's routes.
type bufferPool struct{ pool sync.Pool }

// Get returns a buffer of copyBufferSize bytes.
func (b *bufferPool) Get() []byte {
	if v, ok := b.pool.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, copyBufferSize)
}

// Put recycles buf.
func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != copyBufferSize {
		return
	}
	buf = buf[:copyBufferSize]
	b.pool.Put(&buf)
}

// routeHandler is the proxy handler of one route.
type routeHandler struct {
	pool  *Pool
	opts  RouteOptions
	proxy *httputil.ReverseProxy
	// noFast sends every request through proxy (tests compare the paths).
	noFast bool
}

// routeTransport is the RoundTripper of a route's ReverseProxy: it picks a
// backend per attempt, retries and enforces the route timeout.
type routeTransport routeHandler

// reqState is the per-request state shared by ServeHTTP, the Rewrite hook, the
// RoundTripper and the error handler, all of which run on the request's goroutine
// (the timer only cancels the context).
type reqState struct {
	inbound context.Context // the client's context: done means the client went away
	// inBody is the client's HTTP/2 request body, closed to stop streaming
	// it upstream once the response has ended. Nil for HTTP/1, where
	// closing a server request body reads what is left of it.
	inBody  io.Closer
	cancel  context.CancelCauseFunc
	timer   stopper
	trusted bool
	// ownOut marks the outgoing request as the handler's own copy, with a
	// URL of its own (the fast path): an attempt under the request's own
	// context aims it at its backend in place rather than copying it.
	ownOut   bool
	attempts int
	backend  string // the last backend tried
	// clientIP is the client address the edge decided on, when the caller
	// carries it itself rather than in the request's context (the direct
	// lane); the zero Addr otherwise.
	clientIP netip.Addr
	// body wraps each attempt's response body (see trackBody); one is
	// enough, as an attempt's body is closed before the next attempt.
	body trackedBody
}

type stateKey struct{}

// stopper is the part of *time.Timer that the proxy uses.
type stopper interface{ Stop() bool }

// afterFunc is time.AfterFunc, the default Pool.afterFunc.
func afterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// stopTimer stops the route timer; it reports false when the timer had already
// fired (the request has timed out).
func (st *reqState) stopTimer() bool {
	if st.timer == nil {
		return true
	}
	return st.timer.Stop()
}

// ServeHTTP proxies r to the pool.
func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.noFast && fastEligible(r) {
		h.serveFast(w, r)
		return
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	st := &reqState{inbound: r.Context(), cancel: cancel}
	defer st.stopTimer()
	if rec := observe.RecordOf(w); rec != nil {
		defer func() { rec.Backend, rec.Attempts = st.backend, st.attempts }()
	}
	h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, stateKey{}, st)))
}

// rewrite is the ReverseProxy Rewrite hook. ReverseProxy has already removed
// hop-by-hop, Forwarded and X-Forwarded-* headers from pr.Out; the backend is
// chosen later, per attempt, by the RoundTripper.
func (h *routeHandler) rewrite(pr *httputil.ProxyRequest) {
	trusted := h.pool.trust(pr.In)
	if st := stateFrom(pr.In.Context()); st != nil {
		st.trusted = trusted
		if pr.In.ProtoMajor == 2 && pr.In.Body != nil {
			st.inBody = pr.In.Body
		}
	}
	// Forwarded is never passed on: we do not append to it, so even a trusted
	// chain would lack our hop. ReverseProxy removes it already; this does not
	// depend on that.
	pr.Out.Header.Del("Forwarded")
	if trusted {
		if v := pr.In.Header["X-Forwarded-For"]; len(v) > 0 {
			pr.Out.Header["X-Forwarded-For"] = slices.Clone(v) // so the peer is appended
		}
	}
	pr.SetXForwarded()
	if trusted {
		for _, k := range [...]string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
			if v := pr.In.Header[k]; len(v) > 0 {
				pr.Out.Header[k] = slices.Clone(v)
			}
		}
	}
	// X-Real-IP is not a hop-by-hop or X-Forwarded-* header, so ReverseProxy
	// copies it: a client could claim any address, even through a trusted
	// proxy that only appends to X-Forwarded-For. The backend gets the
	// client IP the edge decided on (trusted proxies applied), else the peer.
	if a, ok := identity.ClientIP(pr.In.Context()); ok && a.IsValid() {
		pr.Out.Header.Set("X-Real-IP", a.String())
	} else if !trusted || pr.Out.Header.Get("X-Real-IP") == "" {
		if ip, ok := peerIP(pr.In); ok {
			pr.Out.Header.Set("X-Real-IP", ip)
		} else {
			pr.Out.Header.Del("X-Real-IP")
		}
	}
	pr.Out.URL.RawPath = ""
	if h.opts.RewriteRequest != nil {
		h.opts.RewriteRequest(pr.Out)
	}
}

// RoundTrip sends out to one backend after another until an attempt succeeds, is
// not retryable, or attempts, budget or time run out. An attempt that exceeds
// Retry.PerTryTimeout fails like any other transport error.
func (t *routeTransport) RoundTrip(out *http.Request) (*http.Response, error) {
	st := stateFrom(out.Context())
	if st == nil {
		st = &reqState{inbound: out.Context()}
	}
	resp, err := t.roundTrip(out, st)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		// ReverseProxy refuses a switch to another protocol than the one
		// asked for, but leaves the switched connection (and the backend's
		// in-flight count) open: refuse it here, closing it.
		asked, got := upgradeType(out.Header), upgradeType(resp.Header)
		if asked == "" || !sameProtocol(asked, got) {
			discard(resp)
			return nil, fmt.Errorf("backend switched to protocol %q when %q was asked for", got, asked)
		}
	}
	return resp, err
}

// sameProtocol reports whether a and b are the same printable ASCII string
// but for case, as ReverseProxy requires of a switch.
func sameProtocol(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x < ' ' || x > '~' || y < ' ' || y > '~' {
			return false
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// upgradeType is the protocol h's Upgrade names when its Connection lists
// "upgrade", as ReverseProxy reads it; "" otherwise.
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// roundTrip is RoundTrip with the request's state given.
func (t *routeTransport) roundTrip(out *http.Request, st *reqState) (*http.Response, error) {
	h := (*routeHandler)(t)
	p := h.pool
	ctx := out.Context()
	ps := p.shared
	ps.active.Add(1)
	defer ps.active.Add(-1)

	body, err := p.prepareBody(out)
	if err != nil {
		return nil, err
	}
	if body.stream != nil {
		body.closer = st.inBody
	}
	if h.opts.Timeout > 0 && st.timer == nil && st.cancel != nil {
		cancel := st.cancel
		st.timer = p.afterFunc(h.opts.Timeout, func() { cancel(ErrTimeout) })
	}

	var f filter
	if p.algorithm == AlgorithmIPHash {
		if st.clientIP.IsValid() {
			f.hash = hashString(st.clientIP.String())
		} else {
			f.hash = hashString(clientIP(out, st.trusted))
		}
	}
	start := p.now() // the first attempt's, and the time its backend is picked at
	b, probe := p.nextAt(&f, start.UnixNano())
	if b == nil {
		return nil, fmt.Errorf("pool %q: %w", p.name, ErrNoBackend)
	}
	idempotent := isIdempotent(out)
	upgrade := out.Header.Get("Upgrade") != ""
	aim := aim{path: out.URL.Path, inPlace: st.ownOut, track: &st.body}
	for attempt := 1; ; attempt++ {
		st.attempts, st.backend = attempt, b.name
		if attempt > 1 && h.opts.OnRetry != nil {
			h.opts.OnRetry()
		}
		if attempt > 1 {
			start = p.now()
		}
		var resp *http.Response
		var err error
		if h.opts.Tracer != nil {
			actx, span := h.opts.Tracer.StartAttempt(ctx, out, b.name, attempt)
			resp, err = p.attempt(actx, out, b, body, aim)
			span.End(resp, err)
		} else {
			resp, err = p.attempt(ctx, out, b, body, aim)
		}
		if attempt > 1 {
			ps.retries.Add(-1)
		}
		o := outcomeOf(ctx, st.inbound, resp, err)
		end := p.now()
		p.observeAttempt(ctx, b, end.Sub(start), resp, err, o)
		p.record(b, probe, o, end.UnixNano())
		if err != nil {
			err = p.attemptError(ctx, b, err)
			p.debugAttempt(ctx, h, out, b, attempt, err)
		}

		retry := attempt < p.cfg.Retry.Attempts && body.replayable() && ctx.Err() == nil
		switch {
		case !retry:
		case err != nil:
			retry = idempotent || isDialError(err)
		default:
			retry = idempotent && !upgrade && slices.Contains(p.cfg.Retry.OnStatus, resp.StatusCode)
		}
		if retry && p.acquireRetry() {
			f.tried |= 1 << (uint(b.idx) & 63)
			if nb, nprobe := p.nextAt(&f, end.UnixNano()); nb != nil {
				discard(resp)
				if werr := p.backoff(ctx, attempt); werr != nil {
					ps.retries.Add(-1)
					p.record(nb, nprobe, outcomeUnknown, p.now().UnixNano())
					return nil, werr
				}
				b, probe = nb, nprobe
				continue
			}
			ps.retries.Add(-1)
		}
		if err != nil {
			return nil, err
		}
		if !st.stopTimer() {
			// The route timeout fired as the headers arrived.
			discard(resp)
			return nil, fmt.Errorf("backend %s: %w", b.name, ErrTimeout)
		}
		return resp, nil
	}
}

// next picks a backend for the next attempt: one not yet tried if
// possible, otherwise any available one.
func (p *Pool) next(f *filter) (*backend, bool) { return p.nextAt(f, p.now().UnixNano()) }

// nextAt is next as of now (UnixNano).
func (p *Pool) nextAt(f *filter, now int64) (*backend, bool) {
	f.now = now
	f.ignoreHealth = p.panicking(now)
	b, probe := p.pick(*f)
	if b == nil && f.tried != 0 {
		g := *f
		g.tried = 0
		b, probe = p.pick(g)
	}
	return b, probe
}

// attempt makes one attempt on b under ctx, bounded by Retry.PerTryTimeout when
// that is set. Like the route timeout, the bound is a timer that cancels the
// attempt's context and is stopped once the response headers arrive, so that the
// body may then stream for as long as it lasts; that context ends with ctx.
func (p *Pool) attempt(ctx context.Context, out *http.Request, b *backend, body requestBody, aim aim) (*http.Response, error) {
	d := p.cfg.Retry.PerTryTimeout
	if d <= 0 {
		return p.send(ctx, out, b, body, aim)
	}
	tctx, cancel := context.WithCancelCause(ctx)
	if hook := interrupt.Informational(ctx); hook != nil {
		// ctx is the direct lane's, whose connection hands the 1xx answers
		// of requests made under exactly it to the client; the attempt's
		// own context carries that hook as a client trace instead.
		tctx = httptrace.WithClientTrace(tctx, &httptrace.ClientTrace{Got1xxResponse: hook})
	}
	timer := p.afterFunc(d, func() { cancel(ErrTryTimeout) })
	resp, err := p.send(tctx, out, b, body, aim)
	if timer.Stop() {
		if err != nil {
			cancel(nil)
		} else {
			// The attempt's context lives while its body streams, and no
			// longer: ctx may outlive the request (the direct lane's
			// connection keeps it), and it would keep tctx.
			switch t := resp.Body.(type) {
			case *trackedBody:
				t.ended = func() { cancel(nil) }
			case trackedConn:
				t.ended = func() { cancel(nil) }
			}
		}
		return resp, err
	}
	if !errors.Is(context.Cause(tctx), ErrTryTimeout) {
		// ctx ended first (route timeout or client gone); the caller sees it.
		return resp, err
	}
	// The timer fired, possibly as the headers arrived: the body is cut anyway.
	discard(resp)
	switch {
	case err == nil:
		return nil, fmt.Errorf("%w after %v", ErrTryTimeout, d)
	case errors.Is(err, ErrTryTimeout):
		return nil, err
	}
	return nil, fmt.Errorf("%w after %v: %w", ErrTryTimeout, d, err)
}

// aim is how send points the outgoing request at a backend.
type aim struct {
	path string // the request's path, before a backend's base path is joined
	// inPlace: the outgoing request is the caller's own, with its own URL,
	// so send may re-aim it rather than copy it and its URL. It does so only
	// for an attempt under the request's own context; one under a tracing
	// span or a per-try timeout gets a copy carrying that context.
	inPlace bool
	// track is the response body wrapper to use; nil: send makes one.
	track *trackedBody
}

// send makes one attempt on b under ctx. The returned response's body
// decrements b's in-flight count when closed.
func (p *Pool) send(ctx context.Context, out *http.Request, b *backend, body requestBody, a aim) (*http.Response, error) {
	r := out
	if a.inPlace && ctx == out.Context() {
		r.URL.Scheme, r.URL.Host = b.target.Scheme, b.target.Host
		r.URL.Path, r.URL.RawPath = joinPath(b.target.Path, a.path), ""
	} else {
		r = out.WithContext(ctx)
		u := *out.URL
		u.Scheme = b.target.Scheme
		u.Host = b.target.Host
		u.Path = joinPath(b.target.Path, a.path)
		u.RawPath = ""
		r.URL = &u
	}
	body.apply(r)

	s := b.state
	s.requests.Add(1)
	s.inFlight.Add(1)
	resp, err := b.transport.RoundTrip(r)
	if err != nil {
		s.inFlight.Add(-1)
		return nil, err
	}
	resp.Body = trackBody(resp.Body, s, a.track)
	return resp, nil
}

// observeAttempt reports one attempt to b's metrics. An attempt whose client
// went away is timed but not counted as a backend error.
func (p *Pool) observeAttempt(ctx context.Context, b *backend, took time.Duration, resp *http.Response, err error, o outcome) {
	kind := KindNone
	if o != outcomeUnknown {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		kind = kindOf(ctx, status, err)
	}
	b.metrics.Attempt(took, kind)
}

// attemptError wraps the error of an attempt on b, marking a route timeout.
func (p *Pool) attemptError(ctx context.Context, b *backend, err error) error {
	if errors.Is(context.Cause(ctx), ErrTimeout) {
		return fmt.Errorf("backend %s: %w: %w", b.name, ErrTimeout, err)
	}
	return fmt.Errorf("backend %s: %w", b.name, err)
}

func (p *Pool) debugAttempt(ctx context.Context, h *routeHandler, out *http.Request, b *backend, attempt int, err error) {
	if !p.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	p.logger.Debug("upstream attempt failed", "route", h.opts.Route, "pool", p.name,
		"backend", b.name, "request_id", out.Header.Get(httperr.RequestIDHeader),
		"attempts", attempt, "error", err.Error())
}

// outcomeOf classifies an attempt for the breaker and passive health.
func outcomeOf(ctx, inbound context.Context, resp *http.Response, err error) outcome {
	switch {
	case err == nil && resp.StatusCode >= 500:
		return outcomeFailure
	case err == nil:
		return outcomeSuccess
	case inbound.Err() != nil && !errors.Is(context.Cause(ctx), ErrTimeout):
		return outcomeUnknown // the client went away; says nothing about the backend
	default:
		return outcomeFailure
	}
}

// acquireRetry takes a slot of the pool's retry budget: retries in flight may not
// exceed Budget times the requests in flight, with a floor of minRetries
// (Envoy's retry_budget). It reports false when the budget is spent.
func (p *Pool) acquireRetry() bool {
	ps := p.shared
	limit := max(minRetries, int64(p.cfg.Retry.Budget*float64(ps.active.Load())))
	if ps.retries.Add(1) > limit {
		ps.retries.Add(-1)
		return false
	}
	return true
}

// minRetries is the retry budget's floor of concurrent retries.
const minRetries = 3

// backoff waits before retry number n (1 for the first retry): full jitter over
// Backoff*2^(n-1), capped at MaxBackoff. It returns the context's error if the
// request is cancelled or times out first.
func (p *Pool) backoff(ctx context.Context, n int) error {
	c := p.cfg.Retry
	d := c.MaxBackoff
	if shift := n - 1; shift < 32 {
		if e := c.Backoff << shift; e > 0 && (e < d || d <= 0) {
			d = e
		}
	}
	if d > 0 {
		d = rand.N(d)
	}
	if d <= 0 {
		return ctxError(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctxError(ctx)
	case <-t.C:
		return nil
	}
}

// ctxError returns nil while ctx is live, otherwise its error, marked as a
// timeout when the route timer cancelled it.
func ctxError(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	if cause := context.Cause(ctx); errors.Is(cause, ErrTimeout) {
		return fmt.Errorf("wait to retry: %w", cause)
	}
	return fmt.Errorf("wait to retry: %w", ctx.Err())
}

// discard drains (bounded) and closes a response that will not be forwarded.
func discard(resp *http.Response) {
	if resp == nil {
		return
	}
	// A 101's body is the switched connection: reading it would wait on
	// the backend, and the connection is never reused anyway.
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	}
	_ = resp.Body.Close()
}

// closeOnPanic returns m closing the response's body when m panics: the body
// holds the backend's in-flight count and its connection, which the panic,
// recovered by the server, would otherwise leave taken. On a return, error
// or not, the body is the caller's, as before.
func closeOnPanic(m func(*http.Response) error) func(*http.Response) error {
	if m == nil {
		return nil
	}
	return func(resp *http.Response) error {
		returned := false
		defer func() {
			if !returned {
				_ = resp.Body.Close()
			}
		}()
		err := m(resp)
		returned = true
		return err
	}
}

// isIdempotent reports whether r may be retried after it was (possibly) sent.
func isIdempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != ""
}

// isDialError reports whether err happened while connecting, before any byte of
// the request was sent, so that any request may be retried.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// clientIP is the ip-hash key: the client IP the edge decided on when the
// gateway set one (trusted proxies applied once, for every feature), else the
// TCP peer, or the first X-Forwarded-For entry when the peer is a trusted proxy.
func clientIP(r *http.Request, trusted bool) string {
	if ip, ok := identity.ClientIP(r.Context()); ok && ip.IsValid() {
		return ip.String()
	}
	if trusted {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if ip := strings.TrimSpace(first); ip != "" {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// peerIP returns the IP of r's direct peer (the host part of RemoteAddr), or
// false when RemoteAddr has none.
func peerIP(r *http.Request) (string, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || host == "" {
		return "", false
	}
	return host, true
}

// joinPath joins a backend's base path (no trailing slash) and a request path
// with exactly one slash.
func joinPath(base, p string) string {
	switch {
	case base == "" && p == "":
		return "/"
	case base == "":
		if p[0] != '/' {
			return "/" + p
		}
		return p
	case p == "":
		return base + "/"
	case p[0] == '/':
		return base + p
	}
	return base + "/" + p
}

// errRequestBody marks a failure to read the client's request body.
var errRequestBody = errors.New("read request body")

// requestBody is a request body prepared for one or more attempts.
type requestBody struct {
	buf     []byte    // the whole body when replayable
	stream  io.Reader // the body to send once, when it is not replayable
	closer  io.Closer // closes the client's body with stream; nil for none
	hasBody bool
}

// streamBody is a request body sent once. The transport closes it to stop a
// body it is still sending when the response has ended, as when a backend
// ends a gRPC call while the client still streams; it then waits for its
// Read to return. ReverseProxy hands the RoundTripper a body whose Close does
// nothing, so a Read blocked on the client would hang the request until the
// client sent more: closing the client's own body ends that Read.
type streamBody struct {
	io.Reader
	closer io.Closer
}

func (b streamBody) Close() error {
	if b.closer == nil {
		return nil
	}
	return b.closer.Close()
}

// replayable reports whether the body can be sent again.
func (b requestBody) replayable() bool { return b.stream == nil }

// apply sets r's body for one attempt.
func (b requestBody) apply(r *http.Request) {
	switch {
	case !b.hasBody:
		r.Body, r.GetBody, r.ContentLength = nil, nil, 0
	case b.stream != nil:
		r.Body, r.GetBody = streamBody{b.stream, b.closer}, nil
	default:
		buf := b.buf
		r.ContentLength = int64(len(buf))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
		r.Body, _ = r.GetBody()
	}
}

// prepareBody buffers out's body up to Retry.MaxBodyBytes so that it can be
// replayed. A larger body, or a gRPC one, is streamed (the buffered part, then
// the rest) and not retried.
func (p *Pool) prepareBody(out *http.Request) (requestBody, error) {
	if out.Body == nil || out.Body == http.NoBody {
		return requestBody{}, nil
	}
	limit := p.cfg.Retry.MaxBodyBytes
	// A gRPC request body is a stream of messages that may go on for as long
	// as the call lasts (client and bidi streams): buffering it would stall
	// the call, and replaying it is never safe.
	if p.cfg.Retry.Attempts == 1 || limit <= 0 || out.ContentLength > limit || httperr.IsGRPC(out) {
		return requestBody{stream: out.Body, hasBody: true}, nil
	}
	var buf []byte
	var err error
	if out.ContentLength > 0 {
		buf = make([]byte, out.ContentLength)
		_, err = io.ReadFull(out.Body, buf)
	} else {
		buf, err = io.ReadAll(io.LimitReader(out.Body, limit+1))
	}
	if err != nil {
		return requestBody{}, fmt.Errorf("%w: %w", errRequestBody, err)
	}
	if int64(len(buf)) > limit {
		return requestBody{stream: io.MultiReader(bytes.NewReader(buf), out.Body), hasBody: true}, nil
	}
	return requestBody{buf: buf, hasBody: len(buf) > 0}, nil
}

// trackBody wraps a response body so that closing it ends the attempt's
// in-flight count, in t if not nil. A 101 response's body is also writable
// (the upgraded connection), and stays so.
func trackBody(rc io.ReadCloser, s *backendState, t *trackedBody) io.ReadCloser {
	if t == nil {
		t = new(trackedBody)
	}
	t.ReadCloser, t.state, t.ended = rc, s, nil
	t.done.Store(false)
	if _, ok := rc.(io.Writer); ok {
		return trackedConn{t}
	}
	return t
}

type trackedBody struct {
	io.ReadCloser
	state *backendState
	done  atomic.Bool
	ended func() // also run at the first Close, if set
}

func (t *trackedBody) Close() error {
	err := t.ReadCloser.Close()
	if t.done.CompareAndSwap(false, true) {
		t.state.inFlight.Add(-1)
		if t.ended != nil {
			t.ended()
		}
	}
	return err
}

type trackedConn struct{ *trackedBody }

func (t trackedConn) Write(b []byte) (int, error) {
	return t.ReadCloser.(io.Writer).Write(b)
}

// serveError is the ReverseProxy error handler: it maps err to a status with
// statusOf, logs, and writes the JSON error, unless the client has gone away.
func (h *routeHandler) serveError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if st == nil {
		st = &reqState{inbound: r.Context()}
	}
	h.writeError(w, r, r.Context(), st, err)
}

// writeError answers r with the status statusOf maps err to, logging it
// (rate limited). ctx is the proxied request's context.
func (h *routeHandler) writeError(w http.ResponseWriter, r *http.Request, ctx context.Context, st *reqState, err error) {
	p := h.pool
	status, code := statusOf(ctx, st.inbound, err)
	args := []any{
		"route", h.opts.Route, "pool", p.name, "backend", st.backend,
		"request_id", r.Header.Get(httperr.RequestIDHeader), "error", err.Error(),
		"status", status, "attempts", st.attempts,
	}
	if status == StatusClientClosedRequest {
		p.logger.Debug("client went away", args...)
		return
	}
	if ok, suppressed := p.warn.allow(p.now().UnixNano()); ok {
		if suppressed > 0 {
			args = append(args, "suppressed", suppressed)
		}
		p.logger.Warn("upstream error", args...)
	}
	httperr.Write(w, r, status, code)
}

// StatusClientClosedRequest is the non-standard status (nginx's 499) logged when
// the client went away before the upstream answered; nothing is written.
const StatusClientClosedRequest = 499

// statusOf is the one place that maps a proxy error to the client's status and
// error code. ctx is the proxied request's context, inbound the client's.
func statusOf(ctx, inbound context.Context, err error) (int, string) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(context.Cause(ctx), ErrTimeout),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, httperr.CodeGatewayTimeout
	case inbound.Err() != nil, errors.Is(err, context.Canceled):
		return StatusClientClosedRequest, ""
	case errors.Is(err, ErrNoBackend):
		return http.StatusServiceUnavailable, httperr.CodeUnavailable
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, httperr.CodeRequestTooLarge
	case errors.Is(err, errRequestBody):
		return http.StatusBadRequest, httperr.CodeBadRequest
	default:
		return http.StatusBadGateway, httperr.CodeBadGateway
	}
}

// rateLimit lets through at most warnPerSecond log lines a second and counts the
// rest, so a failing backend cannot flood the log. Lock-free.
type rateLimit struct {
	second     atomic.Int64
	count      atomic.Int64
	suppressed atomic.Int64
}

const warnPerSecond = 10

func (l *rateLimit) allow(now int64) (ok bool, suppressed int64) {
	sec := now / int64(time.Second)
	if cur := l.second.Load(); cur != sec && l.second.CompareAndSwap(cur, sec) {
		l.count.Store(0)
	}
	if l.count.Add(1) <= warnPerSecond {
		return true, l.suppressed.Swap(0)
	}
	l.suppressed.Add(1)
	return false, 0
}
