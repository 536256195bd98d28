package gateway

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"

	"github.com/altair-gateway/altair/internal/httperr"
)

// maxRequestIDLen bounds a client-supplied request id so it cannot bloat logs.
const maxRequestIDLen = 128

// ensureRequestID keeps a valid X-Request-ID from the client or replaces it with
// a fresh one, and echoes it on the response. The id travels upstream in the
// request header and is read from there by logs and error answers.
func ensureRequestID(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(httperr.RequestIDHeader)
	// One allocation holds the value for both headers; each gets its own
	// capacity-bounded slice, so an append to one never shows in the other.
	vals := make([]string, 2)
	if !validRequestID(id) {
		id = newRequestID()
		vals[0] = id
		r.Header[httperr.RequestIDHeader] = vals[0:1:1]
	}
	vals[1] = id
	w.Header()[httperr.RequestIDHeader] = vals[1:2:2]
}

// validRequestID accepts 1..128 characters of [A-Za-z0-9._:-], which covers
// UUIDs, W3C trace ids and the ids other proxies generate, and nothing that
// could inject into a log line or a header.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 32 random hex characters. math/rand/v2's global source is
// per-thread and lock-free; ids need to be unique, not secret.
func newRequestID() string {
	var raw [16]byte
	a, b := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		raw[i] = byte(a >> (8 * i))
		raw[8+i] = byte(b >> (8 * i))
	}
	var out [32]byte
	hex.Encode(out[:], raw[:])
	return string(out[:])
}
