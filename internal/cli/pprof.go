//go:build pprof

package cli

// Built with -tags pprof, altair serves net/http/pprof on ALTAIR_PPROF_ADDR
// (default 127.0.0.1:6060) while it runs, for profiling under load. Release
// builds do not contain it.

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
)

func startProfiler(log *slog.Logger) {
	addr := os.Getenv("ALTAIR_PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	log.Warn("profiling endpoint enabled (pprof build)", "addr", addr)
	go func() {
		if err := http.ListenAndServe(addr, mux); err != nil {
			log.Error("profiling endpoint stopped", "error", err)
		}
	}()
}
