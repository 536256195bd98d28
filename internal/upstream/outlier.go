package upstream

import (
	"sync/atomic"
	"time"
)

// outlier is a backend's passive-health state: consecutive failures seen in live
// traffic, and until when the backend is ejected.
type outlier struct {
	consecutive  atomic.Int64
	ejectedUntil atomic.Int64 // Unix nanoseconds; ejected while now < ejectedUntil
}

// ejected reports whether the backend is ejected at now.
func (o *outlier) ejected(now int64) bool { return now < o.ejectedUntil.Load() }

// outlierConfig is a pool's passive-health settings.
type outlierConfig struct {
	disabled   bool
	threshold  int64 // consecutive failures that eject
	ejection   int64 // nanoseconds
	maxEjected int   // backends of the pool that may be ejected at once (>= 1)
}

func newOutlierConfig(disabled bool, consecutive int, ejection time.Duration, maxShare float64, members int) outlierConfig {
	if consecutive < 1 {
		consecutive = 1
	}
	maxEjected := max(1, int(maxShare*float64(members)))
	return outlierConfig{
		disabled:   disabled,
		threshold:  int64(consecutive),
		ejection:   int64(ejection),
		maxEjected: maxEjected,
	}
}

// recordOutlier counts the outcome of one attempt on b and ejects b when it has
// failed threshold times in a row, unless the pool's ejection cap is reached (then
// b stays in and is considered again on its next failure). It reports whether b
// was ejected by this call.
func (p *Pool) recordOutlier(b *backend, now int64, failed bool) bool {
	c := p.outlierCfg
	o := &b.state.outlier
	if c.disabled {
		return false
	}
	if !failed {
		if o.consecutive.Load() != 0 {
			o.consecutive.Store(0)
		}
		return false
	}
	if o.consecutive.Add(1) < c.threshold {
		return false
	}
	// Rare path: serialise the decision so that two backends reaching the
	// threshold together cannot both slip under the cap.
	ps := p.shared
	ps.ejectMu.Lock()
	defer ps.ejectMu.Unlock()
	if o.ejected(now) {
		return false
	}
	ejected := 0
	for _, ob := range p.backends {
		if ob.state.outlier.ejected(now) {
			ejected++
		}
	}
	if ejected >= c.maxEjected {
		return false
	}
	o.ejectedUntil.Store(now + c.ejection)
	o.consecutive.Store(0)
	return true
}
