package upstream

import (
	"sync"
	"sync/atomic"
)

// Registry holds per-backend state that survives config reloads (health, breaker,
// outlier counters, in-flight counts), keyed by pool name and backend URL, and the
// per-pool retry budget counters, keyed by pool name. It is safe for concurrent use;
// its lock is taken only when pools are built or retained, never per request.
type Registry struct {
	mu       sync.Mutex
	backends map[backendKey]*backendState
	pools    map[string]*poolState
}

type backendKey struct {
	pool, url string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		backends: make(map[backendKey]*backendState),
		pools:    make(map[string]*poolState),
	}
}

// Retain drops the state of every (pool, backend) that none of the given pools
// uses, and of every pool name none of them has. The gateway calls it after a
// reload swap, with the pools of the new configuration.
func (r *Registry) Retain(pools []*Pool) {
	keep := make(map[backendKey]struct{})
	names := make(map[string]struct{}, len(pools))
	for _, p := range pools {
		if p == nil {
			continue
		}
		names[p.name] = struct{}{}
		for _, b := range p.backends {
			keep[backendKey{p.name, b.url}] = struct{}{}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.backends {
		if _, ok := keep[k]; !ok {
			delete(r.backends, k)
		}
	}
	for k := range r.pools {
		if _, ok := names[k]; !ok {
			delete(r.pools, k)
		}
	}
}

// backend returns the state of (pool, url), creating it (healthy, breaker closed)
// on first use.
func (r *Registry) backend(pool, url string) *backendState {
	k := backendKey{pool, url}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.backends[k]
	if !ok {
		s = &backendState{}
		s.healthy.Store(true)
		r.backends[k] = s
	}
	return s
}

// pool returns the shared state of the pool called name, creating it on first use.
func (r *Registry) pool(name string) *poolState {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.pools[name]
	if !ok {
		s = &poolState{}
		r.pools[name] = s
	}
	return s
}

// backendState is everything about one backend of one pool that outlives a Pool.
// Every field is updated atomically; none is guarded by a lock.
type backendState struct {
	// Active health: written by the health checker only.
	healthy atomic.Bool
	passes  atomic.Int64 // consecutive passing probes
	fails   atomic.Int64 // consecutive failing probes

	breaker breaker
	outlier outlier

	inFlight atomic.Int64  // attempts sent and not finished (body not closed)
	requests atomic.Uint64 // attempts sent
	failures atomic.Uint64 // attempts that failed (transport error, timeout, 5xx)
}

// poolState is the per-pool state that outlives a Pool: the retry budget's
// counters and the lock that serialises ejection decisions (taken only when a
// backend reaches its ejection threshold).
type poolState struct {
	active  atomic.Int64 // requests between entering the balancer and receiving headers
	retries atomic.Int64 // retry attempts in flight

	ejectMu sync.Mutex
}
