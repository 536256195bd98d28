package monitor

import "golang.org/x/sys/unix"

// systemCPU is unavailable on macOS without cgo (host_statistics is a Mach
// call).
func systemCPU() (busy, total uint64, ok bool) { return 0, 0, false }

// processRSS is unavailable on macOS without cgo (task_info is a Mach call).
func processRSS() (uint64, bool) { return 0, false }

// systemMemory reports the installed memory (sysctl hw.memsize); what is
// available is not exposed through sysctl.
func systemMemory() (total, available *uint64) {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return nil, nil
	}
	return &n, nil
}
