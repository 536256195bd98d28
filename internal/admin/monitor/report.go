package monitor

import (
	"runtime"
	"time"

	"github.com/altair-gateway/altair/internal/stats"
	"github.com/altair-gateway/altair/internal/upstream"
)

// report is the body of GET /api/system-metrics. Figures a platform cannot
// provide, and rates before there are two samples a second apart, are null.
type report struct {
	Time    time.Time `json:"time"`
	Version string    `json:"version"`
	Uptime  float64   `json:"uptime_seconds"`
	Ready   bool      `json:"ready"`
	// Window is the span, in seconds, that the rates, percentiles, error
	// rate and CPU shares cover.
	Window    *float64              `json:"window_seconds"`
	System    systemReport          `json:"system"`
	Runtime   runtimeReport         `json:"runtime"`
	Traffic   trafficReport         `json:"traffic"`
	Routes    []routeReport         `json:"routes"`
	Upstreams []upstream.PoolStatus `json:"upstreams"`
	Edge      stats.Edge            `json:"edge"`
	Reloads   stats.Reloads         `json:"config_reloads"`
}

type systemReport struct {
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	NumCPU int    `json:"num_cpu"`
	// ProcessCPU is the process's share of all CPUs, 0–100.
	ProcessCPU *float64 `json:"process_cpu_percent"`
	// SystemCPU is the machine's busy share of all CPUs, 0–100.
	SystemCPU       *float64 `json:"system_cpu_percent"`
	RSS             *uint64  `json:"process_rss_bytes"`
	MemoryTotal     *uint64  `json:"memory_total_bytes"`
	MemoryAvailable *uint64  `json:"memory_available_bytes"`
	// Disk figures are of the file system of the working directory.
	DiskTotal *uint64  `json:"disk_total_bytes"`
	DiskFree  *uint64  `json:"disk_free_bytes"`
	DiskUsed  *float64 `json:"disk_used_percent"`
}

type runtimeReport struct {
	GoVersion   string  `json:"go_version"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	Goroutines  int     `json:"goroutines"`
	HeapInuse   uint64  `json:"heap_inuse_bytes"`
	Sys         uint64  `json:"sys_bytes"`
	GCCount     uint32  `json:"gc_count"`
	GCPause     float64 `json:"gc_pause_total_seconds"`
	GCLastPause float64 `json:"gc_last_pause_seconds"`
}

type trafficReport struct {
	Requests    uint64   `json:"requests_total"`
	RequestRate *float64 `json:"requests_per_second"`
	InFlight    int64    `json:"in_flight"`
	Connections int64    `json:"connections"`
	Latency     latency  `json:"latency_seconds"`
	// ErrorRate is the share (0–1) of responses in the window that were 5xx.
	ErrorRate *float64          `json:"error_rate"`
	Responses map[string]uint64 `json:"responses"`
}

type latency struct {
	P50 *float64 `json:"p50"`
	P95 *float64 `json:"p95"`
	P99 *float64 `json:"p99"`
}

type routeReport struct {
	Name        string            `json:"name"`
	Upstream    string            `json:"upstream"`
	RequireAuth bool              `json:"require_auth"`
	Requests    uint64            `json:"requests"`
	RequestRate *float64          `json:"requests_per_second"`
	ErrorRate   *float64          `json:"error_rate"`
	InFlight    int64             `json:"in_flight"`
	Responses   map[string]uint64 `json:"responses"`
}

// sample is one snapshot of the gateway and the machine.
type sample struct {
	at   time.Time
	snap stats.Snapshot
	sys  systemSample
}

// buildReport describes cur, with rates over the window since base (nil: no
// window yet).
func buildReport(cur, base *sample) report {
	s := cur.snap
	r := report{
		Time:      cur.at,
		Version:   s.Version,
		Uptime:    s.Uptime.Round(time.Millisecond).Seconds(),
		Ready:     s.Ready,
		System:    systemFigures(cur, base),
		Runtime:   runtimeFigures(cur.sys),
		Routes:    make([]routeReport, 0, len(s.Routes)),
		Upstreams: s.Upstreams,
		Edge:      s.Edge,
		Reloads:   s.Reloads,
		Traffic: trafficReport{
			Requests:    s.Requests,
			InFlight:    s.InFlight,
			Connections: s.Connections,
			Responses:   classMap(s.Responses),
		},
	}
	if r.Upstreams == nil {
		r.Upstreams = []upstream.PoolStatus{}
	}
	var secs float64
	if base != nil {
		secs = cur.at.Sub(base.at).Seconds()
		r.Window = &secs
	}
	for _, rs := range s.Routes {
		rr := routeReport{Name: rs.Name, Upstream: rs.Upstream, RequireAuth: rs.RequireAuth,
			Requests: rs.Requests, InFlight: rs.InFlight, Responses: classMap(rs.Responses)}
		if base != nil {
			if prev, ok := findRoute(base.snap.Routes, rs.Name); ok {
				rr.RequestRate = ptr(rate(rs.Requests, prev.Requests, secs))
				rr.ErrorRate = errorRate(rs.Responses, prev.Responses)
			}
		}
		r.Routes = append(r.Routes, rr)
	}
	if base == nil {
		return r
	}
	b := base.snap
	r.Traffic.RequestRate = ptr(rate(s.Requests, b.Requests, secs))
	r.Traffic.ErrorRate = errorRate(s.Responses, b.Responses)
	if h, prev := s.Latency, b.Latency; h.Count > prev.Count && monotonic(prev, h) {
		r.Traffic.Latency = latency{
			P50: ptr(h.Quantile(prev, 0.50)),
			P95: ptr(h.Quantile(prev, 0.95)),
			P99: ptr(h.Quantile(prev, 0.99)),
		}
	}
	return r
}

func systemFigures(cur, base *sample) systemReport {
	c := cur.sys
	r := systemReport{
		OS:              runtime.GOOS,
		Arch:            runtime.GOARCH,
		NumCPU:          runtime.NumCPU(),
		RSS:             c.rss,
		MemoryTotal:     c.memTotal,
		MemoryAvailable: c.memAvailable,
		DiskTotal:       c.diskTotal,
		DiskFree:        c.diskFree,
	}
	if c.diskTotal != nil && c.diskFree != nil && *c.diskTotal > 0 {
		r.DiskUsed = ptr(100 * float64(*c.diskTotal-min(*c.diskFree, *c.diskTotal)) / float64(*c.diskTotal))
	}
	if base == nil {
		return r
	}
	b := base.sys
	if wall := cur.at.Sub(base.at); c.procCPU != nil && b.procCPU != nil && wall > 0 && r.NumCPU > 0 {
		used := max(*c.procCPU-*b.procCPU, 0)
		r.ProcessCPU = ptr(clampPercent(100 * used.Seconds() / wall.Seconds() / float64(r.NumCPU)))
	}
	if c.sysTotal != nil && b.sysTotal != nil && *c.sysTotal > *b.sysTotal && *c.sysBusy >= *b.sysBusy {
		r.SystemCPU = ptr(clampPercent(100 * float64(*c.sysBusy-*b.sysBusy) / float64(*c.sysTotal-*b.sysTotal)))
	}
	return r
}

func runtimeFigures(s systemSample) runtimeReport {
	return runtimeReport{
		GoVersion:   runtime.Version(),
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		Goroutines:  s.goroutines,
		HeapInuse:   s.heapInuse,
		Sys:         s.goSys,
		GCCount:     s.numGC,
		GCPause:     s.pauseTotal.Seconds(),
		GCLastPause: s.lastPause.Seconds(),
	}
}

// rate is the per-second increase of a counter. A counter that went down
// (its route was removed and re-added by a reload) counts as no increase.
func rate(cur, prev uint64, secs float64) float64 {
	if cur <= prev || secs <= 0 {
		return 0
	}
	return float64(cur-prev) / secs
}

// errorRate is the 5xx share of the responses between prev and cur, or nil
// when there were none.
func errorRate(cur, prev [6]uint64) *float64 {
	var all, errs uint64
	for i := range cur {
		if cur[i] > prev[i] {
			all += cur[i] - prev[i]
			if i == 5 {
				errs = cur[i] - prev[i]
			}
		}
	}
	if all == 0 {
		return nil
	}
	return ptr(float64(errs) / float64(all))
}

// monotonic reports whether no bucket of h is below prev's: a reload that
// drops a route's series lowers the sums, and a window across it has no
// meaningful percentiles.
func monotonic(prev, h stats.Histogram) bool {
	if len(prev.Counts) > len(h.Counts) {
		return false
	}
	for i, n := range prev.Counts {
		if h.Counts[i] < n {
			return false
		}
	}
	return true
}

func findRoute(rs []stats.Route, name string) (stats.Route, bool) {
	for _, r := range rs {
		if r.Name == name {
			return r, true
		}
	}
	return stats.Route{}, false
}

func classMap(c [6]uint64) map[string]uint64 {
	m := make(map[string]uint64, len(c))
	for i, n := range c {
		if n > 0 {
			m[stats.ClassNames[i]] = n
		}
	}
	return m
}

func clampPercent(p float64) float64 { return min(max(p, 0), 100) }
