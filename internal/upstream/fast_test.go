package upstream

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestFastPathMatchesReverseProxy sends the same requests through the fast
// path and through httputil.ReverseProxy (the general path, forced) and
// requires the backend to see the same request and the client the same
// response: headers (hop-by-hop, forwarding, trailers), status, body.
func TestFastPathMatchesReverseProxy(t *testing.T) {
	t.Parallel()
	// The backend answers by the X-Answer header the client sent (which
	// passes through both paths) and reports the request it saw in the
	// X-Saw header... of its answer, so both halves are compared at once.
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Saw", summariseRequest(r))
		h := w.Header()
		switch r.Header.Get("X-Answer") {
		case "hop":
			h.Set("Connection", "X-Secret, close")
			h.Set("X-Secret", "s")
			h.Set("Keep-Alive", "timeout=5")
			h.Set("Proxy-Authenticate", "Basic")
			h.Set("Upgrade", "h2c")
			h.Add("Vary", "Accept")
			_, _ = io.WriteString(w, "hop body")
		case "trailers":
			h.Set("Trailer", "X-Checksum")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "with trailers")
			h.Set("X-Checksum", "abc")
			h.Set(http.TrailerPrefix+"X-Late", "undeclared")
		case "sse":
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
			_, _ = io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "data: 2\n\n")
		case "large":
			_, _ = io.WriteString(w, strings.Repeat("x", 100<<10))
		case "204":
			w.WriteHeader(http.StatusNoContent)
		case "304":
			h.Set("Etag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "404":
			h.Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "missing")
		case "early-hints":
			h.Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			h.Del("Link")
			_, _ = io.WriteString(w, "after hints")
		default:
			_, _ = io.WriteString(w, "plain")
		}
	})
	requests := []struct {
		name   string
		method string
		header http.Header
		remote string
	}{
		{"plain", "GET", nil, ""},
		{"head", "HEAD", nil, ""},
		{"options", "OPTIONS", nil, ""},
		{"connection-named headers", "GET", http.Header{"Connection": {"X-Private, keep-alive"}, "X-Private": {"p"}, "Keep-Alive": {"timeout=5"}}, ""},
		{"te trailers", "GET", http.Header{"Te": {"trailers, deflate"}}, ""},
		{"te without trailers", "GET", http.Header{"Te": {"gzip"}}, ""},
		{"te named in connection", "GET", http.Header{"Connection": {"Te"}, "Te": {"trailers"}}, ""},
		{"proxy credentials", "GET", http.Header{"Proxy-Authorization": {"Basic eA=="}, "Proxy-Connection": {"keep-alive"}}, ""},
		{"spoofed forwarding", "GET", http.Header{"X-Forwarded-For": {"1.2.3.4"}, "X-Forwarded-Host": {"evil"}, "X-Forwarded-Proto": {"https"}, "X-Real-Ip": {"1.2.3.4"}, "Forwarded": {"for=1.2.3.4"}}, ""},
		{"trusted forwarding", "GET", http.Header{"X-Forwarded-For": {"1.2.3.4", "10.0.0.1"}, "X-Forwarded-Host": {"public"}, "X-Forwarded-Proto": {"https"}, "X-Real-Ip": {"1.2.3.4", "5.6.7.8"}}, "trusted"},
		{"user agent absent", "GET", http.Header{"User-Agent": nil}, ""},
		{"user agent", "GET", http.Header{"User-Agent": {"curl/8"}}, ""},
		{"multi-valued", "GET", http.Header{"Accept": {"a/b", "c/d"}, "Cookie": {"a=1", "b=2"}}, ""},
		{"no peer address", "GET", nil, "@"},
	}
	answers := []string{"plain", "hop", "trailers", "sse", "large", "204", "304", "404", "early-hints"}
	for _, trusted := range []bool{false, true} {
		p := newTestPool(t, testUpstream(be.URL), func(o *Options) {
			o.TrustForwarded = func(r *http.Request) bool { return trusted && r.RemoteAddr == "192.0.2.9:1000" }
		})
		fast := p.Handler(RouteOptions{}).(*routeHandler)
		general := p.Handler(RouteOptions{}).(*routeHandler)
		general.noFast = true
		for _, rq := range requests {
			for _, answer := range answers {
				name := fmt.Sprintf("trusted=%v/%s/%s", trusted, rq.name, answer)
				req := func() *http.Request {
					r := httptest.NewRequest(rq.method, "http://client.example/p?q=1", nil)
					r.RemoteAddr = "192.0.2.7:5555"
					switch rq.remote {
					case "trusted":
						r.RemoteAddr = "192.0.2.9:1000"
					case "@":
						r.RemoteAddr = "@"
					}
					for k, vs := range rq.header {
						if vs == nil {
							delete(r.Header, k)
							continue
						}
						r.Header[k] = slices.Clone(vs)
					}
					r.Header.Set("X-Answer", answer)
					return r
				}
				if !fastEligible(req()) {
					t.Fatalf("%s: request not eligible for the fast path", name)
				}
				got := summariseResponse(serve(withVary(fast), req()))
				want := summariseResponse(serve(withVary(general), req()))
				if got != want {
					t.Errorf("%s:\nfast path:\n%s\nReverseProxy:\n%s", name, got, want)
				}
			}
		}
	}
}

// withVary sets a response header before the proxy runs, as the gateway's
// CORS step does, so that merging with the backend's is compared too.
func withVary(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Origin")
		h.ServeHTTP(w, r)
	})
}

// summariseRequest describes what a backend saw, headers sorted, the
// transport's own (Accept-Encoding) left out.
func summariseRequest(r *http.Request) string {
	h := r.Header.Clone()
	h.Del("Accept-Encoding")
	return fmt.Sprintf("%s %s host=%s %s", r.Method, r.URL.RequestURI(), r.Host, sortedHeader(h))
}

func summariseResponse(w *httptest.ResponseRecorder) string {
	res := w.Result()
	h := res.Header.Clone()
	h.Del("Date")
	body, _ := io.ReadAll(res.Body)
	return fmt.Sprintf("status %d\nheader %s\nbody %q\ntrailer %s", res.StatusCode, sortedHeader(h), body, sortedHeader(res.Trailer))
}

func sortedHeader(h http.Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q; ", k, h[k])
	}
	return b.String()
}

func TestFastEligible(t *testing.T) {
	t.Parallel()
	mk := func(method string, body io.Reader, hdr ...string) *http.Request {
		r := httptest.NewRequest(method, "http://x/", body)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	h2 := mk("GET", nil)
	h2.ProtoMajor, h2.ProtoMinor = 2, 0
	chunked := mk("GET", nil)
	chunked.TransferEncoding = []string{"chunked"}
	tests := []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"GET", mk("GET", nil), true},
		{"HEAD", mk("HEAD", nil), true},
		{"OPTIONS", mk("OPTIONS", nil), true},
		{"POST", mk("POST", nil), false},
		{"DELETE", mk("DELETE", nil), false},
		{"GET with a body", mk("GET", strings.NewReader("x")), false},
		{"chunked GET", chunked, false},
		{"upgrade", mk("GET", nil, "Connection", "Upgrade", "Upgrade", "websocket"), false},
		{"expect", mk("GET", nil, "Expect", "100-continue"), false},
		{"HTTP/2", h2, false},
	}
	for _, tt := range tests {
		if got := fastEligible(tt.r); got != tt.want {
			t.Errorf("%s: fastEligible = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// got1xx forwards an informational answer with its own fields and leaves
// the fields the chain had set as they were for the final answer.
func TestGot1xxKeepsTheChainsHeaders(t *testing.T) {
	t.Parallel()
	w := &snapWriter{h: http.Header{"Link": {"</chain.css>"}, "Vary": {"Origin"}}}
	fs := &fastState{w: w}
	if err := fs.got1xx(http.StatusEarlyHints, map[string][]string{"Link": {"</a.css>"}, "X-Hint": {"1"}}); err != nil {
		t.Fatal(err)
	}
	sent := w.sent[0]
	if got := sent["Link"]; len(got) != 2 || got[0] != "</chain.css>" || got[1] != "</a.css>" || sent.Get("X-Hint") != "1" {
		t.Errorf("103 carried %v", sent)
	}
	if got := w.h["Link"]; len(got) != 1 || got[0] != "</chain.css>" {
		t.Errorf("after the 103, Link = %q, want the chain's value alone", got)
	}
	if _, ok := w.h["X-Hint"]; ok || w.h.Get("Vary") != "Origin" {
		t.Errorf("after the 103, header %v, want the chain's", w.h)
	}
}

// snapWriter records a copy of the header at every WriteHeader.
type snapWriter struct {
	h    http.Header
	sent []http.Header
}

func (w *snapWriter) Header() http.Header         { return w.h }
func (w *snapWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *snapWriter) WriteHeader(int)             { w.sent = append(w.sent, w.h.Clone()) }

// TestForwardInPlace: turning a client's header into the upstream one in
// place (the direct lane) gives what fastHeaders' copy gives.
func TestForwardInPlace(t *testing.T) {
	for _, in := range []http.Header{
		{},
		{"User-Agent": {"ua"}, "Accept": {"a", "b"}},
		{"Connection": {"X-Private, Te"}, "X-Private": {"p"}, "Te": {"trailers, deflate"}, "Keep-Alive": {"5"}},
		{"Te": {"deflate"}, "Upgrade": {"h2c"}, "Proxy-Connection": {"keep-alive"}, "Trailer": {"X"}},
		{"Forwarded": {"for=1.2.3.4"}, "X-Forwarded-For": {"1.2.3.4"}, "X-Forwarded-Host": {"h"}, "X-Forwarded-Proto": {"https"}, "X-Real-Ip": {"9.9.9.9"}},
		{"Connection": {"close"}, "Transfer-Encoding": {"chunked"}, "Proxy-Authorization": {"x"}, "Cookie": {"a=b"}},
		{"Connection": {"User-Agent"}, "User-Agent": {"curl/8"}}, // ReverseProxy then sends an empty one, that is none
	} {
		want, _ := fastHeaders(in)
		got := in.Clone()
		forwardInPlace(got)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("in %v:\nin place %v\ncopy     %v", in, got, want)
		}
	}
}
