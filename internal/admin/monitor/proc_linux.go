package monitor

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
)

// systemCPU reads the machine's cumulative CPU times (in clock ticks) from
// the first line of /proc/stat: busy is everything but idle and iowait.
func systemCPU() (busy, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseProcStat(b)
}

func parseProcStat(b []byte) (busy, total uint64, ok bool) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	// user nice system idle iowait irq softirq steal; guest and guest_nice
	// are already counted in user and nice.
	var idle uint64
	for i, s := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return total - idle, total, true
}

// processRSS reads the resident set size from /proc/self/statm (in pages).
func processRSS() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}

// systemMemory reads MemTotal and MemAvailable from /proc/meminfo.
func systemMemory() (total, available *uint64) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	return parseMeminfo(f)
}

func parseMeminfo(f io.Reader) (total, available *uint64) {
	sc := bufio.NewScanner(f)
	for sc.Scan() && (total == nil || available == nil) {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "MemTotal" && key != "MemAvailable") {
			continue
		}
		v := strings.Fields(rest)
		if len(v) == 0 {
			continue
		}
		n, err := strconv.ParseUint(v[0], 10, 64)
		if err != nil {
			continue
		}
		if len(v) > 1 && v[1] == "kB" {
			n *= 1024
		}
		if key == "MemTotal" {
			total = &n
		} else {
			available = &n
		}
	}
	return total, available
}
