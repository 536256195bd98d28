package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/hopbyhop"
	"github.com/altair-gateway/altair/internal/httperr"
	"github.com/altair-gateway/altair/internal/identity"
)

// forwardMaxBody bounds the denial body relayed from a forward-auth service.
const forwardMaxBody = 64 << 10

// forwarder asks an external service whether a request may pass.
//
// The call is always a GET without body to the configured URL (the
// original method goes in X-Forwarded-Method): auth services decide on
// headers, a GET never has side effects on them, and the request body stays
// unread for the upstream.
type forwarder struct {
	url         string
	timeout     time.Duration
	copyHeaders []string // canonical
	warns       warnLimiter
}

func newForwarder(c config.ForwardAuth, field string, errs *Errors) *forwarder {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		errs.add(field+".url", "invalid URL")
		return nil
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		errs.add(field+".url", "URL must be http or https with a host")
		return nil
	}
	f := &forwarder{url: u.String(), timeout: c.Timeout}
	if f.timeout <= 0 {
		f.timeout = defaultForwardTimeout
	}
	for _, h := range c.CopyHeaders {
		f.copyHeaders = append(f.copyHeaders, textproto.CanonicalMIMEHeaderKey(h))
	}
	return f
}

// forwardResult is the outcome of one call.
type forwardResult int

const (
	forwardAllow forwardResult = iota
	forwardDeny                // the service's answer was relayed
	forwardUnavailable
)

// denial is a non-2xx answer to relay to the client.
type denial struct {
	status int
	header http.Header
	body   []byte
}

// check calls the service. On allow it copies the chosen headers onto r.
func (a *Authenticator) forwardCheck(f *forwarder, r *http.Request) (forwardResult, *denial, error) {
	ctx, cancel := context.WithTimeout(r.Context(), f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return forwardUnavailable, nil, fmt.Errorf("build forward auth request: %w", err)
	}
	req.Header = forwardHeaders(r)
	resp, err := a.fwdClient.Do(req)
	if err != nil {
		return forwardUnavailable, nil, fmt.Errorf("call forward auth: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		for _, h := range f.copyHeaders {
			r.Header.Del(h)
			for _, v := range resp.Header.Values(h) {
				r.Header.Add(h, v)
			}
		}
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, forwardMaxBody))
		return forwardAllow, nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, forwardMaxBody+1))
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return forwardUnavailable, nil, fmt.Errorf("read forward auth answer: %w", err)
		}
		body = nil
	}
	d := &denial{status: resp.StatusCode, header: resp.Header.Clone(), body: body}
	removeHopHeaders(d.header)
	d.header.Del("Content-Length")
	if len(body) > forwardMaxBody {
		// Better no body than a truncated one that claims to be JSON/HTML.
		d.body = nil
		d.header.Del("Content-Type")
		d.header.Del("Content-Encoding")
	}
	return forwardDeny, d, nil
}

// forwardHeaders are the headers sent to the auth service: the client's,
// minus hop-by-hop and body headers, plus the X-Forwarded-* set that tells
// the service what was asked.
func forwardHeaders(r *http.Request) http.Header {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	removeHopHeaders(h)
	for _, k := range []string{"Content-Length", "Content-Type", "Content-Encoding", "Expect"} {
		h.Del(k)
	}
	// Every header that describes the request on the gateway's authority is
	// the gateway's to set: a client must not tell the auth service which URL
	// or address it is asking about (auth_request-style services decide on
	// X-Original-URL, X-Forwarded-Prefix and the like).
	for k := range h {
		if strings.HasPrefix(k, "X-Forwarded-") || strings.HasPrefix(k, "X-Original-") || k == "Forwarded" || k == "X-Real-Ip" {
			delete(h, k)
		}
	}
	h.Set("X-Forwarded-Method", r.Method)
	h.Set("X-Forwarded-Uri", r.URL.RequestURI())
	h.Set("X-Forwarded-Host", r.Host)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	h.Set("X-Forwarded-Proto", proto)
	if ip, ok := identity.ClientIP(r.Context()); ok {
		// The edge decided who the client is; what the client claimed in
		// X-Forwarded-For is not to be trusted.
		h.Set("X-Forwarded-For", ip.String())
		h.Set("X-Real-IP", ip.String())
	}
	h.Set("X-Original-Method", r.Method)
	h.Set("X-Original-URL", r.URL.RequestURI())
	if id := r.Header.Get(httperr.RequestIDHeader); id != "" {
		h.Set(httperr.RequestIDHeader, id)
	}
	return h
}

// removeHopHeaders deletes the hop-by-hop headers, those named in
// Connection included: they are not passed to the auth service nor back
// from it.
func removeHopHeaders(h http.Header) { hopbyhop.Remove(h) }

// writeDenial relays the service's answer.
func writeDenial(w http.ResponseWriter, r *http.Request, d *denial) {
	h := w.Header()
	for k, vs := range d.header {
		h[k] = vs
	}
	if id := r.Header.Get(httperr.RequestIDHeader); id != "" {
		h.Set(httperr.RequestIDHeader, id)
	}
	w.WriteHeader(d.status)
	if len(d.body) > 0 {
		_, _ = w.Write(d.body)
	}
}
