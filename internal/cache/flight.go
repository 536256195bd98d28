package cache

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// flight is one upstream request for a key that other requests for the same
// key may wait for instead of sending their own (request coalescing).
type flight struct {
	done chan struct{}
	// stored is set before done closes: the leader stored a response the
	// waiters may look for.
	stored  bool
	ended   bool // guarded by the shard's lock
	waiters atomic.Int32
}

// flights tracks the flights in progress, sharded like the memory store so
// that unrelated misses do not share a lock.
type flights struct {
	seed   maphash.Seed
	shards [maxShards]flightShard
}

type flightShard struct {
	mu sync.Mutex
	m  map[string]*flight
}

func newFlights() *flights {
	fs := &flights{seed: maphash.MakeSeed()}
	for i := range fs.shards {
		fs.shards[i].m = make(map[string]*flight)
	}
	return fs
}

func (fs *flights) shard(key string) *flightShard {
	return &fs.shards[maphash.String(fs.seed, key)%maxShards]
}

// join returns the flight for key and whether the caller leads it (and must
// end it).
func (fs *flights) join(key string) (*flight, bool) {
	s := fs.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.m[key]; f != nil {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	s.m[key] = f
	return f, true
}

// end finishes the leader's flight, telling waiters whether it stored a
// response. Only the first call counts, so a leader may end its flight as
// soon as it knows the response will not be stored, and again on return.
func (fs *flights) end(key string, f *flight, stored bool) {
	s := fs.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.ended {
		return
	}
	f.ended = true
	f.stored = stored
	if s.m[key] == f {
		delete(s.m, key)
	}
	close(f.done)
}

// wait waits for f to end, for ctx or for at most d. It reports whether the
// leader stored a response.
func (f *flight) wait(ctx context.Context, d time.Duration) bool {
	f.waiters.Add(1)
	defer f.waiters.Add(-1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.done:
		return f.stored
	case <-ctx.Done():
	case <-t.C:
	}
	return false
}
