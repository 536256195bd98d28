package cli

import "testing"

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		live uint64
		want int
	}{
		{0, gcMaxPercent},         // before the first collection
		{2 * mib, gcMaxPercent},   // 64/2-1 = 3100%, capped
		{8 * mib, 700},            // goal 64 MiB
		{10 * mib, 500},           // 540% rounded down to a step
		{32 * mib, gcMinPercent},  // goal 64 MiB is the default's
		{500 * mib, gcMinPercent}, // large heaps keep the default
		{64*mib/5 + 1, 350},       // just over a fifth: 399% rounds to 350
	}
	for _, tt := range tests {
		if got := gcPercentFor(tt.live, gcMinHeap); got != tt.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", tt.live/mib, got, tt.want)
		}
	}
}
