package observe

import (
	"net/http"
	"net/netip"
)

// Record collects what the request path learns about one request, for its
// access-log line and its span: the gateway owns one per request (pooled, on
// its response writer) and the edge guard, auth and the proxy fill in their
// parts. A request on the gateway's own goroutine writes it; nothing reads it
// until the handler returns.
type Record struct {
	// ClientIP is the client address the edge decided on.
	ClientIP netip.Addr
	// User is the authenticated caller's name (API key name or JWT subject).
	User string
	// Backend is the URL of the last backend tried ("" when none was).
	Backend string
	// Attempts counts upstream attempts (retries are Attempts-1).
	Attempts int
	// Cache is the cache's verdict (HIT, MISS, STALE, BYPASS) or "".
	Cache string
	// PluginNext holds, per position in the route's plugins list, the time
	// (ns) the rest of the chain took after that plugin passed the request
	// on, so the plugin's own time can be told apart; -1 while unknown.
	PluginNext [MaxPlugins]int64
}

// MaxPlugins bounds a route's plugins list (config.MaxRoutePlugins).
const MaxPlugins = 16

// Reset clears r for reuse.
func (r *Record) Reset() { *r = Record{} }

// Recorder is implemented by the gateway's response writer.
type Recorder interface {
	// Record returns the request's record.
	Record() *Record
}

// RecordOf returns the record carried by w or by a writer it wraps
// (following Unwrap, as http.ResponseController does), or nil when the
// request is not being recorded (a test, `altair explain`).
func RecordOf(w http.ResponseWriter) *Record {
	for range 8 { // wrappers nest a few deep at most
		switch x := w.(type) {
		case Recorder:
			return x.Record()
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil
		}
	}
	return nil
}
