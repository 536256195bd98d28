package config

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// waitFor is how long a test waits for an event that should come within
// milliseconds; it bounds a poll, it is not a sleep.
const waitFor = 5 * time.Second

func TestWatch(t *testing.T) {
	defer goleak.VerifyNone(t)

	write := func(t *testing.T, path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string) (path string)
		change func(t *testing.T, dir, path string)
	}{
		{
			name: "write",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "altair.yaml")
				write(t, path, "log: {level: info}\n")
				return path
			},
			change: func(t *testing.T, _, path string) { write(t, path, "log: {level: debug}\n") },
		},
		{
			name: "atomic rename replace",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "altair.yaml")
				write(t, path, "log: {level: info}\n")
				return path
			},
			change: func(t *testing.T, dir, path string) {
				tmp := filepath.Join(dir, ".altair.yaml.swp")
				write(t, tmp, "log: {level: debug}\n")
				must(t, os.Rename(tmp, path))
			},
		},
		{
			name:   "created",
			setup:  func(t *testing.T, dir string) string { return filepath.Join(dir, "altair.yaml") },
			change: func(t *testing.T, _, path string) { write(t, path, "log: {level: debug}\n") },
		},
		{
			// The layout and update of a Kubernetes ConfigMap volume.
			name: "configmap symlink swap",
			setup: func(t *testing.T, dir string) string {
				must(t, os.Mkdir(filepath.Join(dir, "..2025_01"), 0o755))
				write(t, filepath.Join(dir, "..2025_01", "altair.yaml"), "log: {level: info}\n")
				must(t, os.Symlink("..2025_01", filepath.Join(dir, "..data")))
				path := filepath.Join(dir, "altair.yaml")
				must(t, os.Symlink(filepath.Join("..data", "altair.yaml"), path))
				return path
			},
			change: func(t *testing.T, dir, _ string) {
				must(t, os.Mkdir(filepath.Join(dir, "..2025_02"), 0o755))
				write(t, filepath.Join(dir, "..2025_02", "altair.yaml"), "log: {level: debug}\n")
				must(t, os.Symlink("..2025_02", filepath.Join(dir, "..data_tmp")))
				must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
				must(t, os.RemoveAll(filepath.Join(dir, "..2025_01")))
			},
		},
		{
			name: "write through a symlink to another directory",
			setup: func(t *testing.T, dir string) string {
				real := filepath.Join(t.TempDir(), "real.yaml")
				write(t, real, "log: {level: info}\n")
				path := filepath.Join(dir, "altair.yaml")
				must(t, os.Symlink(real, path))
				return path
			},
			change: func(t *testing.T, _, path string) {
				real, err := filepath.EvalSymlinks(path)
				must(t, err)
				write(t, real, "log: {level: debug}\n")
			},
		},
	}
	for _, tt := range tests {
		// Not parallel: goleak.VerifyNone must see only this test's goroutines.
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			changes := make(chan struct{}, 1)
			ready := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- watch(ctx, path, func() {
					select {
					case changes <- struct{}{}:
					default:
					}
				}, func() { close(ready) })
			}()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("watch(%q) = %v before it was ready", path, err)
			}

			tt.change(t, dir, path)
			select {
			case <-changes:
			case <-time.After(waitFor):
				t.Errorf("watch(%q): no onChange within %v of the change", path, waitFor)
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("watch(%q) after cancel = %v, want nil", path, err)
				}
			case <-time.After(waitFor):
				t.Fatalf("watch(%q) did not return within %v of cancel", path, waitFor)
			}
		})
	}
}

func TestWatchReturnsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join(t.TempDir(), "altair.yaml")
	if err := Watch(ctx, path, func() { t.Error("onChange called") }, nil); err != nil {
		t.Errorf("Watch(cancelled, %q) = %v, want nil", path, err)
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	defer goleak.VerifyNone(t)
	path := filepath.Join(t.TempDir(), "absent", "altair.yaml")
	if err := Watch(context.Background(), path, func() {}, nil); err == nil {
		t.Errorf("Watch(%q) = nil, want an error for a missing directory", path)
	}
}
