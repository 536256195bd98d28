package http1

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// response is the http.ResponseWriter of one request. It also implements
// http.Flusher, http.Hijacker and the deadline methods http.ResponseController
// looks for.
//
// The head is serialised when the status is decided (WriteHeader, or the
// first Write), so a handler that changes the header map afterwards changes
// nothing that is sent, as with net/http, without copying the map. The
// framing is decided when the head is committed to the connection: a
// Content-Length the handler set; else, when the handler returns having
// written at most pendMax bytes, their length; else chunked on HTTP/1.1, or
// close-delimited on HTTP/1.0.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header
	isHead bool

	status        int
	wroteHeader   bool  // the status is decided and the head serialised into c.head
	committed     bool  // the head is in the connection's buffer
	chunked       bool  // the body is sent in chunks
	contentLength int64 // the handler's Content-Length, -1 when it set none
	written       int64 // body bytes the handler wrote
	haveType      bool  // the handler set Content-Type (or Content-Encoding)
	trailers      []string
	prefixTrailer bool        // the header held http.TrailerPrefix keys when serialised
	connHeader    []string    // the handler's Connection header
	closeAfter    bool        // close the connection after this response
	handlerDone   atomic.Bool // read by goroutines the handler left behind
	// raw are header lines written before the map's in every head (set by
	// Direct through DirectControl.RawHeader).
	raw []byte
}

// errAfterHandler answers a write made after the handler returned: the
// connection may be carrying another request by then, so nothing reaches it.
var errAfterHandler = errors.New("http1: write after the handler returned")

// pendMax is how much body the server holds back before it commits the head
// without a Content-Length.
const pendMax = 4096

// Header returns the header map the handler fills.
func (w *response) Header() http.Header { return w.header }

// WriteHeader decides the status and serialises the head; 1xx statuses
// (other than 101) are sent at once as informational answers.
func (w *response) WriteHeader(code int) {
	if w.handlerDone.Load() {
		return
	}
	if w.c.hijacked {
		w.c.srv.logf("http1: WriteHeader on a hijacked connection")
		return
	}
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	w.contentLength = -1
	if v := w.header["Content-Length"]; len(v) > 0 {
		if n, ok := parseContentLength(textproto.TrimString(v[0])); ok {
			w.contentLength = n
		} else {
			w.c.srv.logf("http1: invalid Content-Length %q", v[0])
		}
	}
	w.serialiseHead()
	// With a Content-Length, the head waits for the first write, as with
	// net/http, so that the body can still be sniffed for a Content-Type.
	if !bodyAllowed(code) || (w.contentLength >= 0 && (w.haveType || w.contentLength == 0 || w.isHead)) {
		w.commit(nil, false)
	}
}

// writeInformational sends a 1xx answer with the headers set so far.
func (w *response) writeInformational(code int) {
	if code == http.StatusContinue {
		w.c.noContinue()
	}
	c := w.c
	if c.expectPending {
		// A body read on another goroutine may be writing 100 Continue.
		c.contMu.Lock()
		defer c.contMu.Unlock()
	}
	b := appendStatusLine(c.head[:0], w.req.ProtoMinor >= 1, code)
	b = append(b, w.raw...)
	b, _ = appendHeader(b, w.header, skipNoBody)
	b = append(b, "\r\n"...)
	c.head = b
	_, _ = c.bw.Write(b)
	c.flush()
}

// serialiseHead writes the status line and the handler's headers into
// c.head; commit adds the framing lines.
func (w *response) serialiseHead() {
	c := w.c
	h := w.header
	_, w.haveType = h["Content-Type"]
	if !w.haveType {
		w.haveType = len(h["Content-Encoding"]) > 0
	}
	skip := skipFraming
	if w.status == http.StatusNotModified {
		skip = skipNotModified
	}
	b := appendStatusLine(c.head[:0], w.req.ProtoMinor >= 1, w.status)
	b = append(b, w.raw...)
	b, w.prefixTrailer = appendHeader(b, h, skip)
	if _, ok := h["Date"]; !ok {
		b = append(b, "Date: "...)
		b = c.appendDate(b)
		b = append(b, "\r\n"...)
	}
	if tr := h["Trailer"]; len(tr) > 0 {
		w.trailers = w.trailers[:0]
		for _, v := range tr {
			for f := range strings.SplitSeq(v, ",") {
				// As net/http, a field not allowed in a trailer (Host,
				// Authorization, framing...) is not sent as one.
				if f = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(f)); f != "" && httpguts.ValidTrailerHeader(f) {
					w.trailers = append(w.trailers, f)
				}
			}
		}
	}
	if w.connHeader = h["Connection"]; len(w.connHeader) > 0 && hasToken(strings.Join(w.connHeader, ","), "close") {
		w.closeAfter = true
	}
	c.head = b
}

// commit writes the head with its framing lines into the connection's
// buffer. first is the start of the body, for Content-Type sniffing; final
// means the handler has returned and c.pend holds the whole body.
func (w *response) commit(first []byte, final bool) {
	c := w.c
	c.noContinue()
	w.committed = true
	b := c.head
	switch {
	case !bodyAllowed(w.status):
	case w.isHead:
		if w.contentLength >= 0 {
			b = appendContentLength(b, w.contentLength)
		} else if final && w.written > 0 {
			b = appendContentLength(b, w.written)
		}
	case w.contentLength >= 0:
		b = appendContentLength(b, w.contentLength)
	case final && len(w.trailers) == 0 && !w.prefixTrailer:
		b = appendContentLength(b, int64(len(c.pend)))
	case w.req.ProtoMinor >= 1:
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		w.closeAfter = true // HTTP/1.0 without a length: the close ends the body
	}
	if bodyAllowed(w.status) && !w.haveType && len(first) > 0 && !w.isHead {
		b = append(b, "Content-Type: "...)
		b = append(b, http.DetectContentType(first)...)
		b = append(b, "\r\n"...)
	}
	if c.wantsClose || c.srv.shuttingDown() || (c.expectPending && !c.continueSent) {
		w.closeAfter = true
	}
	// The connection's fate is the server's to say: the handler's
	// Connection header is sent only while the connection stays open.
	switch {
	case w.closeAfter:
		b = append(b, "Connection: close\r\n"...)
	case len(w.connHeader) > 0:
		for _, v := range w.connHeader {
			b = appendField(b, "Connection", v)
		}
	case c.keepAlive10:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	c.head = b
	c.write(b)
}

// Write sends body bytes, holding back the first pendMax while the framing is
// open.
func (w *response) Write(p []byte) (int, error) {
	if w.handlerDone.Load() {
		return 0, errAfterHandler
	}
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength >= 0 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if w.isHead {
		return len(p), nil
	}
	c := w.c
	if !w.committed {
		if len(c.pend)+len(p) <= pendMax {
			c.pend = append(c.pend, p...)
			return len(p), nil
		}
		first := c.pend
		if len(first) == 0 {
			first = p
		}
		w.commit(first, false)
		if len(c.pend) > 0 {
			w.writeBody(c.pend)
			c.pend = c.pend[:0]
		}
	}
	w.writeBody(p)
	if c.werr != nil {
		return 0, c.werr
	}
	return len(p), nil
}

func (w *response) writeBody(p []byte) {
	c := w.c
	if !w.chunked {
		c.write(p)
		return
	}
	var hx [20]byte
	b := strconv.AppendInt(hx[:0], int64(len(p)), 16)
	b = append(b, '\r', '\n')
	c.write(b)
	c.write(p)
	c.write(crlf)
}

var crlf = []byte("\r\n")

// Flush commits the head (chunked when no length is known) and sends what is
// buffered.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting a failed write; http.ResponseController
// prefers it.
func (w *response) FlushError() error {
	if w.handlerDone.Load() {
		return errAfterHandler
	}
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		c := w.c
		w.commit(c.pend, false)
		if len(c.pend) > 0 {
			w.writeBody(c.pend)
			c.pend = c.pend[:0]
		}
	}
	w.c.flush()
	return w.c.werr
}

// finish completes the response once the handler has returned.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	c := w.c
	if !w.committed {
		w.commit(c.pend, true)
		if len(c.pend) > 0 {
			w.writeBody(c.pend)
		}
	}
	c.pend = c.pend[:0]
	if w.chunked {
		b := append(c.head[:0], "0\r\n"...)
		b = w.appendTrailers(b)
		b = append(b, "\r\n"...)
		c.head = b
		c.write(b)
	}
	if !w.isHead && bodyAllowed(w.status) && w.contentLength >= 0 && w.written != w.contentLength {
		w.closeAfter = true // the handler wrote less than it announced
	}
	// Set before the flush: once the client has the response, a write
	// from a goroutine the handler left behind must see it.
	w.handlerDone.Store(true)
	c.flush()
}

// appendTrailers adds the declared trailers and those set with
// http.TrailerPrefix.
func (w *response) appendTrailers(b []byte) []byte {
	for _, k := range w.trailers {
		switch k {
		case "Transfer-Encoding", "Content-Length", "Trailer":
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue // as net/http's Header.Write: no field with an invalid name
		}
		for _, v := range w.header[k] {
			b = appendField(b, k, v)
		}
	}
	for k, vs := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && httpguts.ValidHeaderFieldName(name) {
			for _, v := range vs {
				b = appendField(b, name, v)
			}
		}
	}
	return b
}

// Hijack hands the connection to the handler (WebSocket and other upgrades).
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.handlerDone.Load() {
		return nil, nil, errors.New("http1: Hijack after the handler returned")
	}
	c.disarm(false)
	if w.wroteHeader && !w.committed {
		w.commit(c.pend, false)
		if len(c.pend) > 0 {
			w.writeBody(c.pend)
			c.pend = c.pend[:0]
		}
	}
	c.flush()
	if c.werr != nil {
		return nil, nil, c.werr
	}
	c.hijacked = true
	_ = c.nc.SetDeadline(time.Time{})
	c.setState(http.StateHijacked)
	return c.nc, bufio.NewReadWriter(c.br, c.bw), nil
}

// SetReadDeadline sets the connection's read deadline (http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.deadlineSet = true
	return w.c.nc.SetReadDeadline(t)
}

// SetWriteDeadline sets the connection's write deadline (http.ResponseController).
func (w *response) SetWriteDeadline(t time.Time) error {
	w.c.deadlineSet = true
	return w.c.nc.SetWriteDeadline(t)
}

// EnableFullDuplex allows reading the request body while writing the response,
// which this server always does (http.ResponseController).
func (w *response) EnableFullDuplex() error { return nil }

// bodyAllowed reports whether a response with status may have a body (RFC
// 9110 §6.4.1).
func bodyAllowed(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

// Header keys that the server writes itself, per kind of response.
const (
	skipFraming = iota
	skipNotModified
	skipNoBody
)

// appendHeader writes h's fields, skipping the framing fields (and for a 304,
// Content-Type), trailer placeholders and invalid names; a value's CR and LF
// become spaces, as net/http does. It reports whether h held
// http.TrailerPrefix keys (which, as with net/http, make the body chunked).
func appendHeader(b []byte, h http.Header, skip int) ([]byte, bool) {
	prefixTrailer := false
	for k, vs := range h {
		switch k {
		case "Content-Length", "Transfer-Encoding":
			continue // commit writes the framing
		case "Content-Type":
			if skip == skipNotModified {
				continue
			}
		case "Connection":
			if skip != skipNoBody {
				continue // commit writes it
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			prefixTrailer = true
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vs {
			b = appendField(b, k, v)
		}
	}
	return b, prefixTrailer
}

// appendField writes "k: v\r\n" with v's line breaks turned into spaces and
// surrounding whitespace trimmed.
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ':', ' ')
	v = textproto.TrimString(v)
	start := len(b)
	b = append(b, v...)
	for i := start; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	return append(b, '\r', '\n')
}

func appendContentLength(b []byte, n int64) []byte {
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

// statusLines are the HTTP/1.1 status lines of the codes net/http names.
var statusLines = func() (t [600]string) {
	for code := 100; code < 600; code++ {
		if s := http.StatusText(code); s != "" {
			t[code] = fmt.Sprintf("HTTP/1.1 %03d %s\r\n", code, s)
		}
	}
	return t
}()

func appendStatusLine(b []byte, is11 bool, code int) []byte {
	if is11 && code < len(statusLines) && statusLines[code] != "" {
		return append(b, statusLines[code]...)
	}
	if is11 {
		b = append(b, "HTTP/1.1 "...)
	} else {
		b = append(b, "HTTP/1.0 "...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if t := http.StatusText(code); t != "" {
		b = append(b, t...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, '\r', '\n')
}
