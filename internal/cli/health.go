package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
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
	url := fs.String("url", "", "URL to query (default: http://127.0.0.1:PORT/health from the config)")
	ready := fs.Bool("ready", false, "query /ready instead of /health")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	quiet := fs.Bool("q", false, "print nothing, only exit 0 or 1")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	target := *url
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
		target = "http://" + localAddr(cfg.Server.Listen) + path
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintln(stderr, "altair health:", err)
		return 2
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
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
