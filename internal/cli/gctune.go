package cli

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// A gateway's live heap is small (a few MiB without a large cache) while it
// allocates fast, so with Go's default GOGC=100 it collects garbage dozens of
// times a second under load (50/s at 19k req/s, 2 MiB live, measured), at
// several percent of its CPU. The tuner raises the GC percentage so that the
// heap goal is at least gcMinHeap: a few GCs a second instead, for at most
// gcMinHeap more memory. A heap large enough on its own (live over
// gcMinHeap/2) gets the default. GOGC, when set, is the operator's choice and
// is left alone; a GOMEMLIMIT still caps the heap (the runtime applies it
// over any percentage).
const (
	gcMinHeap     = 64 << 20
	gcMaxPercent  = 1600
	gcMinPercent  = 100
	gcTuneEvery   = time.Second
	gcPercentStep = 50 // the percentage moves in steps, not with every KiB
)

// gcPercentFor returns the GC percentage that puts the heap goal of a live
// heap of live bytes at about minHeap, within [gcMinPercent, gcMaxPercent].
func gcPercentFor(live, minHeap uint64) int {
	if live == 0 {
		return gcMaxPercent
	}
	p := int(minHeap*100/live) - 100
	p = p / gcPercentStep * gcPercentStep
	return min(max(p, gcMinPercent), gcMaxPercent)
}

// startGCTuner runs the tuner until ctx ends, unless GOGC is set.
func startGCTuner(ctx context.Context) {
	if os.Getenv("GOGC") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	apply := func(last int) int {
		metrics.Read(sample)
		var live uint64
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = sample[0].Value.Uint64()
		}
		if p := gcPercentFor(live, gcMinHeap); p != last {
			debug.SetGCPercent(p)
			return p
		}
		return last
	}
	last := apply(-1)
	go func() {
		t := time.NewTicker(gcTuneEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				last = apply(last)
			}
		}
	}()
}
