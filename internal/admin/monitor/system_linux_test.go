package monitor

import (
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		give        string
		busy, total uint64
		ok          bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{name: "full", give: "cpu  10 2 30 400 50 6 7 8 90 10\ncpu0 1 2 3 4 5 6 7 8 9 10\n", busy: 63, total: 513, ok: true},
		{name: "old kernel", give: "cpu 10 0 10 80\n", busy: 20, total: 100, ok: true},
		{name: "not cpu", give: "intr 1 2 3 4 5\n", ok: false},
		{name: "short", give: "cpu 1 2\n", ok: false},
		{name: "garbage", give: "cpu a b c d e\n", ok: false},
		{name: "empty", give: "", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			busy, total, ok := parseProcStat([]byte(tt.give))
			if busy != tt.busy || total != tt.total || ok != tt.ok {
				t.Errorf("parseProcStat(%q) = %d, %d, %v, want %d, %d, %v", tt.give, busy, total, ok, tt.busy, tt.total, tt.ok)
			}
		})
	}
}

func TestParseMeminfo(t *testing.T) {
	t.Parallel()
	total, avail := parseMeminfo(strings.NewReader("MemTotal:       16314092 kB\nMemFree:         1000 kB\nMemAvailable:    8157046 kB\n"))
	if total == nil || *total != 16314092*1024 || avail == nil || *avail != 8157046*1024 {
		t.Errorf("parseMeminfo = %v, %v", total, avail)
	}
	total, avail = parseMeminfo(strings.NewReader("MemFree: 1 kB\n"))
	if total != nil || avail != nil {
		t.Errorf("parseMeminfo without the fields = %v, %v, want nil", total, avail)
	}
}

// TestReadSystemLinux reads the real figures: on Linux every one exists.
func TestReadSystemLinux(t *testing.T) {
	t.Parallel()
	s := readSystem(t.TempDir())
	for name, ok := range map[string]bool{
		"process CPU":      s.procCPU != nil,
		"system CPU":       s.sysBusy != nil && s.sysTotal != nil && *s.sysTotal > 0,
		"RSS":              s.rss != nil && *s.rss > 0,
		"memory total":     s.memTotal != nil && *s.memTotal > 0,
		"memory available": s.memAvailable != nil && *s.memAvailable <= *s.memTotal,
		"disk":             s.diskTotal != nil && s.diskFree != nil && *s.diskFree <= *s.diskTotal && *s.diskTotal > 0,
		"goroutines":       s.goroutines > 0,
		"heap":             s.heapInuse > 0,
	} {
		if !ok {
			t.Errorf("readSystem: %s missing or implausible: %+v", name, s)
		}
	}
	if s := readSystem(""); s.diskTotal != nil {
		t.Error("readSystem with no disk path reports a disk")
	}
	if _, _, ok := diskUsage("/does/not/exist"); ok {
		t.Error("diskUsage of a missing path succeeded")
	}
}
