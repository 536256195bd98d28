package upstream

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
)

// Balancing algorithms, as named in the configuration.
const (
	AlgorithmRoundRobin = "round-robin"
	AlgorithmLeastConn  = "least-conn"
	AlgorithmIPHash     = "ip-hash"
	AlgorithmWeighted   = "weighted"
)

// balancer picks a backend for one attempt among those the filter accepts, or nil
// when it accepts none. Implementations are safe for concurrent use and take no
// lock: they read immutable tables and atomic counters.
type balancer interface {
	pick(f filter) *backend
}

// filter decides which backends an attempt may use. It is passed by value so that
// picking allocates nothing.
type filter struct {
	now          int64          // Unix nanoseconds
	ignoreHealth bool           // panic mode: health (active and passive) is ignored
	tried        uint64         // bit i%64 set: backend i was already tried by this request
	hash         uint64         // client key hash, for ip-hash
	breaker      *breakerConfig // the pool's breaker settings
}

// ok reports whether b may take the attempt.
func (f *filter) ok(b *backend) bool {
	if f.tried&(1<<(uint(b.idx)&63)) != 0 {
		return false
	}
	return b.usable(f.now, f.ignoreHealth, f.breaker)
}

func newBalancer(algorithm string, backends []*backend) balancer {
	switch algorithm {
	case AlgorithmRoundRobin, AlgorithmWeighted:
		return newSmoothWRR(backends)
	case AlgorithmIPHash:
		return newHashRing(backends)
	default:
		return &leastConn{backends: backends}
	}
}

// maxSchedule caps the length of a smooth weighted round-robin schedule; larger
// weight sums are scaled down proportionally.
const maxSchedule = 1 << 14

// smoothWRR is nginx's smooth weighted round robin, precomputed: one period of the
// sequence (length = sum of weights, reduced by their gcd) is laid out once, and
// picks walk it with an atomic counter. Equal weights give a plain rotation.
//
// An unavailable backend's slot is skipped by taking the next counter value, not
// the next slot, so the available backends keep their relative weights exactly
// (the sequence is the schedule with the unavailable entries removed).
type smoothWRR struct {
	schedule []*backend
	backends []*backend
	next     atomic.Uint64
}

func newSmoothWRR(backends []*backend) *smoothWRR {
	weights := make([]int, len(backends))
	g, sum := 0, 0
	for i, b := range backends {
		weights[i] = b.weight
		g = gcd(g, b.weight)
	}
	for i := range weights {
		weights[i] /= g
		sum += weights[i]
	}
	if sum > maxSchedule {
		scaled := 0
		for i := range weights {
			weights[i] = max(1, weights[i]*maxSchedule/sum)
			scaled += weights[i]
		}
		sum = scaled
	}
	schedule := make([]*backend, 0, sum)
	current := make([]int, len(backends))
	for range sum {
		best := -1
		for i, w := range weights {
			current[i] += w
			if best < 0 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= sum
		schedule = append(schedule, backends[best])
	}
	return &smoothWRR{schedule: schedule, backends: backends}
}

func (s *smoothWRR) pick(f filter) *backend {
	n := uint64(len(s.schedule))
	// Consume counter values while skipping unavailable entries, but give up
	// after a bounded number and fall back to a scan (many backends down).
	limit := min(n, uint64(2*len(s.backends)+2))
	for range limit {
		b := s.schedule[(s.next.Add(1)-1)%n]
		if f.ok(b) {
			return b
		}
	}
	start := int(s.next.Load() % uint64(len(s.backends)))
	for k := range s.backends {
		if b := s.backends[(start+k)%len(s.backends)]; f.ok(b) {
			return b
		}
	}
	return nil
}

// leastConn picks the backend with the fewest attempts in flight per unit of
// weight. Ties are broken at random in proportion to weight (weighted reservoir
// sampling), so an idle pool still honours weights and no backend is favoured by
// its position. It scans every backend: exact, and cheap for realistic pool sizes.
type leastConn struct {
	backends []*backend
}

func (l *leastConn) pick(f filter) *backend {
	var best *backend
	var bestLoad int64
	tieWeight := 0
	for _, b := range l.backends {
		if !f.ok(b) {
			continue
		}
		load := b.state.inFlight.Load()
		if best == nil {
			best, bestLoad, tieWeight = b, load, b.weight
			continue
		}
		// load/b.weight vs bestLoad/best.weight, without division.
		switch lhs, rhs := load*int64(best.weight), bestLoad*int64(b.weight); {
		case lhs < rhs:
			best, bestLoad, tieWeight = b, load, b.weight
		case lhs == rhs:
			tieWeight += b.weight
			if rand.IntN(tieWeight) < b.weight {
				best, bestLoad = b, load
			}
		}
	}
	return best
}

// vnodesPerWeight is how many points one unit of weight places on the hash ring;
// maxRingPoints caps the ring (weights are scaled down beyond it).
const (
	vnodesPerWeight = 640
	maxRingPoints   = 1 << 16
)

// hashRing is consistent hashing with virtual nodes: each backend places
// weight*vnodesPerWeight points, hashed from its URL (not its position), so
// adding or removing one of N backends moves only about 1/N of the clients. A
// client goes to the first point at or after its hash whose backend is
// available, so an unavailable backend's clients spread over the others.
type hashRing struct {
	points   []ringPoint // sorted by hash
	backends []*backend
}

type ringPoint struct {
	hash uint64
	idx  int
}

func newHashRing(backends []*backend) *hashRing {
	total := totalWeight(backends)
	per := vnodesPerWeight
	if total*per > maxRingPoints {
		per = max(1, maxRingPoints/total)
	}
	points := make([]ringPoint, 0, total*per)
	var buf []byte
	for i, b := range backends {
		for v := range b.weight * per {
			buf = append(buf[:0], b.url...)
			buf = append(buf, '#')
			buf = strconv.AppendInt(buf, int64(v), 10)
			points = append(points, ringPoint{hash: hashBytes(buf), idx: i})
		}
	}
	slices.SortFunc(points, func(a, b ringPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return a.idx - b.idx
	})
	return &hashRing{points: points, backends: backends}
}

func (h *hashRing) pick(f filter) *backend {
	n := len(h.points)
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h.points[m].hash < f.hash {
			lo = m + 1
		} else {
			hi = m
		}
	}
	// Stop once every backend has been rejected rather than walking the whole
	// ring (tracked for pools of up to 64 backends).
	small := len(h.backends) <= 64
	var seen uint64
	nseen := 0
	for k := range n {
		p := h.points[(lo+k)%n]
		if small {
			bit := uint64(1) << uint(p.idx)
			if seen&bit != 0 {
				continue
			}
			seen |= bit
			nseen++
		}
		if b := h.backends[p.idx]; f.ok(b) {
			return b
		}
		if small && nseen == len(h.backends) {
			return nil
		}
	}
	return nil
}

// hashString hashes s with FNV-1a and a 64-bit finaliser (splitmix64), which
// spreads similar keys (IPs, "url#1", "url#2") evenly over the ring. It is fixed
// (unseeded) so every replica maps a client to the same backend.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix64(h)
}

func mix64(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func totalWeight(backends []*backend) int {
	t := 0
	for _, b := range backends {
		t += b.weight
	}
	return t
}
