// Package admin serves the admin API under /admin/: run-time changes to the
// allow and deny lists and to DDoS blocks. It requires ADMIN_TOKEN as a bearer
// token; without a token the API does not exist (404).
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/altair-gateway/altair/internal/edge"
	"github.com/altair-gateway/altair/internal/httperr"
)

// Stable error codes of the admin API.
const (
	CodeUnauthorized = "unauthorized"
	CodeBadAddress   = "bad_address"
	CodeNotFound     = "not_found"
	CodeMethod       = "method_not_allowed"
)

// Options configure the admin API.
type Options struct {
	// Token is the bearer token; empty disables the API.
	Token string
	// Lists are the gateway's allow and deny lists.
	Lists *edge.Lists
	// Blocker is the DDoS blocker; nil when DDoS blocking is off.
	Blocker *edge.Blocker
	// Logger receives one line per change (never the token).
	Logger *slog.Logger
	// Cache purges the response cache; nil when no route caches.
	Cache Purger
}

// Purger removes responses from the cache.
type Purger interface {
	// PurgeURL removes every stored response for one URL (all routes,
	// credentials and variants); path is cleaned as routing cleans it.
	PurgeURL(ctx context.Context, host, path, rawQuery string) (int, error)
	// PurgePrefix removes every response for host whose path is prefix or
	// below it.
	PurgePrefix(ctx context.Context, host, prefix string) (int, error)
}

// Handler serves /admin/*.
type Handler struct {
	tokenHash [sha256.Size]byte
	enabled   bool
	lists     *edge.Lists
	blocker   *edge.Blocker
	cache     Purger
	log       *slog.Logger
}

// New returns the admin API handler.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{
		tokenHash: sha256.Sum256([]byte(o.Token)),
		enabled:   o.Token != "",
		lists:     o.Lists,
		cache:     o.Cache,
		blocker:   o.Blocker,
		log:       o.Logger,
	}
}

// Enabled reports whether a token is configured.
func (h *Handler) Enabled() bool { return h.enabled }

// authorized compares the presented bearer token with the configured one in
// constant time. Both sides are hashed first so the comparison's duration
// does not depend on the lengths either.
func (h *Handler) authorized(r *http.Request) bool {
	v := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(v[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) == 1
}

// Protect returns next behind the admin token: 404 when no token is
// configured, 401 without the right one.
func (h *Handler) Protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.enabled {
			httperr.Write(w, r, http.StatusNotFound, httperr.CodeNotFound)
			return
		}
		if !h.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="altair-admin"`)
			httperr.Write(w, r, http.StatusUnauthorized, CodeUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP answers the admin API:
//
//	GET    /admin/whitelist           list the allow list
//	POST   /admin/whitelist?ip=X      add an IP or CIDR
//	DELETE /admin/whitelist?ip=X      remove a run-time entry
//	(the same for /admin/blacklist, the deny list)
//	GET    /admin/blocked             IPs blocked by DDoS protection
//	DELETE /admin/blocked?ip=X        lift a block
//	DELETE /admin/cache?url=U         purge one URL from the response cache
//	DELETE /admin/cache?host=H&prefix=P   purge every URL on H under path P
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.enabled {
		httperr.Write(w, r, http.StatusNotFound, httperr.CodeNotFound)
		return
	}
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="altair-admin"`)
		httperr.Write(w, r, http.StatusUnauthorized, CodeUnauthorized)
		return
	}
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/admin/whitelist":
		h.serveList(w, r, edge.Allow)
	case "/admin/blacklist":
		h.serveList(w, r, edge.Deny)
	case "/admin/blocked":
		h.serveBlocked(w, r)
	case "/admin/cache":
		h.serveCache(w, r)
	default:
		httperr.Write(w, r, http.StatusNotFound, CodeNotFound)
	}
}

func (h *Handler) serveList(w http.ResponseWriter, r *http.Request, k edge.ListKind) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, r, http.StatusOK, map[string]any{"list": k.String(), "entries": h.lists.Entries(k)})
	case http.MethodPost:
		ip := r.URL.Query().Get("ip")
		if err := h.lists.Add(k, ip); err != nil {
			httperr.Write(w, r, http.StatusBadRequest, CodeBadAddress)
			return
		}
		h.log.Info("admin list entry added", "list", k.String(), "cidr", ip, "request_id", r.Header.Get(httperr.RequestIDHeader))
		writeJSON(w, r, http.StatusOK, map[string]any{"list": k.String(), "added": ip, "entries": h.lists.Entries(k)})
	case http.MethodDelete:
		ip := r.URL.Query().Get("ip")
		if !validAddress(ip) {
			httperr.Write(w, r, http.StatusBadRequest, CodeBadAddress)
			return
		}
		if !h.lists.Remove(k, ip) {
			httperr.Write(w, r, http.StatusNotFound, CodeNotFound)
			return
		}
		h.log.Info("admin list entry removed", "list", k.String(), "cidr", ip, "request_id", r.Header.Get(httperr.RequestIDHeader))
		writeJSON(w, r, http.StatusOK, map[string]any{"list": k.String(), "removed": ip, "entries": h.lists.Entries(k)})
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		httperr.Write(w, r, http.StatusMethodNotAllowed, CodeMethod)
	}
}

func (h *Handler) serveBlocked(w http.ResponseWriter, r *http.Request) {
	if h.blocker == nil {
		writeJSON(w, r, http.StatusOK, map[string]any{"blocked": []edge.BlockedIP{}, "ddos": "disabled"})
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, r, http.StatusOK, map[string]any{"blocked": h.blocker.Blocked()})
	case http.MethodDelete:
		a, err := netip.ParseAddr(r.URL.Query().Get("ip"))
		if err != nil {
			httperr.Write(w, r, http.StatusBadRequest, CodeBadAddress)
			return
		}
		if !h.blocker.Unblock(a.Unmap()) {
			httperr.Write(w, r, http.StatusNotFound, CodeNotFound)
			return
		}
		h.log.Info("admin unblocked ip", "ip", a.String(), "request_id", r.Header.Get(httperr.RequestIDHeader))
		writeJSON(w, r, http.StatusOK, map[string]any{"unblocked": a.String()})
	default:
		w.Header().Set("Allow", "GET, DELETE")
		httperr.Write(w, r, http.StatusMethodNotAllowed, CodeMethod)
	}
}

// CodeBadPurge answers a purge request without a usable url, or host and
// prefix.
const CodeBadPurge = "bad_purge_request"

func (h *Handler) serveCache(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodDelete {
		w.Header().Set("Allow", "DELETE")
		httperr.Write(w, r, http.StatusMethodNotAllowed, CodeMethod)
		return
	}
	if h.cache == nil {
		writeJSON(w, r, http.StatusOK, map[string]any{"purged": 0, "cache": "disabled"})
		return
	}
	q := r.URL.Query()
	var (
		n    int
		err  error
		what string
	)
	switch {
	case q.Get("url") != "":
		u, perr := url.Parse(q.Get("url"))
		if perr != nil || u.Host == "" {
			httperr.Write(w, r, http.StatusBadRequest, CodeBadPurge)
			return
		}
		path := u.Path
		if path == "" {
			path = "/"
		}
		what = u.Host + path
		n, err = h.cache.PurgeURL(r.Context(), u.Host, path, u.RawQuery)
	case q.Get("host") != "" && q.Get("prefix") != "":
		what = q.Get("host") + q.Get("prefix") + "*"
		n, err = h.cache.PurgePrefix(r.Context(), q.Get("host"), q.Get("prefix"))
	default:
		httperr.Write(w, r, http.StatusBadRequest, CodeBadPurge)
		return
	}
	if err != nil {
		h.log.Warn("admin cache purge failed", "what", what, "error", err, "request_id", r.Header.Get(httperr.RequestIDHeader))
		httperr.Write(w, r, http.StatusBadGateway, httperr.CodeBadGateway)
		return
	}
	h.log.Info("admin cache purge", "what", what, "purged", n, "request_id", r.Header.Get(httperr.RequestIDHeader))
	writeJSON(w, r, http.StatusOK, map[string]any{"purged": n})
}

func validAddress(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httperr.Write(w, r, http.StatusInternalServerError, httperr.CodeInternal)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(b, '\n'))
	}
}
