package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// TLSVersions are the accepted values of server.tls.min_version.
func TLSVersions() []string { return []string{"1.2", "1.3"} }

// maxPEMBytes bounds a certificate or key file read at validation, so that a
// path such as /dev/zero cannot exhaust memory.
const maxPEMBytes = 1 << 20

// serverTLS checks server.tls, server.h2c and server.http3: the certificate files must be
// readable and hold matching key pairs now, not at the first handshake.
func (v *validator) serverTLS(s *Server) {
	t := &s.TLS
	if t.MinVersion != "" {
		v.check("server.tls.min_version", checkOneOf(t.MinVersion, TLSVersions()))
	}
	if t.RedirectListen != "" {
		switch {
		case !t.Enabled():
			v.add("server.tls.redirect_listen", "needs server.tls.certificates or server.tls.acme: it redirects to the TLS listener")
		default:
			if err := checkListen(listenAddr(t.RedirectListen)); err != nil {
				v.check("server.tls.redirect_listen", err)
			} else if a := listenAddr(t.RedirectListen); a == listenAddr(s.Listen) && !strings.HasSuffix(a, ":0") {
				v.add("server.tls.redirect_listen", "must differ from server.listen")
			}
		}
	}
	if h := &s.HTTP3; h.Enabled && !t.Enabled() {
		v.add("server.http3.enabled", "needs server.tls.certificates or server.tls.acme: HTTP/3 runs over TLS 1.3")
	}
	if s.HTTP3.Listen != "" {
		v.check("server.http3.listen", checkListen(listenAddr(s.HTTP3.Listen)))
	}
	if ca := &t.ClientAuth; ca.Enabled() {
		if !t.Enabled() {
			v.add("server.tls.client_auth", "needs server.tls.certificates or server.tls.acme: client certificates are asked for in the TLS handshake")
		}
		if ca.Mode != "" {
			v.check("server.tls.client_auth.mode", checkOneOf(ca.Mode, []string{ClientAuthRequest, ClientAuthRequire}))
		}
		if ca.CAFile == "" {
			v.add("server.tls.client_auth.ca_file", "is required: without it no client certificate can be verified")
		} else if b, err := ReadPEMFile(ca.CAFile); err != nil {
			v.add("server.tls.client_auth.ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			v.add("server.tls.client_auth.ca_file", "%q holds no PEM certificate", ca.CAFile)
		}
	}
	v.acme(&t.ACME)
	for i, c := range t.Certificates {
		base := "server.tls.certificates[" + strconv.Itoa(i) + "]"
		certPEM, certOK := v.pemFile(base+".cert_file", c.CertFile)
		keyPEM, keyOK := v.pemFile(base+".key_file", c.KeyFile)
		if !certOK || !keyOK {
			continue
		}
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			v.add(base, "cert_file and key_file are not a key pair: %v", err)
		}
	}
}

// pemFile reads a PEM file named at path, reporting a missing name or an
// unreadable file.
func (v *validator) pemFile(path, name string) ([]byte, bool) {
	if name == "" {
		v.add(path, "is required")
		return nil, false
	}
	b, err := ReadPEMFile(name)
	if err != nil {
		v.add(path, "%v", err)
		return nil, false
	}
	return b, true
}

// ReadPEMFile reads a certificate or key file: a regular file of at most
// 1 MiB.
func ReadPEMFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %q: not a regular file", name)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", name, err)
	}
	if len(b) > maxPEMBytes {
		return nil, fmt.Errorf("read %q: larger than %d bytes", name, maxPEMBytes)
	}
	return b, nil
}

// upstreamTLSProblems checks transport.tls: the files must be readable, hold
// PEM certificates and, for cert_file and key_file, a matching key pair now,
// not at the first handshake with a backend. Paths are relative to
// transport.tls, "" for the block itself.
func upstreamTLSProblems(t *UpstreamTLS) []relProblem {
	var ps []relProblem
	add := func(sub, msg string) { ps = append(ps, relProblem{sub, msg}) }
	if t.MinVersion != "" {
		if err := checkOneOf(t.MinVersion, TLSVersions()); err != nil {
			add(".min_version", err.Error())
		}
	}
	if t.ServerName != "" && strings.ContainsAny(t.ServerName, " /\t\r\n") {
		add(".server_name", fmt.Sprintf("%q is not a host name", t.ServerName))
	}
	if t.CAFile != "" {
		if b, err := ReadPEMFile(t.CAFile); err != nil {
			add(".ca_file", err.Error())
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			add(".ca_file", fmt.Sprintf("%q holds no PEM certificate", t.CAFile))
		}
	}
	switch {
	case t.CertFile == "" && t.KeyFile == "":
		return ps
	case t.CertFile == "":
		add(".cert_file", "is required with key_file")
		return ps
	case t.KeyFile == "":
		add(".key_file", "is required with cert_file")
		return ps
	}
	certPEM, certErr := ReadPEMFile(t.CertFile)
	if certErr != nil {
		add(".cert_file", certErr.Error())
	}
	keyPEM, keyErr := ReadPEMFile(t.KeyFile)
	if keyErr != nil {
		add(".key_file", keyErr.Error())
	}
	if certErr == nil && keyErr == nil {
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			add("", fmt.Sprintf("cert_file and key_file are not a key pair: %v", err))
		}
	}
	return ps
}

// acme checks server.tls.acme: names a CA can issue for, a usable directory
// URL and CA bundle.
func (v *validator) acme(a *ACME) {
	if !a.Enabled {
		if len(a.Domains) > 0 || a.Email != "" || a.DirectoryURL != "" || a.CAFile != "" {
			v.add("server.tls.acme.enabled", "must be true when other server.tls.acme keys are set")
		}
		return
	}
	if len(a.Domains) == 0 {
		v.add("server.tls.acme.domains", "is required: the names certificates are asked for")
	}
	seen := make(map[string]bool, len(a.Domains))
	for i, d := range a.Domains {
		path := "server.tls.acme.domains[" + strconv.Itoa(i) + "]"
		name := strings.ToLower(d)
		switch {
		case strings.HasPrefix(name, "*."):
			v.add(path, "%q: wildcard names need the DNS-01 challenge, which Altair does not do; list each name", d)
		case net.ParseIP(name) != nil:
			v.add(path, "%q is an IP address; ACME certificates here are for DNS names", d)
		case !validHostname(name):
			v.add(path, "%q is not a DNS name", d)
		case seen[name]:
			v.add(path, "%q is listed twice", d)
		}
		seen[name] = true
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n")) {
		v.add("server.tls.acme.email", "%q is not an email address", a.Email)
	}
	if a.DirectoryURL != "" {
		if u, err := url.Parse(a.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
			v.add("server.tls.acme.directory_url", "%q must be an https:// URL", a.DirectoryURL)
		}
	}
	if a.CAFile != "" {
		if b, err := ReadPEMFile(a.CAFile); err != nil {
			v.add("server.tls.acme.ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			v.add("server.tls.acme.ca_file", "%q holds no PEM certificate", a.CAFile)
		}
	}
	if a.RenewBefore < 0 {
		v.add("server.tls.acme.renew_before", "must not be negative")
	}
}
