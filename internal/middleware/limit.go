package middleware

import (
	"net/http"

	"github.com/altair-gateway/altair/internal/httperr"
)

// BodyLimit caps request bodies at max bytes. A request whose Content-Length
// says more gets 413 (request_too_large) before any of its body is read.
// Any other body is wrapped in http.MaxBytesReader, so a chunked body that
// grows past max fails the read with *http.MaxBytesError (which the upstream
// proxy maps to 413) and the connection is closed after the response.
// max <= 0 means no limit.
func BodyLimit(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if max <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				httperr.Write(w, r, http.StatusRequestEntityTooLarge, httperr.CodeRequestTooLarge)
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, max)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// URILimit answers 414 (uri_too_long) to a request whose request-target
// (r.RequestURI, path and query as sent) is longer than max bytes.
// max <= 0 means no limit. The server's MaxHeaderBytes bounds the request
// line before this runs (431), so max should sit below it.
func URILimit(max int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if max <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.RequestURI) > max {
				httperr.Write(w, r, http.StatusRequestURITooLong, httperr.CodeURITooLong)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
