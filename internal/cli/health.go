package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

// healthCmd asks a running gateway whether it is alive (/health) or ready
// (/ready) and exits 0 or 1. Container images have no curl: this is what a
// Docker HEALTHCHECK or an exec probe runs.
func (a *app) healthCmd(args []string, stdout, stderr io.Writer, environ []string) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "config file (for server.listen)")
	url := fs.String("url", "", "URL to query (default from the config: http://127.0.0.1:PORT/health, or with TLS the redirect listener, else https on loopback)")
	insecure := fs.Bool("insecure", false, "do not verify the certificate of an https -url")
	ready := fs.Bool("ready", false, "query /ready instead of /health")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	quiet := fs.Bool("q", false, "print nothing, only exit 0 or 1")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	target, serverName := *url, ""
	if target == "" {
		cfg, err := config.Load(configPath(*file), environ)
		if err != nil {
			printProblems(stderr, err)
			return 1
		}
		path := "/health"
		if *ready {
			path = "/ready"
		}
		target, serverName = localHealthURL(cfg.Server, path)
		*insecure = true // our own listener on loopback: liveness, not identity
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintln(stderr, "altair health:", err)
		return 2
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if strings.HasPrefix(target, "https://") {
		tr.TLSClientConfig = &tls.Config{ServerName: serverName, InsecureSkipVerify: *insecure, MinVersion: tls.VersionTLS12} //nolint:gosec // -insecure, or our own listener on loopback
	}
	client := &http.Client{Transport: tr}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "altair health:", err)
		return 1
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
	if !*quiet {
		fmt.Fprintf(stdout, "%s: %d %s\n", target, resp.StatusCode, body.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// localHealthURL is where a gateway run with s answers path on this host:
// plain HTTP on its listener; with TLS, the redirect listener (which serves
// /health and /ready itself, without TLS or client certificates) when there
// is one, else https on the listener. serverName is the SNI name to send
// (an ACME domain when only ACME gives certificates; a handshake without SNI
// would get none).
func localHealthURL(s config.Server, path string) (url, serverName string) {
	t := s.TLS
	switch {
	case !t.Enabled():
		return "http://" + localAddr(s.Listen) + path, ""
	case t.RedirectListen != "":
		return "http://" + localAddr(t.RedirectListen) + path, ""
	}
	if len(t.Certificates) == 0 && len(t.ACME.Domains) > 0 {
		serverName = t.ACME.Domains[0]
	}
	return "https://" + localAddr(s.Listen) + path, serverName
}

// localAddr turns a listen address into one to dial on this host: an empty or
// unspecified host becomes the loopback address.
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}
