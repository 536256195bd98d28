//go:build !pprof

package cli

import "log/slog"

// startProfiler does nothing in release builds; see pprof.go.
func startProfiler(*slog.Logger) {}
