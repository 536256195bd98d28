package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as a config file. Load must never
// panic, must return either a config or Problems, and a config it returns must
// be valid and normalized. Seeds are in testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	environ := []string{"FUZZ_HOST=backend", "FUZZ_PORT=8080", "FUZZ_EMPTY="}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "altair.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path, environ)
		if err != nil {
			if c != nil {
				t.Fatalf("Load() = %+v, %v; want a nil config with an error", c, err)
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Load() error = %v (%T), want non-empty Problems", err, err)
			}
			for _, p := range ps {
				if p.Msg == "" || p.Line < 0 {
					t.Fatalf("Load() problem %#v: want a message and a line >= 0", p)
				}
			}
			_ = err.Error()
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate() of a loaded config = %v, want nil", err)
		}
		for i, r := range c.Routes {
			if len(r.Backends) != 0 || c.Upstreams[r.Upstream] == nil || r.Timeout <= 0 {
				t.Fatalf("Load() route %d not normalized: %+v", i, r)
			}
		}
		for name, u := range c.Upstreams {
			if u == nil || u.LoadBalancing == "" || u.Retry.Attempts == 0 || u.HealthCheck.Interval == 0 {
				t.Fatalf("Load() upstream %q not defaulted: %+v", name, u)
			}
			for _, b := range u.Backends {
				if b.Weight <= 0 {
					t.Fatalf("Load() upstream %q backend weight %d, want > 0", name, b.Weight)
				}
			}
		}
	})
}
