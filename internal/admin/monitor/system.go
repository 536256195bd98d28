package monitor

import (
	"runtime"
	"time"
)

// systemSample is what the platform and the Go runtime report at one moment.
// A nil pointer is a figure this platform cannot provide; it shows as null
// in the JSON and "n/a" on the page.
type systemSample struct {
	// procCPU is the CPU time (user + system) the process has used.
	procCPU *time.Duration
	// sysBusy and sysTotal are cumulative CPU times of the whole machine, in
	// the platform's units; only their ratio over a window means anything.
	sysBusy, sysTotal *uint64
	// rss is the process's resident set, in bytes.
	rss *uint64
	// memTotal and memAvailable are the machine's memory, in bytes.
	memTotal, memAvailable *uint64
	// diskTotal and diskFree describe the file system holding the disk path,
	// in bytes; diskFree is what an unprivileged user may still use.
	diskTotal, diskFree *uint64

	goroutines int
	heapInuse  uint64
	goSys      uint64
	numGC      uint32
	pauseTotal time.Duration
	lastPause  time.Duration
}

// readSystem reads the process, machine and Go runtime figures. The
// platform-specific parts live in files with build tags; each has a fallback
// that reports "unavailable" (nil) rather than failing.
func readSystem(diskPath string) systemSample {
	var s systemSample
	if d, ok := processCPU(); ok {
		s.procCPU = &d
	}
	if busy, total, ok := systemCPU(); ok {
		s.sysBusy, s.sysTotal = &busy, &total
	}
	if rss, ok := processRSS(); ok {
		s.rss = &rss
	}
	s.memTotal, s.memAvailable = systemMemory()
	if diskPath != "" {
		if total, free, ok := diskUsage(diskPath); ok {
			s.diskTotal, s.diskFree = &total, &free
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.goroutines = runtime.NumGoroutine()
	s.heapInuse = ms.HeapInuse
	s.goSys = ms.Sys
	s.numGC = ms.NumGC
	s.pauseTotal = time.Duration(ms.PauseTotalNs)
	if ms.NumGC > 0 {
		s.lastPause = time.Duration(ms.PauseNs[(ms.NumGC+255)%256])
	}
	return s
}

func ptr[T any](v T) *T { return &v }
