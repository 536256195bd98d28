// Package stats holds the gateway's point-in-time state as operator views
// (the /stats endpoint, the monitor page, the terminal dashboard) read it.
// It is a leaf: the gateway fills a Snapshot, the views only read one.
package stats

import (
	"time"

	"github.com/altair-gateway/altair/internal/upstream"
)

// ClassNames names the indexes of the Responses arrays of a Snapshot:
// status/100, with 0 for anything out of range.
var ClassNames = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Snapshot is the gateway's state at one moment, for operator views (/stats,
// the monitor page, the terminal dashboard). Counters are totals since start;
// a viewer derives rates from two snapshots.
type Snapshot struct {
	// Time is when the snapshot was taken.
	Time time.Time
	// Version is the running build's version.
	Version string
	// Uptime is the time since the gateway started.
	Uptime time.Duration
	// Algorithm is the default load-balancing algorithm.
	Algorithm string
	// Ready is false while starting and while draining.
	Ready bool
	// Connections counts open client connections on the main listener.
	Connections int64
	// Requests counts requests that matched a route.
	Requests uint64
	// InFlight counts routed requests being served.
	InFlight int64
	// Responses counts routed responses by class, indexed as ClassNames.
	Responses [6]uint64
	// Routes has one entry per route of the live config, in config order.
	Routes []Route
	// Upstreams has one entry per pool, with its backends' health and
	// breaker states.
	Upstreams []upstream.PoolStatus
	// Edge summarises the edge guard.
	Edge Edge
	// Reloads counts config applies.
	Reloads Reloads
	// Latency is the distribution of request durations, all routes and
	// unmatched requests together. Empty unless asked for.
	Latency Histogram
}

// Route is one route's counters.
type Route struct {
	Name        string
	Upstream    string
	RequireAuth bool
	Requests    uint64
	InFlight    int64
	Responses   [6]uint64
}

// Edge summarises the edge guard's state.
type Edge struct {
	AllowEntries  int    `json:"allow_entries"`
	DenyEntries   int    `json:"deny_entries"`
	BlockedIPs    int    `json:"blocked_ips"`
	BlocksTotal   uint64 `json:"blocks_total"`
	RateLimitKeys int    `json:"rate_limit_keys"`
	AdminAPI      bool   `json:"admin_api"`
	// Shared reports whether rate limits, blocks and lists are shared with
	// other replicas right now (Redis configured and reachable).
	Shared bool `json:"shared"`
}

// Reloads counts config applies.
type Reloads struct {
	Success   uint64 `json:"success"`
	Failure   uint64 `json:"failure"`
	LastError string `json:"last_error,omitempty"`
}

// Histogram is a cumulative histogram: Counts[i] requests took at most
// Bounds[i] seconds; Count is the total (the +Inf bucket).
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64 // seconds
}

// Quantile estimates the q-quantile (0 < q < 1) of the observations between
// an earlier histogram prev (zero value: since start) and h, interpolating
// linearly inside a bucket as Prometheus's histogram_quantile does. It
// returns 0 when there were none, and the highest bound when the quantile
// falls in the +Inf bucket.
func (h Histogram) Quantile(prev Histogram, q float64) float64 {
	if prev.Count > h.Count || len(h.Bounds) == 0 {
		return 0 // counters went back (a reload removed a route): no window
	}
	total := h.Count - prev.Count
	if total == 0 {
		return 0
	}
	for i := range h.Bounds {
		if i < len(prev.Counts) && i < len(h.Counts) && prev.Counts[i] > h.Counts[i] {
			return 0
		}
	}
	at := func(x Histogram, i int) uint64 {
		if i < len(x.Counts) {
			return x.Counts[i]
		}
		return 0
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for i, ub := range h.Bounds {
		n := at(h, i) - at(prev, i)
		if float64(n) >= rank {
			inBucket := n - below
			if inBucket == 0 {
				return ub
			}
			return lower + (ub-lower)*(rank-float64(below))/float64(inBucket)
		}
		lower, below = ub, n
	}
	return h.Bounds[len(h.Bounds)-1]
}
