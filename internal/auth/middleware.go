package auth

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/httperr"
	"github.com/altair-gateway/altair/internal/identity"
	"github.com/altair-gateway/altair/internal/observe"
)

// Error codes of the auth step's own answers, in the "error" field.
const (
	// CodeUnauthorized answers a request without valid credentials (401).
	CodeUnauthorized = "unauthorized"
	// CodeAuthUnavailable answers when a forward-auth service cannot be
	// reached or times out (503): the gateway fails closed.
	CodeAuthUnavailable = "auth_unavailable"
)

// The only things a 401 says about why, in its "message" field.
const (
	msgInvalidToken = "invalid token"
	msgInvalidKey   = "invalid key"
	msgMissing      = "missing credentials"
)

// routeAuth is one route's auth step.
type routeAuth struct {
	a       *Authenticator
	log     *slog.Logger
	methods []string
	fwd     *forwarder
	// strip lists the canonical names of the headers the gateway sets from
	// verified data; a client's own values are removed from every request,
	// on public paths too.
	strip              []string
	claimHeaders       []claimHeader // header names canonical
	keepAuthz          bool
	keepKey            bool
	challenges         []string // WWW-Authenticate for "missing credentials"
	challengesBadToken []string
	route              string
	fwdCopiesAuthz     bool // forward auth's copy_headers has Authorization
	fwdCopiesKey       bool // ... has the API key header
	next               http.Handler
}

// Middleware builds one route's auth step; see the package documentation.
// Empty route.Methods means every configured method: Methods() plus
// "forward" when route.Forward.URL is set. Problems come back as an Errors
// whose fields are relative to the route ("auth.methods[0]").
//
// The step tries the methods in order and lets the first that
// authenticates win. A present but invalid credential does not stop the
// next method from being tried. When none succeeds, a forward-auth answer
// (if forward was asked) is relayed as is, an unreachable service gives
// 503, and otherwise the answer is 401 with WWW-Authenticate.
func (a *Authenticator) Middleware(route config.RouteAuth, routeName string) (func(http.Handler) http.Handler, error) {
	var errs Errors
	methods := route.Methods
	if len(methods) == 0 {
		methods = a.Methods()
		if route.Forward.URL != "" {
			methods = append(methods, MethodForward)
		}
		if len(methods) == 0 {
			errs.add("auth.methods", "no authentication method is configured (auth.jwt, auth.api_keys or the route's auth.forward.url)")
		}
	}
	ra := &routeAuth{
		a:         a,
		log:       a.log.With("route", routeName),
		route:     routeName,
		keepAuthz: route.ForwardAuthorization,
		keepKey:   route.ForwardAPIKey,
	}
	for i, m := range methods {
		field := fmt.Sprintf("auth.methods[%d]", i)
		if slices.Contains(methods[:i], m) {
			errs.add(field, "method %q is listed twice", m)
			continue
		}
		switch m {
		case MethodJWT:
			if a.jwt == nil {
				errs.add(field, "jwt is not configured (auth.jwt)")
			}
		case MethodAPIKey:
			if a.apiKeys == nil {
				errs.add(field, "api_key is not configured (auth.api_keys)")
			}
		case MethodForward:
			if route.Forward.URL == "" {
				errs.add(field, "forward needs auth.forward.url")
			} else {
				ra.fwd = newForwarder(route.Forward, "auth.forward", &errs)
			}
		default:
			errs.add(field, "unknown method %q (want jwt, api_key or forward)", m)
		}
		ra.methods = append(ra.methods, m)
	}
	if len(errs) > 0 {
		return nil, errs
	}

	if a.jwt != nil {
		for _, ch := range a.jwt.claimHeaders {
			ch.header = textproto.CanonicalMIMEHeaderKey(ch.header)
			ra.claimHeaders = append(ra.claimHeaders, ch)
			ra.strip = append(ra.strip, ch.header)
		}
	}
	if ra.fwd != nil {
		for _, h := range ra.fwd.copyHeaders {
			// A service may answer with credentials to pass upstream (a
			// token exchange); the client's own must still reach it, and
			// are replaced on 2xx anyway.
			if !isCredentialHeader(h, a.apiKeys) {
				ra.strip = append(ra.strip, h)
			}
			ra.fwdCopiesAuthz = ra.fwdCopiesAuthz || h == "Authorization"
			ra.fwdCopiesKey = ra.fwdCopiesKey || a.apiKeys != nil && h == a.apiKeys.header
		}
	}
	slices.Sort(ra.strip)
	ra.strip = slices.Compact(ra.strip)

	for _, m := range ra.methods {
		switch m {
		case MethodJWT:
			ra.challenges = append(ra.challenges, `Bearer realm="altair"`)
			ra.challengesBadToken = append(ra.challengesBadToken, `Bearer realm="altair", error="invalid_token"`)
		case MethodAPIKey:
			c := `APIKey realm="altair", header=` + strconv.Quote(a.apiKeys.headerName)
			ra.challenges = append(ra.challenges, c)
			ra.challengesBadToken = append(ra.challengesBadToken, c)
		}
	}

	return func(next http.Handler) http.Handler {
		rc := *ra
		rc.next = next
		return &rc
	}, nil
}

// ServeHTTP implements http.Handler.
func (ra *routeAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, h := range ra.strip {
		delete(r.Header, h)
	}
	if ra.a.isPublic(r.URL.Path) {
		ra.next.ServeHTTP(w, r)
		return
	}

	var (
		p         *identity.Principal
		msg       = msgMissing // of the first present but invalid credential
		badToken  bool
		deny      *denial
		fwdFailed bool
	)
	fail := func(m string) {
		if msg == msgMissing {
			msg = m
		}
	}
	for _, m := range ra.methods {
		switch m {
		case MethodJWT:
			tok, present := bearerToken(r.Header)
			if !present {
				continue
			}
			claims, err := ra.a.jwt.authenticate(r.Context(), tok)
			if err != nil {
				badToken = true
				fail(msgInvalidToken)
				ra.debug(r, "token refused", MethodJWT, err)
				continue
			}
			sub, _ := claims["sub"].(string)
			p = &identity.Principal{Method: MethodJWT, Name: sub, Claims: claims}
			for _, ch := range ra.claimHeaders {
				if v, ok := claimValue(claims[ch.claim]); ok {
					r.Header[ch.header] = []string{v}
				}
			}
		case MethodAPIKey:
			vals := r.Header[ra.a.apiKeys.header]
			if len(vals) == 0 {
				continue
			}
			name, ok := "", false
			if len(vals) == 1 {
				name, ok = ra.a.apiKeys.lookup(vals[0])
			}
			if !ok {
				fail(msgInvalidKey)
				ra.debug(r, "api key refused", MethodAPIKey, nil)
				continue
			}
			p = &identity.Principal{Method: MethodAPIKey, Name: name}
		case MethodForward:
			res, d, err := ra.a.forwardCheck(ra.fwd, r)
			switch res {
			case forwardAllow:
				p = &identity.Principal{Method: MethodForward}
			case forwardDeny:
				deny = d
				ra.debug(r, "forward auth denied", MethodForward, fmt.Errorf("status %d", d.status))
			case forwardUnavailable:
				fwdFailed = true
				if r.Context().Err() == nil {
					ra.fwd.warns.warn(ra.a.log, ra.a.now(), "forward auth unavailable, refusing requests",
						"route", ra.route, "url", redactURL(ra.fwd.url), "error", err,
						"request_id", r.Header.Get(httperr.RequestIDHeader))
				}
			}
		}
		if p != nil {
			break
		}
	}

	if p == nil {
		switch {
		case deny != nil:
			writeDenial(w, r, deny)
		case fwdFailed:
			writeError(w, r, http.StatusServiceUnavailable, CodeAuthUnavailable, "")
		default:
			h := w.Header()
			chs := ra.challenges
			if badToken {
				chs = ra.challengesBadToken
			}
			for _, c := range chs {
				h.Add("Www-Authenticate", c)
			}
			writeError(w, r, http.StatusUnauthorized, CodeUnauthorized, msg)
		}
		return
	}

	// Credentials the client sent stay at the gateway unless the route
	// says otherwise, or a forward-auth service that allowed the request
	// put its own there (copy_headers).
	fwdSet := p.Method == MethodForward
	if !ra.keepAuthz && !(fwdSet && ra.fwdCopiesAuthz) {
		delete(r.Header, "Authorization")
	}
	if !ra.keepKey && ra.a.apiKeys != nil && !(fwdSet && ra.fwdCopiesKey) {
		delete(r.Header, ra.a.apiKeys.header)
	}
	if ra.log.Enabled(r.Context(), slog.LevelDebug) {
		ra.log.Debug("authenticated", "method", p.Method, "name", p.Name,
			"request_id", r.Header.Get(httperr.RequestIDHeader))
	}
	if rec := observe.RecordOf(w); rec != nil {
		rec.User = p.Name
	}
	ra.next.ServeHTTP(w, r.WithContext(identity.WithPrincipal(r.Context(), p)))
}

// isCredentialHeader says whether h (canonical) carries the client's
// credentials.
func isCredentialHeader(h string, keys *keyStore) bool {
	return h == "Authorization" || h == "Cookie" || keys != nil && h == keys.header
}

// debug logs why a credential was refused, never the credential.
func (ra *routeAuth) debug(r *http.Request, msg, method string, reason error) {
	if !ra.log.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	args := []any{"method", method, "request_id", r.Header.Get(httperr.RequestIDHeader)}
	if reason != nil {
		args = append(args, "reason", reason.Error())
	}
	ra.log.Debug(msg, args...)
}

// isPublic says whether path is a public path or below one (at a segment
// boundary: /health covers /health and /health/live, not /healthz).
func (a *Authenticator) isPublic(path string) bool {
	for _, p := range a.public {
		if strings.HasPrefix(path, p) && (len(path) == len(p) || path[len(p)] == '/') {
			return true
		}
	}
	return false
}

// bearerToken returns the token of "Authorization: Bearer <token>" (the
// scheme is case-insensitive). present is false without a Bearer
// credential; several Authorization headers, or an empty token, are a
// present but unusable token ("").
func bearerToken(h http.Header) (token string, present bool) {
	vals := h["Authorization"]
	if len(vals) == 0 {
		return "", false
	}
	v := vals[0]
	const scheme = "bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	rest := v[len(scheme):]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", false // "Bearerish ..." is another scheme
	}
	if len(vals) > 1 {
		return "", true
	}
	return strings.Trim(rest, " \t"), true
}

// writeError answers with the gateway's JSON error shape, the one
// httperr.Write produces, plus an optional "message":
// {"error": code, "status": status, "request_id": id, "message": msg}.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if msg == "" || httperr.IsGRPC(r) {
		httperr.Write(w, r, status, code)
		return
	}
	id := r.Header.Get(httperr.RequestIDHeader)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if id != "" {
		h.Set(httperr.RequestIDHeader, id)
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	b := make([]byte, 0, 128+len(id))
	b = append(b, `{"error":`...)
	b = strconv.AppendQuote(b, code)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	if id != "" {
		b = append(b, `,"request_id":`...)
		b = strconv.AppendQuote(b, id)
	}
	b = append(b, `,"message":`...)
	b = strconv.AppendQuote(b, msg)
	b = append(b, "}\n"...)
	_, _ = w.Write(b)
}
