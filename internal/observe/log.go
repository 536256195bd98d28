// Package observe sets up the gateway's logging (and, later, metrics and tracing).
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

// NewLogger returns a JSON (or text) logger writing to w whose level follows lv,
// so a config reload can change the level of every subsystem logger at once.
func NewLogger(w io.Writer, format string, lv *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Subsystem returns the logger for one subsystem of the gateway.
func Subsystem(l *slog.Logger, name string) *slog.Logger {
	return l.With("subsystem", name)
}
