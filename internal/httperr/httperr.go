// Package httperr writes the gateway's own error answers: a small JSON body with a
// stable error code and the request id, never an internal error string.
package httperr

import (
	"net/http"
	"strconv"
	"strings"
)

// Stable error codes returned in the "error" field of the gateway's JSON answers.
const (
	CodeNotFound        = "route_not_found"
	CodeBadRequest      = "bad_request"
	CodeBadGateway      = "bad_gateway"
	CodeUnavailable     = "no_healthy_backend"
	CodeGatewayTimeout  = "upstream_timeout"
	CodeInternal        = "internal_error"
	CodeRequestTooLarge = "request_too_large"
	CodeURITooLong      = "uri_too_long"
	// CodeWebSocketLimit: the route has websocket.max_connections open.
	CodeWebSocketLimit = "websocket_limit"
	// CodeClientCertRequired answers 403 on a route with require_client_cert
	// to a request without a verified client certificate.
	CodeClientCertRequired = "client_certificate_required"
	// CodePluginBusy answers 503 when a WebAssembly plugin has as many
	// instances busy as it may have (wasmhost Options.MaxInstances).
	CodePluginBusy = "plugin_busy"
	// CodePluginFailed answers a request whose plugin failed: a Go plugin's
	// panic, a WebAssembly trap or deadline.
	CodePluginFailed = "plugin_failed"
)

// RequestIDHeader carries the request id to the upstream and back to the client.
const RequestIDHeader = "X-Request-Id" // canonical form: Header.Get and Set then allocate nothing

// Write answers with status and a JSON body {"error": code, "status": status,
// "request_id": id}. The request id is read from the request's X-Request-ID header,
// which the gateway sets before any handler runs.
//
// A gRPC call (see IsGRPC) gets the answer its client understands instead: a
// trailers-only response, HTTP 200 with Content-Type application/grpc and no
// body, whose Grpc-Status is GRPCStatus(status) and Grpc-Message the code.
func Write(w http.ResponseWriter, r *http.Request, status int, code string) {
	id := ""
	if r != nil {
		id = r.Header.Get(RequestIDHeader)
	}
	if r != nil && IsGRPC(r) {
		writeGRPC(w, id, status, code)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if id != "" {
		h.Set(RequestIDHeader, id)
	}
	w.WriteHeader(status)
	if r != nil && r.Method == http.MethodHead {
		return
	}
	b := make([]byte, 0, 96+len(id))
	b = append(b, `{"error":`...)
	b = strconv.AppendQuote(b, code)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	if id != "" {
		b = append(b, `,"request_id":`...)
		b = strconv.AppendQuote(b, id)
	}
	b = append(b, "}\n"...)
	_, _ = w.Write(b)
}

// IsGRPC reports whether r is a gRPC call: Content-Type application/grpc,
// alone or with a +codec suffix or parameters. gRPC-Web, which frames its
// trailers in the body, is not.
func IsGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	if !ok {
		return false
	}
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// gRPC status codes (google.golang.org/grpc/codes) that gateway errors map to.
const (
	GRPCUnknown           = 2
	GRPCInvalidArgument   = 3
	GRPCDeadlineExceeded  = 4
	GRPCPermissionDenied  = 7
	GRPCResourceExhausted = 8
	GRPCUnimplemented     = 12
	GRPCInternal          = 13
	GRPCUnavailable       = 14
	GRPCUnauthenticated   = 16
)

// GRPCStatus maps a gateway error's HTTP status to the gRPC status a gRPC
// client gets for it: an unreachable or unavailable backend is UNAVAILABLE,
// a timeout DEADLINE_EXCEEDED, no route UNIMPLEMENTED.
func GRPCStatus(status int) int {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return GRPCUnavailable
	case http.StatusGatewayTimeout:
		return GRPCDeadlineExceeded
	case http.StatusNotFound:
		return GRPCUnimplemented
	case http.StatusUnauthorized:
		return GRPCUnauthenticated
	case http.StatusForbidden:
		return GRPCPermissionDenied
	case http.StatusTooManyRequests, http.StatusRequestEntityTooLarge:
		return GRPCResourceExhausted
	case http.StatusBadRequest, http.StatusRequestURITooLong:
		return GRPCInvalidArgument
	case http.StatusInternalServerError:
		return GRPCInternal
	}
	return GRPCUnknown
}

// writeGRPC answers a gRPC call trailers-only. The code is a stable
// lowercase ASCII identifier, so Grpc-Message needs no percent-encoding.
func writeGRPC(w http.ResponseWriter, id string, status int, code string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/grpc")
	h.Set("Cache-Control", "no-store")
	h.Set("Grpc-Status", strconv.Itoa(GRPCStatus(status)))
	if code != "" {
		h.Set("Grpc-Message", code)
	}
	if id != "" {
		h.Set(RequestIDHeader, id)
	}
	w.WriteHeader(http.StatusOK)
}
