package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
)

// body is a request body: Content-Length bytes, or chunks and trailers, read
// from the connection's buffered reader. A handler may hand it to another
// goroutine (a transport sending it upstream), and the server closes it when
// the handler returns, so reads and Close are serialised by mu; after Close,
// Read fails rather than reading the connection's next request.
type body struct {
	mu        sync.Mutex
	c         *conn
	br        *bufio.Reader
	remaining int64     // Content-Length bytes left; unused when chunked
	chunked   io.Reader // httputil's chunked reader; nil for Content-Length
	trailer   http.Header
	expect    bool // send 100 Continue before the first read
	eof       bool
	eofSeen   atomic.Bool // eof, for the disconnect watcher: br is no longer read
	closed    bool
	err       error // a framing error: the connection is not reusable
}

// maxTrailerBytes bounds a chunked request's trailer section.
const maxTrailerBytes = 64 << 10

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

func (b *body) readLocked(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.expect {
		b.expect = false
		b.c.writeContinue()
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.chunked == nil {
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err := b.br.Read(p)
		b.remaining -= int64(n)
		if b.remaining == 0 {
			b.eof = true
			b.eofSeen.Store(true)
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			b.err = err
		}
		return n, err
	}
	n, err := b.chunked.Read(p)
	if err == io.EOF {
		if terr := b.readTrailer(); terr != nil {
			b.err = terr
			return n, terr
		}
		b.eof = true
		b.eofSeen.Store(true)
		return n, io.EOF
	}
	if err != nil {
		if err == io.ErrUnexpectedEOF || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
	}
	return n, err
}

// readTrailer reads the trailer section after the last chunk (RFC 9112
// §7.1.2) into the request's Trailer. Only the fields the request declared
// in its Trailer header are kept (net/http keeps all): a field it did not
// announce, such as a late Authorization, never reaches the handler.
func (b *body) readTrailer() error {
	total := 0
	for {
		line, err := b.br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read trailer: %w", err)
		}
		total += len(line)
		if total > maxTrailerBytes {
			return errors.New("trailer section too large")
		}
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			return nil
		}
		s := string(line)
		k, v, ok := cutColon(s)
		if !ok || !httpguts.ValidHeaderFieldName(k) {
			return errors.New("malformed trailer line")
		}
		v = strings.Trim(v, " \t")
		if !httpguts.ValidHeaderFieldValue(v) {
			return errors.New("invalid trailer value")
		}
		k = canonicalKey(k)
		if b.trailer == nil {
			continue
		}
		if _, declared := b.trailer[k]; declared {
			b.trailer[k] = append(b.trailer[k], v)
		}
	}
}

// cutColon splits a header line (with its line ending) at its colon.
func cutColon(s string) (string, string, bool) {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
		if n := len(s); n > 0 && s[n-1] == '\r' {
			s = s[:n-1]
		}
	}
	if s == "" || s[0] == ' ' || s[0] == '\t' {
		return "", "", false
	}
	return strings.Cut(s, ":")
}

func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// maxDiscard is how much of an unread request body the server reads to keep
// the connection (net/http's limit); a larger rest closes it.
const maxDiscard = 256 << 10

// finish closes the body once the handler has returned and reports whether
// the connection can carry another request: what the handler left unread is
// read and dropped, up to maxDiscard.
func (b *body) finish() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.err != nil {
		return false
	}
	if b.eof {
		return true
	}
	if b.expect {
		// The client waits for 100 Continue before it sends the body: it was
		// never asked for, so the connection cannot be reused.
		return false
	}
	if b.chunked == nil && b.remaining > maxDiscard {
		return false
	}
	var buf [4096]byte
	total := 0
	for total <= maxDiscard {
		n, err := b.readLocked(buf[:])
		total += n
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// newChunked returns the body of a chunked request.
func newChunked(c *conn, br *bufio.Reader, r *http.Request, expect bool) *body {
	return &body{c: c, br: br, chunked: httputil.NewChunkedReader(br), trailer: r.Trailer, expect: expect}
}
