package compress

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// valVary is the Vary value for a response that had none (len == cap, so an
// append copies it; nothing writes its element in place).
var valVary = []string{hAcceptEncoding}

// valVaryOrigin is the Vary value for a response whose Vary was Origin
// alone, as CORS leaves it, shared the same way.
var valVaryOrigin = []string{"Origin", hAcceptEncoding}

// Wrap returns next with its responses encoded for clients that accept it.
//
// Whether to encode is decided when the handler writes the header, from the
// status, the headers and the request. When the length is not declared, up
// to MinSize bytes are held back first: a body that ends below MinSize goes
// out as is. A Flush before then means the handler is streaming
// (httputil.ReverseProxy flushes after every write of a response without
// Content-Length), so encoding starts at once whatever the size. From then
// on every Flush flushes the encoder too, so what the handler flushed
// reaches the client at once: server-sent events, when text/event-stream is
// among the types, arrive event by event.
//
// The writer passed to next implements http.Flusher, http.Hijacker (an
// upgrade passes through untouched) and Unwrap for http.ResponseController.
// If next panics (httputil.ReverseProxy aborts with http.ErrAbortHandler
// mid-body), the encoder in use is dropped rather than pooled and the panic
// goes on up.
func (c *Compressor) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			next.ServeHTTP(w, r)
			return
		}
		cw := c.writers.Get().(*responseWriter)
		cw.reset(w, c, r)
		completed := false
		defer func() {
			if !completed { // a panic or runtime.Goexit
				cw.abort()
			}
		}()
		next.ServeHTTP(cw, r)
		cw.finish()
		completed = true
		cw.reset(nil, nil, nil)
		c.writers.Put(cw)
	})
}

// state is where a response is in the decision to encode it.
type state uint8

const (
	stateStart  state = iota // no header written yet
	stateHold                // header held and body buffered until MinSize
	statePlain               // sent as it is
	stateEncode              // sent through an encoder
	stateDone                // hijacked or aborted
)

// responseWriter is the http.ResponseWriter that Wrap hands to its handler.
// Pooled per Compressor.
type responseWriter struct {
	http.ResponseWriter
	c       *Compressor
	cd      coding   // the coding negotiated; identity: none
	skip    bool     // HEAD or Range: never encoded
	inm     []string // the request's If-None-Match
	state   state
	status  int    // held in stateHold
	buf     []byte // body held in stateHold
	pe      *pooledEncoder
	pending bool  // bytes written to pe since its last flush
	err     error // the first error writing through pe
}

func (w *responseWriter) reset(rw http.ResponseWriter, c *Compressor, r *http.Request) {
	buf := w.buf[:0]
	*w = responseWriter{ResponseWriter: rw, c: c, buf: buf}
	if r != nil {
		w.cd = c.negotiate(r.Header[hAcceptEncoding])
		w.skip = r.Method == http.MethodHead || len(r.Header[hRange]) > 0
		w.inm = r.Header["If-None-Match"]
	}
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteHeader decides whether the response is encoded. Informational
// answers other than 101 pass straight through.
func (w *responseWriter) WriteHeader(code int) {
	switch w.state {
	case stateStart:
	case statePlain, stateEncode:
		w.ResponseWriter.WriteHeader(code) // let net/http report the superfluous call
		return
	default:
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	h := w.Header()
	ct, compressible := w.c.compressible(h, code)
	if compressible {
		addVary(h)
	}
	if code == http.StatusNotModified && w.cd != identity && len(h[hContentEncoding]) == 0 && (ct == "" || compressible) {
		// The client's stored copy may be one this package encoded, whose
		// ETag it weakened: keep the 304's tag matching it.
		weakenIfClientHasWeak(h, w.inm)
	}
	if !compressible || w.cd == identity || w.skip || !bodyEncodable(code) ||
		encoded(h[hContentEncoding]) || len(h[hContentRange]) > 0 {
		w.state = statePlain
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if n, known := contentLength(h[hContentLength]); known {
		if n < int64(w.c.minSize) {
			w.state = statePlain
			w.ResponseWriter.WriteHeader(code)
			return
		}
		w.start(code)
		return
	}
	if len(h[hTrailer]) > 0 {
		// Trailer values are set in the header map after the body: holding
		// the header back would send them as header fields.
		w.start(code)
		return
	}
	w.state, w.status = stateHold, code
}

// compressible reports whether a final response with header h and status
// code could be encoded, and returns its Content-Type.
func (c *Compressor) compressible(h http.Header, code int) (string, bool) {
	ct := ""
	if v := h[hContentType]; len(v) > 0 {
		ct = v[0]
	}
	return ct, ct != "" && c.types.match(ct) && code != http.StatusSwitchingProtocols && !noTransform(h[hCacheControl])
}

// Identity reports whether Wrap sends the response to r unencoded: r
// accepts no coding c uses. Such a response differs from the wrapped
// handler's only by what MarkVary adds.
func (c *Compressor) Identity(r *http.Request) bool {
	return c.negotiate(r.Header[hAcceptEncoding]) == identity
}

// MarkVary does to the header of a response with status code what Wrap's
// writer does for a client Identity holds for: Vary: Accept-Encoding on a
// final response that could have been encoded for another client.
func (c *Compressor) MarkVary(h http.Header, code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		return
	}
	if _, ok := c.compressible(h, code); ok {
		addVary(h)
	}
}

// start sends the header of an encoded response and takes an encoder.
func (w *responseWriter) start(code int) {
	h := w.Header()
	h[hContentEncoding] = contentEncoding[w.cd]
	delete(h, hContentLength)
	delete(h, hAcceptRanges) // ranges of the identity body no longer apply
	weakenETag(h)
	w.ResponseWriter.WriteHeader(code)
	w.pe = w.c.acquire(w.cd, w.ResponseWriter)
	w.state = stateEncode
}

// startHeld starts encoding a held response and encodes what was held.
func (w *responseWriter) startHeld() error {
	w.start(w.status)
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.encode(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *responseWriter) Write(b []byte) (int, error) {
	switch w.state {
	case stateStart:
		w.WriteHeader(http.StatusOK)
		return w.Write(b)
	case statePlain:
		return w.ResponseWriter.Write(b)
	case stateEncode:
		return w.encode(b)
	case stateHold:
		if len(w.buf)+len(b) < w.c.minSize {
			w.buf = append(w.buf, b...)
			return len(b), nil
		}
		if err := w.startHeld(); err != nil {
			return 0, err
		}
		return w.encode(b)
	}
	return 0, http.ErrHijacked
}

func (w *responseWriter) encode(b []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.pe.enc.Write(b)
	if err != nil {
		w.err = err
	}
	w.pending = w.pending || n > 0
	return n, err
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() {
	_ = w.FlushError() // http.Flusher has no way to report it
}

// FlushError flushes the encoder, then the wrapped writer. A flush of a
// response still held below MinSize starts encoding it: the handler is
// streaming, and the rest of the body may be far larger.
func (w *responseWriter) FlushError() error {
	switch w.state {
	case stateStart:
		w.WriteHeader(http.StatusOK) // as net/http does on a Flush before WriteHeader
		return w.FlushError()
	case stateDone:
		return http.ErrHijacked
	case stateHold:
		if err := w.startHeld(); err != nil {
			return err
		}
	}
	if w.state == stateEncode && w.pending {
		if w.err != nil {
			return w.err
		}
		if err := w.pe.enc.Flush(); err != nil {
			w.err = err
			return err
		}
		w.pending = false
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands over the connection (an upgrade, such as a WebSocket); the
// response is no longer this writer's.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.drop()
		w.state = stateDone
	}
	return conn, brw, err
}

// finish completes the response after the handler returned.
func (w *responseWriter) finish() {
	switch w.state {
	case stateHold: // the whole body is under MinSize: send it as it is
		w.state = statePlain
		w.ResponseWriter.WriteHeader(w.status)
		if len(w.buf) > 0 {
			_, _ = w.ResponseWriter.Write(w.buf) // the client went away; nothing to do
		}
	case stateEncode:
		pe := w.pe
		w.pe = nil
		err := w.err
		if err == nil {
			err = pe.enc.Close()
		}
		w.c.release(pe, err == nil)
	}
}

// abort gives up after a panic: the encoder may be mid-stream, so it is
// dropped, and nothing more is written.
func (w *responseWriter) abort() {
	w.drop()
	w.state = stateDone
}

func (w *responseWriter) drop() {
	if w.pe != nil {
		pe := w.pe
		w.pe = nil
		w.c.release(pe, false)
	}
}

// bodyEncodable reports whether a response with this status has a body that
// may be encoded: not 1xx, 204, 205 or 304 (no body) nor 206 (a range of
// the identity body).
func bodyEncodable(code int) bool {
	switch code {
	case http.StatusNoContent, http.StatusResetContent, http.StatusPartialContent, http.StatusNotModified:
		return false
	}
	return code >= 200
}

// encoded reports whether a Content-Encoding is set. "identity" (obsolete,
// but seen) counts as none.
func encoded(vs []string) bool {
	for _, v := range vs {
		if v = trimOWS(v); v != "" && !strings.EqualFold(v, "identity") {
			return true
		}
	}
	return false
}

// contentLength parses a Content-Length; known is false when there is none
// or it is not a number.
func contentLength(vs []string) (n int64, known bool) {
	if len(vs) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(trimOWS(vs[0]), 10, 64)
	return n, err == nil && n >= 0
}

// noTransform reports whether Cache-Control has no-transform.
func noTransform(vs []string) bool {
	for _, v := range vs {
		for v != "" {
			d := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				d, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if i := strings.IndexByte(d, '='); i >= 0 {
				d = d[:i]
			}
			if strings.EqualFold(trimOWS(d), "no-transform") {
				return true
			}
		}
	}
	return false
}

// addVary adds Accept-Encoding to Vary unless it is there or Vary is "*".
func addVary(h http.Header) {
	vs := h[hVary]
	switch {
	case len(vs) == 0:
		h[hVary] = valVary
		return
	case len(vs) == 1 && vs[0] == "Origin":
		h[hVary] = valVaryOrigin
		return
	}
	for _, v := range vs {
		for v != "" {
			e := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				e, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if e = trimOWS(e); e == "*" || strings.EqualFold(e, hAcceptEncoding) {
				return
			}
		}
	}
	// A new slice: the old one may be shared with other responses.
	out := make([]string, len(vs), len(vs)+1)
	copy(out, vs)
	h[hVary] = append(out, hAcceptEncoding)
}

// weakenETag turns a strong ETag ("x") into a weak one (W/"x").
func weakenETag(h http.Header) {
	vs := h[hETag]
	if len(vs) == 0 || !strings.HasPrefix(vs[0], `"`) {
		return
	}
	h[hETag] = []string{"W/" + vs[0]}
}

// weakenIfClientHasWeak weakens a 304's strong ETag "x" when the request's
// If-None-Match lists W/"x": the client holds the weakened tag of an encoded
// copy, and a strong tag in the 304 would not select it for update.
func weakenIfClientHasWeak(h http.Header, inm []string) {
	vs := h[hETag]
	if len(vs) == 0 || !strings.HasPrefix(vs[0], `"`) {
		return
	}
	tag := vs[0]
	for _, v := range inm {
		for {
			i := strings.Index(v, tag)
			if i < 0 {
				break
			}
			if i >= 2 && v[i-2:i] == "W/" {
				weakenETag(h)
				return
			}
			v = v[i+len(tag):]
		}
	}
}
