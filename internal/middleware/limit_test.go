package middleware

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/altair-gateway/altair/internal/httperr"
)

// failReader fails the test if anything reads it.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("body was read")
	return 0, io.ErrUnexpectedEOF
}

func (f failReader) Close() error { return nil }

func TestBodyLimitContentLengthOver(t *testing.T) {
	t.Parallel()
	h := BodyLimit(10)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("request over the limit reached the next handler")
	}))
	r := httptest.NewRequest(http.MethodPost, "/upload", nil)
	r.Body = failReader{t}
	r.ContentLength = 11
	r.Header.Set(httperr.RequestIDHeader, "req-1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("BodyLimit(10) with Content-Length 11: status = %d, want %d", w.Code, http.StatusRequestEntityTooLarge)
	}
	if got, want := w.Body.String(), `{"error":"request_too_large","status":413,"request_id":"req-1"}`+"\n"; got != want {
		t.Errorf("BodyLimit(10) with Content-Length 11: body = %q, want %q", got, want)
	}
}

func TestBodyLimitReads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		max           int64
		body          string
		contentLength int64 // -1: chunked
		wantTooLarge  bool
	}{
		{name: "chunked over", max: 10, body: strings.Repeat("x", 11), contentLength: -1, wantTooLarge: true},
		{name: "chunked far over", max: 10, body: strings.Repeat("x", 1<<20), contentLength: -1, wantTooLarge: true},
		{name: "chunked at limit", max: 10, body: strings.Repeat("x", 10), contentLength: -1},
		{name: "length under", max: 10, body: "hello", contentLength: 5},
		{name: "length at limit", max: 10, body: strings.Repeat("y", 10), contentLength: 10},
		{name: "no limit", max: 0, body: strings.Repeat("z", 1<<16), contentLength: -1},
		{name: "negative is no limit", max: -1, body: strings.Repeat("z", 100), contentLength: 100},
		{name: "empty", max: 10, body: "", contentLength: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				got     []byte
				readErr error
				reached bool
			)
			h := BodyLimit(tt.max)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				reached = true
				got, readErr = io.ReadAll(r.Body)
			}))
			r := httptest.NewRequest(http.MethodPost, "/upload", io.NopCloser(strings.NewReader(tt.body)))
			r.ContentLength = tt.contentLength
			h.ServeHTTP(httptest.NewRecorder(), r)
			if !reached {
				t.Fatalf("BodyLimit(%d) with %d bytes: next not reached", tt.max, len(tt.body))
			}
			var mbe *http.MaxBytesError
			if tt.wantTooLarge {
				if !errors.As(readErr, &mbe) || mbe.Limit != tt.max {
					t.Errorf("BodyLimit(%d) read of %d bytes: err = %v, want *http.MaxBytesError with limit %d", tt.max, len(tt.body), readErr, tt.max)
				}
				return
			}
			if readErr != nil || !bytes.Equal(got, []byte(tt.body)) {
				t.Errorf("BodyLimit(%d) read = %d bytes, %v, want %d bytes intact, nil", tt.max, len(got), readErr, len(tt.body))
			}
		})
	}
}

// Over a real connection, as a client streams a chunked body.
func TestBodyLimitChunkedOverServer(t *testing.T) {
	t.Parallel()
	errc := make(chan error, 1)
	srv := httptest.NewServer(BodyLimit(1024)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		errc <- err
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httperr.Write(w, r, http.StatusRequestEntityTooLarge, httperr.CodeRequestTooLarge)
		}
	})))
	t.Cleanup(srv.Close)
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("x"), 512)
		for range 8 {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, pr)
	resp, err := srv.Client().Do(req)
	pr.CloseWithError(io.ErrClosedPipe) // stop the writer whatever happened
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked 4 KiB body through BodyLimit(1024): status = %d, want %d", resp.StatusCode, http.StatusRequestEntityTooLarge)
		}
	}
	var mbe *http.MaxBytesError
	if err := <-errc; !errors.As(err, &mbe) {
		t.Errorf("chunked 4 KiB body through BodyLimit(1024): read error = %v, want *http.MaxBytesError", err)
	}
}

func TestURILimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		max    int
		target string
		want   int
	}{
		{name: "under", max: 20, target: "/a?b=c", want: http.StatusOK},
		{name: "at limit", max: 6, target: "/a?b=c", want: http.StatusOK},
		{name: "over by the query", max: 5, target: "/a?b=c", want: http.StatusRequestURITooLong},
		{name: "long path", max: 100, target: "/" + strings.Repeat("p", 100), want: http.StatusRequestURITooLong},
		{name: "no limit", max: 0, target: "/" + strings.Repeat("p", 10000), want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := URILimit(tt.max)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tt.target, nil))
			if w.Code != tt.want {
				t.Errorf("URILimit(%d) on %d-byte URI = %d, want %d", tt.max, len(tt.target), w.Code, tt.want)
			}
			if tt.want == http.StatusRequestURITooLong && !strings.Contains(w.Body.String(), `"error":"uri_too_long"`) {
				t.Errorf("URILimit(%d) body = %q, want error uri_too_long", tt.max, w.Body.String())
			}
		})
	}
}
