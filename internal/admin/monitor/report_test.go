package monitor

import (
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/stats"
	"github.com/altair-gateway/altair/internal/upstream"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// hist is a cumulative histogram over the bounds 10 ms, 100 ms, 1 s.
func hist(le10ms, le100ms, le1s, total uint64) stats.Histogram {
	return stats.Histogram{Bounds: []float64{0.01, 0.1, 1}, Counts: []uint64{le10ms, le100ms, le1s}, Count: total}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestBuildReportRatesAndPercentiles(t *testing.T) {
	t.Parallel()
	base := &sample{at: t0, snap: stats.Snapshot{
		Requests:  100,
		Responses: [6]uint64{2: 90, 5: 10},
		Routes:    []stats.Route{{Name: "api", Requests: 100, Responses: [6]uint64{2: 90, 5: 10}}},
		Latency:   hist(50, 90, 100, 100),
	}}
	cur := &sample{at: t0.Add(2 * time.Second), snap: stats.Snapshot{
		Version:     "v1.2.3",
		Uptime:      90 * time.Second,
		Ready:       true,
		Requests:    300,
		InFlight:    3,
		Connections: 7,
		Responses:   [6]uint64{2: 250, 4: 20, 5: 30},
		Routes: []stats.Route{
			{Name: "api", Upstream: "pool", Requests: 300, Responses: [6]uint64{2: 250, 4: 20, 5: 30}},
			{Name: "new", Requests: 5},
		},
		// The window holds 200 requests: 100 at most 10 ms, 80 more at
		// most 100 ms, 20 more at most 1 s.
		Latency: hist(150, 270, 300, 300),
		Upstreams: []upstream.PoolStatus{{Name: "pool", Healthy: 1, Total: 1,
			Backends: []upstream.BackendStatus{{URL: "http://b", Healthy: true, Breaker: "closed"}}}},
		Edge: stats.Edge{BlockedIPs: 2, BlocksTotal: 5},
	}}
	r := buildReport(cur, base)

	if r.Window == nil || !near(*r.Window, 2) {
		t.Errorf("Window = %v, want 2", r.Window)
	}
	if got := r.Traffic.RequestRate; got == nil || !near(*got, 100) {
		t.Errorf("RequestRate = %v, want 100", got)
	}
	// 200 responses in the window, 20 of them 5xx.
	if got := r.Traffic.ErrorRate; got == nil || !near(*got, 0.1) {
		t.Errorf("ErrorRate = %v, want 0.1", got)
	}
	// p50: rank 100 of 200 is the last of the 100 in the first bucket → its
	// upper bound. p95: rank 190, 10 into the 20 of (0.1, 1] → 0.55.
	// p99: rank 198, 18 into those 20 → 0.1 + 0.9*18/20 = 0.91.
	want := map[string]struct {
		got  *float64
		want float64
	}{
		"p50": {r.Traffic.Latency.P50, 0.01},
		"p95": {r.Traffic.Latency.P95, 0.55},
		"p99": {r.Traffic.Latency.P99, 0.91},
	}
	for name, w := range want {
		if w.got == nil || !near(*w.got, w.want) {
			t.Errorf("latency %s = %v, want %v", name, w.got, w.want)
		}
	}
	if len(r.Routes) != 2 {
		t.Fatalf("Routes = %d, want 2", len(r.Routes))
	}
	if got := r.Routes[0].RequestRate; got == nil || !near(*got, 100) {
		t.Errorf("route api RequestRate = %v, want 100", got)
	}
	if got := r.Routes[0].ErrorRate; got == nil || !near(*got, 0.1) {
		t.Errorf("route api ErrorRate = %v, want 0.1", got)
	}
	// A route that was not in the baseline has no window yet.
	if r.Routes[1].RequestRate != nil || r.Routes[1].ErrorRate != nil {
		t.Errorf("route new rates = %v, %v, want null (not in the baseline)", r.Routes[1].RequestRate, r.Routes[1].ErrorRate)
	}
	if r.Traffic.Responses["5xx"] != 30 || r.Traffic.Responses["2xx"] != 250 || r.Traffic.Responses["4xx"] != 20 {
		t.Errorf("Responses = %v", r.Traffic.Responses)
	}
	if r.Traffic.InFlight != 3 || r.Traffic.Connections != 7 || r.Edge.BlockedIPs != 2 || r.Version != "v1.2.3" || r.Uptime != 90 || !r.Ready {
		t.Errorf("report = %+v", r)
	}
	if len(r.Upstreams) != 1 || r.Upstreams[0].Backends[0].Breaker != "closed" {
		t.Errorf("Upstreams = %+v", r.Upstreams)
	}
}

func TestBuildReportWithoutWindowHasNulls(t *testing.T) {
	t.Parallel()
	cur := &sample{at: t0, snap: stats.Snapshot{Requests: 10, Latency: hist(1, 2, 3, 10)}}
	b, err := json.Marshal(buildReport(cur, nil))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	traffic := got["traffic"].(map[string]any)
	lat := traffic["latency_seconds"].(map[string]any)
	nulls := map[string]any{
		"window_seconds":              got["window_seconds"],
		"traffic.requests_per_second": traffic["requests_per_second"],
		"traffic.error_rate":          traffic["error_rate"],
		"latency.p50":                 lat["p50"],
		"latency.p99":                 lat["p99"],
	}
	for k, v := range nulls {
		if v != nil {
			t.Errorf("%s = %v, want null before a window exists", k, v)
		}
	}
	if _, ok := traffic["requests_per_second"]; !ok {
		t.Error("requests_per_second is missing; want an explicit null")
	}
	if got["upstreams"] == nil || got["routes"] == nil {
		t.Errorf("upstreams, routes = %v, %v; want empty lists, not null", got["upstreams"], got["routes"])
	}
}

func TestBuildReportUnavailableSystemFieldsAreNull(t *testing.T) {
	t.Parallel()
	// A platform that can tell nothing about the machine: only the Go
	// runtime figures remain.
	base := &sample{at: t0, sys: systemSample{goroutines: 3}}
	cur := &sample{at: t0.Add(time.Second), sys: systemSample{goroutines: 4, heapInuse: 1 << 20}}
	b, err := json.Marshal(buildReport(cur, base))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		System  map[string]any `json:"system"`
		Runtime map[string]any `json:"runtime"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"process_cpu_percent", "system_cpu_percent", "process_rss_bytes",
		"memory_total_bytes", "memory_available_bytes", "disk_total_bytes", "disk_free_bytes", "disk_used_percent"} {
		v, ok := got.System[k]
		if !ok || v != nil {
			t.Errorf("system.%s = %v (present %v), want null", k, v, ok)
		}
	}
	if got.System["os"] != runtime.GOOS || got.Runtime["goroutines"] != 4.0 || got.Runtime["heap_inuse_bytes"] != float64(1<<20) {
		t.Errorf("system, runtime = %v, %v", got.System, got.Runtime)
	}
}

func TestBuildReportSystemFigures(t *testing.T) {
	t.Parallel()
	d := func(x time.Duration) *time.Duration { return &x }
	base := &sample{at: t0, sys: systemSample{procCPU: d(time.Second), sysBusy: ptr[uint64](100), sysTotal: ptr[uint64](400)}}
	cur := &sample{at: t0.Add(2 * time.Second), sys: systemSample{
		procCPU: d(2 * time.Second), sysBusy: ptr[uint64](150), sysTotal: ptr[uint64](600),
		rss: ptr[uint64](64 << 20), memTotal: ptr[uint64](8 << 30), memAvailable: ptr[uint64](6 << 30),
		diskTotal: ptr[uint64](1000), diskFree: ptr[uint64](250),
	}}
	s := buildReport(cur, base).System
	// One CPU-second in two seconds of wall time, spread over every CPU.
	if want := 50 / float64(runtime.NumCPU()); s.ProcessCPU == nil || !near(*s.ProcessCPU, want) {
		t.Errorf("ProcessCPU = %v, want %v", s.ProcessCPU, want)
	}
	if s.SystemCPU == nil || !near(*s.SystemCPU, 25) {
		t.Errorf("SystemCPU = %v, want 25", s.SystemCPU)
	}
	if s.DiskUsed == nil || !near(*s.DiskUsed, 75) {
		t.Errorf("DiskUsed = %v, want 75", s.DiskUsed)
	}
	if *s.RSS != 64<<20 || *s.MemoryTotal != 8<<30 || *s.MemoryAvailable != 6<<30 {
		t.Errorf("memory = %d, %d, %d", *s.RSS, *s.MemoryTotal, *s.MemoryAvailable)
	}
}

func TestBuildReportAcrossCounterReset(t *testing.T) {
	t.Parallel()
	// A reload removed a route: the totals went down.
	base := &sample{at: t0, snap: stats.Snapshot{Requests: 500, Responses: [6]uint64{2: 500}, Latency: hist(400, 500, 500, 500)}}
	cur := &sample{at: t0.Add(time.Second), snap: stats.Snapshot{Requests: 100, Responses: [6]uint64{2: 100}, Latency: hist(50, 100, 100, 100)}}
	r := buildReport(cur, base)
	if r.Traffic.RequestRate == nil || *r.Traffic.RequestRate != 0 {
		t.Errorf("RequestRate = %v, want 0", r.Traffic.RequestRate)
	}
	if r.Traffic.ErrorRate != nil {
		t.Errorf("ErrorRate = %v, want null", *r.Traffic.ErrorRate)
	}
	if l := r.Traffic.Latency; l.P50 != nil || l.P99 != nil {
		t.Errorf("Latency = %+v, want nulls across a reset", l)
	}
	// Fewer requests in total but one bucket went down: still no percentiles.
	cur.snap.Latency = hist(600, 600, 600, 700)
	base.snap.Latency = hist(10, 650, 650, 650)
	if l := buildReport(cur, base).Traffic.Latency; l.P50 != nil {
		t.Errorf("Latency with a lower bucket = %+v, want nulls", l)
	}
}

func TestErrorRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cur, prev [6]uint64
		want      *float64
	}{
		{name: "none", want: nil},
		{name: "no change", cur: [6]uint64{2: 5}, prev: [6]uint64{2: 5}, want: nil},
		{name: "all ok", cur: [6]uint64{2: 15}, prev: [6]uint64{2: 5}, want: ptr(0.0)},
		{name: "4xx are not errors", cur: [6]uint64{4: 10}, want: ptr(0.0)},
		{name: "half", cur: [6]uint64{2: 10, 5: 10}, want: ptr(0.5)},
		{name: "all 5xx", cur: [6]uint64{5: 3}, want: ptr(1.0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := errorRate(tt.cur, tt.prev)
			if (got == nil) != (tt.want == nil) || (got != nil && !near(*got, *tt.want)) {
				t.Errorf("errorRate(%v, %v) = %v, want %v", tt.cur, tt.prev, fmtPtr(got), fmtPtr(tt.want))
			}
		})
	}
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}
