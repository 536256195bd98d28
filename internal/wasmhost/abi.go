package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The http-wasm handler ABI, host side: the names, the enums and the
// encodings that guests are compiled against. See
// https://http-wasm.io/http-handler-abi/ and docs/plugins.md.
const (
	hostModule         = "http_handler"
	funcHandleRequest  = "handle_request"
	funcHandleResponse = "handle_response"
)

// features is the ABI's bit set of optional host behaviour.
type features uint32

const (
	featureBufferRequest  features = 1 << 0
	featureBufferResponse features = 1 << 1
	featureTrailers       features = 1 << 2 // not supported: never granted

	supportedFeatures = featureBufferRequest | featureBufferResponse
)

// header_kind and body_kind.
const (
	kindRequest          = 0
	kindResponse         = 1
	kindRequestTrailers  = 2
	kindResponseTrailers = 3
)

// Per-request budgets of what a guest can make the host hold or emit (its
// start function counts as a request).
const (
	// maxHeaderBytes bounds the header fields a guest sets or adds in one
	// request, request and response together, each counted as name, value
	// and 32 bytes (as HPACK does); past it the call traps. It is
	// http.DefaultMaxHeaderBytes, what the server accepts from a client.
	maxHeaderBytes = http.DefaultMaxHeaderBytes
	// maxLogRecords bounds the records a guest logs in one request, log
	// calls and stdout and stderr lines together; the rest are dropped, with
	// one warning.
	maxLogRecords = 100
	// maxLogBytes bounds one record; the rest of it is cut.
	maxLogBytes = 4 << 10
)

// errABI is wrapped by the panics of host functions that a guest misused:
// wazero turns them into an error of the guest call, which fails the request
// and discards the instance.
var errABI = errors.New("http-wasm ABI violation")

func abiError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errABI, fmt.Sprintf(format, args...))
}

// clientBodyError wraps an error reading the client's request body: it is
// the client's fault, not the plugin's.
type clientBodyError struct{ err error }

func (e clientBodyError) Error() string { return "read request body: " + e.err.Error() }
func (e clientBodyError) Unwrap() error { return e.err }

// instanceKey is the context key under which guest calls carry their
// instance, so the shared host functions find the request they act on.
type instanceKey struct{}

func instanceFrom(ctx context.Context) *instance {
	inst, _ := ctx.Value(instanceKey{}).(*instance)
	if inst == nil {
		panic(abiError("host function called outside a plugin call"))
	}
	return inst
}

// instance is one instantiated guest and the state of the request it
// serves. It serves one request at a time; its buffers are kept between
// requests.
type instance struct {
	p              *Plugin
	mod            api.Module
	mem            api.Memory
	handleRequest  api.Function
	handleResponse api.Function
	base           context.Context // carries the instance; no deadline
	deadline       deadlineContext // base with the per-call deadline
	stack          []uint64
	dead           bool // a deadline passed: close, never reuse
	counted        bool // in p.live

	// initFeatures were enabled by the guest while it initialised: every
	// request starts with them.
	initFeatures features

	// The request in progress; w is nil between requests.
	w         http.ResponseWriter
	r         *http.Request
	features  features
	afterNext bool
	status    int // set by the guest; 0 = not set

	reqSrc     io.ReadCloser // the client's body, as it came in
	reqEOF     bool
	reqBuf     []byte // what the guest read, kept with buffer_request
	reqOut     []byte // the body the guest wrote
	reqWritten bool
	replay     replayBody

	respOut     []byte // the response body the guest wrote
	respWritten bool
	respReadOff int
	buffering   bool // next wrote into bw
	bw          bufferedWriter

	names []string // scratch for get_header_names
	canon []byte   // scratch for canonical header names

	headerBytes    int // set and added by the guest in this request
	logs           int // records logged in this request
	stdout, stderr logWriter
}

func (i *instance) close() {
	i.stdout.flush()
	i.stderr.flush()
	i.deadline.timer.Stop()
	_ = i.mod.Close(context.Background())
	if i.counted {
		i.counted = false
		i.p.live.Add(-1)
	}
}

// begin prepares the instance for a request.
func (i *instance) begin(w http.ResponseWriter, r *http.Request) {
	i.w, i.r = w, r
	i.features = i.initFeatures
	i.afterNext = false
	i.status = 0
	i.reqSrc, i.reqEOF = r.Body, r.Body == nil || r.Body == http.NoBody
	i.reqBuf, i.reqOut, i.reqWritten = i.reqBuf[:0], i.reqOut[:0], false
	i.respOut, i.respWritten, i.respReadOff = i.respOut[:0], false, 0
	i.buffering = false
	i.headerBytes, i.logs = 0, 0
}

// keepBuffer is the largest buffer an idle instance keeps.
const keepBuffer = 64 << 10

// end forgets the request, keeping modest buffers for the next one.
func (i *instance) end() {
	i.stdout.flush()
	i.stderr.flush()
	i.replay.detach()
	i.bw.release()
	i.w, i.r, i.reqSrc = nil, nil, nil
	for _, b := range []*[]byte{&i.reqBuf, &i.reqOut, &i.respOut, &i.bw.body, &i.canon} {
		if cap(*b) > keepBuffer {
			*b = nil
		}
	}
	clear(i.names)
	i.names = i.names[:0]
}

// mustRequest panics unless a request is in progress: most host functions
// have no meaning while the guest initialises.
func (i *instance) mustRequest(fn string) {
	if i.r == nil {
		panic(abiError("%s called outside a request", fn))
	}
}

// respHeader is the response header the guest reads and changes: the
// buffered copy once the next handler wrote into it.
func (i *instance) respHeader() http.Header {
	if i.buffering {
		return i.bw.header
	}
	return i.w.Header()
}

// read returns the guest's memory at [off, off+n), or traps.
func (i *instance) read(mem api.Memory, off, n uint32, what string) []byte {
	if n == 0 {
		return nil
	}
	b, ok := mem.Read(off, n)
	if !ok {
		panic(abiError("%s: [%d, %d) is outside the guest's memory", what, off, uint64(off)+uint64(n)))
	}
	return b
}

// writeIfFits follows the ABI's buffer rule: a value longer than the
// guest's buffer is not written, and its length tells the guest the size
// to retry with.
func writeIfFits(mem api.Memory, buf, limit uint32, v string) uint32 {
	n := uint32(len(v))
	if n == 0 || n > limit {
		return n
	}
	if !mem.WriteString(buf, v) {
		panic(abiError("buffer [%d, %d) is outside the guest's memory", buf, uint64(buf)+uint64(n)))
	}
	return n
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

type hostFunc struct {
	name           string
	fn             api.GoModuleFunc
	params, result []api.ValueType
}

var hostFuncs = []hostFunc{
	{"enable_features", enableFeatures, []api.ValueType{i32}, []api.ValueType{i32}},
	{"get_config", getConfig, []api.ValueType{i32, i32}, []api.ValueType{i32}},
	{"log", logMessage, []api.ValueType{i32, i32, i32}, nil},
	{"log_enabled", logEnabled, []api.ValueType{i32}, []api.ValueType{i32}},
	{"get_method", getMethod, []api.ValueType{i32, i32}, []api.ValueType{i32}},
	{"set_method", setMethod, []api.ValueType{i32, i32}, nil},
	{"get_uri", getURI, []api.ValueType{i32, i32}, []api.ValueType{i32}},
	{"set_uri", setURI, []api.ValueType{i32, i32}, nil},
	{"get_protocol_version", getProtocolVersion, []api.ValueType{i32, i32}, []api.ValueType{i32}},
	{"get_source_addr", getSourceAddr, []api.ValueType{i32, i32}, []api.ValueType{i32}},
	{"get_header_names", getHeaderNames, []api.ValueType{i32, i32, i32}, []api.ValueType{i64}},
	{"get_header_values", getHeaderValues, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i64}},
	{"set_header_value", setHeaderValue, []api.ValueType{i32, i32, i32, i32, i32}, nil},
	{"add_header_value", addHeaderValue, []api.ValueType{i32, i32, i32, i32, i32}, nil},
	{"remove_header", removeHeader, []api.ValueType{i32, i32, i32}, nil},
	{"read_body", readBody, []api.ValueType{i32, i32, i32}, []api.ValueType{i64}},
	{"write_body", writeBody, []api.ValueType{i32, i32, i32}, nil},
	{"get_status_code", getStatusCode, nil, []api.ValueType{i32}},
	{"set_status_code", setStatusCode, []api.ValueType{i32}, nil},
}

func instantiateHostModule(ctx context.Context, rt wazero.Runtime) (api.Module, error) {
	b := rt.NewHostModuleBuilder(hostModule)
	for _, f := range hostFuncs {
		b = b.NewFunctionBuilder().WithGoModuleFunction(f.fn, f.params, f.result).Export(f.name)
	}
	return b.Instantiate(ctx)
}

// enable_features(features i32) -> i32: the features now enabled. Called
// while the guest initialises, they apply to every request; called in
// handle_request, to that request. Trailers are never granted.
func enableFeatures(ctx context.Context, _ api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	f := features(stack[0]) & supportedFeatures
	switch {
	case inst.r == nil:
		inst.initFeatures |= f
		stack[0] = uint64(inst.initFeatures)
	case !inst.afterNext:
		inst.features |= f
		stack[0] = uint64(inst.features)
	default: // too late to change how next's response is handled
		stack[0] = uint64(inst.features)
	}
}

// get_config(buf, buf_limit i32) -> len i32.
func getConfig(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	stack[0] = uint64(writeIfFits(mod.Memory(), uint32(stack[0]), uint32(stack[1]), string(inst.p.config)))
}

// slogLevel maps the ABI's log levels (-1 debug, 0 info, 1 warn, 2 error,
// 3 none) to slog's; ok is false for none.
func slogLevel(level int32) (slog.Level, bool) {
	switch {
	case level <= -1:
		return slog.LevelDebug, true
	case level == 0:
		return slog.LevelInfo, true
	case level == 1:
		return slog.LevelWarn, true
	case level == 2:
		return slog.LevelError, true
	}
	return 0, false
}

func (i *instance) logContext() context.Context {
	if i.r != nil {
		return i.r.Context()
	}
	return context.Background()
}

// log(level, message, message_len i32).
func logMessage(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	lvl, ok := slogLevel(int32(stack[0]))
	lctx := inst.logContext()
	if !ok || !inst.p.log.Enabled(lctx, lvl) {
		return
	}
	msg := inst.read(mod.Memory(), uint32(stack[1]), uint32(stack[2]), "log message")
	if inst.allowLog() {
		inst.p.log.Log(lctx, lvl, string(msg[:min(len(msg), maxLogBytes)]))
	}
}

// allowLog counts a record against the request's budget; the first one
// over it is replaced by a warning.
func (i *instance) allowLog() bool {
	i.logs++
	if i.logs == maxLogRecords+1 {
		i.p.log.LogAttrs(i.logContext(), slog.LevelWarn, "wasm plugin: log records over the per-request cap dropped",
			slog.Int("max_records", maxLogRecords))
	}
	return i.logs <= maxLogRecords && i.p.logRate.allow(i.p.log)
}

// Per-plugin bounds on guest log records, all requests together: a steady
// logRate per second, bursts of logBurst.
const (
	logRate  = 1000
	logBurst = 1000
)

// logLimiter is a lock-free GCRA over a plugin's guest log records; what it
// refuses is counted and reported in one warning a second at most.
type logLimiter struct {
	tat     atomic.Int64 // theoretical arrival time, Unix ns
	dropped atomic.Int64
	warned  atomic.Int64 // Unix ns of the last warning
	now     func() time.Time
}

func (l *logLimiter) allow(log *slog.Logger) bool {
	const interval = int64(time.Second / logRate)
	now := l.now().UnixNano()
	for {
		tat := l.tat.Load()
		next := max(tat, now) + interval
		if next > now+logBurst*interval {
			break
		}
		if l.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
	n := l.dropped.Add(1)
	if last := l.warned.Load(); now-last >= int64(time.Second) && l.warned.CompareAndSwap(last, now) {
		l.dropped.Add(-n)
		log.LogAttrs(context.Background(), slog.LevelWarn, "wasm plugin: log records over the plugin's rate dropped",
			slog.Int64("dropped", n), slog.Int("per_second", logRate))
	}
	return false
}

// chargeHeader counts a field the guest sets or adds against the request's
// budget, and traps past it.
func (i *instance) chargeHeader(fn, name, value string) {
	i.headerBytes += len(name) + len(value) + 32
	if i.headerBytes > maxHeaderBytes {
		panic(abiError("%s: the guest set over %d bytes of headers in this request", fn, maxHeaderBytes))
	}
}

// log_enabled(level i32) -> i32: 1 if a message at level would be logged.
func logEnabled(ctx context.Context, _ api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	lvl, ok := slogLevel(int32(stack[0]))
	stack[0] = 0
	if ok && inst.p.log.Enabled(inst.logContext(), lvl) {
		stack[0] = 1
	}
}

// get_method(buf, buf_limit i32) -> len i32.
func getMethod(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("get_method")
	stack[0] = uint64(writeIfFits(mod.Memory(), uint32(stack[0]), uint32(stack[1]), inst.r.Method))
}

// set_method(method, method_len i32).
func setMethod(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("set_method")
	if inst.afterNext {
		panic(abiError("set_method after the next handler"))
	}
	m := inst.read(mod.Memory(), uint32(stack[0]), uint32(stack[1]), "method")
	if len(m) == 0 || !isToken(m) {
		panic(abiError("set_method: %q is not a method", m))
	}
	// CONNECT takes a host:port, not the path the route proxies: the
	// transport would send "CONNECT /path", which is not a request.
	if string(m) == http.MethodConnect {
		panic(abiError("set_method: CONNECT is not proxied"))
	}
	inst.r.Method = string(m)
}

// isToken reports whether b is an RFC 9110 token, as methods and header
// names must be.
func isToken(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || !tokenChars[c] {
			return false
		}
	}
	return len(b) > 0
}

var tokenChars = alnumAnd("!#$%&'*+-.^_`|~")

// alnumAnd is the set of ASCII letters, digits and the bytes of extra.
func alnumAnd(extra string) (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range extra {
		t[c] = true
	}
	return t
}

// get_uri(buf, buf_limit i32) -> len i32: the escaped path and query.
func getURI(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("get_uri")
	stack[0] = uint64(writeIfFits(mod.Memory(), uint32(stack[0]), uint32(stack[1]), inst.r.URL.RequestURI()))
}

// set_uri(uri, uri_len i32): path and optional query; empty means "/".
func setURI(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("set_uri")
	if inst.afterNext {
		panic(abiError("set_uri after the next handler"))
	}
	s := string(inst.read(mod.Memory(), uint32(stack[0]), uint32(stack[1]), "uri"))
	if s == "" {
		s = "/"
	}
	// Origin form only: an absolute URI or "*" is refused, and so is a
	// space, which url.ParseRequestURI lets through in the query and the
	// transport would put raw into the request line.
	if s[0] != '/' || strings.ContainsFunc(s, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		panic(abiError("set_uri: %q is not a path and query", s))
	}
	parsed, err := url.ParseRequestURI(s)
	if err != nil || parsed.Scheme != "" || parsed.Host != "" {
		panic(abiError("set_uri: %q is not a path and query", s))
	}
	u := *inst.r.URL // a copy: the old URL may be shared with the caller
	u.Path, u.RawPath = parsed.Path, parsed.RawPath
	u.RawQuery, u.ForceQuery = parsed.RawQuery, parsed.ForceQuery
	inst.r.URL = &u
	inst.r.RequestURI = s
}

// get_protocol_version(buf, buf_limit i32) -> len i32: "HTTP/1.1", "HTTP/2.0".
func getProtocolVersion(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("get_protocol_version")
	proto := inst.r.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	stack[0] = uint64(writeIfFits(mod.Memory(), uint32(stack[0]), uint32(stack[1]), proto))
}

// get_source_addr(buf, buf_limit i32) -> len i32: the peer's "ip:port".
func getSourceAddr(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("get_source_addr")
	stack[0] = uint64(writeIfFits(mod.Memory(), uint32(stack[0]), uint32(stack[1]), inst.r.RemoteAddr))
}

// get_header_names(kind, buf, buf_limit i32) -> count<<32 | len i64: the
// names, lower-case, each followed by NUL, written only if len fits.
// Trailers are not supported: no names.
func getHeaderNames(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("get_header_names")
	kind, buf, limit := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	names := inst.names[:0]
	switch kind {
	case kindRequest:
		if inst.r.Host != "" {
			names = append(names, "Host")
		}
		for k := range inst.r.Header {
			names = append(names, k)
		}
	case kindResponse:
		for k := range inst.respHeader() {
			if !strings.HasPrefix(k, http.TrailerPrefix) {
				names = append(names, k)
			}
		}
	case kindRequestTrailers, kindResponseTrailers:
	default:
		panic(abiError("get_header_names: unknown header kind %d", kind))
	}
	slices.Sort(names) // map order is random; guests may want it stable
	inst.names = names
	stack[0] = writeNULTerminated(mod.Memory(), buf, limit, names, true)
}

// writeNULTerminated writes each string followed by NUL if all fit in
// limit, and returns count<<32 | len either way.
func writeNULTerminated(mem api.Memory, buf, limit uint32, ss []string, lower bool) uint64 {
	if len(ss) == 0 {
		return 0
	}
	n := uint64(len(ss))
	for _, s := range ss {
		n += uint64(len(s))
	}
	countLen := uint64(len(ss))<<32 | uint64(uint32(n))
	if n > uint64(limit) {
		return countLen
	}
	dst, ok := mem.Read(buf, uint32(n))
	if !ok {
		panic(abiError("buffer [%d, %d) is outside the guest's memory", buf, uint64(buf)+n))
	}
	off := 0
	for _, s := range ss {
		off += copy(dst[off:], s)
		if lower {
			for j := off - len(s); j < off; j++ {
				if c := dst[j]; 'A' <= c && c <= 'Z' {
					dst[j] = c + 'a' - 'A'
				}
			}
		}
		dst[off] = 0
		off++
	}
	return countLen
}

// canonical returns name in net/http's canonical form (Content-Type) in the
// instance's scratch buffer, so map lookups need not allocate. Names that are
// not tokens are returned unchanged, as textproto does.
func (i *instance) canonical(name []byte) []byte {
	if !isToken(name) {
		return name
	}
	i.canon = append(i.canon[:0], name...)
	upper := true
	for j, c := range i.canon {
		switch {
		case upper && 'a' <= c && c <= 'z':
			i.canon[j] = c - 'a' + 'A'
		case !upper && 'A' <= c && c <= 'Z':
			i.canon[j] = c + 'a' - 'A'
		}
		upper = c == '-'
	}
	return i.canon
}

func isHost(name []byte) bool { return strings.EqualFold(string(name), "host") }

// validHost reports whether h may be sent as a Host header, as
// httpguts.ValidHostHeader (which the transport applies) says; empty means
// the backend's own host.
func validHost(h string) bool {
	for _, c := range []byte(h) {
		if c >= 0x80 || !hostChars[c] {
			return false
		}
	}
	return true
}

var hostChars = alnumAnd("!$%&'()*+,-.:;=[]_~")

// get_header_values(kind, name, name_len, buf, buf_limit i32) ->
// count<<32 | len i64: the values of one header, each followed by NUL.
func getHeaderValues(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("get_header_values")
	kind, buf, limit := uint32(stack[0]), uint32(stack[3]), uint32(stack[4])
	mem := mod.Memory()
	name := inst.read(mem, uint32(stack[1]), uint32(stack[2]), "header name")
	if len(name) == 0 {
		panic(abiError("get_header_values: empty header name"))
	}
	var values []string
	switch kind {
	case kindRequest:
		if isHost(name) {
			if inst.r.Host != "" {
				stack[0] = writeNULTerminated(mem, buf, limit, []string{inst.r.Host}, false)
				return
			}
			break
		}
		values = inst.r.Header[string(inst.canonical(name))]
	case kindResponse:
		values = inst.respHeader()[string(inst.canonical(name))]
	case kindRequestTrailers, kindResponseTrailers:
	default:
		panic(abiError("get_header_values: unknown header kind %d", kind))
	}
	stack[0] = writeNULTerminated(mem, buf, limit, values, false)
}

// headerOp reads the name and value of set_header_value, add_header_value
// and remove_header and returns the header they change, or nil for the
// request's Host.
func (i *instance) headerOp(fn string, mem api.Memory, stack []uint64, withValue bool) (h http.Header, name, value string) {
	i.mustRequest(fn)
	kind := uint32(stack[0])
	n := i.read(mem, uint32(stack[1]), uint32(stack[2]), "header name")
	if !isToken(n) {
		panic(abiError("%s: %q is not a header name", fn, n))
	}
	if withValue {
		v := i.read(mem, uint32(stack[3]), uint32(stack[4]), "header value")
		// As httpguts.ValidHeaderFieldValue: the transport refuses other
		// control bytes in a request, but the server would send them in a
		// response.
		for _, c := range v {
			if c < ' ' && c != '\t' || c == 0x7f {
				panic(abiError("%s: the value of %s holds a control character", fn, n))
			}
		}
		value = string(v)
	}
	switch kind {
	case kindRequest:
		if i.afterNext {
			panic(abiError("%s: request headers are read-only after the next handler", fn))
		}
		if isHost(n) {
			if !validHost(value) {
				panic(abiError("%s: %q is not a valid Host", fn, value))
			}
			return nil, "", value
		}
		h = i.r.Header
	case kindResponse:
		if i.afterNext && !i.buffering {
			panic(abiError("%s: response headers were sent; enable buffer_response to change them", fn))
		}
		h = i.respHeader()
	case kindRequestTrailers, kindResponseTrailers:
		panic(abiError("%s: trailers are not supported by this host", fn))
	default:
		panic(abiError("%s: unknown header kind %d", fn, kind))
	}
	return h, string(i.canonical(n)), value
}

// connectionSpecific reports whether a response header names the
// connection, not the message: the server's to set. HTTP/2 and HTTP/3 must
// not send them (a client treats the response as malformed), and Go's
// HTTP/2 server would.
func (i *instance) connectionSpecific(kind uint32, name string) bool {
	if kind != kindResponse {
		return false
	}
	switch name {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Upgrade":
		return true
	}
	return false
}

// set_header_value(kind, name, name_len, value, value_len i32). A
// connection-specific response header is ignored.
func setHeaderValue(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	h, name, value := inst.headerOp("set_header_value", mod.Memory(), stack, true)
	inst.chargeHeader("set_header_value", name, value)
	if inst.connectionSpecific(uint32(stack[0]), name) {
		return
	}
	if h == nil {
		inst.r.Host = value
		return
	}
	h[name] = []string{value}
}

// add_header_value(kind, name, name_len, value, value_len i32). A
// connection-specific response header is ignored.
func addHeaderValue(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	h, name, value := inst.headerOp("add_header_value", mod.Memory(), stack, true)
	inst.chargeHeader("add_header_value", name, value)
	if inst.connectionSpecific(uint32(stack[0]), name) {
		return
	}
	if h == nil {
		inst.r.Host = value // a request has one Host
		return
	}
	h[name] = append(h[name], value)
}

// remove_header(kind, name, name_len i32).
func removeHeader(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	h, name, _ := inst.headerOp("remove_header", mod.Memory(), stack, false)
	if h == nil {
		inst.r.Host = ""
		return
	}
	delete(h, name)
}

// read_body(kind, buf, buf_limit i32) -> eof<<32 | len i64. Reads are
// stateful: each continues where the last stopped.
//
// The request body can be read before the next handler. Without
// buffer_request what the guest reads is consumed, and the next handler gets
// the rest; with it the host keeps what the guest read (up to MaxBodyBytes,
// or the request is answered 413) and replays it to the next handler. The
// response body can be read after the next handler with buffer_response.
func readBody(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("read_body")
	kind, buf, limit := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	if limit == 0 {
		panic(abiError("read_body: buf_limit is 0"))
	}
	dst := inst.read(mod.Memory(), buf, limit, "read_body buffer")
	switch kind {
	case kindRequest:
		if inst.afterNext {
			panic(abiError("read_body: the request body went to the next handler"))
		}
		stack[0] = inst.readRequestBody(dst)
	case kindResponse:
		if !inst.afterNext || !inst.buffering {
			panic(abiError("read_body: the response body can be read only after the next handler, with buffer_response"))
		}
		n := copy(dst, inst.bw.body[inst.respReadOff:])
		inst.respReadOff += n
		eof := uint64(0)
		if inst.respReadOff == len(inst.bw.body) {
			eof = 1 << 32
		}
		stack[0] = eof | uint64(n)
	default:
		panic(abiError("read_body: unknown body kind %d", kind))
	}
}

func (i *instance) readRequestBody(dst []byte) uint64 {
	if i.reqEOF {
		return 1 << 32
	}
	n := 0
	var err error
	for n < len(dst) && err == nil {
		var m int
		m, err = i.reqSrc.Read(dst[n:])
		n += m
	}
	if i.features&featureBufferRequest != 0 {
		if len(i.reqBuf)+n > i.p.maxBody {
			panic(ErrBodyTooLarge)
		}
		i.reqBuf = append(i.reqBuf, dst[:n]...)
	}
	switch {
	case err == nil:
		return uint64(n)
	case errors.Is(err, io.EOF):
		i.reqEOF = true
		return 1<<32 | uint64(n)
	}
	panic(clientBodyError{err})
}

// write_body(kind, body, body_len i32). The first write in a phase replaces
// the body; later ones append. A response body written in handle_request is
// the plugin's own answer (sent when it returns next=0); one written in
// handle_response replaces next's (needs buffer_response).
func writeBody(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("write_body")
	kind := uint32(stack[0])
	b := inst.read(mod.Memory(), uint32(stack[1]), uint32(stack[2]), "body")
	switch kind {
	case kindRequest:
		if inst.afterNext {
			panic(abiError("write_body: the request went to the next handler"))
		}
		if !inst.reqWritten {
			inst.reqOut, inst.reqWritten = inst.reqOut[:0], true
		}
		if len(inst.reqOut)+len(b) > inst.p.maxBody {
			panic(abiError("write_body: request body over the plugin's limit of %d bytes", inst.p.maxBody))
		}
		inst.reqOut = append(inst.reqOut, b...)
	case kindResponse:
		if inst.afterNext && !inst.buffering {
			panic(abiError("write_body: the response was sent; enable buffer_response to change it"))
		}
		if !inst.respWritten {
			inst.respOut, inst.respWritten = inst.respOut[:0], true
		}
		if len(inst.respOut)+len(b) > inst.p.maxBody {
			panic(abiError("write_body: response body over the plugin's limit of %d bytes", inst.p.maxBody))
		}
		inst.respOut = append(inst.respOut, b...)
	default:
		panic(abiError("write_body: unknown body kind %d", kind))
	}
}

// get_status_code() -> i32: the status the guest set, or next's (after the
// next handler, with buffer_response), default 200.
func getStatusCode(ctx context.Context, _ api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("get_status_code")
	if inst.afterNext && !inst.buffering {
		panic(abiError("get_status_code: enable buffer_response to read next's status"))
	}
	stack[0] = uint64(inst.statusCode())
}

func (i *instance) statusCode() int {
	switch {
	case i.status != 0:
		return i.status
	case i.afterNext && i.bw.status != 0:
		return i.bw.status
	}
	return http.StatusOK
}

// set_status_code(status_code i32).
func setStatusCode(ctx context.Context, _ api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	inst.mustRequest("set_status_code")
	if inst.afterNext && !inst.buffering {
		panic(abiError("set_status_code: the response was sent; enable buffer_response to change it"))
	}
	code := uint32(stack[0])
	if code < 200 || code > 999 {
		panic(abiError("set_status_code: %d is not a final status", code))
	}
	inst.status = int(code)
}
