// Package observe sets up the gateway's logging, access log and tracing.
package observe

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Subsystem names used as the "subsystem" attribute of every log line, so one
// subsystem can be filtered out of the gateway's JSON logs.
const (
	SubsystemGateway = "gateway"
	SubsystemRouter  = "router"
	SubsystemProxy   = "proxy"
	SubsystemCircuit = "circuit"
	SubsystemConfig  = "config"
	SubsystemAdmin   = "admin"
	SubsystemAuth    = "auth"
	SubsystemDDoS    = "ddos" // the edge guard: lists, blocks, limits
	SubsystemCache   = "cache"
	SubsystemCluster = "cluster" // Redis: shared state across replicas
	SubsystemPlugin  = "plugin"  // plugins, compiled in or WebAssembly
)

// ParseLevel maps debug, info, warn and error to a slog level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("unknown log level %q", s)
}

// NewLogger returns a JSON (or text) logger writing to w. Each subsystem
// logger derived from it (Subsystem) filters by its own level in levels, so
// a config reload can change every level at once (Levels.Apply).
func NewLogger(w io.Writer, format string, levels *Levels) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.Level(-8)} // levelHandler filters
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(&levelHandler{inner: h, levels: levels, lv: levels.For("")})
}

// Subsystem returns the logger for one subsystem of the gateway: its lines
// carry "subsystem" and follow the subsystem's level (log.levels).
func Subsystem(l *slog.Logger, name string) *slog.Logger {
	if h, ok := l.Handler().(*levelHandler); ok {
		return slog.New(&levelHandler{
			inner:  h.inner.WithAttrs([]slog.Attr{slog.String("subsystem", name)}),
			levels: h.levels,
			lv:     h.levels.For(name),
		})
	}
	return l.With("subsystem", name)
}

// SubsystemNames lists the subsystems whose level log.levels can set.
func SubsystemNames() []string {
	return []string{SubsystemGateway, SubsystemRouter, SubsystemProxy, SubsystemCircuit, SubsystemConfig,
		SubsystemAdmin, SubsystemAuth, SubsystemDDoS, SubsystemTracer, SubsystemCache, SubsystemCluster, SubsystemPlugin}
}
