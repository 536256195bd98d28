package config

import (
	"strings"
	"testing"
)

func TestCacheStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  []string
		want string // StoreWith(Redis.Enabled())
	}{
		{"default without redis", "", nil, CacheStoreMemory},
		{"default with REDIS_ADDR", "", []string{"REDIS_ADDR=127.0.0.1:6379"}, CacheStoreMemoryRedis},
		{"default with redis.addrs", "redis:\n  addrs: [\"127.0.0.1:6379\"]\n", nil, CacheStoreMemoryRedis},
		{"memory with redis", "cache:\n  store: memory\n", []string{"REDIS_ADDR=127.0.0.1:6379"}, CacheStoreMemory},
		{"redis alone", "cache:\n  store: redis\n", []string{"REDIS_ADDR=127.0.0.1:6379"}, CacheStoreRedis},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tt.yaml, tt.env...)
			if got := c.Cache.StoreWith(c.Redis.Enabled()); got != tt.want {
				t.Errorf("StoreWith(%v) = %q, want %q", c.Redis.Enabled(), got, tt.want)
			}
		})
	}
}

func TestLoadCacheProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		yaml   string
		path   string
		marker string
		msg    string
	}{
		{"unknown store", "cache:\n  enabled: true\n  store: disk\n", "cache.store", "store:", `want one of "memory", "memory+redis", "redis"`},
		{"redis store without redis", "cache:\n  store: memory+redis\n", "cache.store", "store:", `"memory+redis" needs redis.addrs (REDIS_ADDR)`},
		{"redis alone without redis", "cache:\n  store: redis\n", "cache.store", "store:", `"redis" needs redis.addrs`},
		{"body over memory", "cache:\n  max_body_bytes: 10\n  max_memory_bytes: 5\n", "cache.max_body_bytes", "max_body_bytes:", "must not exceed cache.max_memory_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadText(t, tt.yaml)
			want := lineOf(t, tt.yaml, tt.marker)
			for _, p := range problemsOf(t, err) {
				if p.Path == tt.path && strings.Contains(p.Msg, tt.msg) {
					if p.Line != want {
						t.Errorf("Load(%q): %q line = %d, want %d", tt.yaml, p, p.Line, want)
					}
					return
				}
			}
			t.Errorf("Load(%q) problems:\n%v\nwant one at %q with %q", tt.yaml, err, tt.path, tt.msg)
		})
	}
}
