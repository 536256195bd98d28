package cache

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// sized returns an entry whose Size is size bytes, for keys of keyLen.
func sized(t *testing.T, size int64, variant string) *Entry {
	t.Helper()
	e := &Entry{Status: 200, Header: http.Header{}, ResponseTime: t0, Variant: variant}
	base := e.Size()
	return &Entry{Status: 200, Header: http.Header{}, Body: []byte(strings.Repeat("x", int(size-base))), ResponseTime: t0, Variant: variant}
}

func newTestMemory(t *testing.T, maxBytes int64, clock *fakeClock) *Memory {
	t.Helper()
	m, err := NewMemory(MemoryOptions{MaxBytes: maxBytes, MaxEntryBytes: maxBytes, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.shards) != 1 {
		t.Fatalf("%d shards, want 1 when an entry may take all the bytes", len(m.shards))
	}
	return m
}

func TestMemoryLRU(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newClock()
	const size = 1000 // per entry, key and sub included
	m := newTestMemory(t, 3*size, clock)
	set := func(key string) {
		t.Helper()
		if err := m.Set(ctx, key, "s", sized(t, size-int64(len(key)+1), ""), time.Hour); err != nil {
			t.Fatal(err)
		}
		if st := m.Stats(); st.Bytes > 3*size {
			t.Fatalf("after Set(%s): %d bytes, over the bound %d", key, st.Bytes, 3*size)
		}
	}
	has := func(key string) bool {
		es, _ := m.Get(ctx, key, "s")
		return len(es) == 1
	}
	set("k0")
	set("k1")
	set("k2")
	has("k0") // k1 is now the least recently used
	set("k3")
	for k, want := range map[string]bool{"k0": true, "k1": false, "k2": true, "k3": true} {
		if got := has(k); got != want {
			t.Errorf("after eviction, has %s = %v, want %v", k, got, want)
		}
	}
	st := m.Stats()
	if st.Entries != 3 || st.Bytes != 3*size || st.Evictions != 1 {
		t.Errorf("Stats = %+v, want 3 entries, %d bytes, 1 eviction", st, 3*size)
	}
	// Too large for the store: not stored, nothing evicted.
	if err := m.Set(ctx, "huge", "s", sized(t, 4*size, ""), time.Hour); err != nil {
		t.Fatal(err)
	}
	if has("huge") || m.Stats().Entries != 3 {
		t.Error("an entry larger than the store was stored or evicted others")
	}
}

func TestMemoryExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newClock()
	m := newTestMemory(t, 1<<20, clock)
	m.Set(ctx, "k", "s", sized(t, 500, "a"), 10*time.Second)
	m.Set(ctx, "k", "s", sized(t, 500, "b"), 20*time.Second)
	clock.Advance(10 * time.Second)
	es, _ := m.Get(ctx, "k", "s")
	if len(es) != 1 || es[0].Variant != "b" {
		t.Fatalf("after 10s: %d entries, want variant b only", len(es))
	}
	if st := m.Stats(); st.Entries != 1 || st.Bytes != 500+int64(len("k")+len("s")) {
		t.Errorf("Stats after expiry = %+v, want 1 entry of %d bytes", st, 500+len("ks"))
	}
	clock.Advance(10 * time.Second)
	if es, _ := m.Get(ctx, "k", "s"); es != nil {
		t.Errorf("after 20s: %d entries, want none", len(es))
	}
	if st := m.Stats(); st.Entries != 0 || st.Bytes != 0 || len(m.shards[0].keys) != 0 {
		t.Errorf("Stats = %+v with %d keys, want an empty store", st, len(m.shards[0].keys))
	}
}

func TestMemoryVariants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newTestMemory(t, 1<<20, newClock())
	old := sized(t, 400, "v")
	m.Set(ctx, "k", "s", old, time.Hour)
	got, _ := m.Get(ctx, "k", "s")
	m.Set(ctx, "k", "s", sized(t, 400, "v"), time.Hour)
	if len(got) != 1 || got[0] != old {
		t.Error("Set changed a slice Get had returned")
	}
	if es, _ := m.Get(ctx, "k", "s"); len(es) != 1 || es[0] == old {
		t.Errorf("same Variant: %d entries, want the new one only", len(es))
	}
	for i := range maxVariants + 3 {
		e := sized(t, 400, fmt.Sprint(i))
		e.ResponseTime = t0.Add(time.Duration(i+1) * time.Second)
		m.Set(ctx, "k", "s", e, time.Hour)
	}
	es, _ := m.Get(ctx, "k", "s")
	if len(es) != maxVariants {
		t.Fatalf("%d variants, want %d", len(es), maxVariants)
	}
	for _, e := range es {
		if e.Variant == "v" || e.Variant == "0" || e.Variant == "1" || e.Variant == "2" {
			t.Errorf("variant %q kept, want the oldest dropped", e.Variant)
		}
	}
	if m.Stats().Entries != maxVariants {
		t.Errorf("Stats().Entries = %d, want %d", m.Stats().Entries, maxVariants)
	}
}

func TestMemoryDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := NewMemory(MemoryOptions{MaxBytes: 1 << 20, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.shards) != maxShards {
		t.Errorf("%d shards, want %d", len(m.shards), maxShards)
	}
	for _, k := range []string{"h/a", "h/a?x", "h/a/b", "h/ab", "g/a"} {
		for _, sub := range []string{"r\x00", "r\x00a123", "q\x00"} {
			m.Set(ctx, k, sub, sized(t, 500, ""), time.Hour)
		}
	}
	if n, _ := m.Delete(ctx, "h/a"); n != 3 {
		t.Errorf("Delete(h/a) = %d, want 3 (every sub)", n)
	}
	if n, _ := m.DeletePrefix(ctx, "h/a"); n != 9 {
		t.Errorf("DeletePrefix(h/a) = %d, want 9", n)
	}
	if st := m.Stats(); st.Entries != 3 {
		t.Errorf("%d entries left, want 3 (g/a)", st.Entries)
	}
	if es, _ := m.Get(ctx, "g/a", "r\x00a123"); len(es) != 1 {
		t.Error("g/a lost")
	}
}

func TestMemoryGetAllocs(t *testing.T) {
	ctx := context.Background()
	m := newTestMemory(t, 1<<20, newClock())
	m.Set(ctx, "host/path?q", "r\x00", sized(t, 500, ""), time.Hour)
	key, sub := "host/path?q", "r\x00"
	if n := testing.AllocsPerRun(100, func() { m.Get(ctx, key, sub) }); n != 0 {
		t.Errorf("Get allocates %v times, want 0", n)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _ := NewMemory(MemoryOptions{MaxBytes: 64 << 10, Now: newClock().Now})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := fmt.Sprint("k", (g*7+i)%50)
				switch i % 4 {
				case 0:
					m.Set(ctx, k, "s", sized(t, 600, fmt.Sprint(i%3)), time.Hour)
				case 3:
					m.Delete(ctx, k)
				default:
					m.Get(ctx, k, "s")
				}
			}
		})
	}
	wg.Wait()
	st := m.Stats()
	if st.Bytes > 64<<10 || st.Bytes < 0 {
		t.Errorf("Stats = %+v, want bytes within [0, %d]", st, 64<<10)
	}
	var n int
	for i := range m.shards {
		s := &m.shards[i]
		for it := s.lru.next; it != &s.lru; it = it.next {
			n++
		}
	}
	if n != st.Entries {
		t.Errorf("LRU lists hold %d items, Stats says %d", n, st.Entries)
	}
}
