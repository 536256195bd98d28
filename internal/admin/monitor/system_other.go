//go:build !linux && !darwin && !windows

package monitor

// Platforms without a reader here report every machine figure as unavailable.

func systemCPU() (busy, total uint64, ok bool)            { return 0, 0, false }
func processRSS() (uint64, bool)                          { return 0, false }
func systemMemory() (total, available *uint64)            { return nil, nil }
func diskUsage(path string) (total, free uint64, ok bool) { return 0, 0, false }
