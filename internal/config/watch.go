package config

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce collapses the bursts of events that one save causes (an
// editor's write-to-temp, rename and chmod; a ConfigMap's symlink swap) into
// one call.
const watchDebounce = 100 * time.Millisecond

// Watch calls onChange, debounced by about 100ms, whenever the file at path is
// written, created, renamed or replaced, until ctx is done; then it returns
// nil. It returns an error if the watch cannot be set up or the watcher fails.
//
// Watch observes the file's parent directory rather than the file, so that it
// sees editors that save by renaming a new file over the old one, and the
// Kubernetes ConfigMap update, which swaps a "..data" symlink under the file's
// symlink without touching the file's own name: after every event in the
// directory Watch resolves the symlinks of path again and reports a change when
// the resolved file differs. When path is a symlink to a file elsewhere, that
// file's directory is watched as well.
//
// onChange runs on the caller's goroutine, one call at a time; Watch starts no
// goroutine of its own beyond fsnotify's, which it stops before returning. The
// file need not exist when Watch starts; its creation is a change.
//
// ready, if not nil, is called once the watch is in place: a change made
// after it is seen. The gateway reports itself ready only then.
func Watch(ctx context.Context, path string, onChange, ready func()) error {
	return watch(ctx, path, onChange, ready)
}

// watch is Watch with a hook called once the watch is set up, for tests.
func watch(ctx context.Context, path string, onChange func(), ready func()) error {
	if path == "" {
		return errors.New("watch config: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch config %q: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config %q: %w", path, err)
	}
	defer w.Close()

	dir := filepath.Dir(abs)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch config directory %q: %w", dir, err)
	}
	target, targetDir := "", ""
	// follow re-resolves path and watches the directory of the file it now
	// resolves to; it reports whether that file changed.
	follow := func() bool {
		t, err := filepath.EvalSymlinks(abs)
		if err != nil {
			t = "" // missing, or a dangling link mid-swap
		}
		if t == target {
			return false
		}
		target = t
		if t == "" {
			// Gone: a reload now could only fail. Its return is a change.
			return false
		}
		if d := filepath.Dir(t); d != dir && d != targetDir {
			if targetDir != "" {
				_ = w.Remove(targetDir) // may already be gone with its directory
			}
			if w.Add(d) == nil {
				targetDir = d
			}
		}
		return true
	}
	follow()
	if ready != nil {
		ready()
	}

	debounce := time.NewTimer(watchDebounce)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := filepath.Clean(ev.Name)
			written := ev.Has(fsnotify.Write) || ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename)
			moved := follow()
			if moved || written && (name == abs || name == target) {
				debounce.Reset(watchDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost; one of them may have been ours.
				debounce.Reset(watchDebounce)
				continue
			}
			return fmt.Errorf("watch config %q: %w", path, err)
		case <-debounce.C:
			onChange()
		}
	}
}
