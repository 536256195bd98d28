package compress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// response describes what a test handler answers.
type response struct {
	status  int         // 0: 200
	header  http.Header // set before WriteHeader
	body    []byte
	chunk   int  // write size; 0: one write
	declare bool // set Content-Length
}

func (rs response) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		for k, v := range rs.header {
			h[k] = slices.Clone(v)
		}
		if rs.declare {
			h.Set("Content-Length", strconv.Itoa(len(rs.body)))
		}
		status := rs.status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		b := rs.body
		for len(b) > 0 {
			n := len(b)
			if rs.chunk > 0 {
				n = min(n, rs.chunk)
			}
			if _, err := w.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
	})
}

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

func request(method, ae string) *http.Request {
	r := httptest.NewRequest(method, "/api", nil)
	if ae != "" {
		r.Header.Set("Accept-Encoding", ae)
	}
	return r
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	bodies := []struct {
		name string
		body []byte
	}{
		{"min size", testJSON(DefaultMinSize)[:DefaultMinSize]},
		{"16KiB", testJSON(16 << 10)},
		{"1MiB", testJSON(1 << 20)},
	}
	writes := []struct {
		name    string
		chunk   int
		declare bool
	}{
		{"declared, one write", 0, true},
		{"undeclared, one write", 0, false},
		{"undeclared, 100-byte writes", 100, false},
		{"declared, 7-byte writes", 7, true},
	}
	for _, ae := range []string{"zstd", "br", "gzip"} {
		for _, b := range bodies {
			for _, wr := range writes {
				if len(b.body) >= 1<<20 && wr.name != "undeclared, one write" {
					continue // slow under -race, and adds nothing
				}
				t.Run(ae+"/"+b.name+"/"+wr.name, func(t *testing.T) {
					t.Parallel()
					rs := response{header: jsonHeader(), body: b.body, chunk: wr.chunk, declare: wr.declare}
					rs.header.Set("Etag", `"v1"`)
					rs.header.Set("Accept-Ranges", "bytes")
					rs.header.Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
					w := serve(c, rs.handler(), request(http.MethodGet, ae))
					h := w.Result().Header
					if got := h.Get("Content-Encoding"); got != ae {
						t.Fatalf("Content-Encoding = %q, want %q", got, ae)
					}
					if got := h.Values("Content-Length"); len(got) != 0 {
						t.Errorf("Content-Length = %q, want none", got)
					}
					if got := h.Values("Accept-Ranges"); len(got) != 0 {
						t.Errorf("Accept-Ranges = %q, want none", got)
					}
					if got := h.Values("Vary"); !slices.Equal(got, []string{"Accept-Encoding"}) {
						t.Errorf("Vary = %q, want [Accept-Encoding]", got)
					}
					if got := h.Get("Etag"); got != `W/"v1"` {
						t.Errorf("ETag = %q, want %q", got, `W/"v1"`)
					}
					if got := h.Get("Last-Modified"); got == "" {
						t.Error("Last-Modified dropped")
					}
					enc := w.Body.Bytes()
					if len(enc) >= len(b.body) {
						t.Errorf("encoded %d bytes into %d, want fewer", len(b.body), len(enc))
					}
					if got := decode(t, ae, enc); !bytes.Equal(got, b.body) {
						t.Errorf("decoded body differs: %d bytes, want %d", len(got), len(b.body))
					}
				})
			}
		}
	}
}

func TestNotEncoded(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	big := testJSON(8 << 10)
	tests := []struct {
		name     string
		method   string
		ae       string
		reqHdr   http.Header
		resp     response
		wantVary bool
	}{
		{name: "no Accept-Encoding", ae: "", resp: response{header: jsonHeader(), body: big}, wantVary: true},
		{name: "only codings not offered", ae: "deflate", resp: response{header: jsonHeader(), body: big}, wantVary: true},
		{name: "declared small body", ae: "gzip", resp: response{header: jsonHeader(), body: big[:DefaultMinSize-1], declare: true}, wantVary: true},
		{name: "undeclared small body", ae: "gzip", resp: response{header: jsonHeader(), body: big[:DefaultMinSize-1], chunk: 10}, wantVary: true},
		{name: "empty body", ae: "gzip", resp: response{header: jsonHeader()}, wantVary: true},
		{name: "already encoded", ae: "gzip", resp: response{header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"br"}}, body: big}, wantVary: true},
		{name: "image/png", ae: "gzip", resp: response{header: http.Header{"Content-Type": {"image/png"}}, body: big}},
		{name: "no Content-Type", ae: "gzip", resp: response{body: big}},
		{name: "SSE by default", ae: "gzip", resp: response{header: http.Header{"Content-Type": {"text/event-stream"}}, body: big}},
		{name: "no-transform", ae: "gzip", resp: response{header: http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"public, No-Transform"}}, body: big}},
		{name: "204", ae: "gzip", resp: response{status: http.StatusNoContent, header: jsonHeader()}, wantVary: true},
		{name: "304", ae: "gzip", resp: response{status: http.StatusNotModified, header: jsonHeader()}, wantVary: true},
		{name: "HEAD", method: http.MethodHead, ae: "gzip", resp: response{header: jsonHeader(), body: big, declare: true}, wantVary: true},
		{name: "Range request", ae: "gzip", reqHdr: http.Header{"Range": {"bytes=0-99"}}, resp: response{header: jsonHeader(), body: big}, wantVary: true},
		{name: "206", ae: "gzip", resp: response{status: http.StatusPartialContent, header: http.Header{"Content-Type": {"application/json"}, "Content-Range": {"bytes 0-8191/20000"}}, body: big}, wantVary: true},
		{name: "Content-Range on a 200", ae: "gzip", resp: response{header: http.Header{"Content-Type": {"application/json"}, "Content-Range": {"bytes 0-8191/8192"}}, body: big}, wantVary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			r := request(method, tt.ae)
			for k, v := range tt.reqHdr {
				r.Header[k] = v
			}
			rs := tt.resp
			if rs.header == nil {
				rs.header = http.Header{}
			}
			rs.header.Set("Etag", `"v1"`)
			w := serve(c, rs.handler(), r)
			h := w.Result().Header
			wantCE := rs.header.Get("Content-Encoding")
			if got := h.Get("Content-Encoding"); got != wantCE {
				t.Errorf("Content-Encoding = %q, want %q", got, wantCE)
			}
			if got := h.Get("Etag"); got != `"v1"` {
				t.Errorf("ETag = %q, want it unchanged", got)
			}
			if rs.declare {
				if got := h.Get("Content-Length"); got != strconv.Itoa(len(rs.body)) {
					t.Errorf("Content-Length = %q, want %d", got, len(rs.body))
				}
			}
			var wantVary []string
			if tt.wantVary {
				wantVary = []string{"Accept-Encoding"}
			}
			if got := h.Values("Vary"); !slices.Equal(got, wantVary) {
				t.Errorf("Vary = %q, want %q", got, wantVary)
			}
			wantStatus := rs.status
			if wantStatus == 0 {
				wantStatus = http.StatusOK
			}
			if w.Code != wantStatus {
				t.Errorf("status = %d, want %d", w.Code, wantStatus)
			}
			if !bytes.Equal(w.Body.Bytes(), rs.body) {
				t.Errorf("body changed: %d bytes, want the handler's %d", w.Body.Len(), len(rs.body))
			}
		})
	}
}

func TestVary(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	tests := []struct {
		name string
		ct   string
		ae   string
		give []string
		want []string
	}{
		{"none", "text/html", "gzip", nil, []string{"Accept-Encoding"}},
		{"none, client without codings", "text/html", "", nil, []string{"Accept-Encoding"}},
		{"merged", "text/html", "gzip", []string{"Origin"}, []string{"Origin", "Accept-Encoding"}},
		{"merged over lines", "text/html", "br", []string{"Origin", "Cookie, Authorization"}, []string{"Origin", "Cookie, Authorization", "Accept-Encoding"}},
		{"already there", "text/html", "gzip", []string{"Origin, accept-encoding"}, []string{"Origin, accept-encoding"}},
		{"already there on a later line", "text/html", "gzip", []string{"Origin", " Accept-Encoding "}, []string{"Origin", " Accept-Encoding "}},
		{"star", "text/html", "gzip", []string{"*"}, []string{"*"}},
		{"not compressible", "image/png", "gzip", []string{"Origin"}, []string{"Origin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			shared := slices.Clip(slices.Clone(tt.give))
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tt.ct)
				if shared != nil {
					w.Header()["Vary"] = shared
				}
				_, _ = w.Write(testJSON(4 << 10))
			})
			w := serve(c, h, request(http.MethodGet, tt.ae))
			if got := w.Result().Header.Values("Vary"); !slices.Equal(got, tt.want) {
				t.Errorf("Vary = %q, want %q", got, tt.want)
			}
			if !slices.Equal(shared, tt.give) {
				t.Errorf("the handler's Vary slice was changed in place: %q", shared)
			}
		})
	}
}

func TestETag(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	big := testJSON(4 << 10)
	tests := []struct {
		name   string
		ae     string
		inm    string
		status int
		etag   string
		want   string
	}{
		{"strong weakened", "gzip", "", 200, `"abc"`, `W/"abc"`},
		{"weak kept", "gzip", "", 200, `W/"abc"`, `W/"abc"`},
		{"not encoded: kept", "", "", 200, `"abc"`, `"abc"`},
		{"304 to a client holding the weak tag", "gzip", `"x", W/"abc"`, 304, `"abc"`, `W/"abc"`},
		{"304 to a client holding the strong tag", "gzip", `"abc"`, 304, `"abc"`, `"abc"`},
		{"304 to a client without codings", "", `W/"abc"`, 304, `"abc"`, `"abc"`},
		{"304 with an unrelated weak tag", "gzip", `W/"abcd"`, 304, `"abc"`, `"abc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Etag", tt.etag)
				if tt.status == http.StatusNotModified {
					w.WriteHeader(tt.status) // as net/http does: no Content-Type
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(big)
			})
			r := request(http.MethodGet, tt.ae)
			if tt.inm != "" {
				r.Header.Set("If-None-Match", tt.inm)
			}
			w := serve(c, h, r)
			if got := w.Result().Header.Get("Etag"); got != tt.want {
				t.Errorf("ETag = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHold checks the decision for a body of unknown length: held below
// MinSize, then encoded or sent as it is.
func TestHold(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{MinSize: 100})
	body := testJSON(4 << 10)
	tests := []struct {
		name   string
		writes []int // sizes of successive writes
		flush  int   // flush after this many writes; 0: never
		wantCE string
	}{
		{"one write under", []int{99}, 0, ""},
		{"writes that stay under", []int{50, 49}, 0, ""},
		{"writes that reach it", []int{50, 50}, 0, "gzip"},
		{"a small then a large write", []int{10, 3000}, 0, "gzip"},
		{"one large write", []int{3000}, 0, "gzip"},
		{"flush under: a stream", []int{10, 10}, 1, "gzip"},
		{"flush before any write", []int{10}, -1, "gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var want []byte
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				if tt.flush < 0 {
					w.(http.Flusher).Flush()
				}
				off := 0
				for i, n := range tt.writes {
					_, _ = w.Write(body[off : off+n])
					want = append(want, body[off:off+n]...)
					off += n
					if i+1 == tt.flush {
						if err := http.NewResponseController(w).Flush(); err != nil {
							t.Errorf("Flush() error = %v", err)
						}
					}
				}
			})
			w := serve(c, h, request(http.MethodGet, "gzip"))
			if got := w.Result().Header.Get("Content-Encoding"); got != tt.wantCE {
				t.Fatalf("Content-Encoding = %q, want %q", got, tt.wantCE)
			}
			if got := decode(t, tt.wantCE, w.Body.Bytes()); !bytes.Equal(got, want) {
				t.Errorf("body = %q, want %q", got, want)
			}
			if tt.flush != 0 && !w.Flushed {
				t.Error("Flush did not reach the underlying writer")
			}
		})
	}
}

func TestFlushPlain(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write([]byte("png"))
		w.(http.Flusher).Flush()
	})
	w := serve(c, h, request(http.MethodGet, "gzip"))
	if !w.Flushed || w.Body.String() != "png" {
		t.Errorf("Flushed = %v, body = %q, want true, %q", w.Flushed, w.Body.String(), "png")
	}
}

func TestConnectBypassed(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	var got http.ResponseWriter
	inner := httptest.NewRecorder()
	c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { got = w })).ServeHTTP(inner, request(http.MethodConnect, "gzip"))
	if got != inner {
		t.Errorf("CONNECT handler got %T, want the server's writer untouched", got)
	}
}

// TestPanicDropsEncoder checks that a handler aborting mid-body (as
// httputil.ReverseProxy does with http.ErrAbortHandler) still panics up to
// the server, that its encoder is dropped, not pooled, and that the next
// response is fine.
func TestPanicDropsEncoder(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	var pooled, dropped atomic.Int32
	c.testRelease = func(_ coding, ok bool) {
		if ok {
			pooled.Add(1)
		} else {
			dropped.Add(1)
		}
	}
	body := testJSON(64 << 10)
	abort := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body[:32<<10])
		panic(http.ErrAbortHandler)
	})
	for _, ae := range []string{"gzip", "br", "zstd"} {
		func() {
			defer func() {
				if v := recover(); v != http.ErrAbortHandler {
					t.Errorf("%s: recovered %v, want http.ErrAbortHandler to reach the server", ae, v)
				}
			}()
			serve(c, abort, request(http.MethodGet, ae))
		}()
	}
	if p, d := pooled.Load(), dropped.Load(); p != 0 || d != 3 {
		t.Errorf("after 3 aborted responses: %d encoders pooled, %d dropped, want 0, 3", p, d)
	}

	// Through a real server: the client sees a broken body, not a clean end.
	s, client := newServer(t, c.Wrap(abort))
	req, _ := http.NewRequest(http.MethodGet, s.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := client.Do(req)
	if err == nil {
		_, err = readAll(resp)
	}
	if err == nil {
		t.Error("client read an aborted response without an error")
	}
	if d := dropped.Load(); d != 4 {
		t.Errorf("dropped = %d, want 4", d)
	}

	w := serve(c, response{header: jsonHeader(), body: body}.handler(), request(http.MethodGet, "gzip"))
	if got := decode(t, "gzip", w.Body.Bytes()); !bytes.Equal(got, body) {
		t.Error("response after an abort is corrupt")
	}
	if p := pooled.Load(); p != 1 {
		t.Errorf("pooled = %d after one complete response, want 1", p)
	}
}

// TestWriteErrorDropsEncoder: a client gone mid-body fails the writes; the
// encoder that saw the failure is not pooled.
func TestWriteErrorDropsEncoder(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	var pooled, dropped atomic.Int32
	c.testRelease = func(_ coding, ok bool) {
		if ok {
			pooled.Add(1)
		} else {
			dropped.Add(1)
		}
	}
	body := testJSON(256 << 10)
	h := c.Wrap(response{header: jsonHeader(), body: body, chunk: 4096}.handler())
	fw := &failingWriter{header: http.Header{}, failAfter: 1000}
	h.ServeHTTP(fw, request(http.MethodGet, "zstd"))
	if p, d := pooled.Load(), dropped.Load(); p != 0 || d != 1 {
		t.Errorf("encoders pooled, dropped = %d, %d, want 0, 1", p, d)
	}
}

// failingWriter fails every write once failAfter bytes were written.
type failingWriter struct {
	header    http.Header
	written   int
	failAfter int
}

func (w *failingWriter) Header() http.Header { return w.header }
func (w *failingWriter) WriteHeader(int)     {}
func (w *failingWriter) Write(b []byte) (int, error) {
	if w.written+len(b) > w.failAfter {
		return 0, errors.New("connection reset by peer")
	}
	w.written += len(b)
	return len(b), nil
}

func TestAppendEncoded(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	body := testJSON(16 << 10)
	for _, ce := range []string{"zstd", "br", "gzip"} {
		prefix := []byte("keep")
		out, err := c.AppendEncoded(prefix, body, ce)
		if err != nil {
			t.Fatalf("AppendEncoded(%s) error = %v", ce, err)
		}
		if !bytes.HasPrefix(out, prefix) {
			t.Errorf("AppendEncoded(%s) lost dst", ce)
		}
		if got := decode(t, ce, out[len(prefix):]); !bytes.Equal(got, body) {
			t.Errorf("AppendEncoded(%s) does not decode to the body", ce)
		}
	}
	gz := mustNew(t, Options{Encodings: []string{"gzip"}})
	for _, ce := range []string{"br", "identity", "", "deflate"} {
		if _, err := gz.AppendEncoded(nil, body, ce); !errors.Is(err, ErrUnknownEncoding) {
			t.Errorf("AppendEncoded(%q) with gzip only: error = %v, want ErrUnknownEncoding", ce, err)
		}
	}
}

// TestConcurrent runs many mixed responses at once through one Compressor
// and a real server (run it with -race).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	bodies := [][]byte{testJSON(300), testJSON(5 << 10), testJSON(70 << 10)}
	s, client := newServer(t, c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("b"))
		w.Header().Set("Content-Type", "application/json")
		b := bodies[i]
		for len(b) > 0 {
			n := min(len(b), 1500)
			_, _ = w.Write(b[:n])
			b = b[n:]
		}
	})))
	codings := []string{"zstd", "br", "gzip", ""}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 12 {
				ae, bi := codings[(g+i)%len(codings)], (g*7+i)%len(bodies)
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/?b=%d", s.URL, bi), nil)
				if ae != "" {
					req.Header.Set("Accept-Encoding", ae)
				}
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				raw, err := readAll(resp)
				if err != nil {
					errs <- err
					return
				}
				ce := resp.Header.Get("Content-Encoding")
				if len(bodies[bi]) < DefaultMinSize || ae == "" {
					if ce != "" {
						errs <- fmt.Errorf("body %d for %q: Content-Encoding %q, want none", bi, ae, ce)
						return
					}
				} else if ce != ae {
					errs <- fmt.Errorf("body %d for %q: Content-Encoding %q", bi, ae, ce)
					return
				}
				if got := decode(t, ce, raw); !bytes.Equal(got, bodies[bi]) {
					errs <- fmt.Errorf("body %d for %q: decoded body differs", bi, ae)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestIdentityMarkVary: for a request Identity holds for, Wrap's answer is
// the handler's with MarkVary applied (what the gateway's direct lane does
// instead of wrapping).
func TestIdentityMarkVary(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", 2048)
	for _, ae := range []string{"", "identity", "gzip;q=0, br;q=0", "gzip", "br, zstd", "*"} {
		for _, tc := range []struct {
			ct, cc string
			code   int
		}{
			{"text/html", "", 200}, {"application/json", "no-transform", 200}, {"image/png", "", 200},
			{"", "", 200}, {"text/plain", "", 304}, {"text/plain", "", 204}, {"text/css", "", 404},
		} {
			r := httptest.NewRequest("GET", "/", nil)
			if ae != "" {
				r.Header.Set("Accept-Encoding", ae)
			}
			handler := func(w http.ResponseWriter, r *http.Request) {
				if tc.ct != "" {
					w.Header().Set("Content-Type", tc.ct)
				}
				if tc.cc != "" {
					w.Header().Set("Cache-Control", tc.cc)
				}
				w.Header().Set("Vary", "Cookie")
				w.WriteHeader(tc.code)
				_, _ = io.WriteString(w, body)
			}
			wrapped := httptest.NewRecorder()
			c.Wrap(http.HandlerFunc(handler)).ServeHTTP(wrapped, r)
			encoded := wrapped.Header().Get("Content-Encoding") != ""
			if id := c.Identity(r); id == encoded && bodyAllowedCode(tc.code) && c.types.match(tc.ct) && tc.cc == "" {
				t.Errorf("AE %q, %s: Identity = %v, Wrap encoded = %v", ae, tc.ct, id, encoded)
			}
			if !c.Identity(r) {
				continue
			}
			plain := httptest.NewRecorder()
			handler(plain, r)
			c.MarkVary(plain.Header(), tc.code)
			if fmt.Sprint(plain.Header()) != fmt.Sprint(wrapped.Header()) || plain.Code != wrapped.Code {
				t.Errorf("AE %q, %s %s %d:\nMarkVary %d %v\nWrap     %d %v", ae, tc.ct, tc.cc, tc.code,
					plain.Code, plain.Header(), wrapped.Code, wrapped.Header())
			}
		}
	}
}

func bodyAllowedCode(code int) bool { return code != 204 && code != 304 }

// TestAddVary: Accept-Encoding joins whatever Vary holds, once, and never
// by writing into a slice another response may share.
func TestAddVary(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{nil, []string{"Accept-Encoding"}},
		{[]string{"Origin"}, []string{"Origin", "Accept-Encoding"}},
		{[]string{"Origin, Cookie"}, []string{"Origin, Cookie", "Accept-Encoding"}},
		{[]string{"Cookie", "origin"}, []string{"Cookie", "origin", "Accept-Encoding"}},
		{[]string{"accept-encoding"}, []string{"accept-encoding"}},
		{[]string{"*"}, []string{"*"}},
	} {
		h := http.Header{}
		if tc.in != nil {
			h["Vary"] = slices.Clip(slices.Clone(tc.in))
		}
		addVary(h)
		if got := h["Vary"]; !slices.Equal(got, tc.want) {
			t.Errorf("addVary(%q) = %q, want %q", tc.in, got, tc.want)
		}
		// An append to the result must not show in a later response's.
		got := h["Vary"]
		_ = append(got, "X")
		h2 := http.Header{}
		if tc.in != nil {
			h2["Vary"] = slices.Clip(slices.Clone(tc.in))
		}
		addVary(h2)
		if !slices.Equal(h2["Vary"], tc.want) {
			t.Errorf("addVary(%q) after an append to an earlier result = %q, want %q", tc.in, h2["Vary"], tc.want)
		}
	}
}
