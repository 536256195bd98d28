package http1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/altair-gateway/altair/internal/rawio"
)

// conn is one client connection and the state its requests reuse: buffers,
// the serialised head, the held-back body, the cached Date.
type conn struct {
	srv        *Server
	nc         net.Conn
	cr         connReader
	br         *bufio.Reader
	bw         *bufio.Writer
	remoteAddr string
	ctx        context.Context // ends when the connection closes or the server's base context ends
	cancel     context.CancelFunc
	reqBase    context.Context // ctx's values without its cancellation: the parent of each request's context; nil when ctx has a deadline
	stopLink   func() bool     // stops cancelRequest from running when ctx ends

	state atomic.Int32 // an http.ConnState, for Shutdown

	head    []byte // the response head being built
	pend    []byte // body held back while the framing is open
	dateSec int64
	date    []byte
	werr    error // the first failed write; the connection is done

	hijacked    bool
	longHead    bool // the head was gathered into head, not left in br
	wantsClose  bool // the request asked to close
	keepAlive10 bool // HTTP/1.0 request with Connection: keep-alive

	// 100-continue: the body's reader (possibly on another goroutine) and the
	// response writer agree under contMu on who writes to bw first.
	expectPending bool // the request expects 100-continue
	contMu        sync.Mutex
	canContinue   bool
	continueSent  bool

	// The disconnect watcher: a request still running watchDelay after it
	// started has the connection read in the background, so that a client
	// that goes away cancels the request's context. Faster requests pay for
	// a timer reset only.
	watchMu    sync.Mutex
	watchTimer *time.Timer
	inHandler  bool
	watching   bool
	watchDone  chan struct{}
	reqCancel  context.CancelCauseFunc
	linked     context.CancelCauseFunc // the running request's cancel, for cancelRequest; kept through a hijack
	watchBody  *body                   // the request's body, watched only once read to its end
	clientGone bool
	accepted   time.Time // Shutdown spares a new connection for a moment

	deadlineSet bool // the handler set a deadline (http.ResponseController)

	// rdl is the read deadline the connection set last, when rdlKnown
	// (the disconnect watcher and a handler's deadlines make it unknown);
	// see waitDeadline.
	rdl      time.Time
	rdlKnown bool

	// directResp and directHeader are the response and its header map
	// for the requests Server.Direct answers, reset after each.
	directResp   response
	directHeader http.Header
	spares       spares  // what the next request's head is parsed into
	lane         laneReq // the request object and context of requests offered to Direct
	directState
}

// maxKeptHead is the largest head buffer a connection keeps between
// requests.
const maxKeptHead = 8 << 10

// watchDelay is how long a request runs before its connection is watched for
// the client going away.
const watchDelay = 10 * time.Millisecond

// connReader is what the buffered reader reads through: the connection, after
// the byte the watcher read, if it read one.
type connReader struct {
	nc     io.Reader // the connection's raw reads (rawio)
	peeked bool
	b      [1]byte
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.peeked && len(p) > 0 {
		r.peeked = false
		p[0] = r.b[0]
		return 1, nil
	}
	return r.nc.Read(p)
}

var aLongTimeAgo = time.Unix(1, 0)

func (c *conn) setState(s http.ConnState) {
	c.state.Store(int32(s))
	if h := c.srv.ConnState; h != nil {
		h(c.nc, s)
	}
}

// write appends p to the connection's buffer, remembering the first error.
func (c *conn) write(p []byte) {
	if c.werr != nil {
		return
	}
	if _, err := c.bw.Write(p); err != nil {
		c.werr = err
	}
}

func (c *conn) flush() {
	if c.werr != nil {
		return
	}
	if err := c.bw.Flush(); err != nil {
		c.werr = err
	}
}

// appendDate appends the current time in HTTP format, formatted once a
// second per connection.
func (c *conn) appendDate(b []byte) []byte {
	now := time.Now()
	if sec := now.Unix(); sec != c.dateSec || c.date == nil {
		c.dateSec = sec
		c.date = now.UTC().AppendFormat(c.date[:0], http.TimeFormat)
	}
	return append(b, c.date...)
}

// writeContinue sends 100 Continue for a body read, unless the response has
// started.
func (c *conn) writeContinue() {
	c.contMu.Lock()
	defer c.contMu.Unlock()
	if !c.canContinue {
		return
	}
	c.canContinue = false
	c.continueSent = true
	c.write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
	c.flush()
}

// noContinue stops a later body read from sending 100 Continue: the response
// has started.
func (c *conn) noContinue() {
	if !c.expectPending {
		return
	}
	c.contMu.Lock()
	c.canContinue = false
	c.contMu.Unlock()
}

// serve reads requests and answers them until the connection ends.
func (c *conn) serve() {
	s := c.srv
	defer func() {
		if err := recover(); err != nil && err != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			s.logger().Error("http1: panic serving a request", "remote", c.remoteAddr, "panic", err, "stack", string(buf))
		}
		if c.watchTimer != nil {
			c.watchTimer.Stop()
		}
		if c.timer != nil {
			c.timer.Stop() // Direct's timeout timer, left pending (disarm disarmed it)
		}
		if c.lane.cancel != nil {
			c.lane.cancel(nil)
		}
		c.stopLink()
		c.cancel()
		if !c.hijacked {
			_ = c.nc.Close()
			c.setState(http.StateClosed)
		}
		s.untrack(c)
	}()
	rw := rawio.New(c.nc)
	c.cr.nc = rw
	c.br = bufio.NewReaderSize(&c.cr, 4096)
	c.bw = bufio.NewWriterSize(rw, 4096)
	first := true
	for {
		if c.br.Buffered() == 0 {
			d := s.IdleTimeout
			if first || d <= 0 {
				d = s.ReadHeaderTimeout
			}
			if d > 0 {
				c.waitDeadline(d)
			}
			if _, err := c.br.Peek(1); err != nil {
				return
			}
		}
		first = false
		// A request has started: Shutdown no longer closes this
		// connection as idle, unless it did so first.
		if !c.state.CompareAndSwap(int32(http.StateIdle), int32(http.StateActive)) &&
			!c.state.CompareAndSwap(int32(http.StateNew), int32(http.StateActive)) {
			return
		}
		if h := s.ConnState; h != nil {
			h(c.nc, http.StateActive)
		}
		if !c.serveRequest() {
			return
		}
		if s.shuttingDown() {
			return
		}
		c.setState(http.StateIdle)
	}
}

// serveRequest reads one request and answers it; it reports whether the
// connection can carry another.
func (c *conn) serveRequest() bool {
	raw, err := c.readHead()
	if err != nil {
		c.refuse(err)
		return false
	}
	var h head
	// A request that may be offered to Direct is parsed into the
	// connection's lane request, which keeps its context from one such
	// request to the next (see laneReq); any other into req, copied under
	// a context of its own below.
	lane := c.srv.Direct != nil && c.reqBase != nil
	var req http.Request
	var lr *http.Request
	rq := &req
	if lane {
		lr = c.lane.begin(c.reqBase, c.remoteAddr)
		rq = lr
	} else {
		req.RemoteAddr = c.remoteAddr
	}
	err = parseHead(raw, rq, &h, &c.spares)
	if c.longHead {
		c.longHead = false // readLongHead consumed it
		if cap(c.head) > maxKeptHead {
			// parseHead copied what it needs; a connection that once sent
			// a large head does not keep its buffer while it idles.
			c.head = nil
		}
	} else {
		_, _ = c.br.Discard(len(raw))
	}
	if err != nil {
		c.refuse(err)
		return false
	}
	c.wantsClose, c.keepAlive10 = h.wantsClose, h.keepAlive10
	c.expectPending, c.continueSent = h.expect, false
	if h.expect {
		c.canContinue = true
	}

	var b *body
	switch {
	case h.chunked:
		b = newChunked(c, c.br, rq, h.expect)
		rq.Body = b
	case h.contentLength > 0:
		b = &body{c: c, br: c.br, remaining: h.contentLength, expect: h.expect}
		rq.Body = b
	default:
		rq.Body = http.NoBody
	}
	if b != nil {
		c.setReadDeadline(time.Time{}) // the body may take as long as it takes
	}
	// The request's context hangs off reqBase, which nothing cancels, so
	// that making and ending it does not lock the connection's context:
	// the connection's context ending reaches the running request through
	// c.linked instead (see cancelRequest), with its cause. A connection
	// context with a deadline is the parent itself, so that the request's
	// context has the deadline too.
	//
	// Direct's requests need what serve put in reqBase for them. They are
	// the connection's lane request, under its lane context; their
	// response and its header map are the connection's too, reused: Direct
	// keeps none of them once it returns (runHandler gives a declined
	// request new ones, and a context of its own, for the handler). The
	// reset below also clears handlerDone, so code Direct left running
	// would write into the next response: Direct leaves none.
	offered := lane && b == nil
	var ctx context.Context
	var cancel context.CancelCauseFunc
	var r *http.Request
	if offered {
		r, ctx, cancel = lr, c.lane.ctx, c.lane.cancel
	} else {
		base := c.reqBase
		if base == nil {
			base = c.ctx
		}
		ctx, cancel = context.WithCancelCause(base)
		r = rq.WithContext(ctx)
	}
	var w *response
	if offered {
		if c.directHeader == nil {
			c.directHeader = make(http.Header, directHeaderSize)
		}
		w = &c.directResp
		*w = response{c: c, req: r, isHead: r.Method == http.MethodHead, header: c.directHeader}
	} else {
		w = &response{c: c, req: r, isHead: r.Method == http.MethodHead, header: make(http.Header, newHeaderSize)}
	}

	c.arm(ctx, cancel, b, offered)
	w, own, aborted := c.runHandler(w, r, offered)
	if own != nil {
		cancel = own // Direct declined: the handler's request had its own
	}
	c.disarm(true)
	if c.hijacked {
		cancel(nil)
		return false
	}
	if aborted {
		cancel(nil)
		return false
	}
	// The goroutines that are ready run before the rest of this answer
	// goes out. Under load, the answers of the connections a round of the
	// scheduler serves then leave back to back instead of one per request
	// path, so a client on this host that sleeps between reads is woken
	// once for a batch rather than once per answer, and every write after
	// the first finds it awake (a wake-up across CPUs is an interrupt,
	// dear in a VM). With nothing else ready the yield returns at once.
	// See bench/README.md, "write coalescing".
	runtime.Gosched()
	w.finish()
	laneAnswered := offered && w == &c.directResp
	if !laneAnswered {
		cancel(nil)
	} // else the lane context goes on to the next request, unless it ended (see laneReq.begin)
	if offered {
		clear(c.directHeader) // whatever Direct did with it
	}
	if laneAnswered {
		c.spares.keep() // Direct answered: it kept nothing of the request
	} else {
		c.spares.release()
	}
	if cap(c.head) > maxKeptHead {
		c.head = nil // a large response head's buffer is not kept while idle
	}
	if c.deadlineSet {
		// A handler's deadlines end with its request, as with net/http.
		c.deadlineSet = false
		_ = c.nc.SetDeadline(time.Time{})
		c.rdl, c.rdlKnown = time.Time{}, true
	}
	reuse := !w.closeAfter && c.werr == nil && !c.clientGone
	if b != nil {
		if !b.finish() {
			reuse = false
			if c.werr == nil {
				c.lingerClose()
			}
		}
	}
	return reuse
}

// laneReq is the request object and context of the requests a connection
// offers to Direct. Direct keeps nothing of a request it answers, so the
// next one reuses both: no request copy, context, or cancellation per
// request. Something ending the context (the client went away, the
// request timed out, the connection's context ended) ends it for good:
// the next request gets new ones. A request Direct declines gets a request
// copy and a context of its own for the handler (runHandler).
type laneReq struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	tmpl   http.Request // zero but for its context
	req    *http.Request
}

// begin returns the lane request, zero but for its context and RemoteAddr.
func (l *laneReq) begin(base context.Context, remoteAddr string) *http.Request {
	if l.req == nil || l.ctx.Err() != nil {
		if l.cancel != nil {
			l.cancel(nil)
		}
		l.ctx, l.cancel = context.WithCancelCause(base)
		l.tmpl = *(&http.Request{}).WithContext(l.ctx)
		l.req = new(http.Request)
	}
	*l.req = l.tmpl
	l.req.RemoteAddr = remoteAddr
	return l.req
}

// newHeaderSize is the size of a new response header map. 16: a proxied
// answer carries a dozen headers (the security set, the request id, the
// backend's); a map made for fewer grows mid-response.
const newHeaderSize = 16

// directHeaderSize is the size of the header map the connection keeps for
// the answers Direct gives. 8: the lane writes the security headers as raw
// lines, so its answers carry the request id, Vary and the backend's few
// fields, and a map made for at most 8 is one group that is scanned rather
// than hashed, and cleared in one go (one made for more is a table, hashed
// on every access). A larger answer grows it as any map grows.
const directHeaderSize = 8

// runHandler offers the request to Server.Direct when direct is set, then
// calls the handler if Direct declined; answered is the response the
// request was given. A handler gets a response and a header map of its own,
// never reused for a later request: code it left behind may still hold
// them. aborted reports that the handler panicked, after which the
// connection is closed without finishing the response (the client sees a
// truncated answer, as with net/http).
func (c *conn) runHandler(w *response, r *http.Request, direct bool) (answered *response, own context.CancelCauseFunc, aborted bool) {
	answered = w
	defer func() {
		if err := recover(); err != nil {
			aborted = true
			if err != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logger().Error("http1: panic serving a request", "remote", c.remoteAddr,
					"method", r.Method, "uri", r.RequestURI, "panic", err, "stack", string(buf))
			}
		}
	}()
	if direct {
		if c.srv.Direct(w, r, c) {
			return w, nil, false
		}
		// The handler's request, context and response are its own, and
		// its context is not the connection's to watch. What ended the
		// lane context while Direct looked ends the handler's.
		ctx, cancel := context.WithCancelCause(c.reqBase)
		r = r.WithContext(ctx)
		own = cancel
		c.watchMu.Lock()
		c.dctx, c.interruptFn, c.on1xx = nil, nil, nil
		c.reqCancel, c.linked = cancel, cancel
		if c.lane.ctx.Err() != nil {
			cancel(context.Cause(c.lane.ctx))
		}
		c.watchMu.Unlock()
		w = &response{c: c, req: r, isHead: w.isHead, header: make(http.Header, newHeaderSize)}
		answered = w
	}
	c.srv.Handler.ServeHTTP(w, r)
	return w, own, false
}

// lingerClose half-closes a connection whose request body was left unread
// and reads (and drops) what the client still sends for a moment, so that
// closing with unread data does not reset the connection before the client
// has read the response.
func (c *conn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	c.setReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = io.CopyN(io.Discard, c.nc, maxDiscard)
}

// readHead returns the next request head, through its blank line, from the
// buffered reader without consuming it (the caller discards it once
// parsed). A head longer than the reader's buffer is gathered into c.head.
func (c *conn) readHead() ([]byte, error) {
	br := c.br
	limit := c.srv.maxHeaderBytes()
	// RFC 9112 §2.2: ignore empty lines before the request line.
	for skipped := 0; ; skipped++ {
		b, err := br.Peek(1)
		if err != nil {
			return nil, err
		}
		if b[0] != '\r' && b[0] != '\n' {
			break
		}
		if skipped > 16 {
			return nil, badRequest("too many empty lines before the request")
		}
		_, _ = br.Discard(1)
	}
	scanned := 0
	deadline := false
	for {
		buf, _ := br.Peek(br.Buffered())
		if end := headEnd(buf, scanned); end > 0 {
			if end > limit {
				return nil, errHeadTooLarge
			}
			return buf[:end], nil
		}
		if len(buf) > limit {
			return nil, errHeadTooLarge
		}
		if i := lastLF(buf); i > 0 {
			scanned = i - 1
		}
		if !deadline {
			// The head did not come in one piece: from now on it must be
			// complete within ReadHeaderTimeout.
			deadline = true
			if d := c.srv.ReadHeaderTimeout; d > 0 {
				c.setReadDeadline(time.Now().Add(d))
			}
		}
		if len(buf) == br.Size() {
			return c.readLongHead(limit)
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return nil, err
		}
	}
}

func lastLF(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			return i
		}
	}
	return -1
}

// readLongHead gathers a head larger than the reader's buffer into c.head,
// line by line, up to limit bytes. Unlike readHead it consumes the head,
// and says so in c.longHead.
func (c *conn) readLongHead(limit int) ([]byte, error) {
	c.head = c.head[:0]
	partial := false // the previous slice ended mid-line
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return nil, err
		}
		c.head = append(c.head, line...)
		if len(c.head) > limit {
			return nil, errHeadTooLarge
		}
		if err == bufio.ErrBufferFull {
			partial = true // a line longer than the buffer: gather the rest
			continue
		}
		wasPartial := partial
		partial = false
		if !wasPartial && (len(line) == 1 || (len(line) == 2 && line[0] == '\r')) {
			c.longHead = true
			return c.head, nil
		}
	}
}

// refuse answers a request the server will not pass on (a malformed or
// oversized head) and lets the connection close. A connection that ended or
// timed out gets no answer.
func (c *conn) refuse(err error) {
	var se *statusError
	if !errors.As(err, &se) {
		return
	}
	c.srv.logf("http1: refused a request from %s: %s", c.remoteAddr, se.msg)
	body := `{"error":"bad_request","status":` + strconv.Itoa(se.status) + "}\n"
	if se.status == http.StatusRequestHeaderFieldsTooLarge {
		body = `{"error":"request_header_too_large","status":431}` + "\n"
	}
	b := appendStatusLine(c.head[:0], true, se.status)
	b = append(b, "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\nDate: "...)
	b = c.appendDate(b)
	b = append(b, "\r\n"...)
	b = appendContentLength(b, int64(len(body)))
	b = append(b, "\r\n"...)
	b = append(b, body...)
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.write(b)
	c.flush()
}

// cancelRequest cancels the running request's context; it runs when the
// connection's context ends.
func (c *conn) cancelRequest() {
	c.watchMu.Lock()
	if c.linked != nil {
		c.cancelLocked(c.linked, context.Cause(c.ctx))
	}
	c.watchMu.Unlock()
}

// arm starts the disconnect watcher's timer for a request, whose context
// ctx cancel ends; b is its body, nil for none; direct: it is offered to
// Server.Direct, for which the connection watches ctx (see Watch). It also
// links cancel to the connection's context (see cancelRequest), calling it
// at once if that has ended already.
func (c *conn) arm(ctx context.Context, cancel context.CancelCauseFunc, b *body, direct bool) {
	c.watchMu.Lock()
	c.inHandler = true
	c.reqCancel = cancel
	c.linked = cancel
	c.watchBody = b
	if direct {
		c.dctx = ctx
	}
	c.watchMu.Unlock()
	if c.ctx.Err() != nil {
		cancel(context.Cause(c.ctx))
	}
	if c.watchTimer == nil {
		c.watchTimer = time.AfterFunc(watchDelay, c.watch)
	} else {
		c.watchTimer.Reset(watchDelay)
	}
}

// watch reads the connection while a request runs: bytes mean the client
// is still there (pipelining; the byte is kept for the next request), an
// error that it has gone, which cancels the request.
func (c *conn) watch() {
	c.watchMu.Lock()
	if b := c.watchBody; b != nil && !b.eofSeen.Load() {
		// The body is still being read from the connection: look again
		// later, once it has been read to its end.
		if c.inHandler {
			c.watchTimer.Reset(watchDelay)
		}
		c.watchMu.Unlock()
		return
	}
	if !c.inHandler || c.watching || c.br.Buffered() > 0 || c.cr.peeked {
		c.watchMu.Unlock()
		return
	}
	c.watching = true
	done := make(chan struct{})
	c.watchDone = done
	_ = c.nc.SetReadDeadline(time.Time{})
	c.rdlKnown = false // the serve loop reads it after disarm, which takes watchMu
	c.watchMu.Unlock()

	n, err := c.nc.Read(c.cr.b[:])

	c.watchMu.Lock()
	if n > 0 {
		c.cr.peeked = true
	}
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		c.clientGone = true
		if c.reqCancel != nil {
			c.cancelLocked(c.reqCancel, nil)
		}
	}
	c.watching = false
	c.watchMu.Unlock()
	close(done)
}

// disarm stops the watcher once the handler has returned (or hijacks the
// connection), waiting for a read in progress to give up. ended: the
// handler has returned, so the request's context is no longer linked to
// the connection's (a hijacked one stays linked until then).
func (c *conn) disarm(ended bool) {
	c.watchTimer.Stop() // arm made it
	c.watchMu.Lock()
	if ended {
		c.linked = nil
	}
	c.armed = false // a Direct request's timeout ends with the request
	// A registration left (the exchange was not stopped) runs, as its
	// context ends now.
	leftover := c.interruptFn
	c.dctx, c.interruptFn, c.on1xx = nil, nil, nil
	c.inHandler = false
	c.reqCancel = nil
	c.watchBody = nil
	watching, done := c.watching, c.watchDone
	if watching {
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
	}
	c.watchMu.Unlock()
	if leftover != nil {
		leftover()
	}
	if watching {
		<-done
		// The watcher cleared the head's deadline and the stop set one in
		// the past: neither may outlive the request (the serve loop sets a
		// deadline only when a timeout is configured).
		c.setReadDeadline(time.Time{})
	}
}

// setReadDeadline sets the connection's read deadline and remembers it.
func (c *conn) setReadDeadline(t time.Time) {
	_ = c.nc.SetReadDeadline(t)
	c.rdl, c.rdlKnown = t, true
}

// waitDeadline sets the read deadline for the wait for the next request, d
// from now. A deadline already set at most deadlineSlack(d) before that
// stays: a busy keep-alive connection then moves its deadline about once a
// second rather than for every request (each move is a runtime timer's),
// and an idle one may close up to the slack early.
func (c *conn) waitDeadline(d time.Duration) {
	want := time.Now().Add(d)
	if c.rdlKnown && !c.rdl.IsZero() && !c.rdl.After(want) && want.Sub(c.rdl) <= deadlineSlack(d) {
		return
	}
	c.setReadDeadline(want)
}

// deadlineSlack is how much earlier than asked waitDeadline may leave a
// deadline of d: a sixteenth of it, at most a second.
func deadlineSlack(d time.Duration) time.Duration {
	return min(d/16, time.Second)
}
