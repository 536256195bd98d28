package upstream

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// weightedPool builds a pool of never-dialled backends with the given weights.
func weightedPool(t testing.TB, algorithm string, weights ...int) *Pool {
	t.Helper()
	cfg := testUpstream(fakeURLs(len(weights))...)
	cfg.LoadBalancing = algorithm
	for i, w := range weights {
		cfg.Backends[i].Weight = w
	}
	return newTestPool(t, cfg)
}

// randomIPs returns n distinct-looking client IPs from a fixed seed.
func randomIPs(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	ips := make([]string, n)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}).String()
	}
	return ips
}

// pickN picks n times and counts the picks per backend index. For ip-hash every
// pick comes from a different client.
func pickN(t testing.TB, p *Pool, n int) []int {
	t.Helper()
	counts := make([]int, len(p.backends))
	ips := randomIPs(n)
	for i := range n {
		f := filter{hash: hashString(ips[i])}
		b, _ := p.next(&f)
		if b == nil {
			t.Fatalf("pick %d: no backend", i)
		}
		counts[b.idx]++
	}
	return counts
}

func TestBalancerHonoursWeights(t *testing.T) {
	t.Parallel()
	tests := []struct {
		algorithm string
		picks     int
		tolerance float64 // relative to each backend's expected share
	}{
		{AlgorithmRoundRobin, 6000, 0},
		{AlgorithmWeighted, 6000, 0},
		{AlgorithmLeastConn, 12000, 0.1},
		{AlgorithmIPHash, 60000, 0.15},
	}
	for _, tt := range tests {
		t.Run(tt.algorithm, func(t *testing.T) {
			t.Parallel()
			p := weightedPool(t, tt.algorithm, 1, 2, 3)
			got := pickN(t, p, tt.picks)
			for i, w := range []int{1, 2, 3} {
				want := float64(tt.picks*w) / 6
				if math.Abs(float64(got[i])-want) > tt.tolerance*want {
					t.Errorf("%s picks(weights 1:2:3) = %v, want backend %d near %.0f (±%.0f%%)",
						tt.algorithm, got, i, want, tt.tolerance*100)
				}
			}
		})
	}
}

func TestSmoothWeightedSequence(t *testing.T) {
	t.Parallel()
	for _, algorithm := range []string{AlgorithmWeighted, AlgorithmRoundRobin} {
		t.Run(algorithm, func(t *testing.T) {
			t.Parallel()
			p := weightedPool(t, algorithm, 5, 1, 1)
			// nginx's example for weights a=5, b=1, c=1.
			want := "aabacaa"
			var got []byte
			for range 70 {
				b, _ := p.next(&filter{})
				got = append(got, "abc"[b.idx])
			}
			if string(got[:7]) != want {
				t.Errorf("first period of 5:1:1 = %s, want %s", got[:7], want)
			}
			run, longest := 1, 1
			for i := 1; i < len(got); i++ {
				if got[i] == got[i-1] {
					run++
				} else {
					run = 1
				}
				longest = max(longest, run)
			}
			// Within a period the longest run is 2; across the period boundary "aa|aa".
			if longest > 4 {
				t.Errorf("longest run in %s = %d, want <= 4", got, longest)
			}
		})
	}
}

func TestRoundRobinEqualWeightsRotates(t *testing.T) {
	t.Parallel()
	p := weightedPool(t, AlgorithmRoundRobin, 1, 1, 1)
	for i := range 9 {
		b, _ := p.next(&filter{})
		if b.idx != i%3 {
			t.Fatalf("pick %d = backend %d, want %d", i, b.idx, i%3)
		}
	}
}

func TestBalancerSkipsUnavailable(t *testing.T) {
	t.Parallel()
	for _, algorithm := range []string{AlgorithmRoundRobin, AlgorithmWeighted, AlgorithmLeastConn, AlgorithmIPHash} {
		tests := []struct {
			name string
			down func(p *Pool)
		}{
			{"unhealthy", func(p *Pool) { p.backends[1].state.healthy.Store(false) }},
			{"ejected", func(p *Pool) { p.backends[1].state.outlier.ejectedUntil.Store(math.MaxInt64) }},
			{"breaker open", func(p *Pool) {
				now := p.now().UnixNano()
				for range 5 {
					p.backends[1].state.breaker.record(p.breakerCfg, now, false, true)
				}
			}},
		}
		for _, tt := range tests {
			t.Run(algorithm+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				p := weightedPool(t, algorithm, 1, 3, 2)
				tt.down(p)
				got := pickN(t, p, 20000)
				if got[1] != 0 {
					t.Fatalf("picks = %v, want none on backend 1", got)
				}
				// The others keep their relative weights (1:2).
				if ratio := float64(got[2]) / float64(got[0]); ratio < 1.6 || ratio > 2.5 {
					t.Errorf("picks = %v, want backends 0 and 2 near 1:2", got)
				}
			})
		}
	}
}

func TestLeastConnPrefersLessLoaded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		weights  []int
		inFlight []int64
		want     int
	}{
		{"fewest in flight", []int{1, 1, 1}, []int64{5, 0, 5}, 1},
		{"last is least", []int{1, 1, 1}, []int64{3, 2, 1}, 2},
		{"per unit of weight", []int{1, 4}, []int64{2, 4}, 1},
		{"weight does not hide load", []int{1, 4}, []int64{0, 8}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := weightedPool(t, AlgorithmLeastConn, tt.weights...)
			for i, n := range tt.inFlight {
				p.backends[i].state.inFlight.Store(n)
			}
			for range 100 {
				if b, _ := p.next(&filter{}); b.idx != tt.want {
					t.Fatalf("pick(in flight %v, weights %v) = %d, want %d", tt.inFlight, tt.weights, b.idx, tt.want)
				}
			}
		})
	}
}

func TestLeastConnTiesNotFirst(t *testing.T) {
	t.Parallel()
	p := weightedPool(t, AlgorithmLeastConn, 1, 1, 1, 1)
	got := pickN(t, p, 4000)
	for i, n := range got {
		if n < 800 {
			t.Errorf("picks of idle equal backends = %v, backend %d starved", got, i)
		}
	}
}

func TestIPHashStable(t *testing.T) {
	t.Parallel()
	p := weightedPool(t, AlgorithmIPHash, 1, 1, 1, 1, 1)
	for _, ip := range randomIPs(50) {
		first, _ := p.next(&filter{hash: hashString(ip)})
		for range 20 {
			if b, _ := p.next(&filter{hash: hashString(ip)}); b != first {
				t.Fatalf("pick(%s) = %s, want %s every time", ip, b.url, first.url)
			}
		}
	}
}

func TestIPHashConsistentOnRemoval(t *testing.T) {
	t.Parallel()
	urls := fakeURLs(5)
	full := newTestPool(t, withAlgorithm(testUpstream(urls...), AlgorithmIPHash))
	less := newTestPool(t, withAlgorithm(testUpstream(urls[:4]...), AlgorithmIPHash))
	ips := randomIPs(10000)
	moved := 0
	for _, ip := range ips {
		before, _ := full.next(&filter{hash: hashString(ip)})
		after, _ := less.next(&filter{hash: hashString(ip)})
		if before.url == after.url {
			continue
		}
		moved++
		if before.url != urls[4] {
			t.Fatalf("client %s moved from remaining backend %s to %s", ip, before.url, after.url)
		}
	}
	if frac := float64(moved) / float64(len(ips)); frac > 0.3 || frac < 0.1 {
		t.Errorf("fraction of clients moved after removing 1 of 5 = %.3f, want near 0.2", frac)
	}
}

func TestIPHashUnavailableMovesOnlyItsClients(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, withAlgorithm(testUpstream(fakeURLs(5)...), AlgorithmIPHash))
	ips := randomIPs(2000)
	before := make([]int, len(ips))
	for i, ip := range ips {
		b, _ := p.next(&filter{hash: hashString(ip)})
		before[i] = b.idx
	}
	p.backends[2].state.healthy.Store(false)
	spread := map[int]int{}
	for i, ip := range ips {
		b, _ := p.next(&filter{hash: hashString(ip)})
		switch {
		case before[i] != 2 && b.idx != before[i]:
			t.Fatalf("client %s moved from healthy backend %d to %d", ip, before[i], b.idx)
		case before[i] == 2:
			spread[b.idx]++
		}
	}
	if len(spread) < 3 {
		t.Errorf("clients of the down backend went to %v, want them spread over the others", spread)
	}
}

func TestPanicThreshold(t *testing.T) {
	t.Parallel()
	p := weightedPool(t, AlgorithmRoundRobin, 1, 1, 1, 1)
	p.backends[0].state.healthy.Store(false)
	p.backends[1].state.healthy.Store(false)
	if got := pickN(t, p, 100); got[0] != 0 || got[1] != 0 {
		t.Fatalf("picks with 2 of 4 down (threshold 0.5) = %v, want none on 0 and 1", got)
	}
	p.backends[2].state.outlier.ejectedUntil.Store(math.MaxInt64)
	if got := pickN(t, p, 100); got[0] == 0 || got[1] == 0 || got[2] == 0 {
		t.Fatalf("picks with 3 of 4 down = %v, want all backends used (panic)", got)
	}
	if st := p.Status(); !st.Panic || st.Healthy != 1 {
		t.Errorf("Status() = panic %v healthy %d, want panic true healthy 1", st.Panic, st.Healthy)
	}
	// Breakers are honoured even in panic.
	now := p.now().UnixNano()
	for range 5 {
		p.backends[0].state.breaker.record(p.breakerCfg, now, false, true)
	}
	if got := pickN(t, p, 100); got[0] != 0 {
		t.Errorf("picks in panic with backend 0's breaker open = %v, want none on 0", got)
	}
}

func TestNoBackendAvailable(t *testing.T) {
	t.Parallel()
	for _, algorithm := range []string{AlgorithmRoundRobin, AlgorithmWeighted, AlgorithmLeastConn, AlgorithmIPHash} {
		t.Run(algorithm, func(t *testing.T) {
			t.Parallel()
			p := weightedPool(t, algorithm, 1, 2)
			now := p.now().UnixNano()
			for _, b := range p.backends {
				for range 5 {
					b.state.breaker.record(p.breakerCfg, now, false, true)
				}
			}
			if b, _ := p.next(&filter{hash: 42}); b != nil {
				t.Errorf("pick() with every breaker open = %s, want nil", b.url)
			}
		})
	}
}

func TestRetryPrefersUntried(t *testing.T) {
	t.Parallel()
	for _, algorithm := range []string{AlgorithmRoundRobin, AlgorithmWeighted, AlgorithmLeastConn, AlgorithmIPHash} {
		t.Run(algorithm, func(t *testing.T) {
			t.Parallel()
			p := weightedPool(t, algorithm, 1, 1, 1)
			f := filter{hash: 7}
			seen := map[int]bool{}
			for range 3 {
				b, _ := p.next(&f)
				if seen[b.idx] {
					t.Fatalf("pick with tried %b = %d again", f.tried, b.idx)
				}
				seen[b.idx] = true
				f.tried |= 1 << b.idx
			}
			if b, _ := p.next(&f); b == nil {
				t.Errorf("pick with all tried = nil, want any available backend")
			}
		})
	}
}
