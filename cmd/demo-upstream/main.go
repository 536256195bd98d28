// Command demo-upstream is a tiny HTTP service that stands in for a real backend
// behind Altair: `make run` proxies to it, the benchmarks load it, and the e2e
// tests use it to see what the gateway forwarded.
//
// Usage:
//
//	demo-upstream [-listen 127.0.0.1:9001] [-name demo-1]
//
// Endpoints:
//
//	/healthz                     200 "ok"
//	/bytes/N                     exactly N bytes (N ≤ 10 MiB), precomputed, no per-request allocation
//	/bytes/N?max_age=S           the same with Cache-Control: public, max-age=S (S ≤ one year), so a cache may store it
//	/status/CODE                 answers with that status (200..599)
//	/delay/DURATION              waits DURATION (e.g. 2s, 150ms, or 2 for seconds; at most 5m), then 200
//	/sse?n=5&interval=100ms      text/event-stream, n events flushed one by one
//	anything else                JSON echo of the request: service, method, path, query, host, headers, remote_addr
//
// It shuts down gracefully on SIGINT and SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownTimeout bounds the graceful drain; long /delay and /sse requests still in
// flight after it are cut.
const shutdownTimeout = 5 * time.Second

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "address to listen on")
	name := flag.String("name", "demo-1", "instance name, reported in echo responses and the X-Served-By header")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if err := run(ctx, logger, *listen, *name); err != nil {
		logger.Error("demo-upstream stopped", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then drains in-flight requests for at most
// shutdownTimeout.
func run(ctx context.Context, logger *slog.Logger, listen, name string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %q: %w", listen, err)
	}
	srv := &http.Server{
		Handler:           newHandler(name),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("demo-upstream listening", "name", name, "addr", ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("demo-upstream shutting down", "name", name)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running after the drain period (long delays, streams) are cut.
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
