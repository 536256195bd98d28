package stats

import (
	"math"
	"testing"
)

func TestHistogramQuantile(t *testing.T) {
	bounds := []float64{0.1, 0.2, 0.4, 0.8}
	prev := Histogram{Bounds: bounds, Counts: []uint64{10, 10, 10, 10}, Count: 10}
	// Since prev: 100 more observations, 50 in (0, 0.1], 50 in (0.2, 0.4].
	h := Histogram{Bounds: bounds, Counts: []uint64{60, 60, 110, 110}, Count: 110}
	for _, tc := range []struct {
		q, want float64
	}{
		{0.25, 0.05}, // halfway through the first bucket
		{0.5, 0.1},   // its top
		{0.75, 0.3},  // halfway through (0.2, 0.4]
		{1, 0.4},
	} {
		if got := h.Quantile(prev, tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := h.Quantile(h, 0.5); got != 0 {
		t.Errorf("Quantile over no observations = %v, want 0", got)
	}
	over := Histogram{Bounds: bounds, Counts: []uint64{0, 0, 0, 0}, Count: 5}
	if got := over.Quantile(Histogram{}, 0.99); got != 0.8 {
		t.Errorf("Quantile in +Inf bucket = %v, want the highest bound 0.8", got)
	}
	// Counters that went back (a route removed by a reload) give no
	// window instead of wrapping around.
	if got := prev.Quantile(h, 0.5); got != 0 {
		t.Errorf("Quantile with prev ahead of h = %v, want 0", got)
	}
	shrunk := Histogram{Bounds: bounds, Counts: []uint64{5, 60, 110, 120}, Count: 120}
	if got := shrunk.Quantile(h, 0.5); got != 0 {
		t.Errorf("Quantile with one bucket gone back = %v, want 0", got)
	}
}
