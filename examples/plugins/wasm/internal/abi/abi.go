//go:build wasip1

// Package abi is a small guest-side binding of the http-wasm handler ABI
// (host module "http_handler") for plugins written in plain Go and built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// A plugin sets HandleRequest (and HandleResponse when it needs the
// response) from an init function: a c-shared module runs its package
// initialisers in _initialize and never calls main.
package abi

import (
	"unsafe"
)

// Kinds of headers and bodies, as numbered by the ABI.
const (
	HeaderRequest  uint32 = 0
	HeaderResponse uint32 = 1
	BodyRequest    uint32 = 0
	BodyResponse   uint32 = 1
)

// Features a guest can ask the host for with EnableFeatures.
const (
	FeatureBufferRequest  uint32 = 1 << 0
	FeatureBufferResponse uint32 = 1 << 1
	FeatureTrailers       uint32 = 1 << 2
)

// Log levels of the ABI.
const (
	LogDebug int32 = -1
	LogInfo  int32 = 0
	LogWarn  int32 = 1
	LogError int32 = 2
)

// HandleRequest is called for each request. It returns whether the host
// should call the next handler and a context value passed back to
// HandleResponse. Returning next=false means the plugin answered itself.
var HandleRequest = func() (next bool, reqCtx uint32) { return true, 0 }

// HandleResponse is called after the next handler when HandleRequest
// returned next=true.
var HandleResponse = func(reqCtx uint32, isError bool) {}

//lint:ignore U1000 called by the host through go:wasmexport
//go:wasmexport handle_request
func handleRequest() uint64 {
	next, reqCtx := HandleRequest()
	v := uint64(reqCtx) << 32
	if next {
		v |= 1
	}
	return v
}

//lint:ignore U1000 called by the host through go:wasmexport
//go:wasmexport handle_response
func handleResponse(reqCtx uint32, isError uint32) {
	HandleResponse(reqCtx, isError != 0)
}

//go:wasmimport http_handler enable_features
func enableFeatures(features uint32) uint32

//go:wasmimport http_handler get_config
func getConfig(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler log
func logMessage(level int32, msg unsafe.Pointer, msgLen uint32)

//go:wasmimport http_handler log_enabled
func logEnabled(level int32) uint32

//go:wasmimport http_handler get_method
func getMethod(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler set_method
func setMethod(buf unsafe.Pointer, n uint32)

//go:wasmimport http_handler get_uri
func getURI(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler set_uri
func setURI(buf unsafe.Pointer, n uint32)

//go:wasmimport http_handler get_protocol_version
func getProtocolVersion(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler get_source_addr
func getSourceAddr(buf unsafe.Pointer, limit uint32) uint32

//go:wasmimport http_handler get_header_names
func getHeaderNames(kind uint32, buf unsafe.Pointer, limit uint32) uint64

//go:wasmimport http_handler get_header_values
func getHeaderValues(kind uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, limit uint32) uint64

//go:wasmimport http_handler set_header_value
func setHeaderValue(kind uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport http_handler add_header_value
func addHeaderValue(kind uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport http_handler remove_header
func removeHeader(kind uint32, name unsafe.Pointer, nameLen uint32)

//go:wasmimport http_handler read_body
func readBody(kind uint32, buf unsafe.Pointer, limit uint32) uint64

//go:wasmimport http_handler write_body
func writeBody(kind uint32, buf unsafe.Pointer, n uint32)

//go:wasmimport http_handler get_status_code
func getStatusCode() uint32

//go:wasmimport http_handler set_status_code
func setStatusCode(code uint32)

// scratch is reused by the getters: a guest instance serves one request
// at a time.
var scratch = make([]byte, 2048)

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

func sptr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

// getString calls a getter that follows the ABI's buffer rule: a value
// longer than the buffer is not written, and its length is returned so the
// caller can retry with a buffer that fits.
func getString(get func(unsafe.Pointer, uint32) uint32) string {
	n := get(ptr(scratch), uint32(len(scratch)))
	if int(n) > len(scratch) {
		scratch = make([]byte, n)
		n = get(ptr(scratch), uint32(len(scratch)))
	}
	return string(scratch[:n])
}

// EnableFeatures asks for features and returns those the host enabled.
func EnableFeatures(f uint32) uint32 { return enableFeatures(f) }

// Config returns the plugin's configuration bytes.
func Config() []byte { return []byte(getString(getConfig)) }

// Log writes a message to the host's log at a level.
func Log(level int32, msg string) { logMessage(level, sptr(msg), uint32(len(msg))) }

// LogEnabled reports whether the host logs messages at level.
func LogEnabled(level int32) bool { return logEnabled(level) == 1 }

// Method returns the request method.
func Method() string { return getString(getMethod) }

// SetMethod changes the request method.
func SetMethod(m string) { setMethod(sptr(m), uint32(len(m))) }

// URI returns the request URI: path and query.
func URI() string { return getString(getURI) }

// SetURI changes the request URI.
func SetURI(u string) { setURI(sptr(u), uint32(len(u))) }

// ProtocolVersion returns the request's protocol, such as "HTTP/1.1".
func ProtocolVersion() string { return getString(getProtocolVersion) }

// SourceAddr returns the client's address, host:port.
func SourceAddr() string { return getString(getSourceAddr) }

func splitNUL(b []byte, count uint32) []string {
	out := make([]string, 0, count)
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return out
}

// HeaderNames returns the (lower-case) names of the headers of a kind.
func HeaderNames(kind uint32) []string {
	cl := getHeaderNames(kind, ptr(scratch), uint32(len(scratch)))
	count, n := uint32(cl>>32), uint32(cl)
	if int(n) > len(scratch) {
		scratch = make([]byte, n)
		cl = getHeaderNames(kind, ptr(scratch), uint32(len(scratch)))
		count, n = uint32(cl>>32), uint32(cl)
	}
	return splitNUL(scratch[:n], count)
}

// HeaderValues returns the values of the header name of a kind.
func HeaderValues(kind uint32, name string) []string {
	cl := getHeaderValues(kind, sptr(name), uint32(len(name)), ptr(scratch), uint32(len(scratch)))
	count, n := uint32(cl>>32), uint32(cl)
	if int(n) > len(scratch) {
		scratch = make([]byte, n)
		cl = getHeaderValues(kind, sptr(name), uint32(len(name)), ptr(scratch), uint32(len(scratch)))
		count, n = uint32(cl>>32), uint32(cl)
	}
	return splitNUL(scratch[:n], count)
}

// Header returns the first value of the header name of a kind, or "".
func Header(kind uint32, name string) string {
	if v := HeaderValues(kind, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// SetHeader replaces the values of a header.
func SetHeader(kind uint32, name, value string) {
	setHeaderValue(kind, sptr(name), uint32(len(name)), sptr(value), uint32(len(value)))
}

// AddHeader adds a value to a header.
func AddHeader(kind uint32, name, value string) {
	addHeaderValue(kind, sptr(name), uint32(len(name)), sptr(value), uint32(len(value)))
}

// RemoveHeader removes a header.
func RemoveHeader(kind uint32, name string) { removeHeader(kind, sptr(name), uint32(len(name))) }

// ReadBody reads the whole body of a kind, at most max bytes; ok is false
// when the body is longer.
func ReadBody(kind uint32, max int) (body []byte, ok bool) {
	buf := make([]byte, 4096)
	for {
		el := readBody(kind, ptr(buf), uint32(len(buf)))
		eof, n := el>>32 == 1, int(uint32(el))
		body = append(body, buf[:n]...)
		if len(body) > max {
			return body, false
		}
		if eof {
			return body, true
		}
	}
}

// WriteBody appends to the body of a kind; the first call in a phase
// replaces the body.
func WriteBody(kind uint32, b []byte) { writeBody(kind, ptr(b), uint32(len(b))) }

// StatusCode returns the response status (needs FeatureBufferResponse after
// the next handler).
func StatusCode() uint32 { return getStatusCode() }

// SetStatusCode sets the response status.
func SetStatusCode(code uint32) { setStatusCode(code) }
