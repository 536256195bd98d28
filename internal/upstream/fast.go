package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/altair-gateway/altair/internal/hopbyhop"
	"github.com/altair-gateway/altair/internal/httperr"
	"github.com/altair-gateway/altair/internal/identity"
	"github.com/altair-gateway/altair/internal/observe"
	"github.com/altair-gateway/altair/internal/upstream/h1"
)

// The fast path proxies the commonest request — a bodiless GET, HEAD or
// OPTIONS over HTTP/1.x that asks for no upgrade — without
// httputil.ReverseProxy, whose generality costs a proxied request several
// copies of it and of its headers and a dozen allocations. It does what
// ReverseProxy does for such a request, in the same order, and shares
// everything else with the general path: the Rewrite hook's header policy
// (fastHeaders and setForwarded mirror rewrite), the attempt loop (retries,
// breakers, timeouts, tracing), ModifyResponse and the error answers.
// TestFastPathMatchesReverseProxy holds the two paths to the same output.

// fastEligible reports whether r can take the fast path.
func fastEligible(r *http.Request) bool {
	if r.ProtoMajor != 1 || (r.Body != nil && r.Body != http.NoBody) || r.ContentLength != 0 || len(r.TransferEncoding) != 0 {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	h := r.Header
	return len(h["Upgrade"]) == 0 && len(h["Expect"]) == 0 && r.URL != nil && cleanQuery(r.URL.RawQuery)
}

// cleanQuery reports whether ReverseProxy (Rewrite mode) would pass q on
// unchanged: no ';', no malformed escape, at most 10,000 parameters. Other
// queries take the general path, where ReverseProxy drops the parameters
// url.ParseQuery cannot parse, so the backend never reads parameters the
// gateway could not.
func cleanQuery(q string) bool {
	if strings.Count(q, "&") >= 10000 {
		return false
	}
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// fastState is what one fast-path or direct-lane request allocates beyond
// the outgoing request and its headers: its state for the attempt loop,
// room for the forwarding headers' values, and the hook that forwards
// informational (1xx) answers.
type fastState struct {
	st  reqState
	w   http.ResponseWriter
	fwd [forwardedVals]string // setForwarded's values, for the direct lane
	// A transport may report a 1xx from a goroutine of its own, even after
	// RoundTrip has returned (net/http's does, when the request is cut
	// short): once the attempts are over, got1xx leaves w alone, as
	// ReverseProxy does.
	mu1xx   sync.Mutex
	tripped bool
	// lane: the request is the direct lane's, whose header has become the
	// upstream one; clientID and clientCT are its request id and
	// Content-Type as the client sent them (see errorRequest).
	lane               bool
	clientID, clientCT []string
	// on1xx is got1xx as a func, made once for a pooled lane state.
	on1xx func(int, textproto.MIMEHeader) error
}

// laneStates are the direct lane's fastStates, reused: nothing keeps one
// once ServeDirect returns (the 1xx hook is called during the exchange,
// and the connection drops it when the request ends).
var laneStates = sync.Pool{New: func() any {
	fs := new(fastState)
	fs.on1xx = fs.got1xx
	return fs
}}

// errorRequest is the request an error answer is made for: r, or for the
// direct lane a stand-in with r's request id and Content-Type as the client
// sent them.
func (fs *fastState) errorRequest(r *http.Request) *http.Request {
	if !fs.lane {
		return r
	}
	e := r.WithContext(r.Context())
	e.Header = http.Header{}
	if fs.clientID != nil {
		e.Header[httperr.RequestIDHeader] = fs.clientID
	}
	if fs.clientCT != nil {
		e.Header["Content-Type"] = fs.clientCT
	}
	return e
}

// fastOwn is the fast path's fastState, with what the direct lane does not
// need: a client trace for the 1xx hook, and the outgoing request's URL.
type fastOwn struct {
	fastState
	trace httptrace.ClientTrace
	url   url.URL // aimed at each backend in turn
}

// serveFast proxies r; see fastEligible.
func (h *routeHandler) serveFast(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	own := &fastOwn{fastState: fastState{w: w}}
	fs := &own.fastState
	st := &fs.st
	st.inbound, st.cancel = r.Context(), cancel
	defer st.stopTimer()
	if rec := observe.RecordOf(w); rec != nil {
		defer func() { rec.Backend, rec.Attempts = st.backend, st.attempts }()
	}
	in := inboundOf(r)
	if a, ok := identity.ClientIP(r.Context()); ok {
		in.clientIP = a
	}
	out := own.outgoing(ctx, r)
	var spare []string
	out.Header, spare = fastHeaders(r.Header)
	st.trusted = h.pool.trust(r)
	h.setForwarded(out.Header, &in, st.trusted, spare)
	h.forward(w, r, ctx, fs, out)
}

// ServeDirect proxies r for the gateway's direct lane, which passes over
// the middleware chain for a request no step of it would act on (see
// gateway.ServeDirect). r must be fast-path eligible, the caller's own and
// for a Lean pool: it becomes the outgoing request itself (its header map
// turned into the upstream one, its URL aimed at each backend in place, its
// Host as the route's header operations set it) and stays so; the values
// of its forwarding headers are held in state reused once ServeDirect
// returns, so nothing may read its header after that. ctl keeps the
// route timeout and takes the informational answers, which serveFast does
// with a context and a trace of its own. clientIP is the client address the
// edge decided on (the zero Addr for none).
func (h *routeHandler) ServeDirect(w http.ResponseWriter, r *http.Request, ctl Control, clientIP netip.Addr) {
	fs := laneStates.Get().(*fastState) // zero but for on1xx: the defer below cleared it
	on1xx := fs.on1xx
	fs.w = w
	defer func() {
		ctl.On1xx(nil)                // the connection no longer points at the pooled state
		*fs = fastState{on1xx: on1xx} // holds nothing of this request while pooled
		laneStates.Put(fs)
	}()
	st := &fs.st
	st.inbound = r.Context()
	if h.opts.Timeout > 0 {
		st.timer = ctl.Timeout(h.opts.Timeout, ErrTimeout)
	}
	defer st.stopTimer()
	ctl.On1xx(on1xx)
	if rec := observe.RecordOf(w); rec != nil {
		defer func() { rec.Backend, rec.Attempts = st.backend, st.attempts }()
	}
	in := inboundOf(r)
	in.clientIP, st.clientIP = clientIP, clientIP
	st.trusted = h.pool.trust(r)
	// An error answer and the logs name the client's request id, and tell
	// gRPC by its Content-Type: both as the client sent them, before the
	// header becomes the upstream one (which may lose them).
	fs.clientID, fs.clientCT, fs.lane = r.Header[httperr.RequestIDHeader], r.Header["Content-Type"], true
	forwardInPlace(r.Header)
	h.setForwarded(r.Header, &in, st.trusted, fs.fwd[:])

	st.ownOut = true
	clearClientFields(r)
	h.forward(w, r, r.Context(), fs, r)
}

// Control is what the direct lane's server gives ServeDirect for a request.
type Control interface {
	// Timeout ends the request's context with cause once d has passed,
	// unless Stop is called first; Stop reports false when it has fired.
	Timeout(d time.Duration, cause error) interface{ Stop() bool }
	// On1xx has f receive the informational answers that requests made
	// under the request's context get.
	On1xx(f func(code int, header textproto.MIMEHeader) error)
}

// outgoing makes the request sent upstream: r under ctx, with the hook that
// forwards informational answers, and a URL of its own that each attempt
// aims at its backend in place. Its header is r's; the caller replaces it.
func (fs *fastOwn) outgoing(ctx context.Context, r *http.Request) *http.Request {
	fs.trace.Got1xxResponse = fs.got1xx
	out := r.WithContext(httptrace.WithClientTrace(ctx, &fs.trace))
	fs.url = *r.URL
	out.URL = &fs.url
	fs.st.ownOut = true
	clearClientFields(out)
	return out
}

// clearClientFields clears what a server request carries and a client
// request must not: a (bodiless) request is then fit to send upstream.
func clearClientFields(out *http.Request) {
	out.Body, out.GetBody, out.ContentLength = nil, nil, 0
	out.RequestURI, out.Close = "", false
	out.Trailer = nil
}

// forward sends out (made by outgoing for r, under ctx) and copies the
// answer to w.
func (h *routeHandler) forward(w http.ResponseWriter, r *http.Request, ctx context.Context, fs *fastState, out *http.Request) {
	st := &fs.st
	if h.opts.RewriteRequest != nil {
		h.opts.RewriteRequest(out)
	}

	resp, err := (*routeTransport)(h).roundTrip(out, st)
	fs.mu1xx.Lock()
	fs.tripped = true
	fs.mu1xx.Unlock()
	if err != nil {
		h.writeError(w, fs.errorRequest(r), ctx, st, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		discard(resp)
		h.writeError(w, fs.errorRequest(r), ctx, st, errors.New("backend switched protocols on a request that asked for no upgrade"))
		return
	}
	hopbyhop.Remove(resp.Header)
	if m := h.opts.ModifyResponse; m != nil {
		if err := m(resp); err != nil {
			_ = resp.Body.Close()
			h.writeError(w, fs.errorRequest(r), ctx, st, err)
			return
		}
	}
	dst := w.Header()
	for k, vv := range resp.Header {
		if old, ok := dst[k]; ok {
			dst[k] = append(old, vv...)
		} else {
			dst[k] = vv[:len(vv):len(vv)] // appends elsewhere must not write into resp's values
		}
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	if err := h.copyBody(w, resp); err != nil {
		_ = resp.Body.Close()
		// The status line has gone; aborting the handler makes the server
		// end the client's connection, so a truncated body shows. As with
		// ReverseProxy, only under a server, which recovers the panic.
		if r.Context().Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	_ = resp.Body.Close() // reads the trailers
	if len(resp.Trailer) > 0 {
		_ = http.NewResponseController(w).Flush() // trailers need chunking
	}
	if len(resp.Trailer) == announced {
		for k, vv := range resp.Trailer {
			dst[k] = append(dst[k], vv...)
		}
	} else {
		for k, vv := range resp.Trailer {
			for _, v := range vv {
				dst.Add(http.TrailerPrefix+k, v)
			}
		}
	}
	if tb, ok := resp.Body.(*trackedBody); ok && fs.lane {
		// The lane's answer is done with: its transport (h1, see
		// Pool.Lean) may have the header map for a later one.
		h1.ReleaseHeader(tb.ReadCloser, resp.Header)
	}
}

// got1xx forwards an informational answer with its own headers; those the
// handler chain had set stay for the final answer.
func (fs *fastState) got1xx(code int, hdr textproto.MIMEHeader) error {
	fs.mu1xx.Lock()
	defer fs.mu1xx.Unlock()
	if fs.tripped {
		return nil
	}
	dst := fs.w.Header()
	saved := make(map[string][]string, len(hdr)) // what the chain had, nil for none
	for k, vv := range hdr {
		old := dst[k]
		saved[k] = old
		dst[k] = append(old[:len(old):len(old)], vv...)
	}
	fs.w.WriteHeader(code)
	for k, old := range saved {
		if old == nil {
			delete(dst, k)
		} else {
			dst[k] = old
		}
	}
	return nil
}

// copyBody copies resp's body to w, flushing after every read for event
// streams and bodies of unknown length (as ReverseProxy does).
func (h *routeHandler) copyBody(w http.ResponseWriter, resp *http.Response) error {
	flush := resp.ContentLength == -1 || isEventStream(resp.Header)
	// The h1 transport's body writes from its read buffer, with no copy
	// buffer of ours; closing the tracked body afterwards ends the attempt.
	var inner io.Reader = resp.Body
	if tb, ok := inner.(*trackedBody); ok {
		inner = tb.ReadCloser
	}
	if wt, ok := inner.(io.WriterTo); ok && !flush {
		if _, err := wt.WriteTo(w); err != nil {
			return fmt.Errorf("copy response body: %w", err)
		}
		return nil
	}
	buf := h.pool.buffers.Get()
	defer h.pool.buffers.Put(buf)
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return fmt.Errorf("write response body: %w", werr)
			}
			if flush {
				if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
					return fmt.Errorf("flush response body: %w", err)
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			h.pool.logger.Debug("upstream body read failed", "route", h.opts.Route, "error", rerr.Error())
			return rerr
		}
	}
}

// isEventStream reports whether the response is Server-Sent Events.
func isEventStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	if ct == "" {
		return false
	}
	base, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// fastHeaders copies a client's request header for the upstream request,
// leaving out what ReverseProxy leaves out before its Rewrite hook: the
// hop-by-hop fields and those Connection names (Te: trailers excepted), and
// Forwarded and X-Forwarded-*; User-Agent is set empty when absent so that
// the transport adds none. One allocation holds all values, with room for
// the forwarding headers setForwarded adds, which it returns.
func fastHeaders(in http.Header) (http.Header, []string) {
	named := hopbyhop.Named(in)
	n := 0
	for _, vv := range in {
		n += len(vv)
	}
	vals := make([]string, 0, n+forwardedVals)
	out := make(http.Header, len(in)+4)
	for k, vv := range in {
		if notForwarded(k, named) {
			continue
		}
		start := len(vals)
		vals = append(vals, vv...)
		out[k] = vals[start:len(vals):len(vals)]
	}
	// As ReverseProxy: Te: trailers passes even when Connection names Te.
	if te := in["Te"]; len(te) > 0 && hasTrailersToken(te) {
		out["Te"] = teTrailers
	}
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = emptyValue // what is left of the client's, as ReverseProxy does
	}
	return out, vals[len(vals):cap(vals)]
}

// notForwarded reports whether a client's header k stays behind: a
// hop-by-hop field or one the Connection header names (listed in named), or
// Forwarded and X-Forwarded-*, which setForwarded makes anew.
func notForwarded(k string, named []string) bool {
	switch {
	case hopbyhop.Is(k), k == "Forwarded", k == "X-Forwarded-For", k == "X-Forwarded-Host", k == "X-Forwarded-Proto":
		return true
	}
	return len(named) > 0 && containsString(named, k)
}

// forwardInPlace turns a client's request header into the upstream one, by
// fastHeaders' rules, in place.
func forwardInPlace(h http.Header) {
	named := hopbyhop.Named(h)
	te := false
	if v := h["Te"]; len(v) > 0 {
		te = hasTrailersToken(v)
	}
	for k := range h {
		if notForwarded(k, named) {
			delete(h, k)
		}
	}
	if te {
		h["Te"] = teTrailers
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = emptyValue
	}
}

// inbound is what setForwarded reads of the client's request: taken before
// its header is turned into the upstream one.
type inbound struct {
	remoteAddr, host string
	tls              bool
	xff, xfh, xfp    []string // the client's X-Forwarded-For, -Host, -Proto
	realIP           []string // the client's X-Real-IP
	clientIP         netip.Addr
}

func inboundOf(r *http.Request) inbound {
	h := r.Header
	return inbound{
		remoteAddr: r.RemoteAddr, host: r.Host, tls: r.TLS != nil,
		xff: h["X-Forwarded-For"], xfh: h["X-Forwarded-Host"], xfp: h["X-Forwarded-Proto"],
		realIP: h["X-Real-Ip"],
	}
}

// forwardedVals is the number of values setForwarded may make.
const forwardedVals = 4

var (
	teTrailers = []string{"trailers"}
	emptyValue = []string{""}
)

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// hasTrailersToken reports whether a Te header asks for trailers.
func hasTrailersToken(te []string) bool {
	for _, v := range te {
		for f := range strings.SplitSeq(v, ",") {
			if tok, _, _ := strings.Cut(f, ";"); strings.EqualFold(textproto.TrimString(tok), "trailers") {
				return true
			}
		}
	}
	return false
}

// setForwarded sets X-Forwarded-For/Host/Proto and X-Real-IP on the
// upstream header hd by the rules of the rewrite hook on the general path,
// keeping the values it makes in vals (room for forwardedVals, from
// fastHeaders; nil: it makes its own).
func (h *routeHandler) setForwarded(hd http.Header, in *inbound, trusted bool, vals []string) {
	if len(vals) < forwardedVals {
		vals = make([]string, forwardedVals)
	}
	peer, _, err := net.SplitHostPort(in.remoteAddr)
	if err == nil {
		xff := peer
		if prior := in.xff; trusted && len(prior) > 0 {
			xff = strings.Join(prior, ", ") + ", " + peer
		}
		vals[0] = xff
		hd["X-Forwarded-For"] = vals[0:1:1]
	}
	vals[1] = in.host
	hd["X-Forwarded-Host"] = vals[1:2:2]
	vals[2] = "http"
	if in.tls {
		vals[2] = "https"
	}
	hd["X-Forwarded-Proto"] = vals[2:3:3]
	if trusted {
		// A trusted proxy's own X-Forwarded-Host and -Proto pass on.
		if len(in.xfp) > 0 {
			hd["X-Forwarded-Proto"] = slices.Clone(in.xfp)
		}
		if len(in.xfh) > 0 {
			hd["X-Forwarded-Host"] = slices.Clone(in.xfh)
		}
	}
	// X-Real-IP: the client IP the edge decided on, else the peer; a
	// trusted proxy's own passes on when the edge decided none.
	if a := in.clientIP; a.IsValid() {
		// Most often the client is the peer, whose text is at hand (an
		// IPv4 address has one text only).
		if pa, err := netip.ParseAddr(peer); err == nil && pa.Is4() && pa == a {
			vals[3] = peer
		} else {
			vals[3] = a.String()
		}
		hd["X-Real-Ip"] = vals[3:4:4]
		return
	}
	if v := in.realIP; trusted && len(v) > 0 && v[0] != "" {
		hd["X-Real-Ip"] = slices.Clone(v)
		return
	}
	if err == nil && peer != "" {
		vals[3] = peer
		hd["X-Real-Ip"] = vals[3:4:4]
		return
	}
	delete(hd, "X-Real-Ip")
}

// DirectEligible reports whether r may take ServeDirect: a request the
// fast path takes.
func DirectEligible(r *http.Request) bool { return fastEligible(r) }

// Direct is the direct lane's proxy step; the handlers Pool.Handler returns
// implement it.
type Direct interface {
	ServeDirect(w http.ResponseWriter, r *http.Request, ctl Control, clientIP netip.Addr)
}
