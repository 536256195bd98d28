// Package h1 is a lean HTTP/1.1 client transport for the gateway's most common
// upstream request: a bodiless GET, HEAD or OPTIONS to a plain-http backend.
//
// net/http.Transport serves every request through two goroutines per
// connection (a read loop and a write loop) and hands each request and response
// across channels to them. For a proxy that already has one goroutine per
// request, those hand-offs are most of the transport's cost. This transport
// writes the request and reads the response on the caller's goroutine, over a
// pool of keep-alive connections.
//
// The request head is written by writeRequest and the response head parsed by
// readResponse, allocation-lean copies of net/http's Request.Write and
// ReadResponse for the requests this transport takes: the same bytes on the
// wire (header order aside), and the same framing (Content-Length, chunked
// with trailers, close delimited, HEAD, 1xx/204/304) and checks against
// malformed responses, step for step. Differential tests and fuzz targets
// compare them with net/http on raw bytes; a parsing difference in front of
// arbitrary backends would be a response-splitting risk.
//
// Everything else — https, requests with a body, other methods, upgrades,
// Expect: 100-continue — goes to the Fallback transport unchanged.
//
// Connections wait in the pool with nobody reading them, so before one is
// reused it is checked, without blocking, for bytes or a close the backend
// sent while it was idle; such a connection is discarded, never read as the
// next request's response. Where that check is not available (non-unix
// systems) every request goes to Fallback.
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"

	"github.com/altair-gateway/altair/internal/interrupt"
	"github.com/altair-gateway/altair/internal/rawio"
)

// Transport is an http.RoundTripper; see the package comment for what it takes
// itself and what it passes to Fallback.
type Transport struct {
	// Dial opens a connection to a backend (host:port).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Fallback serves every request this transport does not take.
	Fallback http.RoundTripper
	// MaxIdlePerHost is the number of idle connections kept per backend.
	MaxIdlePerHost int
	// IdleTimeout discards idle connections older than this when they are
	// next taken (0: keep). Idle connections are not reaped in the
	// background; at most MaxIdlePerHost wait per backend.
	IdleTimeout time.Duration
	// MaxResponseHeaderBytes limits one response head (status line and
	// headers). Default 1 MiB.
	MaxResponseHeaderBytes int64

	pools   sync.Map // host:port → *hostPool
	retired atomic.Bool
}

const (
	defaultMaxHeaderBytes = 1 << 20
	// max1xx bounds the informational answers before the final one, as
	// net/http does, so a backend cannot hold a request with endless 103s.
	max1xx = 5
)

// hostPool holds one backend's idle connections as a stack: the one used
// last is taken first, as nginx does, so a light load keeps reusing a few
// warm connections (and the backend's goroutines and buffers for them)
// instead of cycling through all of them, and the rest age out at the
// bottom.
type hostPool struct {
	mu   sync.Mutex
	idle []*conn // oldest first
	max  int
}

// take pops the most recently pooled connection; nil when there is none.
func (hp *hostPool) take() *conn {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	n := len(hp.idle)
	if n == 0 {
		return nil
	}
	c := hp.idle[n-1]
	hp.idle[n-1] = nil
	hp.idle = hp.idle[:n-1]
	return c
}

// push pools c, idle since now, and returns the connections it no longer
// keeps, for the caller to close: those idle longer than idleTimeout (when
// set), and the oldest one when the pool is full.
func (hp *hostPool) push(c *conn, now time.Time, idleTimeout time.Duration) (drop []*conn) {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	old := 0
	for old < len(hp.idle) && idleTimeout > 0 && now.Sub(hp.idle[old].idleFrom) > idleTimeout {
		old++
	}
	if old == 0 && len(hp.idle) >= hp.max {
		old = len(hp.idle) - hp.max + 1
	}
	if old > 0 {
		drop = append(drop, hp.idle[:old]...)
		n := copy(hp.idle, hp.idle[old:])
		clear(hp.idle[n:])
		hp.idle = hp.idle[:n]
	}
	hp.idle = append(hp.idle, c)
	return drop
}

// drain empties the pool and returns what it held.
func (hp *hostPool) drain() []*conn {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	all := hp.idle
	hp.idle = nil
	return all
}

type conn struct {
	nc       net.Conn
	lr       *limitReader // br reads through it, so a response head is bounded
	br       *bufio.Reader
	bw       *bufio.Writer
	head     []byte // scratch for reading response heads, reused
	idleFrom time.Time
	// expire unblocks any read or write on nc; made once per connection so
	// that watching each request's context does not allocate it anew.
	expire func()
	idle   idleCheck // peeks at the connection before it is reused
	// hold, when the raw I/O offers it, sends each request with the read
	// that waits for its answer, and makes the idle check there (see
	// exchange).
	hold      rawio.Holder
	peekClean func(fd uintptr) bool
}

// newConn wraps a freshly dialed connection.
func newConn(nc net.Conn) *conn {
	rw := rawio.New(nc) // reads and writes the scheduler does not see as blocking
	lr := &limitReader{r: rw}
	c := &conn{nc: nc, lr: lr, br: bufio.NewReaderSize(lr, 4096), bw: bufio.NewWriterSize(rw, 4096)}
	c.expire = func() { _ = nc.SetDeadline(aLongTimeAgo) }
	c.idle.init(nc)
	if h, ok := rw.(rawio.Holder); ok {
		if peek := c.idle.rawPeek(); peek != nil {
			c.hold, c.peekClean = h, peek
		}
	}
	return c
}

// Available reports whether the transport takes requests itself on this
// platform (elsewhere it passes every one to Fallback).
func Available() bool { return canCheckIdle }

// Handles reports whether RoundTrip serves r itself rather than through
// Fallback.
func Handles(r *http.Request) bool {
	if r.URL == nil || r.URL.Scheme != "http" || (r.Body != nil && r.Body != http.NoBody) || r.ContentLength > 0 {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	// Upgrades and 100-continue need the full transport.
	if r.Header.Get("Upgrade") != "" || r.Header.Get("Expect") != "" {
		return false
	}
	return len(r.TransferEncoding) == 0
}

// RoundTrip sends r and returns the response, whose Body must be read to EOF
// and closed for the connection to be reused.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !canCheckIdle || !Handles(r) {
		return t.Fallback.RoundTrip(r)
	}
	addr := r.URL.Host
	if r.URL.Port() == "" {
		addr = net.JoinHostPort(r.URL.Hostname(), "80")
	}
	hp := t.pool(addr)
	ctx := r.Context()
	for {
		c, reused, err := t.get(ctx, hp, addr)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(ctx, c, r, addr, reused)
		if err == nil {
			return resp, nil
		}
		_ = c.nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// A pooled connection the backend closed while idle fails before any
		// response byte; the request is bodiless and safe to send again on a
		// fresh connection, as net/http does.
		if reused && errors.Is(err, errNothingRead) {
			continue
		}
		return nil, err
	}
}

var errNothingRead = errors.New("connection closed before any response byte")

// exchange writes r on c and reads the response head. On success the
// connection belongs to the response body.
func (t *Transport) exchange(ctx context.Context, c *conn, r *http.Request, addr string, reused bool) (*http.Response, error) {
	maxHead := t.MaxResponseHeaderBytes
	if maxHead <= 0 {
		maxHead = defaultMaxHeaderBytes
	}
	// Cancelling the request unblocks the read by expiring the deadline. A
	// context that can never be cancelled needs no watcher: stop is nil
	// then, and counts as "not cancelled".
	stop, hook, owned := interrupt.Bind(ctx, c.expire)
	// unwatch stops the watcher when the exchange fails before a body
	// takes the connection over (the connection is closed then anyway).
	unwatch := func() {
		if stop != nil {
			stop()
		}
	}
	if c.hold != nil {
		// The request goes out with the first read of the answer, which
		// checks a pooled connection first (get left that check here):
		// one system call fewer than a send and a read that finds
		// nothing yet.
		var check func(uintptr) bool
		if reused {
			check = c.peekClean
		}
		c.hold.Hold(check)
	}
	if err := writeRequest(c.bw, r, owned); err != nil {
		unwatch()
		return nil, fmt.Errorf("write request: %w", err)
	}
	if err := c.bw.Flush(); err != nil {
		unwatch()
		return nil, fmt.Errorf("write request: %w", err)
	}
	c.lr.n = maxHead
	if _, err := c.br.Peek(1); err != nil {
		unwatch()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", errNothingRead, err)
	}
	// A context the server's Watcher owns is its own request's (the direct
	// lane's), made by the connection with no client trace in it: its 1xx
	// go to the Watcher's hook, with no walk of the context's values for a
	// trace.
	got1xx := hook
	if !owned {
		if trace := httptrace.ContextClientTrace(ctx); trace != nil {
			got1xx = trace.Got1xxResponse
		} else {
			got1xx = interrupt.Informational(ctx)
		}
	}
	for n1xx := 0; ; n1xx++ {
		resp, b, fr, err := readResponse(c.br, r, &c.head)
		if err != nil {
			unwatch()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if c.lr.n <= 0 {
				return nil, fmt.Errorf("read response: %w", errHeadTooLarge)
			}
			return nil, fmt.Errorf("read response: %w", err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			if n1xx >= max1xx {
				unwatch()
				return nil, errors.New("read response: too many informational (1xx) responses")
			}
			c.lr.n = maxHead
			// Informational answers (103 Early Hints, ...) are passed on to
			// the reverse proxy, which forwards them, and the final answer
			// follows on the same connection.
			if got1xx != nil {
				if err := got1xx(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
					unwatch()
					return nil, err
				}
			}
			continue
		}
		c.lr.n = math.MaxInt64 // the body is bounded by its own framing
		reusable := !resp.Close && !r.Close && resp.StatusCode != http.StatusSwitchingProtocols
		if fr.mode == bodyNone {
			t.release(c, addr, stop, true, reusable)
			return resp, nil
		}
		*b = body{
			rb:          respBody{br: c.br, fr: fr, resp: resp},
			c:           c,
			t:           t,
			addr:        addr,
			stop:        stop,
			reusable:    reusable,
			smallHeader: b.smallHeader,
		}
		resp.Body = b
		return resp, nil
	}
}

var aLongTimeAgo = time.Unix(1, 0)

var errHeadTooLarge = errors.New("response head larger than the limit")

// limitReader lets at most n bytes through; the transport sets n before each
// response head and lifts it for the body.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func (t *Transport) pool(addr string) *hostPool {
	if p, ok := t.pools.Load(addr); ok {
		return p.(*hostPool)
	}
	n := t.MaxIdlePerHost
	if n <= 0 {
		n = 2
	}
	p, _ := t.pools.LoadOrStore(addr, &hostPool{idle: make([]*conn, 0, n), max: n})
	return p.(*hostPool)
}

// get returns an idle connection younger than IdleTimeout, or dials a new one.
func (t *Transport) get(ctx context.Context, hp *hostPool, addr string) (*conn, bool, error) {
	for {
		if c := hp.take(); c != nil {
			// With hold, exchange checks the connection as it sends.
			if (t.IdleTimeout > 0 && time.Since(c.idleFrom) > t.IdleTimeout) || (c.hold == nil && !c.idle.check()) {
				_ = c.nc.Close()
				continue
			}
			return c, true, nil
		}
		nc, err := t.Dial(ctx, "tcp", addr)
		if err != nil {
			return nil, false, err
		}
		return newConn(nc), false, nil
	}
}

// put returns c to the pool of addr (host:port), or closes it when the pool is
// full or the transport is retired.
func (t *Transport) put(addr string, c *conn) {
	if t.retired.Load() {
		_ = c.nc.Close()
		return
	}
	c.idleFrom = time.Now()
	hp := t.pool(addr)
	drop := hp.push(c, c.idleFrom, t.IdleTimeout)
	if t.retired.Load() {
		// CloseIdleConnections ran since the check above: what it did
		// not drain, this does.
		drop = append(drop, hp.drain()...)
	}
	for _, old := range drop {
		_ = old.nc.Close()
	}
}

// CloseIdleConnections closes every idle connection (and the Fallback's) and
// retires the transport: it keeps serving requests, but connections that
// finish a response afterwards are closed rather than pooled. The gateway
// calls it when a reload replaces the pool that owns this transport, so
// requests still in flight there leave nothing open behind them.
func (t *Transport) CloseIdleConnections() {
	t.retired.Store(true)
	t.pools.Range(func(_, v any) bool {
		for _, c := range v.(*hostPool).drain() {
			_ = c.nc.Close()
		}
		return true
	})
	if ci, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// body reads a response body off its connection and hands the connection
// back to the pool when the response has been read to its end, or closes it
// when the reader gives up early or the body fails.
type body struct {
	rb       respBody
	c        *conn
	t        *Transport
	addr     string
	stop     func() bool // nil when the request could not be cancelled
	reusable bool
	done     bool
	// smallHeader: the response's header map was made for at most
	// maxPooledFields fields (see ReleaseHeader).
	smallHeader bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rb.read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

// WriteTo copies a Content-Length body straight from the connection's read
// buffer to w, with no buffer of its own; other framings are read through
// Read. The connection is released as Read releases it.
func (b *body) WriteTo(w io.Writer) (int64, error) {
	if b.done {
		return 0, nil
	}
	if b.rb.fr.mode != bodyLength {
		return io.Copy(w, readerOnly{b})
	}
	br := b.c.br
	var total int64
	for b.rb.fr.n > 0 {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				b.finish(false)
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return total, err
			}
		}
		chunk, _ := br.Peek(int(min(int64(br.Buffered()), b.rb.fr.n)))
		n, err := w.Write(chunk)
		_, _ = br.Discard(n)
		b.rb.fr.n -= int64(n)
		total += int64(n)
		if err != nil {
			b.finish(false)
			return total, err
		}
	}
	b.finish(true)
	return total, nil
}

// readerOnly hides a body's WriteTo from io.Copy.
type readerOnly struct{ io.Reader }

func (b *body) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

// finish marks the body done and releases its connection; complete says the
// body was read to its end without error.
func (b *body) finish(complete bool) {
	b.done = true
	b.t.release(b.c, b.addr, b.stop, complete, b.reusable)
}

// release ends an exchange on c: back to the pool if the whole response was
// read, nothing extra is buffered, and cancellation did not touch it (its
// watcher, if any, is stopped before it could fire); otherwise closed.
func (t *Transport) release(c *conn, addr string, stop func() bool, complete, reusable bool) {
	notCancelled := stop == nil || stop()
	if complete && reusable && notCancelled && c.br.Buffered() == 0 {
		t.put(addr, c)
		return
	}
	_ = c.nc.Close()
}
