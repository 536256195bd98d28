package monitor

import (
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// kernel32 functions that golang.org/x/sys/windows does not wrap. kernel32 is
// a known DLL: it always loads from the system directory.
var (
	kernel32                 = windows.NewLazySystemDLL("kernel32.dll")
	procGetSystemTimes       = kernel32.NewProc("GetSystemTimes")
	procGlobalMemoryStatusEx = kernel32.NewProc("GlobalMemoryStatusEx")
	procGetProcessMemoryInfo = kernel32.NewProc("K32GetProcessMemoryInfo")
)

// filetime100ns is a FILETIME as a count of 100 ns intervals.
func filetime100ns(ft windows.Filetime) uint64 {
	return uint64(ft.HighDateTime)<<32 | uint64(ft.LowDateTime)
}

// processCPU is the kernel and user time of this process.
func processCPU() (time.Duration, bool) {
	var creation, exit, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(windows.CurrentProcess(), &creation, &exit, &kernel, &user); err != nil {
		return 0, false
	}
	return time.Duration((filetime100ns(kernel) + filetime100ns(user)) * 100), true
}

// systemCPU is the machine's busy and total time from GetSystemTimes, whose
// kernel time includes the idle time.
func systemCPU() (busy, total uint64, ok bool) {
	var idle, kernel, user windows.Filetime
	if err := procGetSystemTimes.Find(); err != nil {
		return 0, 0, false
	}
	r, _, _ := procGetSystemTimes.Call(uintptr(unsafe.Pointer(&idle)), uintptr(unsafe.Pointer(&kernel)), uintptr(unsafe.Pointer(&user)))
	if r == 0 {
		return 0, 0, false
	}
	total = filetime100ns(kernel) + filetime100ns(user)
	return total - filetime100ns(idle), total, true
}

// processMemoryCounters is PROCESS_MEMORY_COUNTERS.
type processMemoryCounters struct {
	cb                         uint32
	pageFaultCount             uint32
	peakWorkingSetSize         uintptr
	workingSetSize             uintptr
	quotaPeakPagedPoolUsage    uintptr
	quotaPagedPoolUsage        uintptr
	quotaPeakNonPagedPoolUsage uintptr
	quotaNonPagedPoolUsage     uintptr
	pagefileUsage              uintptr
	peakPagefileUsage          uintptr
}

// processRSS is the process's working set.
func processRSS() (uint64, bool) {
	if err := procGetProcessMemoryInfo.Find(); err != nil {
		return 0, false
	}
	var c processMemoryCounters
	c.cb = uint32(unsafe.Sizeof(c))
	r, _, _ := procGetProcessMemoryInfo.Call(uintptr(windows.CurrentProcess()), uintptr(unsafe.Pointer(&c)), uintptr(c.cb))
	if r == 0 {
		return 0, false
	}
	return uint64(c.workingSetSize), true
}

// memoryStatusEx is MEMORYSTATUSEX.
type memoryStatusEx struct {
	length               uint32
	memoryLoad           uint32
	totalPhys            uint64
	availPhys            uint64
	totalPageFile        uint64
	availPageFile        uint64
	totalVirtual         uint64
	availVirtual         uint64
	availExtendedVirtual uint64
}

// systemMemory is the installed and available physical memory.
func systemMemory() (total, available *uint64) {
	if err := procGlobalMemoryStatusEx.Find(); err != nil {
		return nil, nil
	}
	var m memoryStatusEx
	m.length = uint32(unsafe.Sizeof(m))
	r, _, _ := procGlobalMemoryStatusEx.Call(uintptr(unsafe.Pointer(&m)))
	if r == 0 {
		return nil, nil
	}
	return &m.totalPhys, &m.availPhys
}

// diskUsage is the size of the volume holding path and the space the
// caller may still use on it.
func diskUsage(path string) (total, free uint64, ok bool) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, 0, false
	}
	var avail, tot, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &tot, &totalFree); err != nil {
		return 0, 0, false
	}
	return tot, avail, true
}
