// Package hopbyhop knows the header fields that belong to one connection
// (RFC 9110 §7.6.1), which a proxy must not pass on: the fixed ones, and
// those a message's Connection header names.
package hopbyhop

import (
	"net/http"
	"net/textproto"
	"strings"
)

// Fields are the hop-by-hop fields a proxy always removes, in canonical
// form: the RFC's, Proxy-Connection and Keep-Alive that HTTP/1.0 peers send,
// and the proxy-authentication pair (httputil.ReverseProxy's list).
var Fields = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// Is reports whether the canonical key k is one of Fields.
func Is(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// Remove deletes Fields from h, and the fields h's Connection header names.
func Remove(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	if len(h) < len(Fields) {
		// Fewer fields than names (the usual answer): look at each field
		// rather than hash every name.
		for k := range h {
			if Is(k) {
				delete(h, k)
			}
		}
		return
	}
	for _, k := range Fields {
		delete(h, k)
	}
}

// Named returns the canonical names h's Connection header lists (nil when
// none), the fields a copy of h must leave out besides Fields.
func Named(h http.Header) []string {
	var named []string
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				named = append(named, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	return named
}
