// Package cli is the altair command line: the gateway's whole program, run
// by cmd/altair and, with compiled-in plugins, by plugin.Main.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/altair-gateway/altair/internal/cluster"
	"github.com/altair-gateway/altair/internal/config"
	"github.com/altair-gateway/altair/internal/gateway"
	"github.com/altair-gateway/altair/internal/observe"
	"github.com/altair-gateway/altair/internal/pluginapi"
	"github.com/altair-gateway/altair/internal/server"
	"github.com/altair-gateway/altair/internal/wasmhost"
)

// Options are what the binary passes in.
type Options struct {
	// Version is reported by `altair version`, /health, /stats and the
	// build-info metric. Default "dev".
	Version string
	// Plugins are compiled-in plugins, beside the built-in ones.
	Plugins []pluginapi.Factory
}

// app is one run of the command line.
type app struct {
	version string
	plugins *pluginapi.Registry
	wasm    *wasmhost.Runtime // the built-in wasm plugin's; closed by Main
}

const usage = `Altair API gateway

Usage:
  altair [run] [-c FILE] [-dashboard=false]
                                    start the gateway (default config: ./altair.yaml if present);
                                    in a terminal it draws a live dashboard unless -dashboard=false
                                    or ALTAIR_DASHBOARD=off
  altair validate -c FILE           check a config file; exit 1 on any problem
  altair explain [-c FILE] METHOD URL [-H 'Name: value']... [-json]
                                    show the route, middleware chain and upstream a request would reach
  altair health [-c FILE] [-url URL] [-ready] [-timeout D] [-q]
                                    query a running gateway's /health (or /ready); exit 0 on 200
  altair version                    print the version
`

// Main runs the command line args (without the program name) and returns
// the exit status.
func Main(args []string, stdout, stderr io.Writer, environ []string, o Options) int {
	a := &app{version: o.Version}
	if a.version == "" {
		a.version = "dev"
	}
	a.wasm = wasmhost.NewRuntime(context.Background())
	defer a.wasm.Close(context.Background()) //nolint:errcheck // at exit
	reg, err := pluginapi.NewRegistry(append([]pluginapi.Factory{wasmhost.Factory(a.wasm)}, o.Plugins...)...)
	if err != nil {
		fmt.Fprintln(stderr, "altair:", err)
		return 2
	}
	a.plugins = reg
	return a.main(args, stdout, stderr, environ)
}

func (a *app) main(args []string, stdout, stderr io.Writer, environ []string) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return a.runCmd(args, stdout, stderr, environ)
	case "validate":
		return a.validateCmd(args, stdout, stderr, environ)
	case "explain":
		return a.explainCmd(args, stdout, stderr, environ)
	case "health":
		return a.healthCmd(args, stdout, stderr, environ)
	case "version":
		fmt.Fprintln(stdout, "altair", a.fullVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "altair: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func (a *app) fullVersion() string {
	v := a.version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}

// configPath is -c if given, else ./altair.yaml when it exists, else "" (the
// environment and built-in defaults only).
func configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if _, err := os.Stat("altair.yaml"); err == nil {
		return "altair.yaml"
	}
	return ""
}

func printProblems(w io.Writer, err error) {
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(w, p.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}

func (a *app) validateCmd(args []string, stdout, stderr io.Writer, environ []string) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path := configPath(*file)
	cfg, err := config.Load(path, environ)
	if err == nil {
		err = gateway.Check(cfg, a.plugins)
	}
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	name := path
	if name == "" {
		name = "environment and defaults"
	}
	fmt.Fprintf(stdout, "%s: ok (%d routes, %d upstreams)\n", name, len(cfg.Routes), len(cfg.Upstreams))
	return 0
}

// headerFlags collects repeated -H 'Name: value' flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func (a *app) explainCmd(args []string, stdout, stderr io.Writer, environ []string) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "config file")
	asJSON := fs.Bool("json", false, "print JSON")
	var headers headerFlags
	fs.Var(&headers, "H", "request header 'Name: value' (repeatable)")
	// Flags may come before or after METHOD and URL.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "usage: altair explain [-c FILE] METHOD URL [-H 'Name: value']... [-json]")
		return 2
	}
	target := pos[1]
	if strings.HasPrefix(target, "/") {
		target = "http://localhost" + target
	}
	r, err := http.NewRequest(strings.ToUpper(pos[0]), target, nil)
	if err != nil {
		fmt.Fprintln(stderr, "altair explain:", err)
		return 2
	}
	r.RemoteAddr = "127.0.0.1:0"
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(stderr, "altair explain: header %q is not 'Name: value'\n", h)
			return 2
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if strings.EqualFold(name, "Host") {
			r.Host = value
			continue
		}
		r.Header.Add(name, value)
	}
	cfg, err := config.Load(configPath(*file), environ)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	ex, err := gateway.Explain(cfg, r, a.plugins)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(ex)
		return 0
	}
	ex.WriteText(stdout)
	return 0
}

func (a *app) runCmd(args []string, stdout, stderr io.Writer, environ []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "config file")
	dash := fs.Bool("dashboard", true, "draw a live dashboard when stdout is a terminal (ALTAIR_DASHBOARD=off also turns it off)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// Signals are ours from the first moment: a SIGTERM or SIGHUP that arrives
	// while starting must not take the default action (exit without draining).
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	path := configPath(*file)
	cfg, err := config.Load(path, environ)
	if err != nil {
		fmt.Fprintln(stderr, "altair: invalid config:")
		printProblems(stderr, err)
		return 1
	}

	levels := observe.NewLevels(slog.LevelInfo)
	levels.Apply(observe.ParseLevels(cfg.Log.Level, cfg.Log.Levels))
	view := newTerminalView(*dash, stdout, stderr, environ)
	logger := observe.NewLogger(view.logOut(), cfg.Log.Format, levels)
	cfgLog := observe.Subsystem(logger, observe.SubsystemConfig)
	glog := observe.Subsystem(logger, observe.SubsystemGateway)
	startProfiler(logger)
	gcCtx, stopGCTuner := context.WithCancel(context.Background())
	defer stopGCTuner()
	startGCTuner(gcCtx)

	tracer, err := observe.NewTracer(context.Background(), cfg.Tracing, a.version, observe.Subsystem(logger, observe.SubsystemTracer))
	if err != nil {
		glog.Error("cannot start tracing", "error", err)
		return 1
	}
	defer shutdownTracer(tracer, glog)

	// Redis (read at start only): replicas share rate limits, DDoS counts
	// and blocks, and run-time list entries. Closed after the gateway.
	var shared *cluster.Client
	if cfg.Redis.Enabled() {
		shared, err = cluster.New(cluster.Options{Config: cfg.Redis, Logger: observe.Subsystem(logger, observe.SubsystemCluster)})
		if err != nil {
			glog.Error("cannot configure redis", "error", err)
			return 1
		}
		defer shared.Close()
	}

	gw := gateway.New(gateway.Options{Logger: logger, Version: a.version, Plugins: a.plugins, AdminListen: cfg.Admin.Listen,
		AccessLog: view.accessOut(), LogFormat: cfg.Log.Format, Tracer: tracer, Cluster: shared})
	defer gw.Close()
	if err := gw.Apply(cfg); err != nil {
		fmt.Fprintln(stderr, "altair: invalid config:")
		printProblems(stderr, err)
		return 1
	}
	if shared != nil {
		// Redis down is no reason not to start: the gateway serves with
		// local state and joins when Redis answers.
		shared.Start(context.Background())
	}

	srv := server.New(cfg.Server, gw, observe.Subsystem(logger, observe.SubsystemGateway))
	connLimiter := gw.ConnLimiter(cfg.Edge.Connections)
	srv.WrapListener(connLimiter.Listener)
	srv.OnConnState(gw.ConnState)
	// TLS (read at start): the certificate files are re-read when they
	// change and on every reload; a bad new file keeps the current ones.
	var certs *server.Certificates
	var acmeMgr *server.ACME
	if a := cfg.Server.TLS.ACME; a.Enabled {
		if acmeMgr, err = server.NewACME(a, glog.With("component", "acme")); err != nil {
			glog.Error("cannot set up acme", "error", err)
			return 1
		}
		glog.Info("acme certificates on", "domains", a.Domains, "cache_dir", a.CacheDir, "directory", acmeDirectory(a.DirectoryURL))
	}
	if cfg.Server.TLS.Enabled() {
		certs, err = server.NewCertificates(cfg.Server.TLS.Certificates, acmeMgr, glog)
		if err != nil {
			glog.Error("cannot load certificates", "error", err)
			return 1
		}
		tc := server.TLSConfig(cfg.Server.TLS, certs)
		if err := server.ApplyClientAuth(tc, cfg.Server.TLS.ClientAuth); err != nil {
			glog.Error("cannot load client certificate CAs", "error", err)
			return 1
		}
		srv.UseTLS(tc)
	}
	if err := srv.Listen(); err != nil {
		glog.Error("cannot start", "error", err)
		return 1
	}
	// HTTP/3 on UDP, when server.http3 asks for it: by default at the TCP
	// listener's address and port; TCP responses advertise it with Alt-Svc.
	var h3 *server.HTTP3
	if certs != nil && cfg.Server.HTTP3.Enabled {
		h3 = server.NewHTTP3(cfg.Server, gw, srv.TLSConfig(), glog.With("listener", "http3"))
		if connLimiter != nil {
			h3.LimitConnections(connLimiter.Admit)
		}
		addr := cfg.Server.HTTP3.Listen
		if addr == "" {
			host, _, _ := net.SplitHostPort(cfg.Server.Listen)
			_, port, _ := net.SplitHostPort(srv.Addr().String())
			addr = net.JoinHostPort(host, port)
		}
		if err := h3.Listen(addr); err != nil {
			glog.Error("cannot start the http3 listener", "error", err)
			return 1
		}
		srv.AdvertiseHTTP3(h3.Addr().(*net.UDPAddr).Port)
	}
	serveErr := make(chan error, 4)
	go func() { serveErr <- srv.Serve() }()
	if h3 != nil {
		go func() { serveErr <- h3.Serve() }()
	}

	// The HTTP → HTTPS redirect listener, when server.tls.redirect_listen
	// asks for one. It also answers /health and /ready for probes.
	var redirectSrv *server.Server
	if certs != nil && cfg.Server.TLS.RedirectListen != "" {
		rcfg := cfg.Server
		rcfg.Listen, rcfg.TLS, rcfg.H2C = cfg.Server.TLS.RedirectListen, config.ServerTLS{}, false
		_, httpsPort, _ := net.SplitHostPort(srv.Addr().String())
		var rh http.Handler = server.RedirectHandler(httpsPort, gw)
		if acmeMgr != nil {
			rh = acmeMgr.HTTPHandler(rh) // HTTP-01 validation
		}
		redirectSrv = server.New(rcfg, rh, glog.With("listener", "redirect"))
		if err := redirectSrv.Listen(); err != nil {
			glog.Error("cannot start the redirect listener", "error", err)
			return 1
		}
		go func() { serveErr <- redirectSrv.Serve() }()
	}

	// The admin API on its own listener, when admin.listen asks for one.
	var adminSrv *server.Server
	if cfg.Admin.Listen != "" {
		acfg := cfg.Server
		acfg.Listen = cfg.Admin.Listen
		acfg.TLS, acfg.H2C = config.ServerTLS{}, false // the admin listener stays plain HTTP/1.1
		adminSrv = server.New(acfg, gw.AdminHandler(), observe.Subsystem(logger, observe.SubsystemAdmin))
		if err := adminSrv.Listen(); err != nil {
			glog.Error("cannot start the admin listener", "error", err)
			return 1
		}
		go func() { serveErr <- adminSrv.Serve() }()
	}
	if cfg.Admin.Token == "" {
		observe.Subsystem(logger, observe.SubsystemAdmin).Info("admin API disabled: set ADMIN_TOKEN (admin.token) to enable /admin/*")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan string, 1)
	request := func(why string) {
		select {
		case reload <- why:
		default: // a reload is already pending; it will read the newest file
		}
	}
	// The config watch is in place before the gateway says it is ready, so
	// a change made once /ready answers 200 is never missed.
	watchDone := make(chan struct{})
	watching := make(chan struct{})
	if path != "" {
		go func() {
			defer close(watchDone)
			ready := func() { close(watching) }
			if err := config.Watch(ctx, path, func() { request("file changed") }, ready); err != nil && ctx.Err() == nil {
				cfgLog.Error("config watch stopped; reload with SIGHUP", "error", err)
			}
		}()
		select {
		case <-watching:
		case <-watchDone: // the watch could not start; logged above
		}
	} else {
		close(watchDone)
	}
	certsDone := make(chan struct{})
	if certs != nil {
		watched := make(chan struct{})
		go func() { defer close(certsDone); certs.Watch(ctx, func() { close(watched) }) }()
		<-watched
	} else {
		close(certsDone)
	}
	// OCSP stapling runs in the background: handshakes go without a staple
	// until a Good response arrives.
	ocspDone := make(chan struct{})
	if certs != nil && cfg.Server.TLS.StaplesOCSP() {
		go func() { defer close(ocspDone); certs.StapleOCSP(ctx, server.OCSPOptions{}) }()
	} else {
		close(ocspDone)
	}
	gw.SetReady(true)
	startAttrs := []any{"version", a.version, "config", cfg.Source, "addr", srv.Addr().String(), "tls", certs != nil, "h2c", cfg.Server.H2C}
	if redirectSrv != nil {
		startAttrs = append(startAttrs, "redirect_addr", redirectSrv.Addr().String())
	}
	if h3 != nil {
		startAttrs = append(startAttrs, "http3_addr", h3.Addr().String())
	}
	glog.Info("altair started", startAttrs...)
	view.start(gw, srv.Addr().String())
	defer view.stop()

	listen := cfg.Server
	for {
		select {
		case err := <-serveErr:
			view.stop()
			glog.Error("listener failed", "error", err)
			return 1
		case why := <-reload:
			next := applyReload(gw, path, environ, why, listen, levels, cfgLog)
			switch {
			case certs == nil:
			case next != nil && !slices.Equal(next.Server.TLS.Certificates, listen.TLS.Certificates):
				// A new list: loaded, served and watched now.
				if certs.Update(next.Server.TLS.Certificates, why) == nil {
					listen.TLS.Certificates = next.Server.TLS.Certificates
				}
			default:
				_ = certs.Reload(why) // logged; a bad file keeps the current certificates
			}
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				request("SIGHUP")
				continue
			}
			view.stop() // the terminal and the logs are the operator's again
			glog.Info("shutting down", "signal", sig.String(), "drain_delay", listen.DrainDelay.String(), "timeout", listen.ShutdownTimeout.String())
			gw.SetDraining()
			cancel()
			<-watchDone
			<-certsDone
			<-ocspDone
			drainDelay(listen.DrainDelay, sigs)
			sctx, scancel := context.WithTimeout(context.Background(), listen.ShutdownTimeout)
			h3Done := make(chan error, 1)
			if h3 != nil {
				go func() { h3Done <- h3.Shutdown(sctx) }() // drains beside the TCP listener
			} else {
				h3Done <- nil
			}
			err := srv.Shutdown(sctx)
			if h3err := <-h3Done; err == nil {
				err = h3err
			}
			if adminSrv != nil {
				_ = adminSrv.Shutdown(sctx)
			}
			if redirectSrv != nil {
				_ = redirectSrv.Shutdown(sctx)
			}
			scancel()
			gw.Close()
			if err != nil {
				glog.Warn("shutdown deadline reached, remaining connections closed", "error", err)
				return 1
			}
			glog.Info("stopped")
			return 0
		}
	}
}

// shutdownTracer exports the spans still buffered, for at most 5 seconds.
func shutdownTracer(t *observe.Tracer, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("tracing: spans lost at shutdown", "error", err)
	}
}

// drainDelay keeps serving, with /ready answering 503, for d so that load
// balancers notice before the listener closes. A second SIGINT/SIGTERM ends
// the wait early.
func drainDelay(d time.Duration, sigs <-chan os.Signal) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				return
			}
		}
	}
}

// applyReload loads the config at path again and applies it, warning about
// settings that need a restart. It returns the config applied, or nil.
func applyReload(gw *gateway.Gateway, path string, environ []string, why string, running config.Server, levels *observe.Levels, log *slog.Logger) *config.Config {
	start := time.Now()
	cfg, err := config.Load(path, environ)
	if err != nil {
		gw.RecordReloadFailure(fmt.Errorf("reload (%s): %w", why, err))
		return nil
	}
	if cfg.Server.Listen != running.Listen {
		log.Warn("server.listen changed; the listener keeps its address until restart", "running", running.Listen, "configured", cfg.Server.Listen)
	}
	if t, r := cfg.Server.TLS, running.TLS; t.Enabled() != r.Enabled() || t.MinVersion != r.MinVersion || t.RedirectListen != r.RedirectListen || t.ClientAuth != r.ClientAuth || !t.ACME.Equal(r.ACME) || t.StaplesOCSP() != r.StaplesOCSP() || cfg.Server.H2C != running.H2C || cfg.Server.HTTP3 != running.HTTP3 {
		log.Warn("server.tls, server.h2c or server.http3 changed; the listener keeps its TLS settings until restart (the certificates list and files are re-read)")
	}
	if err := gw.Apply(cfg); err != nil {
		return nil // Apply logged and counted it
	}
	levels.Apply(observe.ParseLevels(cfg.Log.Level, cfg.Log.Levels))
	log.Info("config reloaded", "trigger", why, "duration_ms", time.Since(start).Milliseconds())
	return cfg
}

// acmeDirectory names the ACME directory for the log: url, or autocert's
// default (Let's Encrypt's production directory) when url is empty.
func acmeDirectory(url string) string {
	if url == "" {
		return autocert.DefaultACMEDirectory
	}
	return url
}
