package cache

import (
	"context"
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// maxShards is the most shards a Memory store splits into: enough that
// requests on different keys rarely wait for one another's lock.
const maxShards = 16

// MemoryOptions configure a Memory store.
type MemoryOptions struct {
	// MaxBytes bounds the bytes of all entries (Entry.Size). Required.
	MaxBytes int64
	// MaxEntryBytes is the largest entry the store must be able to hold;
	// the store uses fewer shards rather than refuse one. Default
	// MaxBytes/16.
	MaxEntryBytes int64
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Memory is the in-process Store: a least-recently-used cache bounded in
// bytes. It is split into shards by key, each with its own lock, LRU list
// and share of the bytes, so requests for different resources rarely
// contend; a hit's lookup allocates nothing. Entries expire after the ttl
// given to Set (checked when they are read) and are evicted least recently
// used first when a shard is full.
type Memory struct {
	shards []memShard
	mask   uint64
	seed   maphash.Seed
	now    func() time.Time
}

type memShard struct {
	mu        sync.Mutex
	keys      map[string]*memKey
	lru       memItem // sentinel: lru.next is the most recently used
	bytes     int64
	limit     int64
	entries   int
	evictions uint64
	_         [64]byte // keeps shards' locks on separate cache lines
}

// memKey holds everything stored under one key.
type memKey struct {
	key  string
	subs map[string]*memSub
}

// memSub holds the variants under one key and sub. entries is what Get
// returns: it is replaced, never changed in place, so a caller may keep it.
type memSub struct {
	entries []*Entry
	items   []*memItem
}

type memItem struct {
	prev, next *memItem
	key        *memKey
	sub        string
	e          *Entry
	size       int64
	expires    int64 // unix nanoseconds
}

// ErrMemoryLimit is returned by NewMemory for a MaxBytes that is not
// positive.
var ErrMemoryLimit = errors.New("cache: memory store needs a positive byte limit")

// NewMemory returns an empty Memory store.
func NewMemory(o MemoryOptions) (*Memory, error) {
	if o.MaxBytes <= 0 {
		return nil, ErrMemoryLimit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	n := maxShards
	for n > 1 && o.MaxEntryBytes > 0 && o.MaxBytes/int64(n) < o.MaxEntryBytes {
		n /= 2
	}
	m := &Memory{shards: make([]memShard, n), mask: uint64(n - 1), seed: maphash.MakeSeed(), now: o.Now}
	for i := range m.shards {
		s := &m.shards[i]
		s.keys = make(map[string]*memKey)
		s.lru.next, s.lru.prev = &s.lru, &s.lru
		s.limit = o.MaxBytes / int64(n)
	}
	return m, nil
}

func (m *Memory) shard(key string) *memShard {
	return &m.shards[maphash.String(m.seed, key)&m.mask]
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key, sub string) ([]*Entry, error) {
	s := m.shard(key)
	now := m.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[key]
	if k == nil {
		return nil, nil
	}
	ms := k.subs[sub]
	if ms == nil {
		return nil, nil
	}
	expired := false
	for _, it := range ms.items {
		if it.expires <= now {
			expired = true
		} else {
			s.toFront(it)
		}
	}
	if expired {
		s.removeExpired(k, sub, ms, now)
		if ms = k.subs[sub]; ms == nil {
			return nil, nil
		}
	}
	return ms.entries, nil
}

// Set implements Store. An entry larger than a shard's share of the bytes
// is not stored.
func (m *Memory) Set(_ context.Context, key, sub string, e *Entry, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	s := m.shard(key)
	size := e.Size() + int64(len(key)+len(sub))
	if size > s.limit {
		return nil
	}
	expires := m.now().Add(ttl).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[key]
	if k == nil {
		k = &memKey{key: key, subs: make(map[string]*memSub, 1)}
		s.keys[key] = k
	}
	ms := k.subs[sub]
	if ms == nil {
		ms = &memSub{}
		k.subs[sub] = ms
	}
	items := make([]*memItem, 0, len(ms.items)+1)
	for _, it := range ms.items {
		if it.e.Variant == e.Variant {
			s.unlink(it)
			continue
		}
		items = append(items, it)
	}
	if len(items) >= maxVariants {
		oldest := 0
		for i, it := range items {
			if it.e.ResponseTime.Before(items[oldest].e.ResponseTime) {
				oldest = i
			}
		}
		s.unlink(items[oldest])
		items = append(items[:oldest], items[oldest+1:]...)
	}
	it := &memItem{key: k, sub: sub, e: e, size: size, expires: expires}
	items = append(items, it)
	ms.setItems(items)
	s.pushFront(it)
	for s.bytes > s.limit {
		s.evict(s.lru.prev)
	}
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) (int, error) {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeKey(s.keys[key]), nil
}

// DeletePrefix implements Store. It visits every key of every shard, one
// shard at a time.
func (m *Memory) DeletePrefix(_ context.Context, prefix string) (int, error) {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for key, k := range s.keys {
			if strings.HasPrefix(key, prefix) {
				n += s.removeKey(k)
			}
		}
		s.mu.Unlock()
	}
	return n, nil
}

// MemoryStats describe a Memory store.
type MemoryStats struct {
	// Entries and Bytes are what the store holds now.
	Entries int
	Bytes   int64
	// MaxBytes is the byte limit.
	MaxBytes int64
	// Evictions counts entries removed to make room since the store was
	// made (not expirations or deletions).
	Evictions uint64
}

// Stats returns the store's current size and counters.
func (m *Memory) Stats() MemoryStats {
	var st MemoryStats
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		st.Entries += s.entries
		st.Bytes += s.bytes
		st.MaxBytes += s.limit
		st.Evictions += s.evictions
		s.mu.Unlock()
	}
	return st
}

// setItems replaces the sub's variants; entries gets a new array.
func (ms *memSub) setItems(items []*memItem) {
	ms.items = items
	ms.entries = make([]*Entry, len(items))
	for i, it := range items {
		ms.entries[i] = it.e
	}
}

func (s *memShard) pushFront(it *memItem) {
	it.prev, it.next = &s.lru, s.lru.next
	s.lru.next.prev = it
	s.lru.next = it
	s.bytes += it.size
	s.entries++
}

func (s *memShard) toFront(it *memItem) {
	if s.lru.next == it {
		return
	}
	it.prev.next, it.next.prev = it.next, it.prev
	it.prev, it.next = &s.lru, s.lru.next
	s.lru.next.prev = it
	s.lru.next = it
}

// unlink takes it off the LRU list and out of the byte count; the caller
// removes it from its memSub.
func (s *memShard) unlink(it *memItem) {
	it.prev.next, it.next.prev = it.next, it.prev
	it.prev, it.next = nil, nil
	s.bytes -= it.size
	s.entries--
}

// evict removes the least recently used item.
func (s *memShard) evict(it *memItem) {
	if it == &s.lru {
		return
	}
	s.evictions++
	k := it.key
	ms := k.subs[it.sub]
	s.unlink(it)
	items := make([]*memItem, 0, len(ms.items))
	for _, x := range ms.items {
		if x != it {
			items = append(items, x)
		}
	}
	s.setOrDrop(k, it.sub, ms, items)
}

// removeExpired drops the sub's items that expired by now.
func (s *memShard) removeExpired(k *memKey, sub string, ms *memSub, now int64) {
	items := make([]*memItem, 0, len(ms.items))
	for _, it := range ms.items {
		if it.expires <= now {
			s.unlink(it)
		} else {
			items = append(items, it)
		}
	}
	s.setOrDrop(k, sub, ms, items)
}

// setOrDrop gives the sub its remaining items, removing the sub and the key
// when they are empty.
func (s *memShard) setOrDrop(k *memKey, sub string, ms *memSub, items []*memItem) {
	if len(items) > 0 {
		ms.setItems(items)
		return
	}
	delete(k.subs, sub)
	if len(k.subs) == 0 {
		delete(s.keys, k.key)
	}
}

// removeKey removes k and all its items; it returns how many there were.
func (s *memShard) removeKey(k *memKey) int {
	if k == nil {
		return 0
	}
	n := 0
	for _, ms := range k.subs {
		for _, it := range ms.items {
			s.unlink(it)
			n++
		}
	}
	delete(s.keys, k.key)
	return n
}
