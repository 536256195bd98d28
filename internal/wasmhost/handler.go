package wasmhost

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/altair-gateway/altair/internal/httperr"
)

// Wrap returns next behind the plugin. Per request the guest's
// handle_request runs first; if it returns next=1 the host calls next and
// then handle_response, else the guest's own answer (status, headers, body
// set in handle_request) is sent.
//
// Without buffer_response, next writes straight to the client (streaming,
// flushes and SSE work as without the plugin), so handle_response can read
// the response headers but change nothing. With buffer_response, next's
// status, headers and body (up to MaxBodyBytes, or 502) are held until
// handle_response returns and can all be read and changed; Content-Length
// is then set to the length of the body sent.
func (p *Plugin) Wrap(next http.Handler) http.Handler {
	return &handler{p: p, next: next}
}

type handler struct {
	p    *Plugin
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.p
	inst, err := p.acquire()
	if err != nil {
		p.fail(w, r, "instantiate", err, 0)
		return
	}
	inst.begin(w, r)
	done := false
	defer func() {
		if !done { // next panicked (http.ErrAbortHandler): the guest never saw the response
			inst.end()
			inst.close()
		}
	}()

	start := time.Now()
	ctxNext, err := inst.call(inst.handleRequest, 0, 0)
	spent := time.Since(start)
	if err != nil {
		done = true
		inst.end()
		inst.close()
		inst.resetResponseHeader(w)
		p.fail(w, r, funcHandleRequest, err, spent)
		return
	}
	if uint32(ctxNext) == 0 { // the guest answered
		inst.answer()
		done = true
		inst.end()
		p.release(inst)
		p.observe(spent, false)
		return
	}

	// A status or body the guest set before passing the request on is where
	// the response starts, as in the reference host: next's status replaces
	// the guest's, next's body follows the guest's.
	fw := w
	if inst.features&featureBufferResponse == 0 {
		// Framing is next's (or, after a status the guest set, the
		// server's): a Content-Length or Transfer-Encoding the guest set
		// would sit beside next's, and the client would see two lengths.
		dropFraming(w.Header())
	}
	switch {
	case inst.features&featureBufferResponse != 0:
		inst.bw.reset(w, p.maxBody)
		inst.bw.status = inst.status
		if inst.respWritten {
			inst.bw.body = append(inst.bw.body, inst.respOut...)
		}
		inst.buffering = true
		fw = &inst.bw
	case inst.status != 0 || inst.respWritten:
		w.WriteHeader(inst.statusCode())
		if len(inst.respOut) > 0 {
			_, _ = w.Write(inst.respOut)
		}
		fw = startedWriter{w}
	}
	inst.status, inst.respWritten = 0, false // the first write after next replaces the body
	inst.prepareRequestBody()
	inst.afterNext = true
	h.serveNext(fw, r, inst)
	inst.replay.detach()

	start = time.Now()
	_, err = inst.call(inst.handleResponse, ctxNext>>32, boolBit(inst.bw.overflow))
	spent += time.Since(start)
	done = true
	switch {
	case err != nil:
		buffered := inst.buffering
		inst.end()
		inst.close()
		if buffered { // nothing went out yet: the client gets a clean 500
			p.fail(w, r, funcHandleResponse, err, spent)
		} else {
			p.fail(nil, r, funcHandleResponse, err, spent)
		}
		return
	case inst.buffering && inst.bw.overflow:
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "wasm plugin: response over the buffer limit",
			slog.Int("max_bytes", p.maxBody), slog.String("request_id", r.Header.Get(httperr.RequestIDHeader)))
		httperr.Write(w, r, http.StatusBadGateway, httperr.CodeBadGateway)
	case inst.buffering:
		inst.flush()
	}
	inst.end()
	p.release(inst)
	p.observe(spent, false)
}

// serveNext calls next. A next that aborts (http.ErrAbortHandler, as
// httputil.ReverseProxy does when a write fails) because the response
// overflowed the buffer is not an abort for the client: it gets a 502.
func (h *handler) serveNext(w http.ResponseWriter, r *http.Request, inst *instance) {
	defer func() {
		if inst.buffering && inst.bw.overflow {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				panic(v)
			}
		}
	}()
	h.next.ServeHTTP(w, r)
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// call runs a guest export under the plugin's deadline with parameters a
// and b (handle_request takes none). The stack and the deadline context are
// the instance's, so a call allocates nothing of ours.
func (i *instance) call(fn api.Function, a, b uint64) (uint64, error) {
	i.stack[0], i.stack[1] = a, b
	i.deadline.timer.Reset(i.p.timeout)
	err := fn.CallWithStack(&i.deadline, i.stack)
	if !i.deadline.timer.Stop() {
		// The deadline passed, maybe just as the call returned: wazero may
		// be closing the module, so it must not serve again.
		i.dead = true
		if err == nil {
			err = sys.NewExitError(sys.ExitCodeDeadlineExceeded)
		}
	}
	if err != nil {
		return 0, err
	}
	return i.stack[0], nil
}

// deadlineContext is an instance's reusable call context: it carries the
// instance for the host functions, and its Done channel is closed by the
// instance's timer when a call overruns. An instance whose deadline passed
// is never used again, so the channel never needs replacing.
type deadlineContext struct {
	context.Context // carries the instance; never done
	done            chan struct{}
	timer           *time.Timer
}

func (c *deadlineContext) init(parent context.Context) {
	c.Context = parent
	c.done = make(chan struct{})
	c.timer = time.AfterFunc(time.Hour, func() { close(c.done) })
	c.timer.Stop()
}

func (c *deadlineContext) Done() <-chan struct{} { return c.done }

func (c *deadlineContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (p *Plugin) observe(d time.Duration, failed bool) {
	if p.obs != nil {
		p.obs.Observe(p.name, d, failed)
	}
}

// fail answers a request the plugin could not handle, logs once and counts.
// w is nil when the response already went out.
func (p *Plugin) fail(w http.ResponseWriter, r *http.Request, phase string, err error, d time.Duration) {
	status, code, failed := http.StatusInternalServerError, httperr.CodePluginFailed, true
	var maxErr *http.MaxBytesError
	var bodyErr clientBodyError
	reason := "trap"
	var exit *sys.ExitError
	switch {
	case errors.Is(err, ErrBusy):
		status, code, failed, reason = http.StatusServiceUnavailable, httperr.CodePluginBusy, false, "busy"
	case errors.Is(err, ErrBodyTooLarge), errors.As(err, &maxErr):
		status, code, failed, reason = http.StatusRequestEntityTooLarge, httperr.CodeRequestTooLarge, false, "body_too_large"
	case errors.As(err, &bodyErr):
		status, code, failed, reason = http.StatusBadRequest, httperr.CodeBadRequest, false, "client_body"
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded:
		reason = "deadline"
	case errors.As(err, &exit):
		reason = "exit"
	case errors.Is(err, errABI):
		reason = "abi"
	case phase == "instantiate":
		reason = "instantiate"
	}
	p.observe(d, failed)
	lvl := slog.LevelWarn
	if !failed {
		lvl = slog.LevelDebug
	}
	if p.log.Enabled(r.Context(), lvl) {
		p.log.LogAttrs(r.Context(), lvl, "wasm plugin failed",
			slog.String("phase", phase), slog.String("reason", reason),
			slog.Int("status", status), slog.Float64("duration_ms", float64(d)/float64(time.Millisecond)),
			slog.String("request_id", r.Header.Get(httperr.RequestIDHeader)),
			slog.String("error", err.Error()))
	}
	if w != nil {
		httperr.Write(w, r, status, code)
	}
}

// resetResponseHeader drops the framing headers a failed guest may have set,
// before the error answer.
func (i *instance) resetResponseHeader(w http.ResponseWriter) {
	h := w.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Transfer-Encoding", "Content-Range", "Etag", "Last-Modified"} {
		delete(h, k)
	}
}

// dropFraming removes the headers that frame a response body: the server
// sets them from what is written.
func dropFraming(h http.Header) {
	delete(h, "Content-Length")
	delete(h, "Transfer-Encoding")
}

// bodyAllowed reports whether a response with status may have a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// answer sends the response the guest made in handle_request.
func (i *instance) answer() {
	status := i.statusCode()
	h := i.w.Header()
	delete(h, "Transfer-Encoding")
	if bodyAllowed(status) {
		h.Set("Content-Length", strconv.Itoa(len(i.respOut)))
	}
	i.w.WriteHeader(status)
	if i.r.Method != http.MethodHead && bodyAllowed(status) && len(i.respOut) > 0 {
		_, _ = i.w.Write(i.respOut)
	}
}

// flush sends the buffered response, as handle_response left it.
func (i *instance) flush() {
	status := i.statusCode()
	body := i.bw.body
	if i.respWritten {
		body = i.respOut
	}
	h := i.w.Header()
	clear(h)
	maps.Copy(h, i.bw.header)
	// Trailers of a buffered response are not forwarded: the host does not
	// support them (no "trailers" feature), so none are announced.
	for _, k := range h.Values("Trailer") {
		delete(h, http.CanonicalHeaderKey(k))
	}
	delete(h, "Trailer")
	for k := range h {
		if len(k) > len(http.TrailerPrefix) && k[:len(http.TrailerPrefix)] == http.TrailerPrefix {
			delete(h, k)
		}
	}
	delete(h, "Transfer-Encoding")
	switch {
	case bodyAllowed(status) && (i.r.Method != http.MethodHead || i.respWritten):
		h.Set("Content-Length", strconv.Itoa(len(body)))
	case len(h["Content-Length"]) > 1: // a HEAD's length, duplicated by the guest
		delete(h, "Content-Length")
	}
	i.w.WriteHeader(status)
	if i.r.Method != http.MethodHead && bodyAllowed(status) && len(body) > 0 {
		_, _ = i.w.Write(body)
	}
}

// prepareRequestBody gives the next handler the body the guest left: the
// one it wrote, or, with buffer_request, what it read followed by the rest.
// Without either, next reads on from where the guest stopped.
func (i *instance) prepareRequestBody() {
	r := i.r
	switch {
	case i.reqWritten:
		i.replay.reset(i.reqOut, nil)
		r.Body = &i.replay
		r.ContentLength = int64(len(i.reqOut))
		r.Header.Del("Transfer-Encoding")
		r.TransferEncoding = nil
		if len(i.reqOut) > 0 {
			r.Header.Set("Content-Length", strconv.Itoa(len(i.reqOut)))
		} else {
			r.Header.Del("Content-Length")
			r.Body = http.NoBody
		}
		r.GetBody = nil
	case len(i.reqBuf) > 0:
		var rest io.ReadCloser
		if !i.reqEOF {
			rest = i.reqSrc
		}
		i.replay.reset(i.reqBuf, rest)
		r.Body = &i.replay
	}
}

// replayBody is the request body next reads after the guest read or wrote
// it: buffered bytes, then the rest of the client's body. It belongs to an
// instance and is reused; detach cuts it off when the request ends, so a
// transport still reading the body after next returned cannot see the
// instance's next request.
type replayBody struct {
	mu   sync.Mutex
	buf  []byte
	off  int
	rest io.ReadCloser
	gone bool
}

func (b *replayBody) reset(buf []byte, rest io.ReadCloser) {
	b.mu.Lock()
	b.buf, b.off, b.rest, b.gone = buf, 0, rest, false
	b.mu.Unlock()
}

func (b *replayBody) detach() {
	b.mu.Lock()
	b.buf, b.off, b.rest, b.gone = nil, 0, nil, true
	b.mu.Unlock()
}

func (b *replayBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gone {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.off < len(b.buf) {
		n := copy(p, b.buf[b.off:])
		b.off += n
		return n, nil
	}
	if b.rest != nil {
		return b.rest.Read(p)
	}
	return 0, io.EOF
}

func (b *replayBody) Close() error { return nil } // the server closes the client's body

// bufferedWriter holds next's response for a guest that enabled
// buffer_response. Its header is a copy of the real one, so a failed guest
// leaves the real header as it was for the error answer. It has no Unwrap on
// purpose: a flush or hijack through it would bypass the buffer.
type bufferedWriter struct {
	w           http.ResponseWriter
	header      http.Header
	status      int // the guest's (set before next), then next's
	wroteHeader bool
	body        []byte
	max         int
	overflow    bool
}

func (b *bufferedWriter) reset(w http.ResponseWriter, maxBody int) {
	b.w = w
	if b.header == nil {
		b.header = make(http.Header, len(w.Header()))
	}
	clear(b.header)
	for k, v := range w.Header() {
		b.header[k] = v[:len(v):len(v)] // an append by next must not write into the caller's slice
	}
	b.status, b.wroteHeader, b.body, b.max, b.overflow = 0, false, b.body[:0], maxBody, false
}

func (b *bufferedWriter) release() { b.w = nil }

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(status int) {
	if !b.wroteHeader && status >= 200 { // 1xx are dropped: the real answer is later
		b.status, b.wroteHeader = status, true
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if !b.wroteHeader {
		b.wroteHeader = true
		if b.status == 0 {
			b.status = http.StatusOK
		}
	}
	if b.overflow || len(b.body)+len(p) > b.max {
		b.overflow = true
		return 0, ErrBodyTooLarge
	}
	b.body = append(b.body, p...)
	return len(p), nil
}

// Flush is a no-op: the response goes out after handle_response.
func (b *bufferedWriter) Flush() {}

// startedWriter is next's writer when the guest already sent the status
// (and maybe some body) without buffer_response: next's WriteHeader would
// be superfluous.
type startedWriter struct{ http.ResponseWriter }

func (w startedWriter) WriteHeader(int) {}

func (w startedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
