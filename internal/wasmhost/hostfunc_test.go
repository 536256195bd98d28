package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// hostCall runs host functions directly against one instance of a
// hand-made module (one 64 KiB page of memory) serving one request, so
// hostile arguments can be passed that no guest binding would produce.
type hostCall struct {
	inst *instance
	rec  *httptest.ResponseRecorder
	r    *http.Request
}

func newHostCall(t *testing.T, o Options) *hostCall {
	t.Helper()
	if o.Module == nil {
		o.Module = handMadeModule("", "", []byte{0x42, 1})
	}
	if o.Name == "" {
		o.Name = "hostcall"
	}
	p := load(t, o)
	inst, err := p.acquire()
	if err != nil {
		t.Fatal(err)
	}
	h := &hostCall{inst: inst, rec: httptest.NewRecorder(), r: httptest.NewRequest(http.MethodGet, "http://gw.example/in?q=1", nil)}
	inst.begin(h.rec, h.r)
	t.Cleanup(func() {
		inst.end()
		inst.close()
	})
	return h
}

// put writes s into the guest's memory at off.
func (h *hostCall) put(t *testing.T, off uint32, s string) {
	t.Helper()
	if !h.inst.mem.WriteString(off, s) {
		t.Fatalf("put(%d, %q): outside memory", off, s)
	}
}

// call runs fn with args and returns the stack and the panic it raised, as
// the error wazero would make of it.
func (h *hostCall) call(fn api.GoModuleFunc, args ...uint64) (stack []uint64, err error) {
	stack = make([]uint64, max(len(args), 1))
	copy(stack, args)
	defer func() {
		if v := recover(); v != nil {
			if e, ok := v.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("panic: %v", v)
			}
		}
	}()
	fn(h.inst.deadline.Context, h.inst.mod, stack)
	return stack, nil
}

func TestSetURIValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give    string
		wantErr bool
		want    string // r.URL.RequestURI() after
	}{
		{"/a/b?c=d", false, "/a/b?c=d"},
		{"", false, "/"},
		{"/a%20b", false, "/a%20b"},
		{"//other.example/x", false, "//other.example/x"}, // a path: the host stays
		{"*", true, ""},
		{"a/b", true, ""},
		{"http://evil.example/x", true, ""},
		{"/a?b c", true, ""},
		{"/a b", true, ""},
		{"/a\tb", true, ""},
		{"/a\x00", true, ""},
		{"/a\r\nX: y", true, ""},
		{"/a?\x7f", true, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.give), func(t *testing.T) {
			t.Parallel()
			h := newHostCall(t, Options{})
			h.put(t, 100, tt.give)
			_, err := h.call(setURI, 100, uint64(len(tt.give)))
			if tt.wantErr {
				if !errors.Is(err, errABI) {
					t.Errorf("set_uri(%q) = %v, want an ABI error", tt.give, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("set_uri(%q) = %v, want nil", tt.give, err)
			}
			if got := h.r.URL.RequestURI(); got != tt.want {
				t.Errorf("set_uri(%q): RequestURI() = %q, want %q", tt.give, got, tt.want)
			}
			if h.r.URL.Host != "gw.example" || h.r.Host != "gw.example" {
				t.Errorf("set_uri(%q): host = %q, %q, want gw.example", tt.give, h.r.URL.Host, h.r.Host)
			}
		})
	}
}

func TestHeaderValueValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind    uint32
		name    string
		value   string
		wantErr bool
	}{
		{kindRequest, "X-A", "a\tb c", false},
		{kindResponse, "X-A", "caf\xc3\xa9", false},
		{kindRequest, "X-A", "a\x01b", true},
		{kindResponse, "X-A", "a\x01b", true},
		{kindResponse, "X-A", "a\x7f", true},
		{kindRequest, "X-A", "a\rb", true},
		{kindResponse, "X-A", "a\nb", true},
		{kindRequest, "X A", "v", true},
		{kindRequest, "X:A", "v", true},
		{kindRequest, "", "v", true},
		{kindRequest, "Host", "backend.example:8080", false},
		{kindRequest, "host", "[::1]:80", false},
		{kindRequest, "Host", "", false},
		{kindRequest, "Host", "a b", true},
		{kindRequest, "Host", "a/b", true},
		{kindRequest, "Host", "a@b", true},
	}
	for _, tt := range tests {
		for _, fn := range []struct {
			name string
			f    api.GoModuleFunc
		}{{"set_header_value", setHeaderValue}, {"add_header_value", addHeaderValue}} {
			t.Run(fmt.Sprintf("%s/%d/%q=%q", fn.name, tt.kind, tt.name, tt.value), func(t *testing.T) {
				t.Parallel()
				h := newHostCall(t, Options{})
				h.put(t, 100, tt.name)
				h.put(t, 200, tt.value)
				_, err := h.call(fn.f, uint64(tt.kind), 100, uint64(len(tt.name)), 200, uint64(len(tt.value)))
				if tt.wantErr != errors.Is(err, errABI) {
					t.Errorf("%s(%q, %q) = %v, want ABI error %v", fn.name, tt.name, tt.value, err, tt.wantErr)
				}
				if tt.wantErr && (h.r.Host != "gw.example" || len(h.r.Header) != 0 || len(h.rec.Header()) != 0) {
					t.Errorf("%s(%q, %q) changed the request or response", fn.name, tt.name, tt.value)
				}
			})
		}
	}
}

// TestGuestMemoryBounds passes offsets and lengths at and past the end of
// the guest's memory, and past 2^32, to every host function that reads or
// writes it: each must refuse (an ABI error, which wazero turns into a
// trap), never panic with a Go runtime error or touch memory outside.
func TestGuestMemoryBounds(t *testing.T) {
	t.Parallel()
	const size = 65536 // one page
	const end = size - 2
	tests := []struct {
		name string
		fn   api.GoModuleFunc
		args []uint64
	}{
		{"get_config", getConfig, []uint64{end, 100}},
		{"log", logMessage, []uint64{0, end, 100}},
		{"log wraps", logMessage, []uint64{0, 0xffff_fff0, 0x20}},
		{"get_method", getMethod, []uint64{end, 100}},
		{"get_method wraps", getMethod, []uint64{0xffff_fffe, 0xffff_ffff}},
		{"set_method", setMethod, []uint64{end, 100}},
		{"get_uri", getURI, []uint64{size, 100}},
		{"set_uri", setURI, []uint64{0xffff_fff0, 0x20}},
		{"get_protocol_version", getProtocolVersion, []uint64{end, 100}},
		{"get_source_addr", getSourceAddr, []uint64{end, 100}},
		{"get_header_names", getHeaderNames, []uint64{kindRequest, end, 1000}},
		{"get_header_values name", getHeaderValues, []uint64{kindRequest, end, 100, 0, 100}},
		{"get_header_values buf", getHeaderValues, []uint64{kindRequest, 0, 4, end, 100}},
		{"set_header_value name", setHeaderValue, []uint64{kindRequest, 0xffff_ffff, 2, 0, 1}},
		{"set_header_value value", setHeaderValue, []uint64{kindRequest, 0, 1, end, 100}},
		{"add_header_value value", addHeaderValue, []uint64{kindResponse, 0, 1, 0xffff_ffff, 0xffff_ffff}},
		{"remove_header", removeHeader, []uint64{kindRequest, end, 100}},
		{"read_body", readBody, []uint64{kindRequest, end, 100}},
		{"write_body", writeBody, []uint64{kindResponse, end, 100}},
		{"write_body wraps", writeBody, []uint64{kindRequest, 0x8000_0000, 0x8000_0000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHostCall(t, Options{Config: make([]byte, 64), Log: slog.New(&records{})})
			h.put(t, 0, "Host")
			h.r.Header.Set("X-Long", string(make([]byte, 64)))
			_, err := h.call(tt.fn, tt.args...)
			if !errors.Is(err, errABI) {
				t.Errorf("%s%v = %v, want an ABI error", tt.name, tt.args, err)
			}
		})
	}
}

// TestValueLongerThanBuffer checks the ABI's rule: a value that does not
// fit is not written, and its length is returned.
func TestValueLongerThanBuffer(t *testing.T) {
	t.Parallel()
	h := newHostCall(t, Options{Config: []byte("0123456789")})
	h.put(t, 100, "XXXXXXXXXXXX")
	h.r.Header.Set("X-A", "value")
	tests := []struct {
		name string
		fn   api.GoModuleFunc
		args []uint64
		want uint64
	}{
		{"get_config", getConfig, []uint64{100, 9}, 10},
		{"get_method", getMethod, []uint64{100, 2}, 3},
		{"get_uri", getURI, []uint64{100, 5}, uint64(len("/in?q=1"))},
		{"get_header_names", getHeaderNames, []uint64{kindRequest, 100, 5}, 2<<32 | uint64(len("host\x00x-a\x00"))},
	}
	for _, tt := range tests {
		stack, err := h.call(tt.fn, tt.args...)
		if err != nil || stack[0] != tt.want {
			t.Errorf("%s%v = %#x, %v, want %#x", tt.name, tt.args, stack[0], err, tt.want)
		}
		if b, _ := h.inst.mem.Read(100, 12); string(b) != "XXXXXXXXXXXX" {
			t.Errorf("%s%v wrote %q into a buffer too small", tt.name, tt.args, b)
		}
	}
}

// rawGet sends a GET over a fresh connection and returns the response as
// it came on the wire.
func rawGet(t *testing.T, srv *httptest.Server, path string) string {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGuestFramingHeadersDropped: Content-Length and Transfer-Encoding a
// guest sets on the response before a streamed next must not go out beside
// next's own, which httputil.ReverseProxy adds to them.
func TestGuestFramingHeadersDropped(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "0123456789")
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	cfg := `{"response_headers": {"Content-Length": "3", "Transfer-Encoding": "gzip", "X-Plugin": "yes"}}`
	p := load(t, Options{Name: "framing", Module: guest(t, "headers"), Config: []byte(cfg)})
	srv := front(t, p, proxy)
	raw := rawGet(t, srv, "/")
	head, body, _ := strings.Cut(raw, "\r\n\r\n")
	if n := strings.Count(strings.ToLower(head), "\r\ncontent-length:"); n != 1 || !strings.Contains(head, "Content-Length: 10") {
		t.Errorf("response head has %d Content-Length, want one of 10:\n%s", n, head)
	}
	if strings.Contains(strings.ToLower(head), "transfer-encoding") || !strings.Contains(head, "X-Plugin: yes") {
		t.Errorf("response head = %s, want no Transfer-Encoding and X-Plugin", head)
	}
	if body != "0123456789" {
		t.Errorf("body = %q, want 0123456789", body)
	}
}

// TestHeaderBudget: a guest adding headers in a loop traps once it set
// maxHeaderBytes in a request, rather than growing the host's maps until
// its deadline.
func TestHeaderBudget(t *testing.T) {
	t.Parallel()
	for _, kind := range []uint32{kindRequest, kindResponse} {
		t.Run(fmt.Sprint(kind), func(t *testing.T) {
			t.Parallel()
			h := newHostCall(t, Options{})
			h.put(t, 0, "X-Big")
			const valueLen = 60 << 10
			h.put(t, 16, strings.Repeat("v", valueLen))
			calls := 0
			var err error
			for ; calls < 100 && err == nil; calls++ {
				_, err = h.call(addHeaderValue, uint64(kind), 0, 5, 16, valueLen)
			}
			if !errors.Is(err, errABI) || calls < maxHeaderBytes/valueLen {
				t.Fatalf("after %d add_header_value calls of %d bytes: err = %v, want an ABI error", calls, valueLen, err)
			}
			hdr := h.r.Header
			if kind == kindResponse {
				hdr = h.rec.Header()
			}
			if got := len(hdr["X-Big"]) * valueLen; got > maxHeaderBytes {
				t.Errorf("host holds %d bytes of X-Big, want at most %d", got, maxHeaderBytes)
			}
			// The budget is per request.
			h.inst.end()
			h.inst.begin(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
			if _, err := h.call(setHeaderValue, uint64(kind), 0, 5, 16, valueLen); err != nil {
				t.Errorf("next request: set_header_value = %v, want nil", err)
			}
		})
	}
}

// TestLogBudget: log calls and stdout/stderr lines share a per-request cap,
// each record is cut at maxLogBytes, and the cap starts again with the next
// request.
func TestLogBudget(t *testing.T) {
	t.Parallel()
	logs := &records{}
	h := newHostCall(t, Options{Log: slog.New(logs)})
	msg := strings.Repeat("m", 2*maxLogBytes)
	h.put(t, 0, msg)
	for range 3 * maxLogRecords {
		if _, err := h.call(logMessage, 0, 0, uint64(len(msg))); err != nil {
			t.Fatal(err)
		}
		_, _ = h.inst.stderr.Write([]byte("line\n"))
	}
	got := logs.all()
	if len(got) != maxLogRecords+1 {
		t.Fatalf("%d records logged, want %d and a warning", len(got), maxLogRecords)
	}
	for _, m := range got {
		if len(m) > maxLogBytes+100 {
			t.Errorf("record of %d bytes logged, want at most %d", len(m), maxLogBytes)
		}
	}
	if !strings.Contains(got[maxLogRecords], "over the per-request cap") {
		t.Errorf("last record = %q, want the warning", got[maxLogRecords])
	}
	h.inst.end()
	h.inst.begin(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	_, _ = h.inst.stdout.Write([]byte("a panic: "))
	_, _ = h.inst.stdout.Write([]byte("in pieces\nand a partial line"))
	h.inst.end()
	got = logs.all()[maxLogRecords+1:]
	want := []string{"wasm plugin output text=a panic: in pieces", "wasm plugin output text=and a partial line"}
	if !slices.Equal(got, want) {
		t.Errorf("stdout records = %q, want %q", got, want)
	}
}

// TestCloseWithRequestsInFlight: closing a plugin (a reload) while requests
// wait on next lets them finish, handle_response included; the instances
// they hold are closed when they end, and new requests fail cleanly.
func TestCloseWithRequestsInFlight(t *testing.T) {
	t.Parallel()
	logs := &records{}
	obs := &counter{}
	p, err := testRT.Load(context.Background(), Options{Name: "reload", Module: guest(t, "headers"), Log: slog.New(logs),
		Observer: obs, Config: []byte(`{"echo_header":"X-Id"}`)})
	if err != nil {
		t.Fatal(err)
	}
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "ok")
	}))
	const inFlight = 3
	var wg sync.WaitGroup
	for i := range inFlight {
		wg.Go(func() {
			req := newRequest(t, http.MethodGet, srv.URL, "")
			req.Header.Set("X-Id", fmt.Sprint(i))
			if resp, body := do(t, req); resp.StatusCode != http.StatusOK || body != "ok" {
				t.Errorf("in-flight request %d: got %d %q, want 200 ok", i, resp.StatusCode, body)
			}
		})
		<-arrived
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if resp, _ := do(t, newRequest(t, http.MethodGet, srv.URL, "")); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("request after Close: status = %d, want 500", resp.StatusCode)
	}
	close(release)
	wg.Wait()
	echoes := 0
	for _, m := range logs.all() {
		if strings.HasPrefix(m, "echo ") {
			echoes++
		}
	}
	if echoes != inFlight || obs.failed.Load() != 1 {
		t.Errorf("handle_response ran %d times, %d failures, want %d and 1 (the request after Close)", echoes, obs.failed.Load(), inFlight)
	}
	if got := p.live.Load(); got != 0 {
		t.Errorf("live instances after the requests ended = %d, want 0", got)
	}
}

func TestSetMethodValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give    string
		wantErr bool
	}{
		{"PATCH", false},
		{"PROPFIND", false},
		{"", true},
		{"GET ", true},
		{"G\x00T", true},
		{"GET /x HTTP/1.1\r\n", true},
		{"CONNECT", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.give), func(t *testing.T) {
			t.Parallel()
			h := newHostCall(t, Options{})
			h.put(t, 100, tt.give)
			_, err := h.call(setMethod, 100, uint64(len(tt.give)))
			if tt.wantErr != errors.Is(err, errABI) {
				t.Errorf("set_method(%q) = %v, want ABI error %v", tt.give, err, tt.wantErr)
			}
			if want := map[bool]string{true: http.MethodGet, false: tt.give}[tt.wantErr]; h.r.Method != want {
				t.Errorf("set_method(%q): method = %q, want %q", tt.give, h.r.Method, want)
			}
		})
	}
}

// TestConnectionSpecificResponseHeadersIgnored: Connection, Keep-Alive,
// Proxy-Connection and Upgrade a guest sets on the response never reach
// the response (over HTTP/2 they would make it malformed).
func TestConnectionSpecificResponseHeadersIgnored(t *testing.T) {
	t.Parallel()
	cfg := `{"response_headers": {"Connection": "close", "Keep-Alive": "timeout=5", "Proxy-Connection": "close", "Upgrade": "h2c", "X-Plugin": "yes"}}`
	p := load(t, Options{Name: "hop", Module: guest(t, "headers"), Config: []byte(cfg)})
	var got http.Header
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = w.Header().Clone()
		_, _ = io.WriteString(w, "ok")
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	want := http.Header{"X-Plugin": {"yes"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("response header next got = %v, want %v", got, want)
	}
}

// TestHugeHeaderNameNotKept: a guest looking up a header name as large as
// its memory must not leave a scratch buffer that size on the host for as
// long as the instance is pooled.
func TestHugeHeaderNameNotKept(t *testing.T) {
	t.Parallel()
	h := newHostCall(t, Options{})
	if _, ok := h.inst.mem.Grow(3); !ok {
		t.Fatal("grow memory")
	}
	name := strings.Repeat("x", 3<<16)
	h.put(t, 0, name)
	if _, err := h.call(getHeaderValues, kindRequest, 0, uint64(len(name)), 0, 0); err != nil {
		t.Fatal(err)
	}
	h.inst.end()
	if c := cap(h.inst.canon); c > keepBuffer {
		t.Errorf("instance keeps a %d-byte scratch buffer after the request, want at most %d", c, keepBuffer)
	}
}

// TestHostFunctionMisuseTraps: a guest passing set_uri a buffer that wraps
// past 2^32 makes the host function panic; wazero turns that into an error
// of the guest call, so only that request fails (500, reason abi), never
// the process.
func TestHostFunctionMisuseTraps(t *testing.T) {
	t.Parallel()
	code := []byte{
		0x41, 0x70, // i32.const -16 (0xfffffff0)
		0x41, 0x20, // i32.const 32
		0x10, 0x00, // call set_uri
		0x42, 0x01, // i64.const 1: next
	}
	logs := &records{}
	obs := &counter{}
	p := load(t, Options{Name: "misuse", Module: handMadeModuleTyped(hostModule, "set_uri", 2, code), Log: slog.New(logs), Observer: obs})
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("next called after the guest broke the ABI")
	}))
	for range 2 {
		resp, body := do(t, newRequest(t, http.MethodGet, srv.URL, ""))
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, `"plugin_failed"`) {
			t.Errorf("got %d %s, want 500 plugin_failed", resp.StatusCode, body)
		}
	}
	if obs.failed.Load() != 2 {
		t.Errorf("failed = %d, want 2", obs.failed.Load())
	}
	if !slices.ContainsFunc(logs.all(), func(m string) bool { return strings.Contains(m, "reason=abi") }) {
		t.Errorf("logs %q, want a failure with reason=abi", logs.all())
	}
}

// TestDeadlineDoesNotSpanNext: each guest call has its own deadline; the
// timer of handle_request is stopped while next runs, so a next slower than
// the timeout neither fails handle_response nor leaves a deadline to fire
// into the instance's next request.
func TestDeadlineDoesNotSpanNext(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	logs := &records{}
	obs := &counter{}
	p := load(t, Options{Name: "slow-next", Module: guest(t, "headers"), Timeout: timeout, PoolSize: 1, MaxInstances: 1,
		Log: slog.New(logs), Observer: obs, Config: []byte(`{"echo_header":"X-Id"}`)})
	srv := front(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(3 * timeout) // the upstream's time, not the guest's
		}
		_, _ = io.WriteString(w, "ok")
	}))
	for i, path := range []string{"/slow", "/slow", "/"} {
		req := newRequest(t, http.MethodGet, srv.URL+path, "")
		req.Header.Set("X-Id", fmt.Sprint(i))
		if resp, body := do(t, req); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("request %d (%s): got %d %q, want 200 ok", i, path, resp.StatusCode, body)
		}
	}
	if obs.failed.Load() != 0 || obs.ok.Load() != 3 {
		t.Errorf("ok = %d, failed = %d, want 3 and 0", obs.ok.Load(), obs.failed.Load())
	}
	if !slices.Contains(logs.all(), "echo 2") {
		t.Errorf("logs %q, want handle_response's echo 2", logs.all())
	}
}

// TestLogLimiter: a plugin's guest log records are held to logRate a second
// with bursts of logBurst, all requests together, and what is dropped is
// reported in one warning a second at most.
func TestLogLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &logLimiter{now: func() time.Time { return now }}
	logs := &records{}
	log := slog.New(logs)
	for i := range logBurst {
		if !l.allow(log) {
			t.Fatalf("record %d of the burst refused", i)
		}
	}
	for range 5 {
		if l.allow(log) {
			t.Fatal("a record past the burst allowed at the same instant")
		}
	}
	if got := logs.all(); len(got) != 1 || !strings.Contains(got[0], "over the plugin's rate") {
		t.Fatalf("warnings %q, want one", got)
	}
	now = now.Add(time.Second / logRate)
	if !l.allow(log) {
		t.Fatal("no record allowed one interval later")
	}
	if l.allow(log) {
		t.Fatal("two records allowed for one interval")
	}
	now = now.Add(time.Second)
	for range logRate {
		l.allow(log)
	}
	if got := logs.all(); len(got) != 1 {
		t.Fatalf("%d warnings within a second of the first, want 1", len(got))
	}
	if l.allow(log) { // the second's records are spent; a second since the warning
		t.Fatal("a record past the rate allowed")
	}
	if got := logs.all(); len(got) != 2 {
		t.Fatalf("%d warnings for drops a second after the first warning, want 2", len(got))
	}
	now = now.Add(time.Second / 2)
	refused := 0
	for range 2 * logBurst {
		if !l.allow(log) {
			refused++
		}
	}
	if refused != logBurst+logRate/2 {
		t.Fatalf("half a second later %d of %d refused, want %d (half a second's records allowed)", refused, 2*logBurst, logBurst+logRate/2)
	}
	if got := logs.all(); len(got) != 2 {
		t.Fatalf("%d warnings for drops half a second after the last warning, want still 2", len(got))
	}
}
